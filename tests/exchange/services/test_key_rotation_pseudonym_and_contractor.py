"""Pseudonym rotation with its re-mapping export, and contractor key rotation, over the DB."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.db.feed import next_feed_seq
from exchange.services import key_rotation
from exchange.services.errors import Conflict, NotFound
from exchange.services.key_rotation import PSEUDONYM_JOB
from exchange.services.key_store import SqlContractorKeyStore
from keys import Purpose, generate_keypair
from keys.rotation import current_contractor_key
from tests.exchange import factories
from tests.world import World, assert_no_secret, audit_entries, clock

pytestmark = pytest.mark.db


def _revoke(world: World, rid: str, *, acknowledged: bool) -> str:
    """Revoke the resident's assignment and leave a tombstone under today's reference."""
    with world.factory() as s:
        aid = s.scalars(select(m.Assignment.id).where(m.Assignment.resident_id == rid)).one()
    return world.revoke(aid, acknowledged=acknowledged)


def _second_agreement(world: World, rid: str) -> str:
    with unit_of_work(world.factory) as s:
        contractor = s.get(m.Contractor, world.contractor_id)
        assert contractor is not None
        agreement = factories.agreement(s, contractor, reference="CY-2026-002")
        s.add(
            m.Assignment(
                resident_id=rid,
                contractor_id=world.contractor_id,
                agreement_id=agreement.id,
                services=["mid_pregnancy", "late_pregnancy", "confinement", "parenting"],
                status="active",
                change_seq=next_feed_seq(s, world.contractor_id),
                created_by=world.office_id,
            )
        )
        return agreement.id


def test_remap_covers_every_case_the_contractor_holds_and_closes_after_all_agreements(
    world: World,
) -> None:
    ring = world.keyring
    active = world.add_residents(3, full=True)
    pending, acked = world.add_residents(2, full=True)
    pending_ref = _revoke(world, pending, acknowledged=False)
    acked_ref = _revoke(world, acked, acknowledged=True)
    other = _second_agreement(world, active[0])
    old = {rid: ring.case_reference(world.agreement_id, rid) for rid in [*active, pending]}

    with unit_of_work(world.factory) as s:
        first = key_rotation.export_pseudonym_remap(s, ring, world.agreement_id, clock)
    assert (first.from_version, first.to_version, first.started) == (1, 2, True)
    assert first.awaiting == (other,)
    assert ring.provider.current_version(Purpose.CASE_PSEUDONYM) == 2  # type: ignore[attr-defined]
    expected = sorted((old[r], ring.case_reference(world.agreement_id, r, 2)) for r in old)
    assert [(r.old_case_reference, r.new_case_reference) for r in first.rows] == expected
    assert all(o != n for o, n in expected)
    with world.factory() as s:
        refs = dict(
            s.execute(
                select(m.Tombstone.acknowledged_at.is_(None), m.Tombstone.case_reference)
            ).all()
        )
        assert refs[True] == ring.case_reference(world.agreement_id, pending)  # re-keyed
        assert refs[True] != pending_ref and refs[False] == acked_ref  # acknowledged: history
        assert s.get(m.KeyJob, PSEUDONYM_JOB) is not None

    with unit_of_work(world.factory) as s:
        second = key_rotation.export_pseudonym_remap(s, ring, other, clock)
    assert (second.from_version, second.to_version, second.started) == (1, 2, False)
    assert second.awaiting == () and len(second.rows) == 1
    with world.factory() as s:
        assert s.get(m.KeyJob, PSEUDONYM_JOB) is None
        assert s.scalars(
            select(m.PseudonymRemap.row_count).order_by(m.PseudonymRemap.row_count)
        ).all() == [1, 4]

    entries = audit_entries(world.factory)
    assert [e["action"] for e in entries] == [
        "key.rotate_pseudonym",
        "key.remap_export",
        "key.remap_export",
    ]
    assert [e["agreement"] for e in entries] == [None, world.agreement_id, other]
    assert all(
        e["key"] == {"id": "case_pseudonym", "version": 2, "type": "case_pseudonym"}
        for e in entries
    )
    assert_no_secret(entries, ring, world)
    blob = str(entries)
    assert not any(r.old_case_reference in blob or r.new_case_reference in blob for r in first.rows)


def test_remap_of_an_unknown_agreement_changes_nothing(world: World) -> None:
    with pytest.raises(NotFound), unit_of_work(world.factory) as s:
        key_rotation.export_pseudonym_remap(s, world.keyring, "nope", clock)
    assert world.keyring.provider.current_version(Purpose.CASE_PSEUDONYM) == 1  # type: ignore[attr-defined]
    assert audit_entries(world.factory) == []


def test_contractor_rotation_retires_the_old_key_and_audits_both(world: World) -> None:
    _, first = generate_keypair()
    _, second = generate_keypair()
    with unit_of_work(world.factory) as s:
        key_rotation.rotate_contractor(s, world.contractor_id, first, clock)
    with unit_of_work(world.factory) as s:
        key_rotation.rotate_contractor(s, world.contractor_id, second, clock)
    with world.factory() as s:
        store = SqlContractorKeyStore(s)
        assert current_contractor_key(store, world.contractor_id) == second
        rows = s.scalars(
            select(m.ContractorKey).order_by(m.ContractorKey.created_at, m.ContractorKey.status)
        ).all()
        assert {(r.key_id, r.status) for r in rows} == {
            (first.fingerprint.hex(), "retired"),
            (second.fingerprint.hex(), "active"),
        }
    with pytest.raises(Conflict), unit_of_work(world.factory) as s:
        key_rotation.rotate_contractor(s, world.contractor_id, first, clock)
    with pytest.raises(NotFound), unit_of_work(world.factory) as s:
        key_rotation.rotate_contractor(s, "nope", generate_keypair()[1], clock)
    entries = audit_entries(world.factory)
    assert [(e["action"], e["key"]["id"]) for e in entries] == [  # type: ignore[index]
        ("key.rotate_contractor", first.fingerprint.hex()),
        ("key.retire_contractor", first.fingerprint.hex()),
        ("key.rotate_contractor", second.fingerprint.hex()),
    ]
    assert_no_secret(entries, world.keyring, world)
