"""统计分析 in a real browser (Debian's Chromium through Playwright): an office admin and a cadre
open the page, ECharts draws the charts under the CSP, axe passes, the cadre sees only her
community, no suppressed count is in the page, 导出 downloads the workbook, and exact figures
need a reason and are audited. Screenshots go to var/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.exchange.api.apptools import Harness
from tests.exchange.console.browser import (  # noqa: F401
    LiveServer,
    axe_clean,
    chromium,
    new_page,
    shot,
    sign_in,
)
from tests.exchange.console.pages import console
from tests.exchange.console.statistics_checks import assert_no_suppressed_count, lay_street
from tests.street import Street
from tests.world import audit_entries

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[tuple[Harness, Street, str]]:
    # the browser drives the page; the release below it is tested on both backends elsewhere
    harness, _ = console(f"sqlite:///{tmp_path / 'console.db'}", tmp_path,
                         migrated_sqlite_template)  # fmt: skip
    street = lay_street(harness.factory)
    with LiveServer(harness.app) as server:
        yield harness, street, server.url


def _releases(harness: Harness) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in audit_entries(harness.factory)
            if str(e["action"]).startswith("statistics.")]  # fmt: skip


def _charts_drawn(page) -> int:  # noqa: ANN001
    page.wait_for_selector(".stat-chart canvas")
    return int(page.locator(".stat-chart canvas").count())


def test_office_admin_and_cadre_open_statistics(chromium, served) -> None:  # noqa: F811
    harness, street, base = served
    admin = new_page(chromium, base)
    sign_in(admin, "office_admin")
    admin.get_by_role("link", name="统计分析").click()
    admin.wait_for_url("**/console/statistics")
    assert admin.get_by_role("heading", name="统计分析").is_visible()
    assert _charts_drawn(admin) == 1
    figure = "按社区、孕产状态统计人数"
    assert admin.get_by_role("img", name=f"柱状图：{figure}；各项数值见旁边的表格。").is_visible()
    table = admin.get_by_role("table", name=f"{figure}（数据表）")
    assert table.locator("tr", has_text="向阳社区").locator("td").first.inner_text() == "<5"
    assert admin.get_by_text("数据已做小数抑制处理：小于5的数值显示为“<5”").first.is_visible()
    assert_no_suppressed_count(admin.content(), street)
    axe_clean(admin, "statistics-admin")
    shot(admin, "statistics-admin")
    # three dimensions: a chart and a table per dimension, then every cell
    admin.locator("#q-by-due_month").check()
    admin.get_by_role("button", name="查询").click()
    admin.wait_for_url("**by=due_month**")
    assert _charts_drawn(admin) == 3
    axe_clean(admin, "statistics-three-dimensions")
    shot(admin, "statistics-three-dimensions")
    admin.get_by_role("link", name="English").click()  # back to the page's first view
    admin.wait_for_url("**/console/statistics")
    assert admin.locator("html").get_attribute("lang") == "en"
    assert _charts_drawn(admin) == 1
    axe_clean(admin, "statistics-en")
    shot(admin, "statistics-en")

    cadre = new_page(chromium, base)
    sign_in(cadre, "community_cadre")
    cadre.goto("/console/statistics")
    assert _charts_drawn(cadre) == 1
    assert cadre.get_by_text("统计范围：民城路社区").is_visible()
    text = cadre.locator("main").inner_text()
    assert "民城路社区" in text and "向阳社区" not in text and "瑞阳路社区" not in text
    assert cadre.get_by_role("option", name="删除通知").count() == 0
    assert cadre.get_by_role("heading", name="精确数据（仅限街道管理员）").count() == 0
    assert_no_suppressed_count(cadre.content(), street)
    axe_clean(cadre, "statistics-cadre")
    shot(cadre, "statistics-cadre")
    scopes = [e["details"]["scope"] for e in _releases(harness)]
    assert scopes == ["street", "street", "street", "communities"]


def test_export_downloads_the_workbook(chromium, served, tmp_path: Path) -> None:  # noqa: F811
    harness, _, base = served
    page = new_page(chromium, base)
    sign_in(page, "office_admin")
    page.goto("/console/statistics")
    with page.expect_download() as info:
        page.get_by_role("link", name="导出").click()
    download = info.value
    assert download.suggested_filename == "statistics-residents.xlsx"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    values = [c for row in load_workbook(saved).active.iter_rows(values_only=True) for c in row]
    assert "<5" in values and "*" in values and 205 in values
    assert [e["action"] for e in _releases(harness)] == ["statistics.release"] * 2


def test_exact_figures_need_a_reason_and_are_audited(chromium, served) -> None:  # noqa: F811
    harness, _, base = served
    page = new_page(chromium, base)
    sign_in(page, "office_admin")
    page.goto("/console/statistics")
    page.get_by_role("button", name="查看精确数据").click()  # no reason chosen
    assert page.url.endswith("/console/statistics")  # the browser keeps the form back
    assert page.locator("#exact-reason:invalid").count() == 1
    assert [e["action"] for e in _releases(harness)] == ["statistics.release"]
    page.get_by_label("精确数据查询事由").select_option("verification")
    with page.expect_navigation():
        page.get_by_role("button", name="查看精确数据").click()
    assert page.get_by_text("精确数据，不得对外发布。").is_visible()
    table = page.get_by_role("table", name="按社区、孕产状态统计人数（数据表）")
    row = table.locator("tr", has_text="向阳社区")
    assert row.locator("td").first.inner_text() == "2 小于5"
    assert _charts_drawn(page) == 1
    axe_clean(page, "statistics-exact")
    shot(page, "statistics-exact")
    exact = _releases(harness)[-1]
    assert exact["action"] == "statistics.release_exact"
    assert exact["details"]["reason"] == "verification"
