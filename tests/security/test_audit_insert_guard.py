"""Direct writes into the audit log (issue 14, finding 2).

Before: the triggers refused UPDATE and DELETE, but a row INSERTed at the head (or far beyond
it) was kept for good, and from then on every append collided with it: every audited request
answered 503. Now the database refuses any entry row that is not the log's contiguous next
index, reserved by the head, with its leaf hash and interior hashes chaining; on PostgreSQL the
broker's role cannot write the log's tables at all, only call the log's own path; and fsck names
a foreign row and says how to recover.

Trust boundary: the database. The broker's role (PostgreSQL) or anyone holding a connection
the broker opened is not trusted to write the log; the table owner is, and is watched by the
signed checkpoints instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from audit.entry import Action, Actor, AuditEntry, encode
from audit.errors import AppendError
from audit.merkle import CompactRange, leaf_hash, root_of
from audit.store import AuditLog, append_many, broker_role_sql
from exchange.bootstrap import audit_probe
from exchange.cli import app as cli
from exchange.db.engine import make_session_factory

pytestmark = pytest.mark.db
REFUSED = "refused"


def _entry(i: int) -> AuditEntry:
    return AuditEntry(time=datetime(2026, 1, 1, 8, 0, i % 60, tzinfo=UTC),
                      actor=Actor(f"contractor-{i % 3}", "contractor"), action=Action.DISCLOSE,
                      agreement="agr-1", request_id=f"req-{i}")  # fmt: skip


def _fill(factory: sessionmaker[Session], sizes: tuple[int, ...]) -> list[bytes]:
    """Append batches of these sizes; returns every entry's bytes."""
    out: list[bytes] = []
    for n in sizes:
        batch = [_entry(len(out) + k) for k in range(n)]
        with factory.begin() as s:
            assert append_many(s, batch) == list(range(len(out), len(out) + n))
        out += [encode(len(out) + k, e) for k, e in enumerate(batch)]
    return out


def _forged(logged: list[bytes], idx: int) -> dict[str, object]:
    """A row for `idx` exactly as the log would write it after `logged` (right hashes)."""
    tree = CompactRange()
    for data in logged[:idx]:
        tree.append(leaf_hash(data))
    data = encode(idx, _entry(idx))
    leaf = leaf_hash(data)
    return {"i": idx, "e": data, "l": leaf, "n": b"".join(tree.append(leaf))}


INSERT = sa.text("INSERT INTO audit_entries (idx, entry, leaf_hash, nodes) "
                 "VALUES (:i, :e, :l, :n)")


@pytest.fixture
def factory(migrated_engine: sa.Engine) -> sessionmaker[Session]:
    return make_session_factory(migrated_engine)


def _refused(factory: sessionmaker[Session], *statements: tuple[sa.TextClause, dict[str, object]],
             match: str) -> None:  # fmt: skip
    with factory() as s, pytest.raises(sa.exc.DatabaseError, match=match):
        for statement, params in statements:
            s.execute(statement, params)
        s.commit()


def _unharmed(factory: sessionmaker[Session], logged: list[bytes]) -> None:
    """The log is as the broker left it, and the next append works."""
    with factory() as s:
        log = AuditLog(s)
        assert log.size() == len(logged) and log.fsck().ok
    n = len(logged)
    with factory.begin() as s:
        assert append_many(s, [_entry(n)]) == [n]
    with factory() as s:
        assert AuditLog(s).head().root == root_of([*logged, encode(n, _entry(n))])


def _reserve(size: int) -> tuple[sa.TextClause, dict[str, object]]:
    """What a forger must do first now: move the head over the row it wants to write."""
    return sa.text("UPDATE audit_head SET size = :n WHERE id = 1"), {"n": size}


def test_appends_still_work_across_every_tree_shape(factory: sessionmaker[Session]) -> None:
    logged = _fill(factory, (1, 2, 5, 8, 13, 3))
    with factory() as s:
        log = AuditLog(s)
        assert log.size() == 32 and log.fsck().ok
        assert log.head().root == root_of(logged)


def test_a_row_inserted_at_the_head_is_refused(factory: sessionmaker[Session]) -> None:
    """The finding: a well-formed row (right leaf and interior hashes) at the next index."""
    logged = _fill(factory, (5,))
    _refused(factory, (INSERT, _forged(logged, 5)), match="has not reserved")
    _unharmed(factory, logged)


def test_a_row_beyond_the_head_is_refused(factory: sessionmaker[Session]) -> None:
    logged = _fill(factory, (5,))
    _refused(factory, (INSERT, _forged(logged, 9) | {"i": 9}), match="not the next index")
    _refused(factory, _reserve(10), (INSERT, _forged(logged, 9)), match="not the next index")
    _unharmed(factory, logged)


@pytest.mark.parametrize("spoil", ["leaf", "nodes", "index"])
def test_a_reserved_row_with_wrong_hashes_is_refused(factory: sessionmaker[Session],
                                                     spoil: str) -> None:
    """Even a forger who moved the head first (the owner can; the broker's role cannot) must
    write the row the log would have written: index 5 completes one interior node."""
    logged = _fill(factory, (5,))
    row = _forged(logged, 5)
    if spoil == "leaf":
        row["l"] = leaf_hash(b"something else")
    elif spoil == "nodes":
        row["n"] = bytes(32)
    else:  # another entry's bytes, with hashes that match them
        row = _forged(logged, 5) | {"e": logged[4], "l": leaf_hash(logged[4])}
    why = {"leaf": "leaf hash", "nodes": "interior hashes", "index": "carry its index"}[spoil]
    _refused(factory, _reserve(6), (INSERT, row), match=why)
    _unharmed(factory, logged)


def test_the_head_moves_only_over_complete_entries(factory: sessionmaker[Session],
                                                   database_url: str) -> None:
    logged = _fill(factory, (3,))
    if database_url.startswith("postgresql"):  # a reservation left unfilled cannot commit
        _refused(factory, _reserve(4), match="beyond its entries")
    with factory() as s:  # nor can the head move twice over nothing
        s.execute(*_reserve(4))
        with pytest.raises(sa.exc.DatabaseError, match="do not end at its size"):
            s.execute(*_reserve(5))
    _unharmed(factory, logged)


def test_the_readiness_probe_still_appends(migrated_engine: sa.Engine) -> None:
    assert audit_probe(migrated_engine)() is True
    with make_session_factory(migrated_engine)() as s:
        assert AuditLog(s).size() == 0


# -- PostgreSQL: the broker's role cannot write the log's tables at all ----------------------

@contextmanager
def _broker_role(engine: sa.Engine) -> Iterator[str]:
    """A throwaway role with exactly the grants a broker gets (roles are cluster-wide: a
    unique name per test, dropped by the test that made it)."""
    role = f"broker_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        conn.execute(sa.text(f"CREATE ROLE {role} NOLOGIN"))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
        conn.execute(sa.text(broker_role_sql(role)))
    try:
        yield role
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))


def test_postgresql_broker_role_appends_only_through_the_log(
        database_url: str, migrated_engine: sa.Engine, factory: sessionmaker[Session]) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("roles exist only on PostgreSQL")
    logged = _fill(factory, (4,))
    with _broker_role(migrated_engine) as role:
        as_broker = (sa.text(f"SET LOCAL ROLE {role}"), {})
        for attempt in ((INSERT, _forged(logged, 4)), _reserve(5),
                        (sa.text("DELETE FROM audit_entries"), {})):
            _refused(factory, as_broker, attempt, match="permission denied")
        with factory.begin() as s:
            s.execute(*as_broker)
            assert append_many(s, [_entry(4), _entry(5)]) == [4, 5]
            assert [i["index"] for i in AuditLog(s).entries(after=3).items] == [4, 5]
    with factory() as s:
        assert AuditLog(s).size() == 6 and AuditLog(s).fsck().ok


# -- a foreign row that got in anyway: fsck names it and says how to recover -----------------

def _behind_the_guard(engine: sa.Engine, rows: list[dict[str, object]]) -> None:
    """What only the owner can do: write with the guard lifted."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_entries_guard"))
        for row in rows:
            conn.execute(INSERT, row)


def _run_as_operator(engine: sa.Engine, script: str) -> None:
    """The recovery statements, as an operator pastes them into psql or sqlite3."""
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.driver_connection.executescript(script)  # type: ignore[union-attr]
        else:
            raw.driver_connection.autocommit = True  # type: ignore[union-attr]
            raw.driver_connection.execute(script)  # type: ignore[union-attr]
    finally:
        raw.close()


def test_fsck_names_a_foreign_row_and_its_recovery_works(
        migrated_engine: sa.Engine, factory: sessionmaker[Session], database_url: str) -> None:
    logged = _fill(factory, (6,))
    _behind_the_guard(migrated_engine, [_forged(logged, 6), _forged(logged, 6) | {"i": 20}])
    with factory() as s, pytest.raises(AppendError):  # the outage the finding described
        append_many(s, [_entry(6)])
    with factory() as s:
        report = AuditLog(s).fsck()
    assert not report.ok and "foreign row" in str(report.problems[0])
    assert report.problems[0].index == 6 and report.problems[0].end == 21
    assert report.recovery is not None
    paragraph, script = report.recovery.split("\n\n", 1)
    assert "\n" not in paragraph and "Stop every broker" in paragraph
    assert "exchange audit verify" in paragraph and "evidence" in paragraph

    result = CliRunner().invoke(cli, ["audit", "fsck", "--database-url", database_url])
    assert result.exit_code == 1 and paragraph in result.output

    _run_as_operator(migrated_engine, script)
    with factory() as s:
        assert AuditLog(s).fsck().ok
    _unharmed(factory, logged)
    with migrated_engine.connect() as conn, pytest.raises(sa.exc.DatabaseError,
                                                          match="append-only"):
        conn.execute(sa.text("DELETE FROM audit_entries WHERE idx = 0"))  # the guard is back
