"""Fixtures for exchange tests: a migrated database and its session factory.

SQLite databases are copied from one file migrated once per test session (migrating takes
~0.5 s per test otherwise); PostgreSQL schemas are migrated per test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from exchange.db.engine import make_engine, make_session_factory
from exchange.db.migrate import upgrade


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
