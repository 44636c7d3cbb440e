"""Invariant 8, withdrawal is immediate, over HTTP against a live broker.

After a consent withdrawal or an assignment revocation the very next request sees no data (the
one-case endpoint answers like a nonexistent reference, a fresh pull omits the case), the next
incremental sync carries a tombstone, and the contractor's acknowledgement is recorded in the
audit log. A withdrawal of a sensitive scope only narrows the next view.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from exchange.bootstrap import load_keyring
from exchange.ledger.idnumber import make_national_id
from exchange.settings import Settings
from tests.invariants.harness import LiveServer, audit_entries, ok, pull_all
from tests.world import ALL_SCOPES, SERVICES, Programme, consent_body

pytestmark = pytest.mark.slow

# residents of contractor A's list reserved for this module (others use indexes 0-2)
WITHDRAW, REVOKE = 3, 4


def pregnant_resident_assigned_to(api, cadre, side) -> str:  # noqa: ANN001
    """A fresh synthetic resident, pregnant with a risk flag, consenting and assigned (and
    registered in the shared world's `side.assigned`)."""
    today = date.today()
    body = {"name": "柳如梦", "national_id": make_national_id(date(1990, 4, 2), 77),
            "phone": "13905321177", "community": "民城路社区", "compound": "和悦家园",
            "building": "7", "unit": "1", "room": "302", "stage": "pregnant",
            "due_date": (today + timedelta(days=90)).isoformat(), "parity": 1,
            "risk_flags": ["advanced_maternal_age"]}  # fmt: skip
    rid = str(ok(api.post("/v1/residents", headers=cadre, json=body))["id"])
    ok(api.post(f"/v1/residents/{rid}/consents", headers=cadre,
                json=consent_body(ALL_SCOPES, side.agreement_id)))  # fmt: skip
    assignment = ok(api.post("/v1/assignments", headers=cadre, json={
        "resident_id": rid, "contractor_id": side.id, "agreement_id": side.agreement_id,
        "services": SERVICES}))  # fmt: skip
    # The world is shared: record the new case so other modules' expected sets include it.
    side.assigned[rid] = assignment["id"]
    return rid


def _case(api, side, ref):  # noqa: ANN001, ANN202
    return api.get(f"/v1/cases/{ref}", params={"purpose": "home_visit"}, headers=side.headers)


@pytest.mark.parametrize("how", ["withdraw", "revoke"])
def test_next_request_sees_nothing_and_sync_gets_a_tombstone(
    shared: tuple[LiveServer, Programme], how: str
) -> None:
    server, world = shared
    side = world.side("contractor")
    rid = list(side.assigned)[WITHDRAW if how == "withdraw" else REVOKE]
    ref = load_keyring(Settings(home=Path(server.home.path))).case_reference(
        side.agreement_id, rid
    )
    cadre = {"Authorization": f"Bearer {server.home.tokens['community_cadre']}"}
    with server.client() as api:
        _, cursor = pull_all(api, side.headers)
        assert _case(api, side, ref).status_code == 200
        nonexistent = _case(api, side, "no-such-case-0000")
        if how == "withdraw":
            r = api.post(f"/v1/residents/{rid}/consents/withdraw", headers=cadre,
                         json=consent_body(["service_contact"], side.agreement_id))  # fmt: skip
            assert r.status_code == 201, r.text
        else:
            r = api.post(f"/v1/assignments/{side.assigned[rid]}/revoke", headers=cadre)
            assert r.status_code == 200, r.text
        gone = _case(api, side, ref)
        assert gone.status_code == 404
        strip = {"request_id", "instance"}
        assert {k: v for k, v in gone.json().items() if k not in strip} == {
            k: v for k, v in nonexistent.json().items() if k not in strip}
        fresh, _ = pull_all(api, side.headers)
        assert ref not in {i["case_reference"] for i in fresh if i["type"] == "case"}
        changes, _ = pull_all(api, side.headers, cursor=cursor)
        tombstones = [i for i in changes if i["type"] == "tombstone" and i["case_reference"] == ref]
        assert len(tombstones) == 1
        expected = "consent_withdrawn" if how == "withdraw" else "assignment_revoked"
        assert tombstones[0]["reason"] in {expected, "revoked", "withdrawn"}, tombstones
        assert not [i for i in changes if i["type"] == "case" and i["case_reference"] == ref]

        ack = api.post(f"/v1/tombstones/{ref}/ack", headers=side.headers)
        assert ack.status_code == 200, ack.text
        acks = audit_entries(api, server.home.tokens["auditor"], action="case.deletion_ack")
        assert any(ref in str(e["entry"]) for e in acks), "acknowledgement not audited"


def test_withdrawing_a_sensitive_scope_narrows_the_next_view(
    shared: tuple[LiveServer, Programme],
) -> None:
    server, world = shared
    side = world.side("contractor")
    cadre = {"Authorization": f"Bearer {server.home.tokens['community_cadre']}"}
    with server.client() as api:
        rid = pregnant_resident_assigned_to(api, cadre, side)
    ref = load_keyring(Settings(home=Path(server.home.path))).case_reference(
        side.agreement_id, rid
    )
    sensitive = {"gestation_weeks", "due_month", "risk_flags", "delivery_month"}
    with server.client() as api:
        before = _case(api, side, ref).json()["case"]
        assert set(before["fields"]) & sensitive, "pick a resident with health fields shown"
        r = api.post(f"/v1/residents/{rid}/consents/withdraw", headers=cadre,
                     json=consent_body(["pregnancy_health", "birth_health"], side.agreement_id))
        assert r.status_code == 201, r.text
        after = _case(api, side, ref)
        assert after.status_code == 200  # service_contact still holds
        fields = set(after.json()["case"]["fields"])
        assert not fields & sensitive
        assert fields <= set(before["fields"])
        assert "display_name" in fields
