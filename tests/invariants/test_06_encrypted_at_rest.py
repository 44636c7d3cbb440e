"""Invariant 6, encrypted at rest: no plaintext personal value in the SQLite file (+WAL) of a
live broker after the flows ran, nor in a pg_dump of a PostgreSQL schema the demo loaded."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.invariants.harness import (
    LiveServer,
    World,
    ledger_rows,
    personal_values,
    prepare_home,
    scan_bytes,
)

pytestmark = pytest.mark.slow


def test_sqlite_file_and_wal_hold_no_plaintext(shared: tuple[LiveServer, World]) -> None:
    server, _ = shared
    blob = b"".join(p.read_bytes() for p in server.home.path.glob("exchange.db*"))
    assert len(blob) > 10_000
    assert scan_bytes(blob, personal_values(ledger_rows())) == []


@pytest.mark.db
def test_pg_dump_holds_no_plaintext(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("the SQLite file is scanned above")
    if shutil.which("pg_dump") is None:
        pytest.fail("pg_dump is not installed")
    home = prepare_home(tmp_path / "home", database_url)
    url = make_url(database_url)
    schema = url.query["options"].split("search_path=")[1]
    dump = subprocess.run(
        ["pg_dump", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
         "-U", url.username or "postgres", "-n", schema, url.database or "test"],
        capture_output=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert b"resident" in dump and len(dump) > 10_000
    assert home.tokens
    assert scan_bytes(dump, personal_values(ledger_rows())) == []
