"""Persistent tokens: several per principal, rotation with overlap, expiry, last use at most
once a minute, listing, and the 0005 migration carrying the old single tokens across."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import models as m
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.db.migrate import upgrade
from exchange.services import tokens
from tests.exchange import factories as f

pytestmark = pytest.mark.db
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _principal(factory: sessionmaker[Session], name: str = "aud-1") -> str:
    with unit_of_work(factory) as session:
        return f.principal(session, name, "auditor").id


def _issue(factory: sessionmaker[Session], pid: str, now: datetime = T0, **kw: object) -> str:
    with unit_of_work(factory) as session:
        return tokens.issue_token(session.get_one(m.Principal, pid), now=now, **kw)  # type: ignore[arg-type]


def _reason(factory: sessionmaker[Session], token: str, now: datetime) -> str:
    with factory() as session:
        return tokens.resolve(session, token, now)[1]


def test_a_second_token_leaves_the_first_working(session_factory: sessionmaker[Session]) -> None:
    pid = _principal(session_factory)
    first = _issue(session_factory, pid)
    second = _issue(session_factory, pid)  # what a second `make run` does
    assert first != second
    assert _reason(session_factory, first, T0) == _reason(session_factory, second, T0) == "ok"


def test_expiry_is_enforced(session_factory: sessionmaker[Session]) -> None:
    pid = _principal(session_factory)
    token = _issue(session_factory, pid, ttl=timedelta(hours=1))
    assert _reason(session_factory, token, T0 + timedelta(minutes=59)) == "ok"
    assert _reason(session_factory, token, T0 + timedelta(hours=1)) == "expired"
    assert _reason(session_factory, "exq_" + "A" * 43, T0) == "unknown"
    assert _reason(session_factory, "not-a-token", T0) == "malformed"


def test_rotation_ends_old_tokens_now_or_after_the_overlap(
    session_factory: sessionmaker[Session],
) -> None:
    pid = _principal(session_factory)
    old = _issue(session_factory, pid, cnf_x5t_s256="A" * 43)
    with unit_of_work(session_factory) as session:
        soft = tokens.rotate(session.get_one(m.Principal, pid), now=T0,
                             overlap=timedelta(minutes=10))
    assert _reason(session_factory, old, T0 + timedelta(minutes=9)) == "ok"
    assert _reason(session_factory, old, T0 + timedelta(minutes=10)) == "expired"
    with unit_of_work(session_factory) as session:
        hard = tokens.rotate(session.get_one(m.Principal, pid), now=T0)
    assert _reason(session_factory, soft, T0) == "revoked"
    assert _reason(session_factory, hard, T0) == "ok"
    with session_factory() as session:  # the binding followed the rotations
        resolved, _ = tokens.resolve(session, hard, T0)
        assert resolved is not None and resolved.cnf_x5t_s256 == "A" * 43


def test_revoking_the_principal_stops_every_token(session_factory: sessionmaker[Session]) -> None:
    pid = _principal(session_factory)
    both = [_issue(session_factory, pid), _issue(session_factory, pid)]
    with unit_of_work(session_factory) as session:
        tokens.revoke_principal(session.get_one(m.Principal, pid), now=T0)
    assert [_reason(session_factory, t, T0) for t in both] == ["revoked", "revoked"]


def test_last_use_is_written_at_most_once_a_minute(
    migrated_engine: sa.Engine, session_factory: sessionmaker[Session]
) -> None:
    pid = _principal(session_factory)
    token = _issue(session_factory, pid)
    writes: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    event.listen(migrated_engine, "before_cursor_execute", count)
    recorders = [tokens.LastUseRecorder(), tokens.LastUseRecorder()]  # two worker processes
    try:
        for second in range(0, 150, 5):
            now = T0 + timedelta(seconds=second)
            for recorder in recorders:
                with session_factory() as session:
                    resolved, _ = tokens.resolve(session, token, now)
                assert resolved is not None
                recorder.record(session_factory, resolved, now)
    finally:
        event.remove(migrated_engine, "before_cursor_execute", count)
    # 60 authentications over 150 s: one write per minute boundary, not one per request
    assert 2 <= len(writes) <= 4, writes
    with session_factory() as session:
        listing = {p.name: p for p in tokens.list_principals(session, T0 + timedelta(minutes=3))}
    used = listing["aud-1"].last_used_at
    assert used is not None and T0 + timedelta(minutes=2) <= used <= T0 + timedelta(seconds=145)
    assert listing["aud-1"].state == "active" and listing["aud-1"].active_tokens == 1


def test_listing_states(session_factory: sessionmaker[Session]) -> None:
    pid = _principal(session_factory, "aud-expired")
    _issue(session_factory, pid, ttl=timedelta(minutes=1))
    _principal(session_factory, "aud-none")
    with session_factory() as session:
        states = {p.name: p.state for p in tokens.list_principals(session, T0 + timedelta(hours=1))}
    assert states == {"aud-expired": "expired", "aud-none": "no token"}


def test_pruning_drops_only_long_dead_tokens(session_factory: sessionmaker[Session]) -> None:
    pid = _principal(session_factory)
    _issue(session_factory, pid, ttl=timedelta(days=1))
    live = _issue(session_factory, pid, ttl=timedelta(days=90))
    with unit_of_work(session_factory) as session:
        assert tokens.prune_expired(session, T0 + timedelta(days=40)) == 1
    assert _reason(session_factory, live, T0 + timedelta(days=40)) == "ok"


def test_0005_carries_single_tokens_across(database_url: str) -> None:
    upgrade(database_url, "0003")
    engine = make_engine(database_url)
    later = datetime.now(UTC) + timedelta(days=30)
    try:
        with engine.begin() as conn:
            for n, (name, token_hash, expires) in enumerate((("live", "a" * 64, later),
                                              ("stale", "b" * 64, datetime(2020, 1, 1, tzinfo=UTC)),
                                              ("never", "c" * 64, None))):
                conn.execute(sa.text(
                    "INSERT INTO principals (id, name, role, display_name, token_hash, "
                    "token_expires_at, created_at) VALUES (:i, :n, 'auditor', :n, :h, :e, :c)"),
                    {"i": f"00000000-0000-7000-8000-00000000000{n}", "n": name,
                     "h": token_hash, "e": expires, "c": datetime(2026, 1, 1, tzinfo=UTC)})
        upgrade(database_url)
        with make_session_factory(engine)() as session:
            moved = {row.principal_id: row for row in session.scalars(select(m.ApiToken))}
            names = {p.id: p.name for p in session.scalars(select(m.Principal))}
        by_name = {names[pid]: row for pid, row in moved.items()}
        assert set(by_name) == {"live", "never"}  # the expired one is not carried
        assert by_name["live"].token_hash == "a" * 64
        assert abs(by_name["live"].expires_at - later) < timedelta(seconds=1)
        assert by_name["never"].expires_at > datetime.now(UTC) + timedelta(days=89)
    finally:
        engine.dispose()
