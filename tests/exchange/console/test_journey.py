"""A community cadre's whole day in a real browser (Debian's Chromium through Playwright): sign
in, import a file with a bad row and read the report, fix and import, register a resident,
record her consent, assign 4 services and book one, reveal her phone with a reason (hidden
again after the set seconds), export, sign out; a cadre who never meets another community's
resident (list, lookup, page, export, report); and an axe scan of every page on the way.
Screenshots go to var/screenshots/."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.ledger.importer import ensure_communities
from exchange.ledger.synthetic import HEADER, generate_rows
from policies import office_date
from tests.exchange import factories as f
from tests.exchange.api.apptools import Harness
from tests.exchange.console.browser import (  # noqa: F401
    LiveServer,
    axe_clean,
    chromium,
    new_page,
    shot,
    sign_in,
)
from tests.exchange.console.ledger_world import CADRE_COMMUNITY, Ledger, entries, with_residents
from tests.exchange.console.pages import console
from tests.exchange.console.world import World

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path,
           migrated_sqlite_template: Path) -> Iterator[tuple[Harness, World, str]]:  # fmt: skip
    harness, world = console(f"sqlite:///{tmp_path / 'console.db'}", tmp_path,
                             migrated_sqlite_template, console_reveal_seconds=5)  # fmt: skip
    with unit_of_work(harness.factory) as session:
        ensure_communities(session)
        contractor = session.scalars(select(m.Contractor)).first()
        f.agreement(session, contractor, "CY-2026-001")
    with LiveServer(harness.app) as server:
        yield harness, world, server.url


def _ledger_file(harness: Harness, *, bad_row: int | None) -> tuple[bytes, list[tuple[str, ...]]]:
    today = office_date(harness.clock())
    rows = []
    for i, row in enumerate(generate_rows(5, 21, as_of=today)):
        cells = list(row)
        cells[3] = CADRE_COMMUNITY
        if i + 1 == bad_row:
            cells[2] = "1380013"  # a phone number too short
        rows.append(tuple(cells))
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *rows])
    return out.getvalue().encode("utf-8-sig"), rows


def _choose(page, select: str, text: str) -> None:
    value = page.locator(f"{select} option", has_text=text).first.get_attribute("value")
    page.locator(select).select_option(value)


def _upload(page, body: bytes) -> None:
    page.goto("/console/imports")
    page.locator("#file").set_input_files(
        files=[{"name": "民城路社区台账.csv", "mimeType": "text/csv", "buffer": body}])
    page.get_by_role("button", name="上传并校验").click()
    page.wait_for_load_state()


def test_a_cadres_whole_journey(chromium, served) -> None:  # noqa: F811
    harness, world, base = served
    page = new_page(chromium, base, 900)
    sign_in(page, "community_cadre")
    page.get_by_role("link", name="居民台账").first.click()
    assert page.get_by_text("共 0 条").is_visible()
    axe_clean(page, "residents-empty")

    # import a file with a bad row: the report names the row and the column, no value
    bad, rows = _ledger_file(harness, bad_row=2)
    _upload(page, bad)
    axe_clean(page, "import-report-errors")
    shot(page, "import-report-errors")
    problem = page.locator("tbody tr", has_text="第 3 行")
    assert problem.is_visible() and "联系电话" in problem.inner_text()
    assert "1380013" not in page.content() and rows[0][1] not in page.content()
    assert page.get_by_role("button", name="确认导入").count() == 0
    page.get_by_role("button", name="取消").click()
    page.wait_for_load_state()

    # fix it and import
    good, rows = _ledger_file(harness, bad_row=None)
    _upload(page, good)
    assert page.get_by_text("所有行均有效").is_visible()
    shot(page, "import-report-valid")
    page.get_by_role("button", name="确认导入").click()
    page.wait_for_load_state()
    assert page.get_by_text(f"新增 {len(rows)} 人").is_visible()
    axe_clean(page, "import-done")

    # register one more resident, first with a mistake
    page.goto("/console/residents/new")
    axe_clean(page, "register")
    person = next(r for r in generate_rows(30, 77, as_of=office_date(harness.clock()))
                  if r[8] == "孕期")  # fmt: skip
    page.locator("#name").fill(person[0])
    page.locator("#national_id").fill(person[1])
    page.locator("#phone").fill("138")
    page.locator("#stage").select_option("pregnant")
    page.locator("#due_date").fill(person[9])
    page.locator("#compound").fill(person[4])
    page.locator("#building").fill(person[5])
    page.get_by_role("button", name="保存").click()
    page.wait_for_load_state()
    assert page.get_by_text("联系电话：须为11位手机号").first.is_visible()
    axe_clean(page, "register-errors")
    shot(page, "register-errors")
    page.locator("#phone").fill(person[2])
    page.get_by_role("button", name="保存").click()
    page.wait_for_load_state()
    assert re.search(r"/console/residents/[0-9a-f-]{36}", page.url)
    resident_page = page.url.split("?")[0]
    assert person[1] not in page.content() and person[2] not in page.content()
    axe_clean(page, "resident")

    # record her consent (the signed form is hashed, not kept)
    _choose(page, "#c-basis", "CY-2026-001")
    page.locator("#c-scope-service_contact").check()
    page.locator("#c-scope-pregnancy_health").check()
    page.locator("#c-separate").check()
    page.locator("#c-notice").fill("2026.1")
    page.locator("#c-evidence").set_input_files(
        files=[{"name": "同意书.jpg", "mimeType": "image/jpeg", "buffer": b"signed form"}])
    page.get_by_role("button", name="登记").click()
    page.wait_for_load_state()
    assert page.locator("#consent tbody tr", has_text="服务联系").count() == 1

    # assign 4 of the 6 services and book one
    _choose(page, "#a-agreement", "CY-2026-001")
    for code in ("mid_pregnancy", "late_pregnancy", "confinement", "parenting"):
        page.locator(f"#a-svc-{code}").check()
    page.locator("#a-bservice").select_option("mid_pregnancy")
    page.locator("#a-bon").fill("2026-03-16")
    page.get_by_role("button", name="分配", exact=True).click()
    page.wait_for_load_state()
    booked = page.locator("#assignments tbody tr", has_text="孕中期指导")
    assert "2026-03-16" in booked.first.inner_text()
    axe_clean(page, "resident-assigned")

    # reveal her phone with a reason: shown, then masked again after the set seconds
    phone_row = page.locator("tr", has=page.locator("#value-phone"))
    phone_row.locator("summary").click()
    phone_row.locator("select[name=reason]").select_option("home_service_contact")
    phone_row.locator("textarea[name=note]").fill("上门服务前电话预约时间")
    axe_clean(page, "reveal-form")
    phone_row.get_by_role("button", name="显示明文").click()
    page.wait_for_load_state()
    assert page.locator("#value-phone").inner_text().startswith(person[2])
    axe_clean(page, "resident-revealed")
    shot(page, "resident-revealed")
    page.locator("#value-phone .revealed").wait_for(state="detached", timeout=8000)
    assert person[2] not in page.locator("#value-phone").inner_text()
    assert f"{person[2][:3]}****{person[2][-4:]}" in page.locator("#value-phone").inner_text()
    shot(page, "resident")

    # the revoke confirmation says what it will do (and is not taken here)
    page.get_by_role("link", name="撤销分配").click()
    page.wait_for_load_state()
    assert page.get_by_text("撤销分配后，服务机构下次同步时将删除该案例").is_visible()
    axe_clean(page, "revoke-confirm")
    shot(page, "revoke-confirm")
    page.get_by_role("link", name="取消").click()

    # who saw her data: the reveal is there, with its reason
    page.goto(resident_page + "/report")
    assert page.locator("tbody tr", has_text="上门服务联系").count() == 1
    axe_clean(page, "report")
    shot(page, "who-saw-my-data")
    page.emulate_media(media="print")
    shot(page, "who-saw-my-data-print")
    page.emulate_media(media="screen")

    # the list, then export what it shows
    page.goto("/console/residents?stage=pregnant")
    axe_clean(page, "residents")
    shot(page, "residents")
    with page.expect_download() as download:
        page.get_by_role("link", name="导出").click()
    sheet = load_workbook(io.BytesIO(download.value.path().read_bytes()), read_only=True).active
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c]
    assert "导出人" in cells and person[1] not in cells and person[2] not in cells
    assert f"{person[0][0]}**" in cells

    # sign out
    page.get_by_role("button", name="退出").click()
    page.wait_for_load_state()
    assert "/console/login" in page.url
    with unit_of_work(harness.factory) as session:
        actions = {e["action"] for e in entries(session)}
    assert {"resident.import_check", "resident.import", "resident.register", "consent.record",
            "assignment.create", "case.reveal", "resident.export"} <= actions


def test_a_cadre_never_meets_another_communitys_resident(chromium, served) -> None:  # noqa: F811
    harness, world, base = served
    ledger: Ledger = with_residents(harness, residents=40)
    theirs = ledger.elsewhere()[0]
    their_id = ledger.ids[theirs.national_id]
    page = new_page(chromium, base, 900)
    sign_in(page, "community_cadre")
    page.goto("/console/residents?size=50")
    listed = page.content()
    assert their_id not in listed and f"共 {len(ledger.of(CADRE_COMMUNITY))} 条" in listed
    assert page.locator("#q-community option").all_inner_texts() == ["全部", CADRE_COMMUNITY]
    # an exact lookup of her ID number answers as for nobody
    page.locator("#q-nid").fill(theirs.national_id)
    page.get_by_role("button", name="查找").click()
    page.wait_for_load_state()
    assert page.get_by_text("找到 0 条").is_visible() and their_id not in page.content()
    axe_clean(page, "lookup")
    shot(page, "lookup-elsewhere")
    for path in (f"/console/residents/{their_id}", f"/console/residents/{their_id}/report"):
        response = page.goto(path)
        assert response is not None and response.status == 404
    with page.expect_download() as download:
        page.goto("/console/residents")
        page.get_by_role("link", name="导出").click()
    sheet = load_workbook(io.BytesIO(download.value.path().read_bytes()), read_only=True).active
    communities = {row[3] for row in sheet.iter_rows(min_row=7, values_only=True)
                   if len(row) > 3 and row[3]}  # fmt: skip
    assert communities == {CADRE_COMMUNITY}
