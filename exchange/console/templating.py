"""The Jinja2 environment (autoescaped, i18n extension) and `render`, which gives every
template the reader's language, the signed-in user, the CSRF token and the menu."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any, Final

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request

from exchange.console import i18n
from exchange.console.context import Page, PageError
from exchange.console.i18n import N_

TEMPLATES: Final = Path(__file__).parent / "templates"
BEIJING: Final = timezone(timedelta(hours=8), "UTC+8")

# (path, label, roles): the menu, in the order the office reads it
MENU: Final = (
    ("/console/home", N_("Home"), frozenset({"office_admin", "community_cadre", "auditor"})),
    ("/console/residents", N_("Resident ledger"), frozenset({"office_admin", "community_cadre"})),
    ("/console/contractors", N_("Contractors"), frozenset({"office_admin"})),
    ("/console/agreements", N_("Agreements"), frozenset({"office_admin"})),
    ("/console/policies", N_("Policy versions"), frozenset({"office_admin"})),
    ("/console/tokens", N_("API tokens"), frozenset({"office_admin"})),
    ("/console/users", N_("Users"), frozenset({"office_admin"})),
    ("/console/online-users", N_("Online users"), frozenset({"office_admin"})),
    ("/console/login-log", N_("Login log"), frozenset({"office_admin"})),
    ("/console/statistics", N_("Statistics"),
     frozenset({"office_admin", "community_cadre", "auditor"})),
)

ROLE_LABELS: Final = {
    "office_admin": N_("Office admin"),
    "community_cadre": N_("Community cadre"),
    "auditor": N_("Auditor"),
    "contractor": N_("Contractor system"),
}


def beijing(value: datetime | None, with_time: bool = True) -> str:
    """YYYY-MM-DD (HH:MM:SS), Beijing time: what the office reads on screen."""
    if value is None:
        return ""
    local = value.astimezone(BEIJING)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_time else "%Y-%m-%d")


def iso_beijing(text: str | None, with_time: bool = True) -> str:
    """An ISO 8601 timestamp from a service's view, on screen in Beijing time."""
    if not text:
        return ""
    return beijing(datetime.fromisoformat(text), with_time)


@cache
def environment(code: str) -> Environment:
    """One environment per language, its catalogue installed (new-style gettext: `_()` takes
    named placeholders and its result is autoescaped)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html",), default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["beijing"] = beijing
    env.filters["iso_beijing"] = iso_beijing
    env.install_gettext_translations(i18n.translations(code), newstyle=True)  # type: ignore[attr-defined]
    return env


def render(page: Page, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    user = page.user
    menu = [
        (path, label) for path, label, roles in MENU if user and user.principal.role in roles
    ]
    values = {
        "lang": page.language,
        "languages": i18n.LANGUAGES.values(),
        "user": user,
        "csrf": user.csrf_token if user else "",
        "menu": menu,
        "role_labels": ROLE_LABELS,
        "path": page.request.url.path,
        "now_text": beijing(page.now),
        "can": page.can,
        **context,
    }
    html = environment(page.language.code).get_template(template).render(values)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, error: PageError) -> HTMLResponse:
    """An error page outside any unit of work (it has rolled back): no user, no menu."""
    language = i18n.choose(request.cookies.get(i18n.LANGUAGE_COOKIE))
    html = environment(language.code).get_template("error.html").render(
        lang=language, languages=i18n.LANGUAGES.values(), user=None, csrf="", menu=[],
        path=request.url.path, status=error.status, title=error.title, now_text="",
        can=lambda _operation: False,
    )  # fmt: skip
    return HTMLResponse(html, status_code=error.status)
