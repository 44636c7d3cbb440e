"""Issue 14, finding 1: no door tells a cadre whether an ID number, phone or name is registered
outside her communities, and every lookup by an identifying value is audited with a keyed
reference, never the value (SQLite and PostgreSQL).

The attack: a cadre of 民城路社区 registers a resident with the ID number of a woman of another
community and a nonsense community; the old answer was 409 "already registered" where an unknown
ID answered 422 `community_unknown`. Now scope and every field are checked before any lookup, so
both answer the same 422; only a registration valid in every field and in her own community
reaches the register, and then a registered ID answers one 409 whichever community holds her
(audited as a refused `resident.register` with the ID's keyed reference). The office admin, who
sees the whole district, gets the same 409 for a true duplicate. An import row never moves or
overwrites a resident outside the importer's communities.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from exchange.api.auth import issue_token
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.ledger.idnumber import make_national_id
from exchange.ledger.synthetic import HEADER
from exchange.services.resident_ledger import lookup_reference
from tests.exchange.console.ledger_world import CADRE_COMMUNITY, entries, with_residents
from tests.exchange.console.pages import console, csrf_of, sign_in

pytestmark = pytest.mark.db

UNKNOWN_ID = make_national_id(date(1991, 5, 6), 431)


@pytest.fixture
def app(database_url: str, tmp_path: Path, migrated_sqlite_template: Path):
    harness, world = console(database_url, tmp_path, migrated_sqlite_template)
    ledger = with_residents(harness, residents=30)
    with unit_of_work(harness.factory) as session:
        row = session.get_one(m.Principal, world.ids["community_cadre"])
        harness.tokens["console_cadre"] = issue_token(row, now=harness.clock(),
                                                      ttl=timedelta(days=1))  # fmt: skip
    return harness, world, ledger


def _h(harness: Any, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {harness.tokens[role]}"}


def _body(national_id: str, community: str, **extra: Any) -> dict[str, Any]:
    return {"name": "柳如梦", "national_id": national_id, "phone": "13905321177",
            "community": community, "stage": "pregnant", "due_date": "2026-07-15", **extra}


def _resident(harness: Any, resident_id: str) -> tuple[str, bytes]:
    with unit_of_work(harness.factory) as session:
        row = session.get_one(m.Resident, resident_id)
        return row.community_id, bytes(row.name.to_bytes())  # type: ignore[union-attr]


def _same(a: Any, b: Any) -> bool:
    """Same status and problem body, bar the request's own id."""
    return a.status_code == b.status_code and (
        {k: v for k, v in a.json().items() if k != "request_id"}
        == {k: v for k, v in b.json().items() if k != "request_id"})


def test_registering_an_id_of_another_community_answers_as_an_unknown_id(app) -> None:
    harness, _, ledger = app
    api, cadre = harness.client, _h(harness, "console_cadre")
    other = ledger.elsewhere()[0]
    before = _resident(harness, ledger.ids[other.national_id])

    # the attack of the issue: a nonsense community, an ID registered elsewhere vs unknown
    for community in ("没有这个社区", other.community):
        elsewhere = api.post("/v1/residents", json=_body(other.national_id, community),
                             headers=cadre)  # fmt: skip
        unknown = api.post("/v1/residents", json=_body(UNKNOWN_ID, community), headers=cadre)
        assert elsewhere.status_code == unknown.status_code == 422, (community, elsewhere.text)
        assert _same(elsewhere, unknown)
        assert [e["field"] for e in elsewhere.json()["errors"]] == ["community"]
    # other fields wrong too: every field named, the same for both
    bad = {"phone": "12", "due_date": "2026-02-30"}
    elsewhere = api.post("/v1/residents", json=_body(other.national_id, "x", **bad), headers=cadre)
    unknown = api.post("/v1/residents", json=_body(UNKNOWN_ID, "x", **bad), headers=cadre)
    assert elsewhere.status_code == 422 and _same(elsewhere, unknown)

    # a registration valid in every field, in her own community: one 409 for a registered
    # ID wherever she lives, nothing about where; and she is neither moved nor overwritten
    taken = api.post("/v1/residents", json=_body(other.national_id, CADRE_COMMUNITY),
                     headers=cadre)  # fmt: skip
    mine = ledger.of(CADRE_COMMUNITY)[0]
    own = api.post("/v1/residents", json=_body(mine.national_id, CADRE_COMMUNITY), headers=cadre)
    assert taken.status_code == own.status_code == 409, taken.text
    assert _same(taken, own)
    assert other.community not in taken.text and other.national_id not in taken.text
    assert _resident(harness, ledger.ids[other.national_id]) == before

    # each refused registration that looked the ID up is audited, keyed, never the value
    keyring = harness.app.state.keyring
    with unit_of_work(harness.factory) as session:
        refused = [e for e in entries(session, "resident.register")
                   if e["outcome"]["result"] == "denied"]  # type: ignore[index]
    assert [e["details"]["lookup.ref"] for e in refused] == [  # type: ignore[index]
        lookup_reference(keyring, "resident.national_id", other.national_id),
        lookup_reference(keyring, "resident.national_id", mine.national_id)]
    blob = json.dumps(refused, ensure_ascii=False)
    assert other.national_id not in blob and mine.national_id not in blob


def test_the_office_admin_is_told_of_a_true_duplicate(app) -> None:
    """The office admin sees the district: her lookup finds the resident the cadre's 409 was
    about, and her import of the row updates that resident (a move between communities is
    the office's to make)."""
    harness, _, ledger = app
    other = ledger.elsewhere()[0]
    admin = _h(harness, "office_admin")
    found = harness.client.post("/v1/residents/lookup", json={"national_id": other.national_id},
                                headers=admin)  # fmt: skip
    assert [i["id"] for i in found.json()["items"]] == [ledger.ids[other.national_id]]
    r = harness.client.post("/v1/residents/imports", content=_csv(other.national_id),
                            headers={**admin, "Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code == 201 and r.json()["updated"] == 1, r.text
    with unit_of_work(harness.factory) as session:
        mine = session.scalar(select(m.Community.id).where(m.Community.name == CADRE_COMMUNITY))
    assert _resident(harness, ledger.ids[other.national_id])[0] == mine


def _csv(national_id: str) -> bytes:
    row = dict.fromkeys(HEADER, "")
    row.update({HEADER[0]: "柳如梦", HEADER[1]: national_id, HEADER[2]: "13905321177",
                HEADER[3]: CADRE_COMMUNITY, HEADER[8]: "孕期", HEADER[9]: "2026-07-15"})
    return (",".join(HEADER) + "\n" + ",".join(row[h] for h in HEADER) + "\n").encode()


def test_an_import_row_never_moves_or_overwrites_a_resident_elsewhere(app) -> None:
    harness, _, ledger = app
    other = ledger.elsewhere()[0]
    rid = ledger.ids[other.national_id]
    before = _resident(harness, rid)
    r = harness.client.post("/v1/residents/imports", content=_csv(other.national_id),
                            headers={**_h(harness, "console_cadre"),
                                     "Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code == 422, r.text
    assert other.community not in r.text and other.national_id not in r.text
    assert _resident(harness, rid) == before


def test_the_console_register_form_answers_the_same(app) -> None:
    harness, _, ledger = app
    client = harness.client.__class__(harness.app)
    sign_in(client, "community_cadre")
    other = ledger.elsewhere()[0]
    with unit_of_work(harness.factory) as session:
        ids = dict(session.execute(select(m.Community.name, m.Community.id)).all())

    def register(national_id: str, community: str) -> Any:
        form = client.get("/console/residents/new")
        data = {"csrf_token": csrf_of(form.text), "name": "柳如梦", "national_id": national_id,
                "phone": "13905321177", "community": community, "stage": "pregnant",
                "due_date": "2026-07-15"}  # fmt: skip
        return client.post("/console/residents/new", data=data, follow_redirects=False)

    for community in ("no-such-id", ids[other.community]):
        elsewhere, unknown = register(other.national_id, community), register(UNKNOWN_ID,
                                                                              community)
        assert elsewhere.status_code == unknown.status_code == 422
        assert _page(elsewhere.text, other.national_id) == _page(unknown.text, UNKNOWN_ID)
    taken = register(other.national_id, ids[CADRE_COMMUNITY])
    assert taken.status_code in (409, 422) and other.community not in taken.text
    with unit_of_work(harness.factory) as session:
        refused = [e for e in entries(session, "resident.register")
                   if e["outcome"]["result"] == "denied"]  # type: ignore[index]
    assert len(refused) == 1  # the console's refusal is audited like the API's


def _page(html: str, national_id: str) -> str:
    """The page bar the value she typed (echoed in her form) and its fresh CSRF token."""
    return html.replace(national_id, "ID").replace(csrf_of(html), "T")


def test_lookups_and_reveals_answer_the_same_and_each_lookup_is_audited_keyed(app) -> None:
    """The exact lookup (API and console form) and 查看明文: a resident of another community
    answers as nobody, and every lookup leaves `resident.lookup` with the keyed reference."""
    harness, _, ledger = app
    api, cadre = harness.client, _h(harness, "console_cadre")
    other = ledger.elsewhere()[0]
    for field, value, unknown in (("national_id", other.national_id, UNKNOWN_ID),
                                  ("phone", other.phone, "13900000001")):
        elsewhere = api.post("/v1/residents/lookup", json={field: value}, headers=cadre)
        nobody = api.post("/v1/residents/lookup", json={field: unknown}, headers=cadre)
        assert elsewhere.status_code == 200 and _same(elsewhere, nobody)
    client = harness.client.__class__(harness.app)
    sign_in(client, "community_cadre")
    pages = []
    for value in (other.national_id, UNKNOWN_ID):
        form = client.get("/console/residents")
        r = client.post("/console/residents/lookup",
                        data={"csrf_token": csrf_of(form.text), "national_id": value})
        assert r.status_code == 200
        pages.append(_page(r.text, value))
    assert pages[0] == pages[1]
    body = {"field": "phone", "reason": "identity_check", "note": "核实身份信息"}
    foreign = api.post(f"/v1/residents/{ledger.ids[other.national_id]}/reveal", json=body,
                       headers=cadre)  # fmt: skip
    missing = api.post("/v1/residents/00000000-0000-7000-8000-000000000000/reveal", json=body,
                       headers=cadre)  # fmt: skip
    assert foreign.status_code == missing.status_code == 404 and _same(foreign, missing)

    keyring = harness.app.state.keyring
    with unit_of_work(harness.factory) as session:
        lookups = entries(session, "resident.lookup")
    assert [e["details"]["lookup.ref"] for e in lookups] == [  # type: ignore[index]
        lookup_reference(keyring, "resident.national_id", other.national_id),
        lookup_reference(keyring, "resident.national_id", UNKNOWN_ID),
        lookup_reference(keyring, "resident.phone", other.phone),
        lookup_reference(keyring, "resident.phone", "13900000001"),
        lookup_reference(keyring, "resident.national_id", other.national_id),
        lookup_reference(keyring, "resident.national_id", UNKNOWN_ID)]
    blob = json.dumps(lookups, ensure_ascii=False)
    assert other.national_id not in blob and other.phone not in blob
