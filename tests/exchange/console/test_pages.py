"""The console over HTTP: safe headers, CSRF, the two authentication planes, form errors in
Chinese that change nothing, and complete catalogues."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from sqlalchemy import func, select

from exchange.console.i18n import LOCALE_DIR
from exchange.console.templating import beijing
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from tests.exchange.console.pages import console, csrf_of, sign_in
from tests.exchange.console.world import NAMES, PASSWORDS, account

pytestmark = pytest.mark.db
ADMIN_PAGES = ("/console/home", "/console/users", "/console/users/new", "/console/login-log",
               "/console/online-users", "/console/password", "/console/account/totp")


@pytest.fixture
def app(database_url: str, tmp_path: Path, migrated_sqlite_template: Path):
    harness, world = console(database_url, tmp_path, migrated_sqlite_template)
    return harness, world


def test_every_page_has_the_safe_headers(app) -> None:
    harness, _ = app
    client = harness.client
    sign_in(client, "office_admin")
    for path in ("/console/login", *ADMIN_PAGES):
        r = client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["cache-control"] == "no-store", path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"
        assert "<script>" not in r.text and " style=" not in r.text and "onclick" not in r.text
        assert '<html lang="zh-CN">' in r.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/console/"


def test_session_cookie_is_httponly_strict_and_secure_over_tls(app) -> None:
    harness, _ = app
    plain = harness.client.get("/console/login")
    assert "HttpOnly" in plain.headers["set-cookie"] and "SameSite=strict" in plain.headers[
        "set-cookie"]  # fmt: skip
    from fastapi.testclient import TestClient

    tls = TestClient(harness.app, base_url="https://testserver")
    cookie = tls.get("/console/login").headers["set-cookie"]
    assert cookie.startswith("__Host-exchange-login=") and "Secure" in cookie
    assert "Domain" not in cookie and "Path=/" in cookie


def test_a_forged_post_is_refused_and_changes_nothing(app) -> None:
    harness, world = app
    client = harness.client
    sign_in(client, "office_admin")
    target = f"/console/users/{world.ids['community_cadre']}"
    data = {"action": "password", "password": "Forged-pass-123"}
    for extra, headers in (({}, {}), ({"csrf_token": "0" * 64}, {}),
                           ({"csrf_token": csrf_of(client.get(target).text)},
                            {"origin": "http://evil.example"})):  # fmt: skip
        r = client.post(target, data={**data, **extra}, headers=headers, follow_redirects=False)
        assert r.status_code == 403
        assert "请求被拒绝" in r.text
    with unit_of_work(harness.factory) as session:
        account = session.get(m.ConsoleAccount, world.ids["community_cadre"])
        assert account is not None and not account.must_change_password
    # the real token (form field, or the htmx header) is accepted
    token = csrf_of(client.get(target).text)
    r = client.post(target, data=data, headers={"x-csrf-token": token}, follow_redirects=False)
    assert r.status_code == 303


def test_v1_never_reads_the_console_cookie(app) -> None:
    harness, _ = app
    client = harness.client
    sign_in(client, "office_admin")
    assert client.get("/v1/session").status_code == 401
    bearer = {"Authorization": f"Bearer {harness.tokens['office_admin']}"}
    assert client.get("/v1/session", headers=bearer).status_code == 200


def test_bad_input_names_the_field_in_chinese_and_changes_nothing(app) -> None:
    harness, world = app
    client = harness.client
    token = sign_in(client, "office_admin")
    with unit_of_work(harness.factory) as session:
        before = session.scalar(select(func.count()).select_from(m.Principal))
    r = client.post("/console/users/new", data={
        "csrf_token": token, "name": "Bad Name", "display_name": "", "role": "community_cadre",
        "password": "short",
    })  # fmt: skip
    assert r.status_code == 422
    for text in ("用户名：格式不正确", "姓名：格式不正确", "密码：长度须为10至128位",
                 "未做任何更改"):
        assert text in r.text
    assert "short" not in r.text  # the password is never echoed
    r = client.post("/console/users/new", data={
        "csrf_token": token, "name": "cadre-02", "display_name": "张干事",
        "role": "community_cadre", "password": "Good-pass-123",
    })  # fmt: skip
    assert r.status_code == 422 and "所属社区：为必填项" in r.text
    with unit_of_work(harness.factory) as session:
        assert session.scalar(select(func.count()).select_from(m.Principal)) == before


def test_non_admins_cannot_open_admin_pages(app) -> None:
    harness, _ = app
    client = harness.client
    sign_in(client, "community_cadre")
    for path in ("/console/users", "/console/login-log", "/console/online-users"):
        assert client.get(path).status_code == 403
    assert client.get("/console/home").status_code == 200


def test_signed_out_pages_go_to_the_login(app) -> None:
    harness, _ = app
    r = harness.client.get("/console/users", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    r = harness.client.get("/console/users", headers={"hx-request": "true"},
                           follow_redirects=False)  # fmt: skip
    assert r.headers["hx-redirect"].startswith("/console/login")


def test_the_language_switch(app) -> None:
    harness, _ = app
    client = harness.client
    client.get("/console/language/en?next=/console/login")
    r = client.get("/console/login")
    assert '<html lang="en">' in r.text and "Sign in to the console" in r.text


def test_the_chinese_catalogue_translates_every_message() -> None:
    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalogue = read_po(fh)
    untranslated = [msg.id for msg in catalogue if msg.id and not msg.string]
    assert untranslated == []
    with (LOCALE_DIR / "messages.pot").open("rb") as fh:
        template = {msg.id for msg in read_po(fh) if msg.id}
    assert template <= {msg.id for msg in catalogue if msg.id}, "run pybabel update"
    # what the sources say now, not only what the last extraction found
    console_dir = LOCALE_DIR.parent
    with (console_dir / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    spoken = {message for _, _, message, _, _ in extract_from_dir(
        str(console_dir), method_map, options_map, keywords={"_": None, "N_": None})}
    missing = sorted(str(m) for m in spoken if not catalogue.get(m) or not catalogue[m].string)
    assert missing == [], "extract (docs/console.md) and translate: " + "; ".join(missing[:10])


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_no_message_is_in_a_catalogue_twice(language: str) -> None:
    """Babel keeps the last of two entries with one msgid, silently: one word that means two
    things (an agreement's 有效期, a statistics 统计期间) needs two msgids."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    entries: list[str] = []
    key: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(("msgctxt ", "msgid ")):
            if line.startswith("msgctxt ") or key is None or not key[0].startswith("msgctxt "):
                key = [line]
                entries.append("")
            else:
                key.append(line)
        elif line.startswith('"') and key is not None:
            key.append(line)
        elif line.startswith(("msgstr", "msgid_plural")) and key is not None:
            entries[-1] = "\n".join(key)
            key = None
    repeated = sorted({e for e in entries if entries.count(e) > 1})
    assert repeated == []


OPEN_ROUTES = {"/", "/console/", "/console/login", "/console/logout", "/console/language/{code}",
               "/console/static"}


def _depends_on(dependant, target) -> bool:
    return any(d.call is target or _depends_on(d, target) for d in dependant.dependencies)


def test_every_console_route_but_the_open_ones_needs_a_signed_in_user(tmp_path: Path) -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    from exchange.console.context import _admin, _office, _signed_in
    from tests.exchange.api.apptools import build

    app = build(f"sqlite:///{tmp_path / 'x.db'}", tmp_path).app
    seen = set()
    for route in iter_route_contexts(app.routes):
        path = route.path
        if not (path == "/" or path.startswith("/console")):
            continue
        seen.add(path)
        if path in OPEN_ROUTES:
            continue
        assert isinstance(route.original_route, APIRoute), path
        assert _depends_on(route.dependant, _signed_in), path
        if path.startswith(("/console/users", "/console/online-users", "/console/login-log")):
            assert _depends_on(route.dependant, _admin), path
        if path.startswith(("/console/residents", "/console/imports", "/console/assignments")):
            assert _depends_on(route.dependant, _office), path
    assert {"/console/users", "/console/online-users/{session_id}/end"} <= seen


def test_a_user_changes_her_own_password(app) -> None:
    """Her other sessions end, this one stays; the new password works and the old does not; a
    wrong current password is named in Chinese and changes nothing."""
    harness, world = app
    client, other = harness.client, harness.client.__class__(harness.app)
    csrf = sign_in(client, "community_cadre")
    sign_in(other, "community_cadre")
    with unit_of_work(harness.factory) as session:
        before = account(session, world.ids["community_cadre"]).password_hash
    new = "Fresh-pass-2026x"
    wrong = client.post("/console/password", data={
        "csrf_token": csrf, "current_password": "Not-my-pass-1", "new_password": new,
        "confirm_password": new})  # fmt: skip
    assert wrong.status_code == 422 and "当前密码：不一致" in wrong.text
    assert new not in wrong.text and "Not-my-pass-1" not in wrong.text
    differs = client.post("/console/password", data={
        "csrf_token": csrf, "current_password": PASSWORDS["community_cadre"],
        "new_password": new, "confirm_password": new + "y"})  # fmt: skip
    assert differs.status_code == 422 and "确认新密码：不一致" in differs.text
    with unit_of_work(harness.factory) as session:
        assert account(session, world.ids["community_cadre"]).password_hash == before
    assert other.get("/console/home").status_code == 200  # nothing ended either
    done = client.post("/console/password", data={
        "csrf_token": csrf, "current_password": PASSWORDS["community_cadre"],
        "new_password": new, "confirm_password": new})  # fmt: skip
    assert done.status_code == 200 and "密码已修改，您的其他会话已结束。" in done.text
    assert client.get("/console/home").status_code == 200  # this session goes on
    ended = other.get("/console/home", follow_redirects=False)
    assert ended.status_code == 303
    assert ended.headers["location"].startswith("/console/login?reason=password_changed")
    fresh = harness.client.__class__(harness.app)
    form = fresh.get("/console/login")
    old = fresh.post("/console/login", data={
        "username": NAMES["community_cadre"], "password": PASSWORDS["community_cadre"],
        "csrf_token": csrf_of(form.text), "next": "/console/home"}, follow_redirects=False)
    assert old.status_code == 401 and "用户名或密码错误" in old.text
    sign_in(fresh, "community_cadre", new)
    assert fresh.get("/console/home").status_code == 200


def test_the_watermark_is_on_every_signed_in_page(app) -> None:
    """Every HTML page a signed-in user opens carries her user name and the time (Beijing) in
    the watermark the base template draws; the stylesheet shows it; the login page has none."""
    from fastapi.routing import APIRoute, iter_route_contexts

    harness, _ = app
    client = harness.client
    sign_in(client, "office_admin")
    mark = f'data-mark="{NAMES["office_admin"]} {beijing(harness.clock())}"'
    pages = sorted({r.path for r in iter_route_contexts(harness.app.routes)
                    if isinstance(r.original_route, APIRoute) and "GET" in r.methods
                    and r.path.startswith("/console/") and "{" not in r.path})  # fmt: skip
    checked = []
    for path in pages:
        r = client.get(path)
        if r.status_code != 200 or not r.headers["content-type"].startswith("text/html"):
            continue
        assert r.text.count(mark) >= 1, path
        checked.append(path)
    assert {"/console/home", "/console/users", "/console/residents", "/console/imports",
            "/console/statistics", "/console/password"} <= set(checked)
    r = client.get(f"/console/users/{_id_of(harness, 'community_cadre')}")
    assert mark in r.text
    css = "".join(client.get(href).text for href in
                  re.findall(r'<link[^>]+href="(/console/static/[^"]+\.css)"', r.text))
    assert re.search(r"\.watermark\s+span::before\s*\{[^}]*content:\s*attr\(data-mark\)", css)
    assert "data-mark" not in harness.client.__class__(harness.app).get("/console/login").text


def _id_of(harness, role: str) -> str:
    with unit_of_work(harness.factory) as session:
        pid = session.scalar(select(m.Principal.id).where(m.Principal.name == NAMES[role]))
    assert pid is not None
    return pid
