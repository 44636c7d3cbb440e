"""Tamper drills: an operator with owner rights rewrites the table behind the triggers; the
offline verifier, holding only an earlier checkpoint, detects it and names the entry."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from audit.entry import encode
from audit.merkle import CompactRange, leaf_hash
from audit.note import Signer
from audit.store import AuditLog, append_many
from audit.verifier import Verdict, verify_export
from tests.audit.conftest import disclosure

pytestmark = pytest.mark.db
N = 40
KEPT = 32  # the size of the checkpoint the auditor kept


def _bypass(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
    else:
        for t in ("audit_entries", "audit_search", "audit_subjects"):
            for op in ("update", "delete"):
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {t}_no_{op}"))
        conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_entries_guard"))


def _row(conn: sa.Connection, idx: int) -> sa.Row[tuple[bytes, bytes, bytes]]:
    return conn.execute(sa.text("SELECT entry, leaf_hash, nodes FROM audit_entries "
                                "WHERE idx = :i"), {"i": idx}).one()


def _set(conn: sa.Connection, idx: int, entry: bytes, leaf: bytes, nodes: bytes) -> None:
    conn.execute(sa.text("UPDATE audit_entries SET entry = :e, leaf_hash = :l, nodes = :n "
                         "WHERE idx = :i"), {"e": entry, "l": leaf, "n": nodes, "i": idx})


def _rehash_from(conn: sa.Connection, start: int) -> None:
    """What a careful forger does: recompute every stored hash so the table is self-consistent."""
    rows = conn.execute(sa.text("SELECT idx, entry FROM audit_entries ORDER BY idx")).all()
    tree = CompactRange()
    for r in rows:
        leaf = leaf_hash(bytes(r.entry))
        nodes = b"".join(tree.append(leaf))
        if r.idx >= start:
            conn.execute(sa.text("UPDATE audit_entries SET leaf_hash = :l, nodes = :n "
                                 "WHERE idx = :i"), {"l": leaf, "n": nodes, "i": r.idx})


def edit_bytes(conn: sa.Connection, k: int) -> None:
    entry, leaf, nodes = _row(conn, k)
    _set(conn, k, bytes(entry).replace(b'"req-', b'"REQ-'), bytes(leaf), bytes(nodes))


def edit_and_rehash(conn: sa.Connection, k: int) -> None:
    edit_bytes(conn, k)
    _rehash_from(conn, k)


def delete_row(conn: sa.Connection, k: int) -> None:
    conn.execute(sa.text("DELETE FROM audit_subjects WHERE entry_idx = :i"), {"i": k})
    conn.execute(sa.text("DELETE FROM audit_search WHERE idx = :i"), {"i": k})
    conn.execute(sa.text("DELETE FROM audit_entries WHERE idx = :i"), {"i": k})


def swap_rows(conn: sa.Connection, k: int) -> None:
    j = k + 1 + (k * 7) % (KEPT - k - 1) if k < KEPT - 1 else k - 1
    a, b = _row(conn, k), _row(conn, j)
    _set(conn, k, bytes(b[0]), bytes(b[1]), bytes(b[2]))
    _set(conn, j, bytes(a[0]), bytes(a[1]), bytes(a[2]))


def insert_forged(conn: sa.Connection, k: int) -> None:
    conn.execute(sa.text("DELETE FROM audit_subjects"))
    conn.execute(sa.text("DELETE FROM audit_search"))
    for idx in range(N - 1, k - 1, -1):  # make room at k, as a forger must
        conn.execute(sa.text("UPDATE audit_entries SET idx = idx + 1 WHERE idx = :i"),
                     {"i": idx})
    forged = encode(k, disclosure(999))
    conn.execute(sa.text(
        "INSERT INTO audit_entries (idx, entry, leaf_hash, nodes) VALUES (:i, :e, :l, :n)"),
        {"i": k, "e": forged, "l": leaf_hash(forged), "n": b""})
    _rehash_from(conn, 0)


def truncate_tail(conn: sa.Connection, k: int) -> None:
    conn.execute(sa.text("DELETE FROM audit_subjects WHERE entry_idx >= :i"), {"i": k})
    conn.execute(sa.text("DELETE FROM audit_search WHERE idx >= :i"), {"i": k})
    conn.execute(sa.text("DELETE FROM audit_entries WHERE idx >= :i"), {"i": k})


Drill = Callable[[sa.Connection, int], None]


def _setup(sessions: sessionmaker[Session], signer: Signer) -> str:
    with sessions.begin() as s:
        log = AuditLog(s, signer=signer)
        for start in range(0, N, 8):
            append_many(s, [disclosure(i) for i in range(start, start + 8)])
            if start + 8 == KEPT:
                kept = log.issue_checkpoint().note
            else:
                log.issue_checkpoint()
    return kept


def _verify(sessions: sessionmaker[Session], signer: Signer, kept: str) -> Verdict:
    with sessions() as s:
        lines = [line.encode() for line in AuditLog(s, signer=signer).export()]
    return verify_export(lines, signer.verifier, since=kept)


@pytest.mark.parametrize(("drill", "exact"), [
    (edit_bytes, True), (edit_and_rehash, False), (delete_row, True), (swap_rows, True),
    (insert_forged, True), (truncate_tail, True),
], ids=lambda d: getattr(d, "__name__", str(d)))
def test_drill_is_detected_and_located(engine: sa.Engine, sessions: sessionmaker[Session],
                                       signer: Signer, drill: Drill, exact: bool) -> None:
    kept = _setup(sessions, signer)
    assert _verify(sessions, signer, kept).ok
    k = random.Random(drill.__name__).randrange(1, KEPT - 1)
    with engine.begin() as conn:
        _bypass(conn)
        drill(conn, k)
    verdict = _verify(sessions, signer, kept)
    assert not verdict.ok
    problem = verdict.problem
    assert problem is not None and problem.index is not None, verdict.summary()
    if exact:
        assert problem.index == k, verdict.summary()
        assert str(problem).startswith((f"entry {k}:", f"entries {k}.."))
    else:  # every stored hash was recomputed: located to the window between two checkpoints
        assert problem.end is not None and problem.index <= k < problem.end, verdict.summary()
        assert problem.end - problem.index <= 8
    with sessions() as s:
        assert not AuditLog(s).fsck(signer.verifier).ok
