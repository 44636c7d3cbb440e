"""Root-key rotation over the database: online, resumable, audited, retire only when unused."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.services import accounts, key_rotation
from exchange.services.errors import Conflict
from exchange.services.key_store import SqlCursorStore, SqlWrappedKeyStore
from keys import FieldContext, Keyring, Purpose, RotationError, WrappedKey
from keys.rotation import ROOT_JOB, RotationProgress
from tests.world import World, assert_no_secret, audit_entries, clock, plain_values

pytestmark = pytest.mark.db


def _wrapped(factory: sessionmaker[Session]) -> dict[str, WrappedKey]:
    with factory() as s:
        rows = s.execute(select(m.ResidentDataKey.resident_id, m.ResidentDataKey.wrapped_key))
        return {rid: WrappedKey.from_bytes(bytes(w)) for rid, w in rows}


def _roots(factory: sessionmaker[Session]) -> dict[str, int]:
    """Root version per resident, from the wrapped bytes and checked against the columns."""
    with factory() as s:
        rows = s.execute(
            select(
                m.ResidentDataKey.resident_id,
                m.ResidentDataKey.wrapped_key,
                m.ResidentDataKey.kek_version,
            )
        ).all()
    out = {}
    for rid, data, column in rows:
        version = WrappedKey.from_bytes(bytes(data)).header.kek_version
        assert version == column
        out[rid] = version
    return out


def _phones_readable(world: World, ring: Keyring) -> None:
    ring.clear_cache()
    with world.factory() as s:
        for i, rid in enumerate(world.residents):
            row = s.get(m.Resident, rid)
            key_row = s.get(m.ResidentDataKey, rid)
            assert row is not None and key_row is not None and row.phone is not None
            key = ring.unwrap(WrappedKey.from_bytes(bytes(key_row.wrapped_key)), rid)
            phone = ring.decrypt_field(key, row.phone, FieldContext("residents", "phone", rid))
            assert phone == plain_values(i)["phone"]


def test_store_batches_in_order_and_swaps_only_the_expected_row(world: World) -> None:
    world.add_residents(5)
    ring = world.keyring
    with unit_of_work(world.factory) as s:
        store = SqlWrappedKeyStore(s)
        first = store.batch_after(None, 3)
        rest = store.batch_after(first[-1][0], 3)
        owners = [o for o, _ in first] + [o for o, _ in rest]
        assert owners == sorted(world.residents) and store.count() == 5
        owner, old = first[0]
        new = ring.rewrap(old, owner)
        assert store.replace(owner, old, new) is True
        # no longer the stored one
        assert store.replace(owner, old, ring.rewrap(old, owner)) is False
        assert store.get(owner) == new


def test_cursor_store_survives_the_session_and_ends_with_none(world: World) -> None:
    with unit_of_work(world.factory) as s:
        SqlCursorStore(s, clock).save("job", "abc")
    with unit_of_work(world.factory) as s:
        cursors = SqlCursorStore(s, clock)
        assert cursors.load("job") == "abc"
        cursors.save("job", None)
    with unit_of_work(world.factory) as s:
        assert SqlCursorStore(s, clock).load("job") is None
        assert s.get(m.KeyJob, "job") is None


def test_rotation_rewraps_everything_and_both_versions_read_meanwhile(world: World) -> None:
    world.add_residents(23)
    ring = world.keyring
    before = _wrapped(world.factory)
    seen: list[RotationProgress] = []

    def during(state: RotationProgress) -> None:
        seen.append(state)
        roots = _roots(world.factory)  # committed state, as another process sees it
        assert set(roots.values()) <= {1, 2}
        if state.examined < 23:
            assert 1 in roots.values() and 2 in roots.values()
        _phones_readable(world, ring)  # old and new versions both unwrap

    result = key_rotation.rotate_root(world.factory, ring, clock, batch_size=5, progress=during)
    assert (result.version, result.resumed) == (2, False)
    assert result.progress.rewrapped == 23 and result.progress.skipped == 0
    assert [p.examined for p in seen] == [5, 10, 15, 20, 23]
    assert set(_roots(world.factory).values()) == {2}
    after = _wrapped(world.factory)
    for rid, old in before.items():  # same data key, new wrapping
        assert after[rid].header.data_key_id == old.header.data_key_id
        assert after[rid].to_bytes() != old.to_bytes()
    _phones_readable(world, ring)
    with world.factory() as s:
        assert s.get(m.KeyJob, ROOT_JOB) is None
    actions = [e["action"] for e in audit_entries(world.factory)]
    assert actions == ["key.rotate_root", "key.rewrap"]


class Crash(Exception):
    pass


def test_crash_mid_rotation_then_resume_rewraps_each_key_exactly_once(world: World) -> None:
    world.add_residents(20)
    ring = world.keyring
    batches = 0

    def crash_after_two(state: RotationProgress) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            raise Crash()

    with pytest.raises(Crash):
        key_rotation.rotate_root(world.factory, ring, clock, batch_size=6, progress=crash_after_two)
    roots = _roots(world.factory)
    assert sorted(roots.values()).count(2) == 12  # the two committed batches
    with world.factory() as s:
        job = s.get(m.KeyJob, ROOT_JOB)
        assert job is not None and job.cursor == sorted(world.residents)[11]
    _phones_readable(world, ring)
    mid = _wrapped(world.factory)

    resumed = key_rotation.rotate_root(world.factory, ring, clock, batch_size=6)
    assert resumed.resumed and resumed.version == 2  # no third version
    assert ring.provider.versions(Purpose.ROOT) == [1, 2]  # type: ignore[attr-defined]
    assert resumed.progress.examined == 8 and resumed.progress.rewrapped == 8
    assert resumed.progress.skipped == 0
    after = _wrapped(world.factory)
    done_first = sorted(world.residents)[:12]
    assert all(after[r] == mid[r] for r in done_first)  # not rewrapped a second time
    assert set(_roots(world.factory).values()) == {2}
    _phones_readable(world, ring)
    actions = [e["action"] for e in audit_entries(world.factory)]
    assert actions == ["key.rotate_root", "key.rewrap"]

    again = key_rotation.rotate_root(world.factory, ring, clock, batch_size=6)
    assert (again.version, again.resumed) == (3, False)  # finished: the next run is a new one


def test_a_key_created_by_a_stale_process_makes_the_rotation_pending(world: World) -> None:
    world.add_residents(3)
    key_rotation.rotate_root(world.factory, world.keyring, clock)
    with unit_of_work(world.factory) as s:  # e.g. a broker still running with version 1 only
        rid = world.residents[0]
        s.get(m.ResidentDataKey, rid).kek_version = 1  # type: ignore[union-attr]
        assert key_rotation.root_rotation_pending(s, world.keyring)
        s.rollback()


def test_retire_refuses_while_in_use_then_succeeds(world: World) -> None:
    world.add_residents(4)
    ring = world.keyring
    # an unfinished rotation must be finished first
    with pytest.raises(Conflict), unit_of_work(world.factory) as s:
        s.add(m.KeyJob(job=ROOT_JOB, cursor=None))
        s.flush()
        key_rotation.retire_root(s, ring, 1, clock)

    def crash(_state: RotationProgress) -> None:
        raise Crash()

    with pytest.raises(Crash):
        key_rotation.rotate_root(world.factory, ring, clock, batch_size=2, progress=crash)
    with world.factory() as s:  # the rotation's own job row must not hide keys in use
        s.execute(delete(m.KeyJob))
        s.commit()
    in_use = "still wrapped under root version 1"
    with pytest.raises(RotationError, match=in_use), unit_of_work(world.factory) as s:
        key_rotation.retire_root(s, ring, 1, clock)
    assert ring.provider.versions(Purpose.ROOT) == [1, 2]  # type: ignore[attr-defined]

    key_rotation.rotate_root(world.factory, ring, clock)
    with unit_of_work(world.factory) as s:
        key_rotation.retire_root(s, ring, 1, clock)
    assert ring.provider.versions(Purpose.ROOT) == [2]  # type: ignore[attr-defined]
    _phones_readable(world, ring)
    entries = audit_entries(world.factory)
    assert entries[-1]["action"] == "key.retire_root"
    assert entries[-1]["key"] == {"id": "root", "version": 1, "type": "root"}
    assert_no_secret(entries, ring, world)


def _enrol_totp(world: World, name: str) -> tuple[str, str]:
    """A console user with a second factor; returns (principal id, the otpauth URI)."""
    with unit_of_work(world.factory) as s:
        principal = m.Principal(name=name, role="office_admin", display_name=name)
        s.add(principal)
        s.flush()
        account = accounts.ensure_account(s, principal, "Correct-Horse-9", clock())
        return principal.id, accounts.begin_totp(s, world.keyring, account)


def test_console_second_factors_survive_a_root_rotation_and_retirement(world: World) -> None:
    world.add_residents(3)
    ring = world.keyring
    owners = {_enrol_totp(world, name) for name in ("admin-a", "admin-b")}
    # the accounts' keys name root 1: retiring it before they move would lose every TOTP secret
    with unit_of_work(world.factory) as s:
        assert key_rotation.root_rotation_pending(s, ring) is False
    key_rotation.rotate_root(world.factory, ring, clock)
    with unit_of_work(world.factory) as s:
        assert key_rotation.root_rotation_pending(s, ring) is False
        key_rotation.retire_root(s, ring, 1, clock)
    ring.clear_cache()
    with world.factory() as s:
        for principal_id, uri in owners:
            account = s.get(m.ConsoleAccount, principal_id)
            assert account is not None and account.data_key is not None
            assert WrappedKey.from_bytes(account.data_key).header.kek_version == 2
            assert accounts.pending_totp_uri(ring, account) == uri  # still decrypts


def test_retire_refuses_while_an_account_key_names_the_root(world: World) -> None:
    ring = world.keyring
    _enrol_totp(world, "admin-a")
    ring.provider.add_version(Purpose.ROOT)  # type: ignore[attr-defined]  # a new root, no re-wrap yet
    with unit_of_work(world.factory) as s:
        assert key_rotation.root_rotation_pending(s, ring) is True
    with pytest.raises(Conflict, match="console accounts"), unit_of_work(world.factory) as s:
        key_rotation.retire_root(s, ring, 1, clock)
    assert ring.provider.versions(Purpose.ROOT) == [1, 2]  # type: ignore[attr-defined]
