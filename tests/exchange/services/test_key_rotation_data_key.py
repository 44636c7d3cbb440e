"""Data-key rotation of one resident: every field re-encrypted, still readable, audited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.services import key_rotation
from exchange.services.errors import Conflict, NotFound
from keys import DecryptionError, FieldContext, Keyring, WrappedKey
from tests.world import NOW, World, assert_no_secret, audit_entries, clock, plain_values

pytestmark = pytest.mark.db


def _ciphertexts(s: Session, rid: str) -> dict[tuple[str, str, str], Any]:
    """(table, column, row id) -> EncryptedValue of every non-empty field of the resident."""
    resident = s.get(m.Resident, rid)
    assert resident is not None
    rows: list[tuple[str, Any, tuple[str, ...]]] = [
        ("residents", resident, key_rotation.RESIDENT_COLUMNS)
    ]
    rows += [
        ("maternal_episodes", e, key_rotation.EPISODE_COLUMNS)
        for e in s.scalars(select(m.MaternalEpisode).where(m.MaternalEpisode.resident_id == rid))
    ]
    rows += [
        ("children", c, key_rotation.CHILD_COLUMNS)
        for c in s.scalars(select(m.Child).where(m.Child.resident_id == rid))
    ]
    rows += [
        ("service_records", r, ("notes",))
        for r in s.scalars(
            select(m.ServiceRecord).join(m.Assignment).where(m.Assignment.resident_id == rid)
        )
    ]
    return {
        (t, c, row.id): getattr(row, c)
        for t, row, cols in rows
        for c in cols
        if getattr(row, c) is not None
    }


def _decrypt_all(s: Session, ring: Keyring, rid: str) -> dict[tuple[str, str, str], str]:
    key_row = s.get(m.ResidentDataKey, rid)
    assert key_row is not None
    key = ring.unwrap(WrappedKey.from_bytes(bytes(key_row.wrapped_key)), rid)
    return {
        where: ring.decrypt_field(key, value, FieldContext(*where))
        for where, value in _ciphertexts(s, rid).items()
    }


def test_rotation_changes_every_ciphertext_and_keeps_every_value(world: World) -> None:
    rid, other = world.add_residents(2, full=True)
    ring = world.keyring
    with world.factory() as s:
        before_values = _decrypt_all(s, ring, rid)
        before_cipher = {k: v.to_bytes() for k, v in _ciphertexts(s, rid).items()}
        old_wrapped = WrappedKey.from_bytes(bytes(s.get(m.ResidentDataKey, rid).wrapped_key))  # type: ignore[union-attr]
        other_before = {k: v.to_bytes() for k, v in _ciphertexts(s, other).items()}
    tables = {t for t, _c, _r in before_values}
    assert tables == {"residents", "maternal_episodes", "children", "service_records"}
    assert before_values[("residents", "phone", rid)] == plain_values(0)["phone"]

    with unit_of_work(world.factory) as s:
        result = key_rotation.rotate_resident_data_key(s, ring, rid, clock)
    assert result.fields == len(before_values) == 7
    assert result.data_key_version == 2

    ring.clear_cache()
    with world.factory() as s:
        after_cipher = {k: v.to_bytes() for k, v in _ciphertexts(s, rid).items()}
        assert _decrypt_all(s, ring, rid) == before_values
        new_wrapped = WrappedKey.from_bytes(bytes(s.get(m.ResidentDataKey, rid).wrapped_key))  # type: ignore[union-attr]
        assert {k: v.to_bytes() for k, v in _ciphertexts(s, other).items()} == other_before
    assert after_cipher.keys() == before_cipher.keys()
    assert all(after_cipher[k] != before_cipher[k] for k in before_cipher)
    assert new_wrapped.header.data_key_id != old_wrapped.header.data_key_id
    # the old data key opens none of the new ciphertexts
    old_key = ring.unwrap(old_wrapped, rid)
    with world.factory() as s:
        for where, value in _ciphertexts(s, rid).items():
            with pytest.raises(DecryptionError):
                ring.decrypt_field(old_key, value, FieldContext(*where))

    entries = audit_entries(world.factory)
    assert [e["action"] for e in entries] == ["key.rotate_data"]
    entry = entries[0]
    assert entry["key"] == {
        "id": new_wrapped.header.data_key_id.hex(),
        "version": 2,
        "type": "data_key",
    }
    assert entry["subjects"][0]["pseudonym"] == ring.audit_pseudonym(rid)  # type: ignore[index]
    assert_no_secret(entries, ring, world)


def test_a_failure_part_way_changes_nothing(world: World) -> None:
    (rid,) = world.add_residents(1, full=True)
    ring = world.keyring
    with world.factory() as s:
        before = {k: v.to_bytes() for k, v in _ciphertexts(s, rid).items()}
        wrapped_before = bytes(s.get(m.ResidentDataKey, rid).wrapped_key)  # type: ignore[union-attr]
    with world.factory() as s:  # corrupt one field's binding: it was stored under another row
        episode = s.scalars(select(m.MaternalEpisode)).one()
        child = s.scalars(select(m.Child)).one()
        episode.due_date, child.sex = child.sex, episode.due_date
        s.commit()
    with pytest.raises(DecryptionError), unit_of_work(world.factory) as s:
        key_rotation.rotate_resident_data_key(s, ring, rid, clock)
    with world.factory() as s:
        assert bytes(s.get(m.ResidentDataKey, rid).wrapped_key) == wrapped_before  # type: ignore[union-attr]
        after = {k: v.to_bytes() for k, v in _ciphertexts(s, rid).items()}
    assert after[("residents", "phone", rid)] == before[("residents", "phone", rid)]
    assert audit_entries(world.factory) == []


def test_unknown_and_erased_residents_are_refused(world: World) -> None:
    (rid,) = world.add_residents(1)
    with pytest.raises(NotFound), unit_of_work(world.factory) as s:
        key_rotation.rotate_resident_data_key(s, world.keyring, "no-such-resident", clock)
    with unit_of_work(world.factory) as s:
        s.delete(s.get(m.ResidentDataKey, rid))
    with pytest.raises(Conflict, match="no data key"), unit_of_work(world.factory) as s:
        key_rotation.rotate_resident_data_key(s, world.keyring, rid, clock)


def test_a_service_record_written_during_a_rotation_stays_readable(
        world: World, database_url: str) -> None:
    """The race: a contractor records a service while the office rotates the resident's data
    key. Whichever locks the key row first, the record ends up under the final key."""
    import threading
    from datetime import timedelta

    from exchange.identity import CONTRACTOR, Acting, Identity
    from exchange.services import service_records
    from exchange.services.auditing import SqlAuditSink
    from keys.pseudonyms import case_reference

    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises every writer (BEGIN IMMEDIATE): no race to test")
    (rid,) = world.add_residents(1, full=True)
    ring = world.keyring
    reference = case_reference(ring.case_key(world.agreement_id), rid)
    report = service_records.ServiceReport("confinement", NOW - timedelta(hours=1),
                                           "产后访视记录")
    rotated: list[BaseException | object] = []
    writer = world.factory()
    try:
        service_records.record_service(
            writer, ring, SqlAuditSink(), Acting(Identity("p-c", "c", CONTRACTOR, "c"), NOW),
            world.contractor_id, reference, "race-0001", report)  # holds FOR SHARE, uncommitted

        def rotate() -> None:
            try:
                with unit_of_work(world.factory) as s:
                    rotated.append(key_rotation.rotate_resident_data_key(s, ring, rid, clock))
            except BaseException as exc:  # noqa: BLE001 - reported below
                rotated.append(exc)

        thread = threading.Thread(target=rotate)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive(), "the rotation did not wait for the uncommitted record"
        writer.commit()
    finally:
        writer.close()
    thread.join(timeout=30)
    assert len(rotated) == 1 and not isinstance(rotated[0], BaseException), rotated
    with world.factory() as s:
        values = _decrypt_all(s, ring, rid)  # every field, the new record's notes included
    assert "产后访视记录" in values.values()
