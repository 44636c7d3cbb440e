"""The contractor's local store: one SQLite file in a 0700 directory (file 0600).

Tables: `cases` (one row per case reference: agreement, purpose, the opened view as JSON),
`cursors` (the feed cursor per purpose) and `pending_acks` (tombstones applied locally but not
yet acknowledged to the broker). A page is applied in one transaction together with its
cursor, so a crash never loses or double-applies a page; acknowledgements are retried until
the broker confirms them.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DB_NAME = "contractor-store.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_reference TEXT PRIMARY KEY,
    agreement TEXT NOT NULL,
    purpose TEXT NOT NULL,
    seq INTEGER NOT NULL,
    view TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (purpose TEXT PRIMARY KEY, cursor TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending_acks (case_reference TEXT PRIMARY KEY, reason TEXT NOT NULL);
"""


class LocalStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        path = directory / DB_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA secure_delete=ON")  # deleted cases are zeroed in the file
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[LocalStore]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- cursor ---------------------------------------------------------------------------
    def cursor(self, purpose: str) -> str | None:
        row = self._db.execute(
            "SELECT cursor FROM cursors WHERE purpose = ?", (purpose,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_cursor(self, purpose: str, cursor: str) -> None:
        self._db.execute(
            "INSERT INTO cursors (purpose, cursor) VALUES (?, ?) "
            "ON CONFLICT (purpose) DO UPDATE SET cursor = excluded.cursor",
            (purpose, cursor),
        )

    # -- cases ----------------------------------------------------------------------------
    def upsert_case(self, view: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO cases (case_reference, agreement, purpose, seq, view) VALUES (?,?,?,?,?) "
            "ON CONFLICT (case_reference) DO UPDATE SET agreement = excluded.agreement, "
            "purpose = excluded.purpose, seq = excluded.seq, view = excluded.view",
            (view["case_reference"], view["agreement"], view["purpose"], view["seq"],
             json.dumps(view, ensure_ascii=False, sort_keys=True)),
        )  # fmt: skip

    def delete_case(self, reference: str, reason: str) -> None:
        self._db.execute("DELETE FROM cases WHERE case_reference = ?", (reference,))
        self._db.execute(
            "INSERT OR REPLACE INTO pending_acks (case_reference, reason) VALUES (?, ?)",
            (reference, reason),
        )

    def case(self, reference: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT view FROM cases WHERE case_reference = ?", (reference,)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def references(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT case_reference FROM cases ORDER BY seq")]

    # -- acknowledgements -----------------------------------------------------------------
    def pending_acks(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT case_reference FROM pending_acks")]

    def acked(self, reference: str) -> None:
        self._db.execute("DELETE FROM pending_acks WHERE case_reference = ?", (reference,))
