"""CLI error handling: every failure is one clear line on stderr and a non-zero exit.

    CliError        a user-facing problem with the command (exit 1)
Foreign errors (configuration, keys, database) are converted here once, in `fail_cleanly`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from exchange.settings import ConfigurationError
from keys.errors import KeysError

P = ParamSpec("P")
R = TypeVar("R")
EXIT_FAILURE = 1


class CliError(Exception):
    """A problem the user can fix; the message is one line without personal data."""


def describe(exc: BaseException) -> str:
    if isinstance(exc, CliError | ConfigurationError | KeysError):
        return str(exc)
    if isinstance(exc, ValidationError):  # a setting: name the variable, never echo its value
        problems = exc.errors(include_input=False, include_url=False)
        return "; ".join(
            f"EXCHANGE_{'_'.join(map(str, p['loc'])).upper()}: "
            f"{str(p['msg']).removeprefix('Value error, ')}"
            for p in problems
        )
    if isinstance(exc, SQLAlchemyError):
        # driver messages can quote row values; name the kind of failure only
        origin = getattr(exc, "orig", None) or exc
        return f"database error ({type(origin).__name__}); check EXCHANGE_DATABASE_URL"
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": ")
    return f"unexpected {type(exc).__name__}"


def fail_cleanly(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command; turn any failure into `error: <one line>` and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # converted once, here
            typer.echo(f"error: {describe(exc)}", err=True)
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper
