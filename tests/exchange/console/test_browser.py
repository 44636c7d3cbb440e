"""The console in a real browser (Debian's Chromium through Playwright): sign-in, lockout and
unlock, the idle timeout on an injected clock, a forged cross-site post, an office admin ending
a session, and an axe scan of every page. Screenshots go to var/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from exchange.db import models as m
from exchange.db.engine import unit_of_work
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
from tests.exchange.console.world import NAMES, World

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[tuple[Harness, World, str]]:
    # browser tests drive the UI; the services below are tested on both backends elsewhere
    harness, world = console(f"sqlite:///{tmp_path / 'console.db'}", tmp_path,
                             migrated_sqlite_template)  # fmt: skip
    with LiveServer(harness.app) as server:
        yield harness, world, server.url


def test_admin_signs_in_and_every_page_passes_axe(chromium, served) -> None:  # noqa: F811
    harness, world, base = served
    page = new_page(chromium, base)
    page.goto("/")
    assert page.url.endswith("/console/login")
    axe_clean(page, "login")
    shot(page, "login")
    sign_in(page, "office_admin")
    assert page.url.endswith("/console/home")
    assert page.get_by_role("heading", name="欢迎，王主任").is_visible()
    pages = {"home": "/console/home", "users": "/console/users", "user-new": "/console/users/new",
             "user-detail": f"/console/users/{world.ids['community_cadre']}",
             "login-log": "/console/login-log", "online-users": "/console/online-users",
             "password": "/console/password", "totp": "/console/account/totp"}  # fmt: skip
    for name, path in pages.items():
        page.goto(path)
        assert page.locator("h1").count() == 1, name
        axe_clean(page, name)
        shot(page, name)
    # a form answered with errors, in Chinese, is accessible too
    page.goto("/console/users/new")
    page.locator("#name").fill("Bad Name")
    page.locator("#display_name").fill("张干事")
    page.locator("#password").fill("short")
    page.get_by_role("button", name="新增").click()
    page.wait_for_load_state()
    assert page.get_by_text("用户名：格式不正确").first.is_visible()
    assert page.get_by_text("密码：长度须为10至128位").first.is_visible()
    axe_clean(page, "user-new-errors")
    shot(page, "user-new-errors")
    # and in English
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    axe_clean(page, "users-en")
    shot(page, "user-new-en")


def test_five_wrong_passwords_lock_until_an_admin_unlocks(chromium, served) -> None:  # noqa: F811
    harness, world, base = served
    cadre = new_page(chromium, base)
    for _ in range(5):
        sign_in(cadre, "community_cadre", "Wrong-pass-000")
    assert cadre.get_by_text("账号已锁定").is_visible()
    axe_clean(cadre, "login-locked")
    shot(cadre, "login-locked")
    sign_in(cadre, "community_cadre")  # the right password does not help now
    assert cadre.url.endswith("/console/login") or "/console/login" in cadre.url
    admin = new_page(chromium, base)
    sign_in(admin, "office_admin")
    admin.goto("/console/login-log")
    assert admin.locator("tbody tr").count() >= 6
    shot(admin, "login-log-with-failures")
    admin.goto(f"/console/users/{world.ids['community_cadre']}")
    admin.get_by_role("button", name="解锁").click()
    assert admin.get_by_text("已保存").is_visible()
    sign_in(cadre, "community_cadre")
    assert cadre.url.endswith("/console/home")


def test_idle_timeout_on_the_injected_clock(chromium, served) -> None:  # noqa: F811
    harness, _, base = served
    page = new_page(chromium, base)
    sign_in(page, "community_cadre")
    assert page.url.endswith("/console/home")
    harness.clock.advance(timedelta(minutes=29))  # type: ignore[attr-defined]
    page.reload()
    assert page.url.endswith("/console/home")
    harness.clock.advance(timedelta(minutes=31))  # type: ignore[attr-defined]
    page.reload()
    assert "/console/login" in page.url
    assert page.get_by_text("您已超过30分钟未操作").is_visible()
    shot(page, "signed-out-idle")


def test_a_forged_cross_site_post_changes_nothing(chromium, served) -> None:  # noqa: F811
    harness, world, base = served
    page = new_page(chromium, base)
    sign_in(page, "office_admin")
    target = f"{base}/console/users/{world.ids['community_cadre']}"
    evil = ("<html><body><form id=f method=post action='" + target + "'>"
            "<input name=action value=password><input name=password value=Forged-pass-123>"
            "</form><script>document.getElementById('f').submit()</script>"
            "</body></html>")
    page.route("http://evil.test/", lambda route: route.fulfill(body=evil,
               content_type="text/html"))  # fmt: skip
    page.goto("http://evil.test/")
    page.wait_for_load_state()
    # SameSite=Strict keeps the session cookie off the forged request: it meets the login
    assert "/console/login" in page.url or "请求被拒绝" in page.content()
    # and a same-origin script without the token is refused as well
    page.goto(f"{base}/console/home")
    forged = page.evaluate(
        """t => fetch(t, {method: 'POST', body: new URLSearchParams(
               {action: 'password', password: 'Forged-pass-123'})}).then(r => r.status)""",
        target,
    )
    assert forged == 403
    with unit_of_work(harness.factory) as session:
        assert not _account(session, world.ids["community_cadre"]).must_change_password


def _account(session: Session, principal_id: str) -> m.ConsoleAccount:
    row = session.get(m.ConsoleAccount, principal_id)
    assert row is not None
    return row


def test_an_office_admin_ends_a_session(chromium, served) -> None:  # noqa: F811
    harness, world, base = served
    cadre = new_page(chromium, base)
    sign_in(cadre, "community_cadre")
    admin = new_page(chromium, base)
    sign_in(admin, "office_admin")
    admin.goto("/console/online-users")
    row = admin.locator("tr", has_text=NAMES["community_cadre"])
    assert row.count() == 1
    shot(admin, "online-users-two")
    admin.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="强退").click()
    row.wait_for(state="detached")  # htmx swapped the row out
    cadre.goto("/console/home")
    assert "/console/login" in cadre.url
    assert cadre.get_by_text("管理员已强制您退出登录").is_visible()
    shot(cadre, "signed-out-by-admin")
