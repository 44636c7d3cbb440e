"""Service records (idempotency, the services check, notes at rest) and deletion acks."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from audit.store.tables import entries
from exchange.db import models as m
from tests.world import World, bearer

pytestmark = pytest.mark.db

ALL = ("service_contact", "pregnancy_health")
NOTE = "李秀英 13912345678 血压偏高"


def setup_case(world: World) -> tuple[object, str, str]:
    c = world.contractor()
    agreement = world.agreement(c)
    r = world.resident()
    world.consent(r, ALL)
    world.assign(r, c, agreement)
    return c, world.case_reference(agreement, r), r


def post(api: TestClient, c, ref: str, body: dict, key: str | None = "visit-0001-abc"):
    headers = bearer(c) | ({"Idempotency-Key": key} if key else {})
    return api.post(f"/v1/cases/{ref}/service-records", json=body, headers=headers)


BODY = {"service": "mid_pregnancy", "delivered_at": "2026-03-09T10:00:00+08:00", "notes": NOTE}


def test_service_record_is_idempotent_and_never_echoes_notes(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    c, ref, _ = setup_case(world)
    first = post(api, c, ref, BODY)
    assert first.status_code == 201, first.text
    assert first.json()["notes_recorded"] is True and NOTE not in first.text
    again = post(api, c, ref, BODY)
    assert again.status_code == 200 and again.json() == first.json()
    changed = post(api, c, ref, BODY | {"notes": "另一条"})
    assert changed.status_code == 422 and "Idempotency-Key" in changed.text
    other_service = post(api, c, ref, BODY | {"service": "late_pregnancy"})
    assert other_service.status_code == 422
    with session_factory() as s:
        rows = s.scalars(select(m.ServiceRecord)).all()
        assert len(rows) == 1
        raw = s.execute(text("SELECT notes FROM service_records")).scalar_one()
        assert NOTE.encode() not in bytes(raw) and b"13912345678" not in bytes(raw)


def test_service_must_be_assigned_and_key_required(world: World, api: TestClient) -> None:
    c, ref, _ = setup_case(world)
    not_chosen = post(api, c, ref, BODY | {"service": "early_education"}, key="visit-0002-abc")
    assert not_chosen.status_code == 422 and "service" in not_chosen.text
    assert post(api, c, ref, BODY, key=None).status_code == 422
    assert (
        post(
            api, c, ref, BODY | {"delivered_at": "2027-01-01T00:00:00+08:00"}, key="visit-0003-abc"
        ).status_code
        == 422
    )


def test_service_record_for_foreign_case_looks_nonexistent(world: World, api: TestClient) -> None:
    c, ref, _ = setup_case(world)
    stranger = world.contractor()
    foreign = post(api, stranger, ref, BODY)
    nowhere = post(api, stranger, "AAAAAAAAAAAAAAAAAAAA", BODY)
    assert foreign.status_code == nowhere.status_code == 404
    assert {k: v for k, v in foreign.json().items() if k != "request_id"} == {
        k: v for k, v in nowhere.json().items() if k != "request_id"
    }


def test_tombstone_ack_is_recorded_and_audited(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    r = world.resident()
    world.consent(r, ALL)
    ref = world.revoke(world.assign(r, c, agreement))
    stranger = world.contractor()
    assert api.post(f"/v1/tombstones/{ref}/ack", headers=bearer(stranger)).status_code == 404
    first = api.post(f"/v1/tombstones/{ref}/ack", headers=bearer(c))
    assert first.status_code == 200, first.text
    second = api.post(f"/v1/tombstones/{ref}/ack", headers=bearer(c))
    assert second.json()["acknowledged_at"] == first.json()["acknowledged_at"]
    with session_factory() as s:
        (tomb,) = s.scalars(select(m.Tombstone)).all()
        assert tomb.acknowledged_at is not None
        audit = [json.loads(bytes(b)) for b in s.scalars(select(entries.c.entry))]
    acks = [e for e in audit if e["action"] == "case.deletion_ack"]
    assert len(acks) == 1
    assert acks[0]["subjects"][0]["pseudonym"] == world.keyring.audit_pseudonym(r)
    assert acks[0]["subjects"][0]["case"] == ref
