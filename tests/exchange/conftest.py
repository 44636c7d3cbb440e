"""Fixtures for exchange tests: a migrated database and its session factory; the world (the
ORM driver of tests/world.py) with the office's principals; an app over it.

SQLite databases are copied from one file migrated once per test session (migrating takes
~0.5 s per test otherwise); PostgreSQL schemas are migrated per test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from exchange.api.app import create_app
from exchange.db.engine import make_engine, make_session_factory
from exchange.db.migrate import upgrade
from exchange.settings import Settings
from keys import Keyring, MemoryKeyProvider
from tests.world import NOW, Office, World, office_principals


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    upgrade(f"sqlite:///{path}")  # engine disposed inside: the WAL is checkpointed
    return path


def migrate(database_url: str, template: Path) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        shutil.copyfile(template, url.database)
        return
    upgrade(database_url)


@pytest.fixture
def migrated_engine(database_url: str, migrated_sqlite_template: Path) -> Iterator[Engine]:
    migrate(database_url, migrated_sqlite_template)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(migrated_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(migrated_engine)


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(MemoryKeyProvider.generate())


@pytest.fixture
def world(session_factory: sessionmaker[Session], keyring: Keyring) -> World:
    return World(session_factory, keyring)


@pytest.fixture
def office(world: World) -> Office:
    return office_principals(world)


@pytest.fixture
def api(
    session_factory: sessionmaker[Session], keyring: Keyring, tmp_path: Path
) -> Iterator[TestClient]:
    """The app over the world's database, its clock at NOW (the real audit store)."""
    settings = Settings(home=tmp_path, max_page_size=50)
    app = create_app(settings, session_factory=session_factory, keyring=keyring, clock=lambda: NOW)
    with TestClient(app) as client:
        yield client
