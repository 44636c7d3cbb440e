"""Shared fixtures: a fresh, empty database per test, on SQLite and (in CI) PostgreSQL.

`database_url` is parametrised over the backends. SQLite always runs. PostgreSQL runs when
`CI=true` or `EXCHANGE_TEST_DATABASE_URL` is set; under CI an unreachable server fails the test
instead of skipping it. Each PostgreSQL test gets its own schema (selected through the
connection's `search_path`), dropped afterwards, so runs leave nothing behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_PG_SKIPPED: list[str] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def postgres_url() -> str | None:
    """The server PostgreSQL tests target, or None when they are not requested here."""
    explicit = os.environ.get("EXCHANGE_TEST_DATABASE_URL")
    if explicit:
        return explicit
    return DEFAULT_PG_URL if in_ci() else None


def _pg_or_skip() -> str:
    url = postgres_url()
    if url is None:
        _PG_SKIPPED.append("not requested")
        pytest.skip("PostgreSQL not requested: set CI=true or EXCHANGE_TEST_DATABASE_URL")
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any driver error means "unreachable" here
        message = f"PostgreSQL at {url} is unreachable: {type(exc).__name__}"
        if in_ci():
            pytest.fail(message + " (CI requires it)")
        _PG_SKIPPED.append("unreachable")
        pytest.skip(message)
    return url


def make_pg_schema_url(base_url: str) -> tuple[str, str]:
    """Create a throwaway schema; return (url selecting it, schema name)."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:16]}"
    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = sa.engine.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_pg_schema(base_url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database; dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'exchange.db'}"
        return
    base = _pg_or_skip()
    url, schema = make_pg_schema_url(base)
    try:
        yield url
    finally:
        drop_pg_schema(base, schema)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _PG_SKIPPED:
        reasons = ", ".join(sorted(set(_PG_SKIPPED)))
        terminalreporter.write_sep(
            "!",
            f"{len(_PG_SKIPPED)} PostgreSQL test runs SKIPPED ({reasons}); "
            "set CI=true or EXCHANGE_TEST_DATABASE_URL to run them",
            yellow=True,
            bold=True,
        )
