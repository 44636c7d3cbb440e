"""`exchange … --help` for every group and command: flags read as flags, values as values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from exchange.cli import app


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_the_tree_is_walked() -> None:
    assert ("import", "residents") in COMMANDS and ("office", "erase") in COMMANDS
    assert len(COMMANDS) > 30


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "exchange")
def test_no_flag_shows_a_value(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    help_line = next(line for line in result.output.splitlines() if "--help" in line)
    assert "Show this message" in help_line and "<" not in help_line


def test_options_that_take_a_value_keep_their_type() -> None:
    out = CliRunner().invoke(app, ["audit", "verify", "--help"], env={"COLUMNS": "160"}).output
    vkey = next(line for line in out.splitlines() if "--vkey" in line)
    assert "<str>" in vkey
    partial = next(
        line
        for line in CliRunner()
        .invoke(app, ["import", "residents", "--help"], env={"COLUMNS": "160"})
        .output.splitlines()
        if "--partial" in line
    )
    assert "<" not in partial
