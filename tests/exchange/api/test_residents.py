"""/v1 shows what the console shows (invariant 12), SQLite and PostgreSQL: the 居民台账 rows
masked by the same service, with the same filters and totals; the exact lookup in the body,
scoped first and audited without the value; 查看明文 through `reveal.reveal`, its hourly limit
shared with the console (429 with Retry-After, the refusal audited); the "who saw my data"
report for a cadre, scoped; and one permission table for imports, whichever door."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from exchange.api.auth import issue_token
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.identity import Acting, Identity
from exchange.ledger.idnumber import make_national_id
from exchange.ledger.synthetic import HEADER
from exchange.permissions import allowed
from exchange.services import imports
from tests.exchange.console.ledger_world import (
    CADRE_COMMUNITY,
    Ledger,
    Person,
    entries,
    with_residents,
)
from tests.exchange.console.pages import console, sign_in

pytestmark = pytest.mark.db
_ROW = re.compile(r'<a href="/console/residents/([0-9a-f-]{36})">')
_TOTAL = re.compile(r"共 (\d+) 条")


@pytest.fixture
def app(database_url: str, tmp_path: Path, migrated_sqlite_template: Path):
    harness, world = console(database_url, tmp_path, migrated_sqlite_template,
                             console_reveals_per_hour=3)  # fmt: skip
    ledger = with_residents(harness, residents=40)
    # the console's cadre gets an API token too: one user, two doors
    with unit_of_work(harness.factory) as session:
        row = session.get_one(m.Principal, world.ids["community_cadre"])
        harness.tokens["console_cadre"] = issue_token(row, now=harness.clock(),
                                                      ttl=timedelta(days=1))  # fmt: skip
    return harness, world, ledger


def _h(harness, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {harness.tokens[role]}"}


def _masked(p: Person) -> tuple[str, str, str]:
    return p.name[0] + "**", p.phone[:3] + "****" + p.phone[-4:], (
        p.national_id[:6] + "********" + p.national_id[-4:])


def _no_plaintext(text: str, ledger: Ledger) -> None:
    for p in ledger.people:
        assert p.national_id not in text and p.phone not in text, "a personal value leaked"


def test_the_list_is_the_consoles_masked_rows_with_the_same_filters(app) -> None:
    harness, world, ledger = app
    api = harness.client
    r = api.get("/v1/residents", params={"limit": 20}, headers=_h(harness, "console_cadre"))
    assert r.status_code == 200, r.text
    body = r.json()
    mine = ledger.of(CADRE_COMMUNITY)
    assert body["total"] == len(mine) and len(body["items"]) == min(20, len(mine))
    by_id = {ledger.ids[p.national_id]: p for p in ledger.people}
    for item in body["items"]:
        person = by_id[item["id"]]
        assert person.community == CADRE_COMMUNITY == item["community"]
        assert (item["name"], item["phone"], item["national_id"]) == _masked(person)
        assert item["address"] == person.compound + person.building
    _no_plaintext(r.text, ledger)

    # the console's page of the same user shows the same rows in the same order
    console_client = harness.client.__class__(harness.app)
    sign_in(console_client, "community_cadre")
    html = console_client.get("/console/residents", params={"size": 20}).text
    assert _ROW.findall(html) == [i["id"] for i in body["items"]]
    assert int(_TOTAL.search(html).group(1)) == body["total"]  # type: ignore[union-attr]

    # filters: the console's, by the same parser (community by name or id)
    for params in ({"stage": "pregnant"}, {"assignment": "unassigned"},
                   {"due_month": mine[0].due_date[:7] if mine[0].due_date else "2026-05"}):
        api_total = api.get("/v1/residents", params=params,
                            headers=_h(harness, "console_cadre")).json()["total"]
        page = console_client.get("/console/residents", params=params).text
        assert api_total == int(_TOTAL.search(page).group(1)), params  # type: ignore[union-attr]
    admin = _h(harness, "office_admin")
    elsewhere = ledger.elsewhere()[0].community
    by_name = api.get("/v1/residents", params={"community": elsewhere}, headers=admin).json()
    assert by_name["total"] == len(ledger.of(elsewhere))
    with unit_of_work(harness.factory) as session:
        cid = session.scalar(select(m.Community.id).where(m.Community.name == elsewhere))
    by_id_total = api.get("/v1/residents", params={"community": cid}, headers=admin).json()
    assert by_id_total["total"] == by_name["total"]
    # a cadre asking for another community gets nobody, never its rows
    foreign = api.get("/v1/residents", params={"community": elsewhere},
                      headers=_h(harness, "console_cadre")).json()  # fmt: skip
    assert foreign["total"] == 0 and foreign["items"] == []
    bad = api.get("/v1/residents", params={"community": "没有这个社区", "due_month": "2026-13"},
                  headers=admin)  # fmt: skip
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"community", "due_month"}
    assert "没有这个社区" not in bad.text
    # roles without a ledger
    assert api.get("/v1/residents", headers=_h(harness, "auditor")).status_code == 403
    assert api.get("/v1/residents", headers=_h(harness, "contractor")).status_code == 403


def test_one_resident_is_masked_and_a_foreign_one_answers_as_none(app) -> None:
    harness, _, ledger = app
    api = harness.client
    mine, other = ledger.of(CADRE_COMMUNITY)[0], ledger.elsewhere()[0]
    r = api.get(f"/v1/residents/{ledger.ids[mine.national_id]}",
                headers=_h(harness, "console_cadre"))  # fmt: skip
    assert r.status_code == 200, r.text
    view = r.json()
    assert (view["name"], view["phone"], view["national_id"]) == _masked(mine)
    assert view["erased"] is False and view["community"] == CADRE_COMMUNITY
    _no_plaintext(r.text, ledger)
    foreign = api.get(f"/v1/residents/{ledger.ids[other.national_id]}",
                      headers=_h(harness, "console_cadre"))  # fmt: skip
    missing = api.get("/v1/residents/00000000-0000-7000-8000-000000000000",
                      headers=_h(harness, "console_cadre"))  # fmt: skip
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"] == missing.json()["detail"]


def test_lookup_is_in_the_body_scoped_first_and_audited_without_the_value(app) -> None:
    harness, _, ledger = app
    api = harness.client
    cadre = _h(harness, "console_cadre")
    mine, other = ledger.of(CADRE_COMMUNITY)[0], ledger.elsewhere()[0]

    def lookup(**body: str):  # type: ignore[no-untyped-def]
        return api.post("/v1/residents/lookup", json=body, headers=cadre)

    found = lookup(national_id=mine.national_id)
    assert found.status_code == 200, found.text
    assert [i["id"] for i in found.json()["items"]] == [ledger.ids[mine.national_id]]
    assert lookup(phone=mine.phone).json()["total"] == 1
    elsewhere = lookup(national_id=other.national_id)
    nobody = lookup(national_id=make_national_id(date(1990, 1, 1), 499))
    assert elsewhere.status_code == nobody.status_code == 200
    assert elsewhere.json() == nobody.json() == {"total": 0, "limit": 200, "offset": 0,
                                                 "items": []}  # fmt: skip
    both = lookup(national_id=mine.national_id, phone=mine.phone)
    neither = lookup()
    bad = lookup(national_id="12345")
    assert (both.status_code, neither.status_code, bad.status_code) == (422, 422, 422)
    assert [e["field"] for e in both.json()["errors"]] == ["phone"]
    assert [e["field"] for e in neither.json()["errors"]] == ["national_id"]
    assert "12345" not in bad.text and mine.phone not in both.text
    with unit_of_work(harness.factory) as session:
        lookups = entries(session, "resident.lookup")
    assert [e["details"]["lookup.found"] for e in lookups] == [1, 1, 0, 0]  # type: ignore[index]
    assert [e["details"]["lookup.field"] for e in lookups] == [  # type: ignore[index]
        "resident.national_id", "resident.phone", "resident.national_id", "resident.national_id"]
    logged = repr(lookups)
    assert mine.national_id not in logged and mine.phone not in logged
    assert other.national_id not in logged


def test_reveal_goes_through_the_service_and_shares_the_consoles_hourly_limit(app) -> None:
    harness, world, ledger = app
    api = harness.client
    cadre = _h(harness, "console_cadre")
    mine, other = ledger.of(CADRE_COMMUNITY)[0], ledger.elsewhere()[0]
    rid = ledger.ids[mine.national_id]
    url = f"/v1/residents/{rid}/reveal"
    body = {"field": "phone", "reason": "home_service_contact", "note": "上门前电话确认时间"}

    refused = api.post(url, json={"field": "room", "reason": "", "note": ""}, headers=cadre)
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} >= {"field", "reason"}
    shown = api.post(url, json=body, headers=cadre)
    assert shown.status_code == 200, shown.text
    assert shown.json()["value"] == mine.phone and shown.json()["field"] == "phone"
    foreign = api.post(f"/v1/residents/{ledger.ids[other.national_id]}/reveal", json=body,
                       headers=cadre)  # fmt: skip
    assert foreign.status_code == 404
    assert api.post(url, json=body, headers=_h(harness, "auditor")).status_code == 403

    # the same user through the console: one count for both doors (limit 3 an hour)
    client = harness.client.__class__(harness.app)
    csrf = sign_in(client, "community_cadre")
    page = client.post(f"/console/residents/{rid}/reveal", data={
        "csrf_token": csrf, "field": "name", "reason": "identity_check", "note": "核实身份"})
    assert page.status_code == 200
    assert api.post(url, json={**body, "field": "address"}, headers=cadre).status_code == 200
    limited = api.post(url, json=body, headers=cadre)
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert mine.phone not in limited.text
    # the console is refused too now
    again = client.post(f"/console/residents/{rid}/reveal", data={
        "csrf_token": csrf, "field": "name", "reason": "identity_check", "note": "核实身份"})
    assert again.status_code == 429

    with unit_of_work(harness.factory) as session:
        reveals = entries(session, "case.reveal")
    outcomes = [(e["outcome"]["result"], e["details"]["reveal.field"])  # type: ignore[index]
                for e in reveals]  # fmt: skip
    assert outcomes == [("ok", "resident.phone"), ("ok", "resident.name"),
                        ("ok", "address.compound"), ("denied", "resident.phone"),
                        ("denied", "resident.name")]  # fmt: skip
    assert all(e["actor"]["id"] == world.ids["community_cadre"] for e in reveals)  # type: ignore[index]
    assert "上门前" not in repr(reveals) and mine.phone not in repr(reveals)


def test_a_cadre_answers_who_saw_my_data_for_her_community_only(app) -> None:
    harness, _, ledger = app
    api = harness.client
    cadre = _h(harness, "console_cadre")
    mine, other = ledger.of(CADRE_COMMUNITY)[0], ledger.elsewhere()[0]
    rid = ledger.ids[mine.national_id]
    api.post(f"/v1/residents/{rid}/reveal", headers=_h(harness, "office_admin"), json={
        "field": "phone", "reason": "resident_request", "note": "居民本人来电申请"})
    report = api.get(f"/v1/residents/{rid}/disclosures", headers=cadre)
    assert report.status_code == 200, report.text
    (shown,) = report.json()["disclosures"]
    assert shown["action"] == "case.reveal" and shown["fields"] == ["resident.phone"]
    assert shown["recipient"]["role"] == "office_admin"
    foreign = api.get(f"/v1/residents/{ledger.ids[other.national_id]}/disclosures",
                      headers=cadre)  # fmt: skip
    missing = api.get("/v1/residents/00000000-0000-7000-8000-000000000000/disclosures",
                      headers=cadre)  # fmt: skip
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"] == missing.json()["detail"]
    assert api.get(f"/v1/residents/{rid}/disclosures",
                   headers=_h(harness, "auditor")).status_code == 403  # fmt: skip


def test_importing_is_one_permission_whichever_door(app) -> None:
    """The CLI has no gate of its own: the service asks the same table the API's route and
    the console's pages ask, so an office admin imports through all three and an auditor
    through none."""
    harness, _, _ = app
    header = ",".join(HEADER) + "\n"  # a header without rows: nothing to import, audited
    r = harness.client.post("/v1/residents/imports", content=header.encode("utf-8"),
                            headers={**_h(harness, "office_admin"),
                                     "Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert harness.client.post("/v1/residents/imports", content=header.encode("utf-8"),
                               headers={**_h(harness, "auditor"),
                                        "Content-Type": "text/csv"}).status_code == 403
    for role in ("office_admin", "community_cadre", "auditor", "contractor"):
        with unit_of_work(harness.factory) as session:
            row = session.scalars(select(m.Principal).where(m.Principal.role == role)).first()
            assert row is not None
            acting = Acting(Identity.from_row(row), harness.clock())
            ledger = imports.LedgerFile.from_csv_bytes(header.encode("utf-8"))
            if allowed(role, "residents.import"):
                imports.import_file(session, harness.app.state.keyring, acting, ledger)
            else:
                with pytest.raises(imports.ImportForbidden):
                    imports.import_file(session, harness.app.state.keyring, acting, ledger)
    assert allowed("office_admin", "residents.import") and not allowed("auditor",
                                                                        "residents.import")
