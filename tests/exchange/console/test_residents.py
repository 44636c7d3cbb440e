"""居民台账 through the console (SQLite and PostgreSQL): masked rows in the cadre's scope only,
filters, the exact lookup (scope first, audited with a keyed reference, never the value) and
the .xlsx export (the same masked rows, the user and time in the sheet, audited)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.ledger.synthetic import generate_rows
from tests.exchange.console.ledger_world import CADRE_COMMUNITY, Ledger, entries, with_residents
from tests.exchange.console.pages import console, sign_in

pytestmark = pytest.mark.db
_ROW = re.compile(r'<a href="/console/residents/([0-9a-f-]{36})">')
_TOTAL = re.compile(r"共 (\d+) 条")


@pytest.fixture
def app(database_url: str, tmp_path: Path, migrated_sqlite_template: Path):
    harness, world = console(database_url, tmp_path, migrated_sqlite_template)
    return harness, world, with_residents(harness)


def _ids(html: str) -> list[str]:
    return _ROW.findall(html)


def _total(html: str) -> int:
    found = _TOTAL.search(html)
    assert found, "no “共 N 条” on the page"
    return int(found.group(1))


def _community_id(harness, name: str) -> str:
    with unit_of_work(harness.factory) as session:
        cid = session.scalar(select(m.Community.id).where(m.Community.name == name))
    assert cid is not None
    return cid


def _no_plaintext(text: str, ledger: Ledger) -> None:
    for p in ledger.people:
        assert p.national_id not in text and p.phone not in text, "a personal value leaked"
        assert p.name not in text or len(p.name) == 1


def test_a_cadre_sees_her_community_masked_and_nothing_else(app) -> None:
    harness, _, ledger = app
    client = harness.client
    sign_in(client, "community_cadre")
    mine = ledger.of(CADRE_COMMUNITY)
    assert mine and ledger.elsewhere()
    r = client.get("/console/residents?size=50")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert _total(r.text) == len(mine)
    assert sorted(_ids(r.text)) == sorted(ledger.ids[p.national_id] for p in mine)
    _no_plaintext(r.text, ledger)
    person = mine[0]
    assert f"{person.national_id[:6]}********{person.national_id[-4:]}" in r.text
    assert f"{person.phone[:3]}****{person.phone[-4:]}" in r.text
    assert f"{person.name[0]}**" in r.text
    assert person.room not in re.sub(r"<[^>]+>", " ", r.text).split()  # never the room
    # another community's filter answers like an empty one; paging keeps the filters
    other = _community_id(harness, ledger.elsewhere()[0].community)
    r = client.get(f"/console/residents?community={other}")
    assert r.status_code == 200 and _total(r.text) == 0 and _ids(r.text) == []
    r = client.get("/console/residents?size=10&page=2")
    assert _total(r.text) == len(mine) and len(_ids(r.text)) == min(10, len(mine) - 10)


def test_an_office_admin_sees_every_community(app) -> None:
    harness, _, ledger = app
    sign_in(harness.client, "office_admin")
    r = harness.client.get("/console/residents?size=50")
    assert _total(r.text) == len(ledger.people)
    _no_plaintext(r.text, ledger)


def test_filters_stage_due_month_and_assignment(app) -> None:
    harness, _, ledger = app
    client = harness.client
    sign_in(client, "office_admin")
    pregnant = [p for p in ledger.people if p.stage == "孕期"]
    r = client.get("/console/residents?stage=pregnant&size=50")
    assert _total(r.text) == len(pregnant)
    month = pregnant[0].due_date[:7]
    due = [p for p in ledger.people if p.due_date.startswith(month)]
    r = client.get(f"/console/residents?due_month={month}&size=50")
    assert sorted(_ids(r.text)) == sorted(ledger.ids[p.national_id] for p in due)
    assert _total(client.get("/console/residents?assignment=assigned").text) == 0
    assert _total(client.get("/console/residents?assignment=unassigned").text) == len(
        ledger.people)  # fmt: skip
    bad = client.get("/console/residents?due_month=2026-13")
    assert bad.status_code == 422 and "预产月份：格式不正确" in bad.text


def _lookup(client, csrf: str, **values: str):
    return client.post("/console/residents/lookup", data={"csrf_token": csrf, **values})


def test_lookup_is_scoped_first_and_audited_without_the_value(app) -> None:
    harness, _, ledger = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    mine, elsewhere = ledger.of(CADRE_COMMUNITY)[0], ledger.elsewhere()[0]
    found = _lookup(client, csrf, national_id=mine.national_id)
    assert found.status_code == 200 and _ids(found.text) == [ledger.ids[mine.national_id]]
    assert "找到 1 条" in found.text and mine.national_id not in found.text
    by_phone = _lookup(client, csrf, phone=mine.phone)
    assert _ids(by_phone.text) == [ledger.ids[mine.national_id]]
    # a resident of another community and nobody at all: the same answer
    other = _lookup(client, csrf, national_id=elsewhere.national_id)
    nobody_id = next(r[1] for r in generate_rows(3, 99, as_of=ledger.today))
    nobody = _lookup(client, csrf, national_id=nobody_id)
    assert other.status_code == nobody.status_code == 200

    def body(html: str) -> str:
        return re.sub(r'value="[0-9a-f]{64}"|\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}', "", html)

    assert body(other.text) == body(nobody.text) and "找到 0 条" in other.text
    other_phone = _lookup(client, csrf, phone=elsewhere.phone)
    assert _ids(other_phone.text) == [] and "找到 0 条" in other_phone.text
    bad = _lookup(client, csrf, national_id="12345")
    assert bad.status_code == 422 and "身份证号：格式不正确" in bad.text and "12345" not in bad.text
    with unit_of_work(harness.factory) as session:
        lookups = entries(session, "resident.lookup")
    assert len(lookups) == 5
    refs = [e["details"]["lookup.ref"] for e in lookups]  # type: ignore[index]
    assert refs[0] != refs[2] and len(set(refs)) == 5
    assert [e["details"]["lookup.found"] for e in lookups] == [1, 1, 0, 0, 0]  # type: ignore[index]
    assert [len(e["subjects"]) for e in lookups] == [1, 1, 0, 0, 0]  # type: ignore[arg-type]
    keyring = harness.app.state.keyring
    assert refs[0] == keyring.audit_pseudonym(f"lookup/resident.national_id/{mine.national_id}")
    log_text = repr(lookups)
    for p in (mine, elsewhere):
        assert p.national_id not in log_text and p.phone not in log_text


def test_export_is_the_masked_filter_with_user_and_time_and_is_audited(app) -> None:
    harness, world, ledger = app
    client = harness.client
    sign_in(client, "community_cadre")
    mine = ledger.of(CADRE_COMMUNITY)
    r = client.get("/console/residents/export.xlsx")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert r.headers["content-disposition"].startswith('attachment; filename="residents-')
    sheet = load_workbook(io.BytesIO(r.content), read_only=True).active
    rows = [tuple(c for c in row) for row in sheet.iter_rows(values_only=True)]
    assert rows[1][:2] == ("导出人", "李干事 (cadre-01)")
    assert rows[2][0] == "导出时间" and str(rows[2][1]).startswith("2026-03-01 17:00:00")
    header = rows.index(("姓名", "身份证号", "联系电话", "社区", "住址（至楼栋）", "孕产状态",
                         "预产期", "分娩日期", "分配状态"))  # fmt: skip
    data = [row for row in rows[header + 1:] if len(row) > 1 and row[1]]
    assert len(data) == len(mine) and {row[3] for row in data} == {CADRE_COMMUNITY}
    assert rows[-1][0] == f"共 {len(mine)} 条"
    _no_plaintext(repr(rows), ledger)
    with unit_of_work(harness.factory) as session:
        exported = entries(session, "resident.export")
    assert len(exported) == 1
    details = exported[0]["details"]
    assert details["export.rows"] == len(mine) and details["view"] == "masked"  # type: ignore[index]
    assert exported[0]["actor"]["id"] == world.ids["community_cadre"]  # type: ignore[index]
    keyring = harness.app.state.keyring
    assert {s["pseudonym"] for s in exported[0]["subjects"]} == {  # type: ignore[attr-defined]
        keyring.audit_pseudonym(ledger.ids[p.national_id]) for p in mine}
    # another community through the filter: an empty sheet, still recorded
    other = _community_id(harness, ledger.elsewhere()[0].community)
    r = client.get(f"/console/residents/export.xlsx?community={other}")
    rows = list(load_workbook(io.BytesIO(r.content), read_only=True).active.iter_rows(
        values_only=True))  # fmt: skip
    assert rows[-1][0] == "共 0 条"


def test_an_auditor_has_no_ledger_page(app) -> None:
    harness, _, _ = app
    sign_in(harness.client, "auditor")
    assert harness.client.get("/console/residents").status_code == 403
    assert harness.client.get("/console/residents/export.xlsx").status_code == 403


def test_an_admin_changes_a_users_role_and_scope_and_her_next_request_sees_it(app) -> None:
    """accounts.set_role through the users page: audited with the admin as actor and the user
    named; the cadre's open session ends at once, and signed in again she sees the new
    community's residents and none of the old one's; as an auditor she has no ledger page."""
    harness, world, ledger = app
    admin, cadre = harness.client, harness.client.__class__(harness.app)
    admin_csrf = sign_in(admin, "office_admin")
    sign_in(cadre, "community_cadre")
    assert _total(cadre.get("/console/residents?size=50").text) == len(ledger.of(CADRE_COMMUNITY))
    moved_to = ledger.elsewhere()[0].community
    target = f"/console/users/{world.ids['community_cadre']}"

    def change(role: str, communities: list[str]):
        return admin.post(target, data={
            "csrf_token": admin_csrf, "action": "role", "role": role, "display_name": "李干事",
            "communities": communities}, follow_redirects=False)  # fmt: skip

    # a cadre needs a community: refused, in Chinese, nothing changed, her session goes on
    refused = change("community_cadre", [])
    assert refused.status_code == 422 and "所属社区：为必填项" in refused.text
    assert cadre.get("/console/residents").status_code == 200
    assert change("community_cadre", [_community_id(harness, moved_to)]).status_code == 303
    page = admin.get(target).text
    assert re.search(rf'value="{_community_id(harness, moved_to)}" id="c-[^"]+" checked', page)
    with unit_of_work(harness.factory) as session:
        updates = entries(session, "console_user.update")
    assert len(updates) == 1 and updates[0]["actor"]["id"] == world.ids["office_admin"]  # type: ignore[index]
    assert updates[0]["details"]["console_user.id"] == world.ids["community_cadre"]  # type: ignore[index]
    assert updates[0]["details"]["console_user.role"] == "community_cadre"  # type: ignore[index]
    # her next request: the session the old scope was granted to has ended
    ended = cadre.get("/console/residents", follow_redirects=False)
    assert ended.status_code == 303 and "reason=ended_by_admin" in ended.headers["location"]
    sign_in(cadre, "community_cadre")
    r = cadre.get("/console/residents?size=50")
    assert _total(r.text) == len(ledger.of(moved_to))
    assert sorted(_ids(r.text)) == sorted(ledger.ids[p.national_id] for p in ledger.of(moved_to))
    old = ledger.of(CADRE_COMMUNITY)[0]
    assert cadre.get(f"/console/residents/{ledger.ids[old.national_id]}").status_code == 404
    # made an auditor, she has no ledger at all
    assert change("auditor", []).status_code == 303
    sign_in(cadre, "community_cadre")
    assert cadre.get("/console/residents").status_code == 403
