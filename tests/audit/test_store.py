"""The SQL audit store on SQLite and PostgreSQL: append, proofs, checkpoints, search, export."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from audit.checkpoint import cosign, open_checkpoint
from audit.entry import decode, encode
from audit.errors import AppendError, CheckpointError, NotFoundError, ProofError
from audit.merkle import leaf_hash, root_of, verify_consistency, verify_inclusion
from audit.note import ALG_COSIGNATURE_V1, Signer
from audit.store import AuditLog, EntryFilter, append, append_many
from audit.store.search import indexed_size, refresh_search
from audit.verifier import verify_export
from tests.audit.conftest import T0, disclosure

pytestmark = pytest.mark.db


def _fill(sessions: sessionmaker[Session], n: int, start: int = 0) -> None:
    with sessions.begin() as s:
        append_many(s, [disclosure(i) for i in range(start, start + n)])


def test_append_assigns_gap_free_indexes_and_stores_canonical_bytes(
        sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        assert append(s, disclosure(0)) == 0
        assert append_many(s, [disclosure(1), disclosure(2)]) == [1, 2]
    with sessions() as s:
        log = AuditLog(s)
        assert log.size() == 3
        data, leaf = log.leaf(2)
        assert data == encode(2, disclosure(2)) and leaf == leaf_hash(data)
        assert log.head().root == root_of([encode(i, disclosure(i)) for i in range(3)])


def test_append_never_commits_and_rolls_back_with_the_caller(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        append(s, disclosure(0))
        s.rollback()
    with sessions() as s:
        assert AuditLog(s).size() == 0
        assert s.execute(sa.text("SELECT count(*) FROM audit_entries")).scalar() == 0


def test_append_failure_raises_append_error(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        s.execute(sa.text("ALTER TABLE audit_entries RENAME TO audit_entries_gone"))
        with pytest.raises(AppendError):
            append(s, disclosure(0))
        s.rollback()


@pytest.mark.parametrize("stmt", [
    "UPDATE audit_entries SET entry = entry WHERE idx = 0",
    "DELETE FROM audit_entries WHERE idx = 0",
    "UPDATE audit_search SET action = 'x' WHERE idx = 0",
    "DELETE FROM audit_search WHERE idx = 1",
    "DELETE FROM audit_subjects",
    "UPDATE audit_head SET size = 0",
    "DELETE FROM audit_head",
])
def test_database_refuses_rewrites(sessions: sessionmaker[Session], stmt: str) -> None:
    _fill(sessions, 2)
    with sessions.begin() as s:
        assert refresh_search(s) == 2  # the projection has rows the statement would touch
    refused = "append-only|only grow|may not"
    with sessions() as s, pytest.raises(sa.exc.DatabaseError, match=refused):
        s.execute(sa.text(stmt))
        s.flush()
    with sessions() as s:
        assert AuditLog(s).size() == 2
        assert s.execute(sa.text("SELECT count(*) FROM audit_subjects")).scalar() == 2


def test_truncate_refused_on_postgresql(database_url: str,
                                        sessions: sessionmaker[Session]) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("TRUNCATE exists only on PostgreSQL")
    _fill(sessions, 1)
    with sessions() as s, pytest.raises(sa.exc.DatabaseError):
        s.execute(sa.text("TRUNCATE audit_entries CASCADE"))


def test_proofs_from_stored_hashes_verify(sessions: sessionmaker[Session]) -> None:
    _fill(sessions, 37)
    _fill(sessions, 1, start=37)
    leaves = [encode(i, disclosure(i)) for i in range(38)]
    with sessions() as s:
        log = AuditLog(s)
        for size in (1, 2, 5, 16, 17, 38):
            root = log.root(size)
            assert root == root_of(leaves[:size])
            for index in {0, size // 2, size - 1}:
                p = log.inclusion_proof(index, size)
                verify_inclusion(index, size, leaf_hash(leaves[index]), p.hashes, root)
            for first in {1, size // 3 or 1, size}:
                c = log.consistency_proof(first, size)
                verify_consistency(first, size, log.root(first), root, c.hashes)
        j = log.consistency_proof(3, 38).to_json()
        assert j["first"] == 3 and all(len(base64.b64decode(h)) == 32 for h in j["hashes"])
        with pytest.raises(NotFoundError):
            log.inclusion_proof(0, 39)
        with pytest.raises(ProofError):
            log.inclusion_proof(38, 38)
        with pytest.raises(ProofError):
            log.consistency_proof(0, 5)


def test_checkpoints_are_signed_stored_and_cosigned(sessions: sessionmaker[Session],
                                                    signer: Signer) -> None:
    _fill(sessions, 5)
    with sessions.begin() as s:
        log = AuditLog(s, signer=signer)
        assert log.latest_checkpoint() is None
        stored = log.issue_checkpoint()
        assert log.issue_checkpoint() == stored  # idempotent per size
    cp, _ = open_checkpoint(stored.note, signer.verifier)
    assert cp.size == 5
    witness = Signer("witness.example", Ed25519PrivateKey.generate(), ALG_COSIGNATURE_V1)
    cosigned = stored.note + cosign(cp.body(), witness, 1_700_000_000)
    with sessions.begin() as s:
        log = AuditLog(s, signer=signer)
        after = log.add_cosignature(cosigned, witness.verifier.text())
        assert after.note == cosigned
        with pytest.raises(CheckpointError):
            log.add_cosignature(cosigned.replace("\n5\n", "\n6\n"), witness.verifier.text())
    with sessions() as s:
        latest = AuditLog(s, signer=signer).latest_checkpoint()
        assert latest is not None and latest.note == cosigned
        assert open_checkpoint(latest.note, signer.verifier)[0] == cp


def test_entries_filters_and_pages(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        append_many(s, [disclosure(i, agreement="agr-2" if i % 2 else "agr-1")
                        for i in range(10)])
    with sessions() as s:
        log = AuditLog(s)
        page = log.entries(EntryFilter(agreement="agr-2"), limit=3)
        assert [i["index"] for i in page.items] == [1, 3, 5] and page.next_after == 5
        rest = log.entries(EntryFilter(agreement="agr-2"), after=5, limit=3)
        assert [i["index"] for i in rest.items] == [7, 9] and rest.next_after is None
        assert [i["index"] for i in log.entries(EntryFilter(pseudonym="ap_000004_0")).items] == [4]
        assert [i["index"] for i in log.entries(EntryFilter(actor="contractor-1")).items] == [
            1, 4, 7]
        from datetime import timedelta
        window = EntryFilter(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4))
        assert [i["index"] for i in log.entries(window).items] == [2, 3]
        assert log.entries(EntryFilter(outcome="denied")).items == ()
        item = log.entries(limit=1).items[0]
        raw = base64.b64decode(str(item["entry_b64"]))
        assert decode(raw).index == 0


def test_export_verifies_offline_and_fsck_is_clean(sessions: sessionmaker[Session],
                                                   signer: Signer) -> None:
    _fill(sessions, 20)
    with sessions.begin() as s:
        old = AuditLog(s, signer=signer).issue_checkpoint()
    _fill(sessions, 13, start=20)
    with sessions.begin() as s:
        log = AuditLog(s, signer=signer)
        new = log.issue_checkpoint()
        lines = [line.encode() for line in log.export()]
        report = log.fsck(signer.verifier)
    assert report.ok, report.problems
    assert report.entries == 33 and report.checkpoints == 2
    verdict = verify_export(lines, signer.verifier, checkpoint=new.note, since=old.note,
                            deep=True)
    assert verdict.ok, verdict.summary()
    assert verdict.checkpoint is not None and verdict.checkpoint.size == 33


def _set_frontier(engine: sa.Engine, frontier: bytes) -> None:
    """What only the owner can do: rewrite the head behind its trigger."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_head_forward"))
        conn.execute(sa.text("UPDATE audit_head SET frontier = :f WHERE id = 1"),
                     {"f": frontier})


def test_fsck_reports_a_head_frontier_that_disagrees_with_the_entries(
        engine: sa.Engine, sessions: sessionmaker[Session]) -> None:
    _fill(sessions, 5)
    _set_frontier(engine, b"\x00" * 64)  # 5 entries: two perfect subtrees, wrong hashes
    with sessions() as s:
        report = AuditLog(s).fsck()
    assert not report.ok and "frontier" in str(report.problems[0])
    _set_frontier(engine, b"\x00" * 33)  # not even the right length: appends refuse
    with sessions() as s, pytest.raises(AppendError, match="frontier"):
        append(s, disclosure(5))


# -- the search projection ----------------------------------------------------------------------

def test_appends_write_only_the_log_and_search_catches_up(
        sessions: sessionmaker[Session]) -> None:
    _fill(sessions, 3)
    with sessions.begin() as s:
        assert s.execute(sa.text("SELECT count(*) FROM audit_search")).scalar() == 0
        assert refresh_search(s) == 3 and refresh_search(s) == 0
    _fill(sessions, 2, start=3)
    with sessions.begin() as s:
        # a search sees entries appended since the last refresh without being told to refresh
        found = AuditLog(s).entries(EntryFilter(pseudonym="ap_000004_0")).items
        assert [i["index"] for i in found] == [4]
        assert indexed_size(s) == 5
        assert s.execute(sa.text("SELECT count(*) FROM audit_subjects")).scalar() == 5


def test_checkpoints_refresh_the_projection(sessions: sessionmaker[Session],
                                            signer: Signer) -> None:
    _fill(sessions, 4)
    with sessions.begin() as s:
        AuditLog(s, signer=signer).issue_checkpoint()
        assert indexed_size(s) == 4


def test_concurrent_refreshes_index_each_entry_once(engine: sa.Engine,
                                                    sessions: sessionmaker[Session]) -> None:
    import threading

    _fill(sessions, 300)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def refresh() -> None:
        try:
            start.wait()
            with sessions.begin() as s:
                refresh_search(s, chunk=64)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sessions() as s:
        assert s.execute(sa.text("SELECT count(*) FROM audit_search")).scalar() == 300
        assert s.execute(sa.text("SELECT count(*) FROM audit_subjects")).scalar() == 300
        assert AuditLog(s).fsck().ok


def _owner(engine: sa.Engine) -> sa.Connection:
    """A connection with the owner's power to write behind the triggers (the caller commits)."""
    conn = engine.connect()
    conn.begin()
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
    else:
        for t in ("audit_search", "audit_subjects", "audit_entries"):
            for verb in ("update", "delete"):
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {t}_no_{verb}"))
    return conn


def test_fsck_reports_a_search_row_edited_behind_the_triggers(
        engine: sa.Engine, sessions: sessionmaker[Session]) -> None:
    _fill(sessions, 6)
    with sessions.begin() as s:
        refresh_search(s)
    with _owner(engine) as conn:
        conn.execute(sa.text("UPDATE audit_search SET actor_id = 'someone-else' WHERE idx = 4"))
        conn.execute(sa.text("UPDATE audit_subjects SET pseudonym = 'ap_x' WHERE entry_idx = 2"))
        conn.commit()
    with sessions() as s:
        problems = AuditLog(s).fsck().problems
    assert [(p.index, str(p)) for p in problems] == [
        (2, str(problems[0])), (4, str(problems[1]))]
    assert "subject rows disagree" in str(problems[0])
    assert "search row disagrees" in str(problems[1])


def test_fsck_reports_a_projection_hole(engine: sa.Engine,
                                        sessions: sessionmaker[Session]) -> None:
    _fill(sessions, 6)
    with sessions.begin() as s:
        refresh_search(s)
    with _owner(engine) as conn:
        conn.execute(sa.text("DELETE FROM audit_subjects WHERE entry_idx = 3"))
        conn.execute(sa.text("DELETE FROM audit_search WHERE idx = 3"))
        conn.commit()
    with sessions() as s:
        problems = AuditLog(s).fsck().problems
    assert len(problems) == 1 and problems[0].index == 3
    assert "lacks this entry" in str(problems[0])


def test_refresh_stops_at_a_missing_entry_and_names_it(engine: sa.Engine,
                                                       sessions: sessionmaker[Session]) -> None:
    from audit.errors import IntegrityError

    _fill(sessions, 5)
    with _owner(engine) as conn:
        conn.execute(sa.text("DELETE FROM audit_entries WHERE idx = 2"))
        conn.commit()
    with sessions() as s, pytest.raises(IntegrityError, match="entry 2 is missing"):
        AuditLog(s).entries()


def test_postgresql_broker_role_appends_and_searches_but_cannot_rewrite(
        database_url: str, engine: sa.Engine, sessions: sessionmaker[Session]) -> None:
    """The documented role, taken by a real session: it appends through the log's path and
    refreshes the search projection; rewrites are refused by privilege before any trigger
    runs (tests/security/test_audit_insert_guard.py: it cannot insert an entry either)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("database roles exist only on PostgreSQL")
    import uuid

    from audit.store import broker_role_sql

    role = f"audit_broker_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        conn.execute(sa.text(f"CREATE ROLE {role} NOLOGIN"))
        conn.execute(sa.text(broker_role_sql(role)))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
    try:
        with sessions.begin() as s:
            s.execute(sa.text(f"SET LOCAL ROLE {role}"))
            assert append_many(s, [disclosure(i) for i in range(3)]) == [0, 1, 2]
            assert [i["index"] for i in
                    AuditLog(s).entries(EntryFilter(pseudonym="ap_000001_0")).items] == [1]
        for stmt in ("UPDATE audit_entries SET entry = entry", "DELETE FROM audit_search",
                     "TRUNCATE audit_subjects"):
            with sessions() as s, pytest.raises(sa.exc.ProgrammingError,
                                                match="permission denied"):
                s.execute(sa.text(f"SET LOCAL ROLE {role}"))
                s.execute(sa.text(stmt))
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'REVOKE ALL ON SCHEMA "{schema}" FROM {role}'))
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))
    with sessions() as s:
        assert AuditLog(s).size() == 3 and AuditLog(s).fsck().ok


def test_entries_with_details_are_stored_exported_and_verify(sessions: sessionmaker[Session],
                                                             signer: Signer) -> None:
    """Format 2 entries (with details) between format 1 ones: stored verbatim, searchable,
    clean under fsck and verified offline with --deep."""
    _fill(sessions, 3)
    imported = replace(disclosure(3), action="ledger.import", subjects=(),
                       details={"file_sha256": "9f86d081", "rows_total": 12})
    with sessions.begin() as s:
        append(s, imported)
    _fill(sessions, 2, start=4)
    with sessions.begin() as s:
        log = AuditLog(s, signer=signer)
        cp = log.issue_checkpoint()
        lines = [line.encode() for line in log.export()]
        report = log.fsck(signer.verifier)
        found = log.entries(EntryFilter(action="ledger.import"), after=-1, limit=10).items
    assert report.ok, report.problems
    assert [int(str(i["index"])) for i in found] == [3]
    (line,) = [line for line in lines if b'"action":"ledger.import"' in line]
    assert line.startswith(b'{"index":3,')
    assert b'"details":{"file_sha256":"9f86d081","rows_total":12},"index":3,' in line
    verdict = verify_export(lines, signer.verifier, checkpoint=cp.note, deep=True)
    assert verdict.ok and verdict.entries == 6, verdict.summary()
