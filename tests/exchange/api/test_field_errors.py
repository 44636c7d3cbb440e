"""Every request reports all its field errors at once, each named one way (the field's own
name, never `body.x`), whether pydantic or a service's own checks found them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.exchange.services.test_office_flows import consent_body, resident_body
from tests.world import Office, World

pytestmark = pytest.mark.db


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in response.json()["errors"]]


def test_an_agreement_with_two_bad_fields_reports_both(
    api: TestClient, office: Office, world: World
) -> None:
    contractor = world.contractor()
    body = {"contractor_id": contractor.id, "reference": "CY-2", "valid_from": "2026-06-01",
            "valid_to": "2026-01-01", "retention_days": 365,
            "purposes": {"home_visit": "no.such.policy"}}  # fmt: skip
    fields = _fields(api.post("/v1/agreements", headers=office.admin, json=body))
    assert fields == ["valid_to", "purposes.home_visit"]
    # and pydantic's own findings: all of them, named the same way
    body.update(valid_from="not a date", retention_days=0)
    fields = _fields(api.post("/v1/agreements", headers=office.admin, json=body))
    assert sorted(fields) == ["retention_days", "valid_from"]


def test_consent_reports_every_problem(api: TestClient, office: Office, world: World) -> None:
    rid = world.resident()
    bad = consent_body(["service_contact", "pregnancy_health", "child_data"], None,
                       notice_version="bad version!", evidence_sha256="g" * 64)  # fmt: skip
    fields = _fields(api.post(f"/v1/residents/{rid}/consents", headers=office.cadre, json=bad))
    assert fields == ["notice_version", "evidence_sha256", "separate", "guardian"]


def test_resident_fields_are_named_alike_from_either_source(
    api: TestClient, office: Office
) -> None:
    # the service's ledger rules (phone) and pydantic (parity) name fields the same way
    service = _fields(api.post("/v1/residents", headers=office.cadre,
                               json=resident_body(phone="12345")))  # fmt: skip
    schema = _fields(api.post("/v1/residents", headers=office.cadre,
                              json=resident_body(parity=0)))  # fmt: skip
    assert service == ["phone"] and schema == ["parity"]


def test_the_audit_search_names_both_naive_times(api: TestClient, office: Office) -> None:
    r = api.get("/v1/audit/entries", headers=office.auditor,
                params={"since": "2026-01-01T00:00:00", "until": "2026-02-01T00:00:00"})
    assert _fields(r) == ["since", "until"]
    assert {e["type"] for e in r.json()["errors"]} == {"timezone_required"}
