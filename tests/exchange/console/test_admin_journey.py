"""An office admin's journey in a real browser (Debian's Chromium through Playwright): create a
contractor and register its public key after reading its fingerprint, create an agreement with
a mistake and then right, read the policy preview and the diff before activating, issue a
token and see it once, see its last use after the contractor's system pulls, revoke it,
publish a new policy version from a TOML file and move the agreement to it, terminate it
behind the confirmation, and set up a second factor from its QR code; an axe scan of every
page on the way. Screenshots go to var/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.services import published_policies
from keys import generate_keypair
from tests.exchange.api.apptools import Harness
from tests.exchange.console.browser import (  # noqa: F401
    LiveServer,
    axe_clean,
    chromium,
    new_page,
    shot,
    sign_in,
)
from tests.exchange.console.ledger_world import entries
from tests.exchange.console.pages import console
from tests.exchange.console.test_agreements import WIDER_V2

pytestmark = pytest.mark.slow
CONTRACTOR = "青岛启航家庭健康服务中心"


@pytest.fixture
def served(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[tuple[Harness, str]]:
    harness, _ = console(f"sqlite:///{tmp_path / 'console.db'}", tmp_path,
                         migrated_sqlite_template)  # fmt: skip
    with unit_of_work(harness.factory) as session:
        published_policies.ensure_defaults(session, harness.clock())
    with LiveServer(harness.app) as server:
        yield harness, server.url


def _go(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("navigation", name="主菜单").get_by_role("link", name=name).click()
    page.wait_for_load_state()


def _submit(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name=name).click()
    page.wait_for_load_state()


def test_an_office_admins_journey(chromium, served) -> None:  # noqa: F811
    harness, base = served
    page = new_page(chromium, base, 900)
    sign_in(page, "office_admin")

    # 服务机构: a new contractor, then its key after the fingerprint was read
    _go(page, "服务机构")
    axe_clean(page, "contractors")
    page.locator("#name").fill(CONTRACTOR)
    _submit(page, "新增")
    assert page.get_by_role("heading", name=CONTRACTOR).is_visible()
    axe_clean(page, "contractor-new")
    _, public = generate_keypair()
    page.locator("#public_key").fill(public.to_text())
    _submit(page, "检查公钥")
    assert page.get_by_text(f"所粘贴公钥的指纹：{public.fingerprint.hex()}").is_visible()
    axe_clean(page, "contractor-key-check")
    shot(page, "contractor-key-check")
    _submit(page, "确认登记此公钥")
    assert page.get_by_role("cell", name=public.fingerprint.hex()).is_visible()
    shot(page, "contractor")

    # 协议管理: a new agreement with a mistake, then right
    _go(page, "协议管理")
    axe_clean(page, "agreements-empty")
    page.get_by_role("link", name="新建协议").click()
    page.wait_for_load_state()
    axe_clean(page, "agreement-new")
    page.locator("#contractor_id").select_option(label=CONTRACTOR)
    page.locator("#reference").fill("CY-2026-QH-01")
    page.locator("#valid_from").fill("2026-03-01")
    page.locator("#valid_to").fill("2025-12-31")
    page.locator("#purpose_home_visit").select_option("")
    _submit(page, "创建草稿")
    assert page.get_by_text("有效期止：不能早于开始日期").first.is_visible()
    assert page.get_by_text("用途及策略版本：为必填项").first.is_visible()
    axe_clean(page, "agreement-new-errors")
    shot(page, "agreement-new-errors")
    page.locator("#valid_to").fill("2027-02-28")
    page.locator("#purpose_home_visit").select_option("cy1000.home_visit@1")
    page.locator("#purpose_online_guidance").select_option("cy1000.online_guidance@1")
    _submit(page, "创建草稿")
    assert page.get_by_text("草稿").first.is_visible()
    axe_clean(page, "agreement")

    # the preview and the diff before activating
    page.get_by_role("link", name="启用…").click()
    page.wait_for_load_state()
    assert page.get_by_text("首个版本：其披露的全部内容均为新增").first.is_visible()
    assert page.get_by_text("联系电话 → 完整手机号").first.is_visible()
    axe_clean(page, "agreement-activate")
    shot(page, "agreement-activate")
    _submit(page, "确认启用")
    assert page.get_by_text("生效中").first.is_visible()
    agreement_url = page.url.split("?")[0]

    # 接口令牌: issued and shown once; its last use after the contractor pulls; revoked
    _go(page, "接口令牌")
    axe_clean(page, "tokens")
    page.locator("#contractor_id").select_option(label=CONTRACTOR)
    page.locator("#principal").fill("qihang-sync")
    _submit(page, "签发")
    token = page.locator("#token").input_value()
    assert token.startswith("exq_") and page.get_by_text("仅显示这一次").is_visible()
    axe_clean(page, "token-issued")
    shot(page, "token-issued")
    page.get_by_role("link", name="完成，返回令牌列表").click()
    page.wait_for_load_state()
    assert token not in page.content()
    row = page.locator("tr", has_text="qihang-sync")
    assert "从未使用" in row.inner_text()
    pulled = httpx.get(f"{base}/v1/cases", params={"purpose": "home_visit"},
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert pulled.status_code == 200, pulled.text
    page.reload()
    row = page.locator("tr", has_text="qihang-sync")
    assert "从未使用" not in row.inner_text() and "2026-03-01 17:00:00" in row.inner_text()
    shot(page, "tokens")
    row.get_by_role("link", name="吊销").click()
    page.wait_for_load_state()
    axe_clean(page, "token-revoke")
    _submit(page, "确认吊销")
    assert "已吊销" in page.locator("tr", has_text="qihang-sync").inner_text()
    refused = httpx.get(f"{base}/v1/cases", params={"purpose": "home_visit"},
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert refused.status_code == 401

    # 策略版本: publish v2 from a file (a widening: it wants the tick), then move to it
    _go(page, "策略版本")
    axe_clean(page, "policies")
    page.locator("#document").set_input_files(files=[{
        "name": "home_visit.toml", "mimeType": "application/toml",
        "buffer": WIDER_V2.encode("utf-8")}])  # fmt: skip
    _submit(page, "检查")
    assert page.get_by_text("与现行版本 cy1000.home_visit@1 相比").is_visible()
    axe_clean(page, "policy-proposal")
    shot(page, "policy-proposal")
    _submit(page, "确认发布")
    assert page.get_by_text("请勾选确认后再发布").first.is_visible()
    page.locator("#confirm_widening").check()
    _submit(page, "确认发布")
    assert page.get_by_text("已发布 cy1000.home_visit@2").is_visible()
    shot(page, "policies")
    page.goto(agreement_url)
    page.locator("#to-home_visit").select_option("cy1000.home_visit@2")
    page.locator("form", has=page.locator("#to-home_visit")).get_by_role(
        "button", name="查看变更").click()  # fmt: skip
    page.wait_for_load_state()
    assert page.get_by_text("删除条件（披露更频繁）：已预约且 7 天内上门").is_visible()
    axe_clean(page, "agreement-move")
    shot(page, "agreement-move")
    page.locator("#confirm_widening").check()
    _submit(page, "确认切换")
    assert page.get_by_text("已完成。").is_visible()

    # terminate, behind the confirmation that says what it does
    page.get_by_role("link", name="终止…").click()
    page.wait_for_load_state()
    assert page.get_by_text("终止后服务机构下次同步时将删除全部案例").is_visible()
    axe_clean(page, "agreement-terminate")
    shot(page, "agreement-terminate")
    _submit(page, "确认终止")
    assert page.get_by_text("已终止").first.is_visible()
    axe_clean(page, "agreement-terminated")

    # the second factor's set-up shows a QR code (an inline SVG image the CSP allows)
    page.goto("/console/account/totp")
    _submit(page, "开启双因素认证")
    qr = page.get_by_role("img", name="下方设置地址的二维码：请用身份验证器扫描")
    assert qr.get_attribute("src").startswith("data:image/svg+xml")  # type: ignore[union-attr]
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.get_by_text("otpauth://totp/").is_visible()
    axe_clean(page, "totp-qr")
    shot(page, "totp-qr")

    # the users page with API last use
    _go(page, "用户管理")
    assert page.get_by_role("columnheader", name="最近使用接口").is_visible()
    axe_clean(page, "users")
    with unit_of_work(harness.factory) as session:
        actions = [e["action"] for e in entries(session)]
        status = session.scalars(select(m.Agreement.status)).one()
    assert status == "terminated"
    for action in ("contractor.create", "key.create", "agreement.create", "agreement.active",
                   "token.issue", "token.revoke", "policy.publish", "agreement.policy_move",
                   "agreement.terminated"):  # fmt: skip
        assert action in actions, action
