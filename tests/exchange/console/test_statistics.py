"""统计分析 over HTTP (SQLite and PostgreSQL): the same release as the API — scope, `<5` and `*`,
no suppressed count anywhere in the page, the API's workbook on 导出, exact figures only for an
office admin with a reason — and every release in the audit log."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.exchange.console.pages import console, csrf_of, sign_in
from tests.exchange.console.statistics_checks import assert_no_suppressed_count, lay_street
from tests.world import audit_entries

pytestmark = pytest.mark.db
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def app(database_url: str, tmp_path: Path, migrated_sqlite_template: Path):
    harness, world = console(database_url, tmp_path, migrated_sqlite_template)
    return harness, world, lay_street(harness.factory)


def _releases(harness) -> list[dict]:  # noqa: ANN001
    return [e for e in audit_entries(harness.factory)
            if str(e["action"]).startswith("statistics.")]  # fmt: skip


def _row(html: str, label: str) -> str:
    start = html.index(f'<th scope="row">{label}</th>')
    return html[start:html.index("</tr>", start)]


def test_an_office_admin_sees_the_street_with_small_cells_suppressed(app) -> None:
    harness, _, street = app
    client = harness.client
    sign_in(client, "office_admin")
    r = client.get("/console/statistics")
    assert r.status_code == 200
    html = r.text
    assert "统计分析" in html and "统计范围：全街道" in html
    for community in ("向阳社区", "民城路社区", "瑞阳路社区"):
        assert f'<th scope="row">{community}</th>' in html
    # 向阳社区: preparing 2 (<5), pregnant 30, postpartum 0, total 32 hidden (*)
    assert _row(html, "向阳社区").count("&lt;5") == 1 and ">30<" in _row(html, "向阳社区")
    assert ">205<" in _row(html, "合计")  # the street's total stays exact
    assert "数据已做小数抑制处理：小于5的数值显示为“&lt;5”" in html
    assert 'role="img"' in html and 'aria-label="柱状图：按社区、孕产状态统计人数' in html
    assert_no_suppressed_count(html, street)
    (entry,) = _releases(harness)
    assert entry["action"] == "statistics.release"
    assert entry["details"]["scope"] == "street" and entry["details"]["exact"] is False


def test_a_cadre_sees_her_community_only(app) -> None:
    harness, _, street = app
    client = harness.client
    sign_in(client, "community_cadre")
    html = client.get("/console/statistics").text
    assert "统计范围：民城路社区" in html
    assert '<th scope="col" class="text-end">民城路社区</th>' in html  # stages are the rows
    assert "向阳社区" not in html and "瑞阳路社区" not in html
    assert _row(html, "产后").count("&lt;5") == 2  # her own small cell, and its total
    assert 'value="deletions"' not in html and "精确数据（仅限街道管理员）" not in html
    assert_no_suppressed_count(html, street)
    # a street-only table or exact figures: the service refuses, whatever the form says
    assert client.get("/console/statistics?table=deletions&by=status").status_code == 403
    token = csrf_of(html)
    r = client.post("/console/statistics/exact", data={
        "csrf_token": token, "table": "residents", "by": ["community", "stage"],
        "reason": "settlement", "action": "show"})  # fmt: skip
    assert r.status_code == 403
    assert [(e["action"], e["details"]["scope"]) for e in _releases(harness)] == [
        ("statistics.release", "communities")]  # fmt: skip


def _cells(content: bytes) -> list[tuple[object, ...]]:
    sheet = load_workbook(io.BytesIO(content)).active
    return list(sheet.iter_rows(values_only=True))


def test_export_is_the_apis_workbook(app) -> None:
    harness, _, _ = app
    client = harness.client
    sign_in(client, "office_admin")
    query = "table=residents&by=community&by=stage"
    r = client.get(f"/console/statistics/export?{query}")
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    assert r.headers["content-disposition"] == 'attachment; filename="statistics-residents.xlsx"'
    api = client.get("/v1/statistics/residents", params={"by": "community,stage", "format": "xlsx"},
                     headers={"Authorization": f"Bearer {harness.tokens['office_admin']}"})
    assert api.status_code == 200
    rows = _cells(r.content)
    assert rows == _cells(api.content)
    values = [c for row in rows for c in row]
    assert "<5" in values and "*" in values and 205 in values
    assert [e["action"] for e in _releases(harness)] == ["statistics.release"] * 2


def test_exact_figures_need_an_admin_a_reason_and_the_token(app) -> None:
    harness, _, _ = app
    client = harness.client
    token = sign_in(client, "office_admin")
    form = {"table": "residents", "by": ["community", "stage"], "period": "",
            "measure": "residents"}  # fmt: skip
    r = client.post("/console/statistics/exact", data={**form, "csrf_token": token,
                                                        "action": "show"})  # fmt: skip
    assert r.status_code == 422 and "精确数据查询事由：为必填项" in r.text
    r = client.post("/console/statistics/exact", data={**form, "csrf_token": token,
                                                        "reason": "my neighbour"})  # fmt: skip
    assert r.status_code == 422 and "精确数据查询事由：不是有效的选项" in r.text
    r = client.post("/console/statistics/exact", data={**form, "reason": "settlement"})
    assert r.status_code == 403  # no token
    assert _releases(harness) == []  # nothing was released
    r = client.post("/console/statistics/exact", data={**form, "csrf_token": token,
                                                        "reason": "settlement", "action": "show"})
    assert r.status_code == 200
    assert "精确数据，不得对外发布。" in r.text and "事由：与服务机构结算。" in r.text
    row = _row(r.text, "向阳社区")
    assert ">2 <span" in row and "小于5" in row and ">32 <span" in row  # exact, still marked
    r = client.post("/console/statistics/exact", data={**form, "csrf_token": token,
                                                        "reason": "inspection", "action": "export"})
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    assert 2 in [c for row in _cells(r.content) for c in row]
    entries = _releases(harness)
    assert [(e["action"], e["details"]["reason"]) for e in entries] == [
        ("statistics.release_exact", "settlement"), ("statistics.release_exact", "inspection")]


def test_bad_choices_name_the_field_and_release_nothing(app) -> None:
    harness, _, _ = app
    client = harness.client
    sign_in(client, "office_admin")
    r = client.get("/console/statistics?table=residents&by=community&period=2026-13")
    assert r.status_code == 422 and "统计期间：格式不正确" in r.text
    r = client.get("/console/statistics?table=everyone&by=community")
    assert r.status_code == 422 and "统计表：不是有效的选项" in r.text
    assert _releases(harness) == []


def test_periods_measures_and_three_dimensions(app) -> None:
    harness, _, _ = app
    client = harness.client
    sign_in(client, "office_admin")
    r = client.get("/console/statistics?table=residents&by=community&by=stage&by=due_month"
                   "&period=2026-Q2")  # fmt: skip
    assert r.status_code == 200
    assert "全部单元格：按社区、孕产状态、预产月份统计人数" in r.text
    assert r.text.count('role="img"') == 3  # one chart per dimension
    r = client.get("/console/statistics?table=bookings&by=service&measure=events")
    assert r.status_code == 200 and "按服务项目统计人次" in r.text
    # a dimension of another table is dropped: the table's own two are used
    r = client.get("/console/statistics?table=deletions&by=stage")
    assert r.status_code == 200 and "按服务机构、确认状态统计人数" in r.text
    assert [e["details"]["period"] for e in _releases(harness)] == ["2026-Q2", "all", "all"]


def test_the_page_in_english(app) -> None:
    harness, _, _ = app
    client = harness.client
    sign_in(client, "office_admin")
    client.get("/console/language/en?next=/console/statistics")
    html = client.get("/console/statistics").text
    assert '<html lang="en">' in html and "Statistics" in html
    assert "Small numbers are suppressed: a count below 5 is shown as \"&lt;5\"" in html
    assert "Number of residents by Community and Stage" in html


def test_an_auditor_reads_the_street_but_never_exact_figures(app) -> None:
    harness, _, street = app
    client = harness.client
    token = sign_in(client, "auditor")
    html = client.get("/console/statistics").text
    assert "统计范围：全街道" in html and 'value="deletions"' in html
    assert "精确数据（仅限街道管理员）" not in html
    assert_no_suppressed_count(html, street)
    r = client.post("/console/statistics/exact", data={
        "csrf_token": token, "table": "residents", "by": ["community", "stage"],
        "reason": "inspection", "action": "show"})  # fmt: skip
    assert r.status_code == 403
    assert [e["action"] for e in _releases(harness)] == ["statistics.release"]
