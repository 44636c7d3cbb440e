"""Typer apps whose flags read as flags in `--help`.

Typer's rich help prints a type after every option, so a flag such as `--partial` (and
`--help` itself) showed as `--partial <bool>`, as if it took a value. Every `exchange` group
and command is built from `App`, whose commands give flags an empty metavar: the type column
stays empty for them and keeps `<str>`, `<path>`, `<int>` for options that take a value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

# Typer vendors its own click; its Parameter and Context types are not public, hence Any.


def _flags_without_metavar(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # idempotent; the help option is created lazily, so here
    return params


class FlagCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_metavar(super().get_params(ctx))


class FlagGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_metavar(super().get_params(ctx))


class App(typer.Typer):
    """`typer.Typer` whose group and commands show flags as flags."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", FlagGroup)
        super().__init__(**kwargs)

    def command(  # type: ignore[override]
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return super().command(name, cls=cls or FlagCommand, **kwargs)
