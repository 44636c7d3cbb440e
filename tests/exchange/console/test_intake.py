"""新增居民 and 导入台账 through the console (SQLite and PostgreSQL): the template, an upload
checked by a dry run whose report names rows and columns but never a value, confirm or cancel,
the staged file encrypted at rest and only its uploader's, scope (a cadre imports and registers
in her communities only), all audited."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.ledger.importer import ensure_communities
from exchange.ledger.synthetic import HEADER, generate_rows
from exchange.ledger.template import NOTES_SHEET, SHEET, example_rows, template_header
from exchange.services.accounts import ensure_account
from policies import office_date
from tests.exchange import factories as f
from tests.exchange.console.ledger_world import CADRE_COMMUNITY, entries
from tests.exchange.console.pages import console, csrf_of, sign_in

pytestmark = pytest.mark.db


@pytest.fixture
def app(database_url: str, tmp_path: Path, migrated_sqlite_template: Path):
    harness, world = console(database_url, tmp_path, migrated_sqlite_template)
    with unit_of_work(harness.factory) as session:
        ensure_communities(session)
    return harness, world


def _ledger(harness, rows: int = 6, *, bad_phone_row: int | None = None,
            community: str = CADRE_COMMUNITY) -> tuple[bytes, list[tuple[str, ...]]]:  # fmt: skip
    today = office_date(harness.clock())
    data = []
    for i, row in enumerate(generate_rows(rows, 11, as_of=today)):
        cells = list(row)
        cells[3] = community
        if i + 1 == bad_phone_row:
            cells[2] = "1234"
        data.append(tuple(cells))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(data)
    return out.getvalue().encode("utf-8-sig"), data


def _upload(client, csrf: str, body: bytes, name: str = "台账.csv"):
    return client.post("/console/imports", data={"csrf_token": csrf},
                       files={"file": (name, body, "text/csv")})  # fmt: skip


def _count(harness, model) -> int:
    with unit_of_work(harness.factory) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_the_template_is_the_cli_generators_and_imports_cleanly(app) -> None:
    """The console hands out `exchange import template`'s workbook (issue 19): the same
    header, text-formatted ID column, drop-downs (the community list is the user's scope), a
    notes sheet whose examples are dated today. Its example rows, copied into the 台账 sheet,
    import through the console on the day it was downloaded."""
    harness, _ = app
    client = harness.client
    csrf = sign_in(client, "office_admin")
    today = office_date(harness.clock())
    r = client.get("/console/imports/template.xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")  # fmt: skip
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == [SHEET, NOTES_SHEET]
    sheet = book[SHEET]
    header = tuple(c.value for c in sheet[1])
    assert header == template_header() and "婚姻状况" not in "".join(header)
    assert sheet.cell(row=2, column=2).number_format == "@"  # 18 digits stay text
    notes = [row for row in book[NOTES_SHEET].iter_rows(values_only=True) if any(row)]
    examples = [tuple(c or "" for c in row) for row in notes[-3:]]
    assert examples == example_rows(today)  # dated relative to the day it was downloaded
    for row in examples:  # the office copies them into the sheet that is imported
        sheet.append(list(row))
    filled = io.BytesIO()
    book.save(filled)
    checked = client.post("/console/imports", data={"csrf_token": csrf}, files={"file": (
        "import-template.xlsx", filled.getvalue(), "application/octet-stream")})  # fmt: skip
    assert checked.status_code == 200 and "确认导入" in checked.text, checked.text[-1500:]
    staged_id = checked.text.split("/console/imports/")[1].split("/confirm")[0]
    done = client.post(f"/console/imports/{staged_id}/confirm", data={"csrf_token": csrf})
    assert done.status_code == 200 and "新增 3 人" in done.text
    assert _count(harness, m.Resident) == 3
    text = client.get("/console/imports/template.csv").content.decode("utf-8")
    assert text.startswith("\ufeff") and text[1:].splitlines() == [",".join(template_header())]
    # a cadre's drop-down lists her communities only
    cadre = harness.client.__class__(harness.app)
    sign_in(cadre, "community_cadre")
    hers = load_workbook(io.BytesIO(cadre.get("/console/imports/template.xlsx").content))[SHEET]
    lists = [v.formula1 for v in hers.data_validations.dataValidation]
    assert any(CADRE_COMMUNITY in (f or "") for f in lists)
    assert not any("瑞阳路社区" in (f or "") for f in lists)


def test_a_bad_row_is_reported_by_row_and_column_and_nothing_is_imported(app) -> None:
    harness, world = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    body, rows = _ledger(harness, bad_phone_row=3)
    r = _upload(client, csrf, body)
    assert r.status_code == 422
    # the third data row is row 4 of the sheet (the header is row 1), as Excel numbers it
    assert "第 4 行" in r.text and "联系电话" in r.text and "须为11位手机号" in r.text
    assert "确认导入" not in r.text and "婚姻状况" in r.text  # a refused column is named
    for row in rows:
        assert row[1] not in r.text and row[0] not in r.text
    assert "1234" not in r.text.replace(csrf, "")
    assert _count(harness, m.Resident) == 0
    with unit_of_work(harness.factory) as session:
        staged = session.scalars(select(m.StagedImport)).one()
        assert rows[0][1].encode() not in staged.content.to_bytes()  # encrypted at rest
        check = entries(session, "resident.import_check")
    assert check[0]["outcome"] == {"result": "denied", "reason": "rows_invalid"}
    assert check[0]["details"]["rows.invalid"] == 1  # type: ignore[index]
    assert rows[0][1] not in repr(check)


def test_a_valid_file_is_imported_only_on_confirm(app) -> None:
    harness, world = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    body, rows = _ledger(harness)
    r = _upload(client, csrf, body, "ledger.xlsx".replace("xlsx", "csv"))
    assert r.status_code == 200 and "确认导入" in r.text
    assert _count(harness, m.Resident) == 0
    staged_id = r.text.split("/console/imports/")[1].split("/confirm")[0]
    # an office admin imports too (residents.import, the one permission table), but a staged
    # file is its uploader's alone: hers answers as none
    other = harness.client.__class__(harness.app)
    other_csrf = sign_in(other, "office_admin")
    assert other.post(f"/console/imports/{staged_id}/confirm",
                      data={"csrf_token": other_csrf}).status_code == 404  # fmt: skip
    assert other.get("/console/imports").status_code == 200
    assert "导入台账" in other.get("/console/residents").text
    # nor can another cadre of the same community: a staged file is its uploader's alone
    with unit_of_work(harness.factory) as session:
        colleague = f.principal(session, "cadre-02", "community_cadre")
        colleague.communities = [session.get(m.Community, world.community_id)]
        ensure_account(session, colleague, "Cadre-pass-2027", harness.clock())
    peer = harness.client.__class__(harness.app)
    peer_csrf = sign_in(peer, "community_cadre", "Cadre-pass-2027", name="cadre-02")
    assert peer.post(f"/console/imports/{staged_id}/confirm",
                     data={"csrf_token": peer_csrf}).status_code == 404  # fmt: skip
    done = client.post(f"/console/imports/{staged_id}/confirm", data={"csrf_token": csrf})
    assert done.status_code == 200 and f"新增 {len(rows)} 人" in done.text
    assert _count(harness, m.Resident) == len(rows) and _count(harness, m.StagedImport) == 0
    again = client.post(f"/console/imports/{staged_id}/confirm", data={"csrf_token": csrf})
    assert again.status_code == 404
    with unit_of_work(harness.factory) as session:
        imported = entries(session, "resident.import")
    assert imported[0]["details"]["rows.inserted"] == len(rows)  # type: ignore[index]
    assert imported[0]["actor"]["id"] == world.ids["community_cadre"]  # type: ignore[index]


def test_cancel_forgets_the_file_and_rows_elsewhere_are_refused(app) -> None:
    harness, _ = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    body, _ = _ledger(harness, community="瑞阳路社区")
    r = _upload(client, csrf, body)
    assert r.status_code == 422 and "不是您负责的社区" in r.text
    staged_id = r.text.split("/console/imports/")[1].split("/cancel")[0]
    assert client.post(f"/console/imports/{staged_id}/cancel", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 303  # fmt: skip
    assert _count(harness, m.StagedImport) == 0 and _count(harness, m.Resident) == 0
    bad_type = _upload(client, csrf, b"x", "ledger.txt")
    assert bad_type.status_code == 422 and "文件：须为 .xlsx 或 .csv 文件" in bad_type.text


def _register(client, csrf: str, **values: str):
    today_row = values.pop("_row")
    data = {"csrf_token": csrf, "name": today_row[0], "national_id": today_row[1],
            "phone": today_row[2], "community": values.pop("community"), "stage": "pregnant",
            "due_date": today_row[9], **values}  # fmt: skip
    return client.post("/console/residents/new", data=data, follow_redirects=False)


def test_register_names_the_bad_fields_and_keeps_to_her_communities(app) -> None:
    harness, _ = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    form = client.get("/console/residents/new")
    assert form.status_code == 200 and "瑞阳路社区" not in form.text  # only her community
    today = office_date(harness.clock())
    row = next(r for r in generate_rows(20, 5, as_of=today) if r[8] == "孕期")
    with unit_of_work(harness.factory) as session:
        ids = dict(session.execute(select(m.Community.name, m.Community.id)).all())
    bad = _register(client, csrf_of(form.text), _row=row, community=ids[CADRE_COMMUNITY],
                    phone="12", due_date="2026-02-30")  # fmt: skip
    assert bad.status_code == 422 and "联系电话：须为11位手机号" in bad.text
    assert "预产期：须为有效日期（YYYY-MM-DD）" in bad.text
    elsewhere = _register(client, csrf, _row=row, community=ids["瑞阳路社区"])
    assert elsewhere.status_code == 422 and "社区：" in elsewhere.text
    assert _count(harness, m.Resident) == 0
    ok = _register(client, csrf, _row=row, community=ids[CADRE_COMMUNITY])
    assert ok.status_code == 303 and ok.headers["location"].startswith("/console/residents/")
    page = client.get(ok.headers["location"])
    assert page.status_code == 200 and row[1] not in page.text and CADRE_COMMUNITY in page.text


def _workbook(harness, rows: int = 5, *, bad_phone_row: int | None = None) -> tuple[bytes, list]:
    """A ledger as the office keeps it in Excel: a title line above the header, phones and
    parities as numbers, dates as date cells, the ID number as text."""
    from datetime import date as Date

    from openpyxl import Workbook

    today = office_date(harness.clock())
    book = Workbook()
    sheet = book.active
    sheet.title = "台账"
    sheet.append(["城阳街道孕产妇台账（民城路社区）"])
    sheet.append(list(HEADER))
    data = []
    for i, row in enumerate(generate_rows(rows, 11, as_of=today)):
        cells: list[object] = list(row)
        cells[3] = CADRE_COMMUNITY
        cells[2] = 1234 if i + 1 == bad_phone_row else int(row[2])
        for at in (9, 10, 13):
            cells[at] = Date.fromisoformat(row[at]) if row[at] else None
        cells[11] = int(row[11]) if row[11] else None
        sheet.append(cells)
        data.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), data


def test_an_xlsx_ledger_is_checked_and_imported_through_the_console(app) -> None:
    harness, world = app
    client = harness.client
    csrf = sign_in(client, "community_cadre")
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    body, rows = _workbook(harness, bad_phone_row=2)
    bad = client.post("/console/imports", data={"csrf_token": csrf},
                      files={"file": ("台账.xlsx", body, xlsx)})  # fmt: skip
    # the second data row is row 4 of the sheet: a title line, then the header
    assert bad.status_code == 422 and "第 4 行" in bad.text and "联系电话" in bad.text
    assert "确认导入" not in bad.text
    for row in rows:
        assert row[0] not in bad.text and row[1] not in bad.text
    assert _count(harness, m.Resident) == 0
    body, rows = _workbook(harness)
    good = client.post("/console/imports", data={"csrf_token": csrf},
                       files={"file": ("台账.xlsx", body, xlsx)})  # fmt: skip
    assert good.status_code == 200 and "确认导入" in good.text, good.text[-2000:]
    assert _count(harness, m.Resident) == 0
    staged_id = good.text.split("/console/imports/")[1].split("/confirm")[0]
    done = client.post(f"/console/imports/{staged_id}/confirm", data={"csrf_token": csrf})
    assert done.status_code == 200 and f"新增 {len(rows)} 人" in done.text
    assert _count(harness, m.Resident) == len(rows)
    # the numbers and dates Excel kept as numbers and dates came in as the ledger says
    listing = client.get("/console/residents?size=50").text
    for row in rows:
        assert f"{row[2][:3]}****{row[2][-4:]}" in listing
    with unit_of_work(harness.factory) as session:
        imported = entries(session, "resident.import")
        checks = entries(session, "resident.import_check")
    assert imported[0]["details"]["rows.inserted"] == len(rows)  # type: ignore[index]
    assert imported[0]["actor"]["id"] == world.ids["community_cadre"]  # type: ignore[index]
    assert len(checks) == 2 and rows[0][1] not in repr(imported + checks)
