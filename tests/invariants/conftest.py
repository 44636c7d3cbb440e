"""Fixtures of the invariant suite: one prepared SQLite home per session (copied per test that
needs a private broker) and one shared live broker with a small world for read-mostly tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.invariants.harness import Home, LiveServer, build_world, copy_home, prepare_home
from tests.world import Programme


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return prepare_home(tmp_path_factory.mktemp("template") / "home")


@pytest.fixture
def private_home(template_home: Home, tmp_path: Path) -> Home:
    return copy_home(template_home, tmp_path / "home")


@pytest.fixture(scope="session")
def shared(template_home: Home, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[LiveServer, Programme]]:  # fmt: skip
    home = copy_home(template_home, tmp_path_factory.mktemp("shared") / "home")
    server = LiveServer(home).start()
    try:
        yield server, build_world(server, home.tokens)
    finally:
        server.stop()
