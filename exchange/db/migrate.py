"""Run the packaged Alembic migrations programmatically (`exchange admin init`, `dev up`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from exchange.db.engine import make_engine

MIGRATIONS = "exchange.migrations"
VERSION_TABLE = "alembic_version"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files(MIGRATIONS)))
    # ConfigParser interpolation would eat a '%' in a password
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (default: the newest)."""
    engine = make_engine(url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection, _sqlite_foreign_keys_deferred(connection), \
            connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        _check_foreign_keys(connection)


@contextmanager
def _sqlite_foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    """SQLite rebuilds a table to alter it (Alembic's batch mode): DROP TABLE on a table others
    reference would cascade-delete or refuse with foreign keys on, and the pragma cannot change
    inside a transaction. So migrations run with it off and `_check_foreign_keys` verifies
    every reference before commit, as SQLite's own ALTER TABLE procedure prescribes."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise RuntimeError(f"migration left broken references in: {', '.join(tables)}")


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's revision, read straight from `alembic_version`: no MigrationContext, so
    /readyz and the CLI's checks log nothing (Alembic logs its context at INFO every time)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        versions = connection.execute(
            text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 - a constant
        ).scalars().all()
    if len(versions) > 1:  # several heads: let Alembic's own reader raise its error
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    return versions[0] if versions else None


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
