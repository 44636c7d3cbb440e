"""One case, isolation, fail-closed auditing and what the audit entry may contain."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from audit.store import AuditLog
from audit.store.tables import entries
from exchange.services.auditing import MemoryAuditSink
from tests.world import World, bearer

pytestmark = pytest.mark.db

ALL = ("service_contact", "pregnancy_health", "birth_health")
PARAMS = {"purpose": "home_visit"}


def audit_rows(factory: sessionmaker[Session]) -> list[dict]:
    with factory() as s:
        return [
            json.loads(bytes(b)) for b in s.scalars(select(entries.c.entry).order_by(entries.c.idx))
        ]


def comparable(response) -> tuple[int, str, dict]:
    body = response.json()
    body.pop("request_id", None)
    return response.status_code, response.headers["content-type"], body


def test_foreign_random_revoked_and_unassigned_references_look_nonexistent(
    world: World, api: TestClient
) -> None:
    c, other = world.contractor(), world.contractor()
    mine, theirs = world.agreement(c), world.agreement(other)
    own = world.resident()
    foreign = world.resident()
    revoked = world.resident()
    unassigned = world.resident()
    for r in (own, foreign, revoked, unassigned):
        world.consent(r, ALL)
    world.assign(own, c, mine)
    world.assign(foreign, other, theirs)
    world.revoke(world.assign(revoked, c, mine))

    ok = api.get(f"/v1/cases/{world.case_reference(mine, own)}", params=PARAMS, headers=bearer(c))
    assert ok.status_code == 200 and ok.json()["case"]["fields"]["display_name"] == "李女士"

    candidates = {
        "foreign": world.case_reference(theirs, foreign),
        "foreign_under_mine": world.case_reference(mine, foreign),
        "revoked": world.case_reference(mine, revoked),
        "unassigned": world.case_reference(mine, unassigned),
        "random": "Zk3vQ9xTbAqqqqqqqqqq",
    }
    answers = {
        name: comparable(api.get(f"/v1/cases/{ref}", params=PARAMS, headers=bearer(c)))
        for name, ref in candidates.items()
    }
    assert {a[0] for a in answers.values()} == {404}
    assert len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1
    # the owner of the foreign case sees it
    theirs_ok = api.get(f"/v1/cases/{candidates['foreign']}", params=PARAMS, headers=bearer(other))
    assert theirs_ok.status_code == 200


def test_withdrawn_case_answers_like_nonexistent(world: World, api: TestClient) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    r = world.resident()
    world.consent(r, ALL)
    ref = world.withdraw(r, world.assign(r, c, agreement), ("service_contact",))
    gone = api.get(f"/v1/cases/{ref}", params=PARAMS, headers=bearer(c))
    never = api.get("/v1/cases/AAAAAAAAAAAAAAAAAAAA", params=PARAMS, headers=bearer(c))
    assert comparable(gone) == comparable(never)
    assert comparable(gone)[0] == 404


def test_fail_closed_when_the_audit_append_fails(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    r = world.resident()
    world.consent(r, ALL)
    world.assign(r, c, agreement, booking_in_days=1)
    ref = world.case_reference(agreement, r)
    api.app.state.audit_sink = MemoryAuditSink(fail=True)
    for response in (
        api.get("/v1/cases", params=PARAMS, headers=bearer(c)),
        api.get(f"/v1/cases/{ref}", params=PARAMS, headers=bearer(c)),
    ):
        assert response.status_code == 503
        assert response.json()["type"].endswith("/audit-unavailable")
        assert ref not in response.text and "t1." not in response.text
    assert audit_rows(session_factory) == []
    api.app.state.audit_sink = None  # the real store again: the same pull now succeeds
    assert api.get("/v1/cases", params=PARAMS, headers=bearer(c)).status_code == 200
    assert len(audit_rows(session_factory)) == 1


def test_one_audit_entry_per_response_with_pseudonyms_and_field_names_only(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    residents = [world.resident(phone=f"1391234567{i}") for i in range(3)]
    for r in residents:
        world.consent(r, ALL)
        world.assign(r, c, agreement, booking_in_days=2)
    response = api.get("/v1/cases", params=PARAMS, headers=bearer(c))
    assert response.status_code == 200
    rows = audit_rows(session_factory)
    assert len(rows) == 1
    entry = rows[0]
    assert entry["action"] == "case.disclose" and entry["purpose"] == "home_visit"
    assert entry["actor"] == {"id": c.principal_id, "role": "contractor"}
    assert entry["agreement"] == agreement and entry["policy"]["id"] == "cy1000.home_visit"
    pseudonyms = [s["pseudonym"] for s in entry["subjects"]]
    assert pseudonyms == [world.keyring.audit_pseudonym(r) for r in residents]
    subject = entry["subjects"][0]
    assert subject["case"] == world.case_reference(agreement, residents[0])
    assert {"display_name", "phone", "address", "stage"} <= set(subject["disclosed"])
    assert {"field": "resident.national_id", "reason": "never_share"} not in subject["withheld"]
    assert subject["consents"]
    text = json.dumps(rows, ensure_ascii=False)
    for value in (
        "李秀英",
        "李女士",
        "1391234567",
        "370214199001011232",
        "春阳花园",
        "501室",  # the room: a value random ids and hashes cannot contain by chance
        *residents,
    ):
        assert value not in text
    with session_factory() as s:
        assert AuditLog(s).size() == 1


def test_denied_lookup_is_audited(
    world: World, api: TestClient, session_factory: sessionmaker[Session]
) -> None:
    c = world.contractor()
    r = api.get("/v1/cases/AAAAAAAAAAAAAAAAAAAA", params=PARAMS, headers=bearer(c))
    assert r.status_code == 404 and r.json()["type"].endswith("/not-found")
    (entry,) = audit_rows(session_factory)
    assert entry["outcome"] == {"result": "denied", "reason": "case_not_found"}
    assert entry["subjects"] == []


def test_nothing_is_written_without_a_reader(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(entries)) == 0
