"""The attack set's fixtures: the exchange tests' migrated database (SQLite, and PostgreSQL
under CI), one per test."""

from tests.exchange.conftest import (  # noqa: F401  (fixtures, found by name)
    migrated_engine,
    migrated_sqlite_template,
    session_factory,
)
