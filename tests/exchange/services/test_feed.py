"""The contractor feed: only assigned, consented, in-date cases, only policy fields; tombstones."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from exchange.services.feed import encode_cursor
from keys import DecryptionError, ResponseOpener
from tests.world import World, bearer

pytestmark = pytest.mark.db

CONTACT = ("service_contact",)
ALL = ("service_contact", "pregnancy_health", "birth_health")


def pull(api: TestClient, handle, cursor: str | None = None, limit: int | None = None) -> dict:
    params: dict[str, object] = {"purpose": "home_visit"}
    if cursor is not None:
        params["cursor"] = cursor
    if limit is not None:
        params["limit"] = limit
    response = api.get("/v1/cases", params=params, headers=bearer(handle))
    assert response.status_code == 200, response.text
    return response.json()


def test_feed_shows_only_assigned_consented_in_date_cases(world: World, api: TestClient) -> None:
    c = world.contractor()
    other = world.contractor()
    agreement = world.agreement(c)
    expired = world.agreement(
        c,
        valid_from=world.now.date().replace(year=2025),
        valid_to=world.now.date().replace(year=2025, month=12, day=31),
    )
    shown = world.resident()
    world.consent(shown, ALL)
    no_consent = world.resident()
    unassigned = world.resident()
    world.consent(unassigned, ALL)
    foreign = world.resident()
    world.consent(foreign, ALL)
    out_of_date = world.resident()
    world.consent(out_of_date, ALL)

    world.assign(shown, c, agreement)
    world.assign(no_consent, c, agreement)
    world.assign(out_of_date, c, expired)
    world.assign(foreign, other, world.agreement(other))

    page = pull(api, c)
    refs = [item["case_reference"] for item in page["items"]]
    assert refs == [world.case_reference(agreement, shown)]
    item = page["items"][0]
    assert item["type"] == "case" and item["purpose"] == "home_visit"
    assert item["policy"]["id"] == "cy1000.home_visit"
    fields = item["fields"]
    assert fields["display_name"] == "李女士"
    assert fields["phone_masked"] == "139****5678"
    assert fields["stage"] == "pregnant"
    assert item["services"] == fields["services"]
    # never-share and not-in-policy values are absent everywhere in the response
    body = str(page)
    for value in ("李秀英", "13912345678", "370214199001011232", "1990-01-01", "501室"):
        assert value not in body
    # sealed fields need a booked visit within 7 days: none booked, none sent
    assert item["sealed"] == {} and page["envelopes"] == {}


def test_sensitive_fields_need_their_own_consent(world: World, api: TestClient) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    r = world.resident()
    world.consent(r, CONTACT)
    world.assign(r, c, agreement)
    fields = pull(api, c)["items"][0]["fields"]
    assert "display_name" in fields
    assert not {"stage", "gestation_weeks", "due_month", "risk_flags", "age_band"} & set(fields)


def test_child_data_counts_only_with_guardian_consent(world: World, api: TestClient) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    services = ("early_education", "parenting", "confinement", "postpartum_recovery")
    r = world.resident(
        stage="postpartum",
        due_date=None,
        child_sex="F",
        child_birth=world.now.date().replace(month=1),
    )
    world.consent(r, (*CONTACT, "child_data"))  # not by a guardian: does not count
    world.assign(r, c, agreement, services=services)
    assert "infant_sex" not in pull(api, c)["items"][0]["fields"]
    world.consent(r, ("child_data",), guardian=True)
    ref = world.case_reference(agreement, r)
    one = api.get(f"/v1/cases/{ref}", params={"purpose": "home_visit"}, headers=bearer(c)).json()
    assert one["case"]["fields"]["infant_sex"] == "F"
    assert one["case"]["fields"]["infant_age_band"] == "0-2m"


def test_sealed_fields_open_only_with_the_right_key_and_place(
    world: World, api: TestClient
) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    r = world.resident()
    world.consent(r, ALL)
    world.assign(r, c, agreement, booking_in_days=3)
    page = pull(api, c)
    item = page["items"][0]
    ref = item["case_reference"]
    assert set(item["sealed"]) == {"phone", "address"}
    assert list(page["envelopes"]) == [agreement]
    opener = ResponseOpener(c.private_key, page["envelopes"][agreement], agreement)
    assert opener.open(ref, "phone", item["sealed"]["phone"]) == "13912345678"
    assert opener.open(ref, "address", item["sealed"]["address"]).endswith("2单元501室")
    with pytest.raises(DecryptionError):  # moved to another field
        opener.open(ref, "address", item["sealed"]["phone"])
    with pytest.raises(DecryptionError):  # moved to another case
        opener.open(ref[::-1], "phone", item["sealed"]["phone"])
    stranger = world.contractor()
    with pytest.raises(DecryptionError):  # another contractor's key
        ResponseOpener(stranger.private_key, page["envelopes"][agreement], agreement)


def test_cursor_pages_and_resumes(world: World, api: TestClient) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    residents = [world.resident() for _ in range(5)]
    for r in residents:
        world.consent(r, CONTACT)
        world.assign(r, c, agreement)
    first = pull(api, c, limit=2)
    assert len(first["items"]) == 2 and first["has_more"]
    second = pull(api, c, cursor=first["next_cursor"], limit=2)
    third = pull(api, c, cursor=second["next_cursor"], limit=2)
    assert not third["has_more"]
    seen = [i["case_reference"] for p in (first, second, third) for i in p["items"]]
    assert seen == [world.case_reference(agreement, r) for r in residents]
    assert pull(api, c, cursor=third["next_cursor"])["items"] == []


def test_page_size_is_capped(world: World, api: TestClient) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    for _ in range(3):
        r = world.resident()
        world.consent(r, CONTACT)
        world.assign(r, c, agreement)
    # the fixture caps pages at 50; asking for more is served at the cap
    assert len(pull(api, c, limit=10_000)["items"]) == 3


def test_tombstones_after_revocation_and_withdrawal(world: World, api: TestClient) -> None:
    c = world.contractor()
    agreement = world.agreement(c)
    a, b = world.resident(), world.resident()
    for r in (a, b):
        world.consent(r, CONTACT)
    assignment_a = world.assign(a, c, agreement)
    assignment_b = world.assign(b, c, agreement)
    cursor = pull(api, c)["next_cursor"]

    ref_a = world.revoke(assignment_a)
    ref_b = world.withdraw(b, assignment_b, CONTACT)
    page = pull(api, c, cursor=cursor)
    assert [(i["type"], i["case_reference"], i["reason"]) for i in page["items"]] == [
        ("tombstone", ref_a, "assignment_revoked"),
        ("tombstone", ref_b, "consent_withdrawn"),
    ]
    # the next request sees no data for either case
    for ref in (ref_a, ref_b):
        response = api.get(f"/v1/cases/{ref}", params={"purpose": "home_visit"}, headers=bearer(c))
        assert response.status_code == 404
    assert pull(api, c)["items"][-2:] == page["items"]  # from the start: no case views left


def test_purpose_is_required_and_checked(world: World, api: TestClient) -> None:
    c = world.contractor()
    assert api.get("/v1/cases", headers=bearer(c)).status_code == 422
    bad = api.get("/v1/cases", params={"purpose": "marketing"}, headers=bearer(c))
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )
    cursor = pull(api, c)["next_cursor"]
    other = api.get(
        "/v1/cases", params={"purpose": "online_guidance", "cursor": cursor}, headers=bearer(c)
    )
    assert other.status_code == 422
    garbage = api.get(
        "/v1/cases", params={"purpose": "home_visit", "cursor": "xx"}, headers=bearer(c)
    )
    assert garbage.status_code == 422


def test_cursor_beyond_a_sql_integer_is_refused(world: World, api: TestClient) -> None:
    c = world.contractor()
    for seq, status in ((2**31, 422), (2**63, 422), (10**60, 422), (2**31 - 1, 200)):
        r = api.get("/v1/cases", params={"purpose": "home_visit",
                                         "cursor": encode_cursor(seq, "home_visit")},
                    headers=bearer(c))  # fmt: skip
        assert r.status_code == status, r.text


def test_other_roles_may_not_pull(world: World, api: TestClient) -> None:
    assert api.get("/v1/cases", params={"purpose": "home_visit"}).status_code == 401
