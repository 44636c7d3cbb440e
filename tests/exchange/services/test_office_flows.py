"""Office flows over HTTP: residents, consent, contractors and keys, agreements, assignments,
and the feed changes the contractor sees (cases, tombstones)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.ledger.idnumber import make_national_id
from keys import generate_keypair
from tests.world import HOME_VISIT, Office, World, bearer

pytestmark = pytest.mark.db

SERVICES = ["mid_pregnancy", "late_pregnancy", "confinement", "parenting"]
EVIDENCE = "ab" * 32


def consent_body(scopes: list[str], agreement_id: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"scopes": scopes, "method": "paper", "notice_version": "2026-01",
                            "evidence_sha256": EVIDENCE, **extra}  # fmt: skip
    if agreement_id is None:
        body["programme"] = "cy1000"
    else:
        body["agreement_id"] = agreement_id
    return body


def new_agreement(api: TestClient, office: Office, contractor_id: str, ref: str = "CY-1") -> str:
    r = api.post("/v1/agreements", headers=office.admin, json={
        "contractor_id": contractor_id, "reference": ref, "valid_from": "2026-01-01",
        "valid_to": "2026-12-31", "retention_days": 365,
        "purposes": {"home_visit": "cy1000.home_visit",
                     "online_guidance": "cy1000.online_guidance"},
        "sub_processors": ["阿里云（青岛）"],
    })  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "draft"
    agreement_id: str = r.json()["id"]
    assert api.post(f"/v1/agreements/{agreement_id}/activate",
                    headers=office.admin).json()["status"] == "active"  # fmt: skip
    return agreement_id


def consented_assignment(
    api: TestClient, office: Office, resident_id: str, contractor_id: str, agreement_id: str
) -> str:
    r = api.post(f"/v1/residents/{resident_id}/consents", headers=office.cadre,
                 json=consent_body(["service_contact"], agreement_id))  # fmt: skip
    assert r.status_code == 201, r.text
    r = api.post("/v1/assignments", headers=office.cadre, json={
        "resident_id": resident_id, "contractor_id": contractor_id,
        "agreement_id": agreement_id, "services": SERVICES,
        "bookings": [{"service": "mid_pregnancy", "on": "2026-03-12"}],
    })  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def feed(api: TestClient, headers: dict[str, str], cursor: str | None = None) -> dict[str, Any]:
    params = {"purpose": HOME_VISIT, **({"cursor": cursor} if cursor else {})}
    r = api.get("/v1/cases", headers=headers, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def resident_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "王静怡",
        "national_id": make_national_id(date(1994, 5, 17), 12),
        "phone": "13805321234",
        "community": "民城路社区",
        "compound": "和悦家园",
        "building": "3",
        "unit": "2",
        "room": "501",
        "stage": "pregnant",
        "due_date": "2026-07-01",
        "parity": 1,
        "risk_flags": ["advanced_maternal_age"],
    }
    body.update(overrides)
    return body


# -- residents ----------------------------------------------------------------------------


def test_register_read_and_cadre_scoping(api: TestClient, office: Office, world: World) -> None:
    r = api.post("/v1/residents", headers=office.cadre, json=resident_body())
    assert r.status_code == 201, r.text
    rid = r.json()["id"]

    # masked as the console shows it (invariant 12); a value in full takes a reveal
    seen = api.get(f"/v1/residents/{rid}", headers=office.cadre).json()
    assert seen["name"] == "王**" and seen["phone"] == "138****1234"
    assert seen["address"] == "和悦家园3号楼"  # down to the building, never the room
    assert seen["national_id"].startswith("370214") and "*" in seen["national_id"]
    assert seen["due_date"] == "2026-07-01" and seen["parity"] == 1
    assert api.get(f"/v1/residents/{rid}", headers=office.admin).json()["phone"] == "138****1234"
    shown = api.post(f"/v1/residents/{rid}/reveal", headers=office.admin, json={
        "field": "phone", "reason": "home_service_contact", "note": "上门前电话确认"})
    assert shown.status_code == 200, shown.text
    assert shown.json()["value"] == "13805321234"

    # another community's cadre: exactly like a resident that does not exist
    foreign = api.get(f"/v1/residents/{rid}", headers=office.other_cadre)
    missing = api.get("/v1/residents/00000000-0000-0000-0000-000000000000",
                      headers=office.other_cadre)  # fmt: skip
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"] == missing.json()["detail"]
    listed = api.get("/v1/residents", headers=office.other_cadre).json()
    assert listed["total"] == 0 and listed["items"] == []
    assert api.get("/v1/residents", headers=office.cadre).json()["total"] == 1

    # roles that never see personal fields
    contractor = world.contractor()
    assert api.get(f"/v1/residents/{rid}", headers=bearer(contractor)).status_code == 403
    assert api.get(f"/v1/residents/{rid}", headers=office.auditor).status_code == 403
    assert api.get("/v1/residents", headers=office.auditor).status_code == 403

    # the same ID number again is a conflict; a cadre cannot register outside her scope
    assert api.post("/v1/residents", headers=office.cadre, json=resident_body()).status_code == 409
    outside = resident_body(
        community="瑞阳路社区", national_id=make_national_id(date(1992, 1, 2), 40)
    )
    r = api.post("/v1/residents", headers=office.cadre, json=outside)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "community"


def test_register_bad_input_names_fields_never_values(api: TestClient, office: Office) -> None:
    bad = resident_body(phone="12345", national_id="370214199405171239")
    r = api.post("/v1/residents", headers=office.cadre, json=bad)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"phone", "national_id"} <= fields
    assert "12345" not in r.text and "370214199405171239" not in r.text and "王静怡" not in r.text
    assert api.get("/v1/residents", headers=office.cadre).json()["total"] == 0
    # malformed JSON shapes are 422 problems too, not 500
    r = api.post("/v1/residents", headers=office.cadre, json={"name": 5, "extra": "x"})
    assert r.status_code == 422
    assert api.post("/v1/residents", headers=office.admin, json=bad).status_code == 403


@pytest.mark.parametrize("path", ["/v1/residents", "/v1/assignments"])
@pytest.mark.parametrize("offset", [str(2**63), "9" * 40])
def test_offset_beyond_a_sql_integer_is_a_problem_not_a_500(
    api: TestClient, office: Office, path: str, offset: str
) -> None:
    r = api.get(path, headers=office.admin, params={"offset": offset})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["offset"]
    assert offset not in r.text
    assert api.get(path, headers=office.admin, params={"offset": str(2**63 - 1)}).status_code == 200


# -- consent ------------------------------------------------------------------------------


def test_consent_rules_and_history(api: TestClient, office: Office, world: World) -> None:
    rid = world.resident()
    url = f"/v1/residents/{rid}/consents"
    bundled = consent_body(["service_contact", "pregnancy_health"], None)
    r = api.post(url, headers=office.cadre, json=bundled)
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "separate_consent_required"
    r = api.post(url, headers=office.cadre, json=consent_body(["child_data"], None))
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "guardian_consent_required"
    r = api.post(
        url, headers=office.cadre, json=consent_body(["service_contact"], None, method="email")
    )
    assert r.status_code == 422
    r = api.post(
        url,
        headers=office.cadre,
        json={**consent_body(["service_contact"], None), "evidence_sha256": "zz" * 32},
    )
    assert r.status_code == 422

    assert (
        api.post(
            url, headers=office.cadre, json=consent_body(["service_contact"], None)
        ).status_code
        == 201
    )
    assert (
        api.post(
            url,
            headers=office.cadre,
            json=consent_body(["pregnancy_health", "birth_health"], None, separate=True),
        ).status_code
        == 201
    )
    assert (
        api.post(
            url, headers=office.cadre, json=consent_body(["child_data"], None, guardian=True)
        ).status_code
        == 201
    )
    r = api.post(f"{url}/withdraw", headers=office.cadre, json=consent_body(["birth_health"], None))
    assert r.status_code == 201 and r.json()["action"] == "withdraw"

    history = api.get(url, headers=office.cadre).json()
    assert [e["sequence"] for e in history["events"]] == [1, 2, 3, 4]
    assert [e["action"] for e in history["events"]] == ["grant"] * 3 + ["withdraw"]
    assert api.get(url, headers=office.auditor).status_code == 200  # no personal value in it
    assert api.get(url, headers=office.other_cadre).status_code == 404
    assert (
        api.post(
            url, headers=office.admin, json=consent_body(["service_contact"], None)
        ).status_code
        == 403
    )


# -- contractors and keys -----------------------------------------------------------------


def test_contractor_and_key_rotation(api: TestClient, office: Office) -> None:
    r = api.post("/v1/contractors", headers=office.admin, json={"name": "青岛新生母婴服务社"})
    assert r.status_code == 201
    cid = r.json()["id"]
    _, first = generate_keypair()
    _, second = generate_keypair()
    url = f"/v1/contractors/{cid}/keys"
    assert api.post(url, headers=office.admin, json={"public_key": first.to_text()}).status_code \
        == 201  # fmt: skip
    assert api.post(url, headers=office.admin, json={"public_key": first.to_text()}).status_code \
        == 409  # fmt: skip
    assert api.post(url, headers=office.admin, json={"public_key": second.to_text()}).status_code \
        == 201  # fmt: skip
    keys = api.get(url, headers=office.admin).json()["items"]
    assert [(k["key_id"], k["status"]) for k in keys] == [
        (first.fingerprint.hex(), "retired"),
        (second.fingerprint.hex(), "active"),
    ]
    bad = api.post(url, headers=office.admin, json={"public_key": "not a key"})
    assert bad.status_code == 422
    assert api.post("/v1/contractors", headers=office.cadre, json={"name": "x"}).status_code == 403
    assert api.post("/v1/contractors", headers=office.admin,
                    json={"name": "青岛新生母婴服务社"}).status_code == 409  # fmt: skip


# -- agreements ---------------------------------------------------------------------------


def test_agreement_validation(api: TestClient, office: Office, world: World) -> None:
    c = world.contractor()
    base = {"contractor_id": c.id, "reference": "CY-9", "valid_from": "2026-01-01",
            "valid_to": "2026-12-31", "retention_days": 365,
            "purposes": {"home_visit": "cy1000.home_visit"}}  # fmt: skip
    for purposes, reason in (({"home_visit": "nope"}, "policy_unknown"),
                             ({"home_visit": "cy1000.online_guidance"}, "policy_purpose_mismatch"),
                             ({"gossip": "cy1000.home_visit"}, "purpose_unknown")):  # fmt: skip
        r = api.post("/v1/agreements", headers=office.admin, json={**base, "purposes": purposes})
        assert r.status_code == 422 and r.json()["errors"][0]["type"] == reason
    r = api.post("/v1/agreements", headers=office.admin, json={**base, "valid_to": "2025-01-01"})
    assert r.status_code == 422
    aid = api.post("/v1/agreements", headers=office.admin, json=base).json()["id"]
    assert api.post(f"/v1/agreements/{aid}/suspend", headers=office.admin).status_code == 409
    assert api.post(f"/v1/agreements/{aid}/activate", headers=office.cadre).status_code == 403
    agreement = api.get(f"/v1/agreements/{aid}", headers=office.auditor).json()
    assert agreement["purposes"]["home_visit"]["policy_id"] == "cy1000.home_visit"


# -- assignments and the feed -------------------------------------------------------------


def test_assignment_rules(api: TestClient, office: Office, world: World) -> None:
    c = world.contractor()
    aid = new_agreement(api, office, c.id)
    rid = world.resident()
    body = {"resident_id": rid, "contractor_id": c.id, "agreement_id": aid, "services": SERVICES}
    assert (
        api.post("/v1/assignments", headers=office.cadre, json=body).status_code == 409
    )  # consent
    api.post(f"/v1/residents/{rid}/consents", headers=office.cadre,
             json=consent_body(["service_contact"], aid))  # fmt: skip
    for services in (SERVICES[:3], SERVICES[:3] + SERVICES[:1], SERVICES + ["early_education"]):
        r = api.post("/v1/assignments", headers=office.cadre, json={**body, "services": services})
        assert r.status_code == 422, services
    r = api.post(
        "/v1/assignments",
        headers=office.cadre,
        json={**body, "bookings": [{"service": "early_education", "on": "2026-03-12"}]},
    )
    assert r.status_code == 422
    assert api.post("/v1/assignments", headers=office.other_cadre, json=body).status_code == 404
    other = world.contractor()
    assert api.post("/v1/assignments", headers=office.cadre,
                    json={**body, "contractor_id": other.id}).status_code == 422  # fmt: skip
    r = api.post("/v1/assignments", headers=office.cadre, json=body)
    assert r.status_code == 201
    assert r.json()["progress"]["services_total"] == 4
    assert api.post("/v1/assignments", headers=office.cadre, json=body).status_code == 409
    assert api.get("/v1/assignments", headers=office.other_cadre).json()["total"] == 0
    assert api.get("/v1/assignments", headers=office.admin).json()["total"] == 1


def test_revoke_reaches_the_contractor_as_a_tombstone(
    api: TestClient, office: Office, world: World
) -> None:
    c = world.contractor()
    aid = new_agreement(api, office, c.id)
    rid = world.resident()
    assignment = consented_assignment(api, office, rid, c.id, aid)
    page = feed(api, bearer(c))
    ref = world.case_reference(aid, rid)
    assert [i["case_reference"] for i in page["items"] if i["type"] == "case"] == [ref]

    r = api.post(f"/v1/assignments/{assignment}/revoke", headers=office.cadre)
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    after = feed(api, bearer(c), page["next_cursor"])
    assert [(i["type"], i["case_reference"], i.get("reason")) for i in after["items"]] == [
        ("tombstone", ref, "assignment_revoked")
    ]
    assert api.get(f"/v1/cases/{ref}", headers=bearer(c),
                   params={"purpose": HOME_VISIT}).status_code == 404  # fmt: skip


def test_withdrawal_is_immediate(api: TestClient, office: Office, world: World) -> None:
    c = world.contractor()
    aid = new_agreement(api, office, c.id)
    rid = world.resident()
    consented_assignment(api, office, rid, c.id, aid)
    ref = world.case_reference(aid, rid)
    # sensitive scopes granted separately widen the view; the contractor is told again
    api.post(f"/v1/residents/{rid}/consents", headers=office.cadre,
             json=consent_body(["pregnancy_health"], aid, separate=True))  # fmt: skip
    page = feed(api, bearer(c))
    case = next(i for i in page["items"] if i["type"] == "case")
    widened = set(case["fields"]) | set(case["sealed"])

    # withdrawing a sensitive scope: the next sync carries the reduced view
    r = api.post(f"/v1/residents/{rid}/consents/withdraw", headers=office.cadre,
                 json=consent_body(["pregnancy_health"], aid))  # fmt: skip
    assert r.status_code == 201
    reduced_page = feed(api, bearer(c), page["next_cursor"])
    reduced = next(i for i in reduced_page["items"] if i["type"] == "case")
    assert set(reduced["fields"]) | set(reduced["sealed"]) < widened

    # withdrawing service_contact: nothing at all, and a tombstone
    api.post(f"/v1/residents/{rid}/consents/withdraw", headers=office.cadre,
             json=consent_body(["service_contact"], aid))  # fmt: skip
    last = feed(api, bearer(c), reduced_page["next_cursor"])
    assert [(i["type"], i["case_reference"], i.get("reason")) for i in last["items"]] == [
        ("tombstone", ref, "consent_withdrawn")
    ]
    assert api.get(f"/v1/cases/{ref}", headers=bearer(c),
                   params={"purpose": HOME_VISIT}).status_code == 404  # fmt: skip
    full = feed(api, bearer(c))  # a full resync shows no case either
    assert not [i for i in full["items"] if i["type"] == "case"]


def test_termination_revokes_every_assignment(
    api: TestClient, office: Office, world: World
) -> None:
    c = world.contractor()
    aid = new_agreement(api, office, c.id)
    residents = [world.resident(phone=f"1390000000{i}") for i in range(3)]
    for rid in residents:
        consented_assignment(api, office, rid, c.id, aid)
    r = api.post(f"/v1/agreements/{aid}/terminate", headers=office.admin)
    assert r.status_code == 200 and r.json()["status"] == "terminated"
    listed = api.get("/v1/assignments", headers=office.admin, params={"agreement_id": aid}).json()
    assert {a["status"] for a in listed["items"]} == {"revoked"}
    with unit_of_work(world.factory) as s:
        stones = s.scalars(select(m.Tombstone).where(m.Tombstone.agreement_id == aid)).all()
        assert sorted(t.case_reference for t in stones) == sorted(
            world.case_reference(aid, rid) for rid in residents
        )
        assert {t.reason for t in stones} == {"agreement_terminated"}
    page = feed(api, bearer(c))
    assert not [i for i in page["items"] if i["type"] == "case"]
    assert api.post(f"/v1/agreements/{aid}/activate", headers=office.admin).status_code == 409


def test_suspension_tombstones_and_reactivation_reannounces(
    api: TestClient, office: Office, world: World
) -> None:
    c = world.contractor()
    aid = new_agreement(api, office, c.id)
    rid = world.resident()
    consented_assignment(api, office, rid, c.id, aid)
    page = feed(api, bearer(c))
    api.post(f"/v1/agreements/{aid}/suspend", headers=office.admin)
    suspended = feed(api, bearer(c), page["next_cursor"])
    assert [i["type"] for i in suspended["items"]] == ["tombstone"]
    api.post(f"/v1/agreements/{aid}/activate", headers=office.admin)
    resumed = feed(api, bearer(c), suspended["next_cursor"])
    assert [i["type"] for i in resumed["items"]] == ["case"]


def test_service_records_visible_to_office_with_notes(
    api: TestClient, office: Office, world: World
) -> None:
    c = world.contractor()
    aid = new_agreement(api, office, c.id)
    rid = world.resident()
    assignment = consented_assignment(api, office, rid, c.id, aid)
    ref = world.case_reference(aid, rid)
    headers = {**bearer(c), "Idempotency-Key": "visit-0001"}
    r = api.post(f"/v1/cases/{ref}/service-records", headers=headers,
                 json={"service": "mid_pregnancy", "delivered_at": "2026-03-09T08:00:00Z",
                       "notes": "已上门指导，情况良好"})  # fmt: skip
    assert r.status_code in (200, 201), r.text
    records = api.get(f"/v1/assignments/{assignment}/service-records", headers=office.cadre)
    assert records.status_code == 200
    assert [(x["service"], x["notes"]) for x in records.json()["items"]] == [
        ("mid_pregnancy", "已上门指导，情况良好")
    ]
    progress = api.get(f"/v1/assignments/{assignment}", headers=office.cadre).json()["progress"]
    assert progress["delivered"]["mid_pregnancy"] == 1 and progress["services_done"] == 1
    assert api.get(f"/v1/assignments/{assignment}/service-records",
                   headers=bearer(c)).status_code == 403  # fmt: skip
    assert api.get(f"/v1/assignments/{assignment}/service-records",
                   headers=office.other_cadre).status_code == 404  # fmt: skip
