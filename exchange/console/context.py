"""One console request: its unit of work, clock, language, and who is signed in.

`Page` is the dependency every console route takes. It opens the request's unit of work
(committed after the route returns, rolled back if it raises), resolves the session cookie to
the signed-in user, and builds from her the same acting identity (`Acting`) the services take
from the API and the CLI, so scope, consent and audit stay in the services.

    PageError            answered with an error page in the reader's language
    └── LoginRequired    no live session: to the login page (HX-Redirect for htmx)
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from exchange.console import i18n
from exchange.console.i18n import N_
from exchange.console.security import cookie_name, secure_cookies
from exchange.db.engine import CommitThenRaise, unit_of_work
from exchange.identity import OFFICE_ROLES, Acting, Identity
from exchange.routes import route_template
from exchange.services.accounts import LoginPolicy
from exchange.services.web_sessions import ActiveSession, SessionPolicy, resolve
from exchange.settings import Settings
from keys.keyring import Keyring

SESSION_COOKIE = "exchange-session"


class PageError(Exception):
    def __init__(self, status: int, title: str, detail: str = "") -> None:
        super().__init__(title)
        self.status = status
        self.title = title  # an English message id, translated when shown
        self.detail = detail


class AuditedPageError(PageError, CommitThenRaise):
    """A refusal page whose `access.denied` entry commits before it is shown (issue 14)."""


def refuse(page: Page, title: str, reason: str = "role_not_permitted",
           detail: str = "") -> AuditedPageError:  # fmt: skip
    """Audit a signed-in user's 403 (principal, route template, reason code) in the page's
    unit of work, which commits it although the page fails; raise what this returns."""
    from exchange.services.denials import record_forbidden  # noqa: PLC0415

    record_forbidden(page.db, page.acting, route_template(page.request.scope), reason)
    return AuditedPageError(403, title, detail)


class LoginRequired(PageError):
    def __init__(self, reason: str) -> None:
        super().__init__(401, N_("Please sign in"))
        self.reason = reason


def session_policy(settings: Settings) -> SessionPolicy:
    from datetime import timedelta

    return SessionPolicy(
        idle=timedelta(minutes=settings.console_idle_minutes),
        absolute=timedelta(hours=settings.console_absolute_hours),
    )


def login_policy(settings: Settings) -> LoginPolicy:
    return LoginPolicy(
        max_failures=settings.console_max_failures,
        totp_required_for_admins=settings.is_production,
    )


@dataclass
class Page:
    request: Request
    db: Session
    keyring: Keyring
    settings: Settings
    now: datetime
    language: i18n.Language
    user: ActiveSession | None = None
    session_end_reason: str = "missing"
    _translations: gettext.GNUTranslations | None = field(default=None, repr=False)

    @property
    def translations(self) -> gettext.GNUTranslations:
        if self._translations is None:
            self._translations = i18n.translations(self.language.code)
        return self._translations

    def _(self, message: str) -> str:
        return self.translations.gettext(message)

    @property
    def secure(self) -> bool:
        return secure_cookies(self.settings, self.request)

    @property
    def session_cookie(self) -> str:
        return cookie_name(SESSION_COOKIE, self.secure)

    @property
    def client(self) -> str:
        return self.request.client.host if self.request.client else "unknown"

    @property
    def acting(self) -> Acting:
        """The acting identity the services take (the same as the API builds)."""
        if self.user is None:
            raise LoginRequired("missing")
        state = self.request.state
        return Acting(Identity.from_row(self.user.principal), self.now,
                      getattr(state, "request_id", None),
                      getattr(state, "client_request_id", None))

    @property
    def role(self) -> str | None:
        return self.user.principal.role if self.user else None

    def can(self, operation: str) -> bool:
        """Whether the signed-in role may perform `operation`, by the same table the API's
        routes declare (exchange.permissions): no door lets a role do more than another."""
        from exchange.permissions import allowed

        return self.role is not None and allowed(self.role, operation)

    def require(self, operation: str) -> None:
        if not self.can(operation):
            raise refuse(self, N_("You may not do this"))


def _page(request: Request) -> Iterator[Page]:
    state = request.app.state
    clock: Callable[[], datetime] = state.clock
    settings: Settings = state.settings
    language = i18n.choose(request.cookies.get(i18n.LANGUAGE_COOKIE))
    with unit_of_work(state.session_factory) as db:
        page = Page(request, db, state.keyring, settings, clock(), language)
        token = request.cookies.get(page.session_cookie, "")
        if token:
            page.user, page.session_end_reason = resolve(
                db, token, page.now, session_policy(settings)
            )
        yield page


AnyPage = Annotated[Page, Depends(_page, scope="function")]


def _signed_in(page: AnyPage) -> Page:
    """A signed-in user who has done what she must first (new password, second factor)."""
    if page.user is None:
        raise LoginRequired(page.session_end_reason)
    path = page.request.url.path
    account = page.user.account
    from exchange.services.accounts import needs_totp_enrolment

    if account.must_change_password and path not in _ALWAYS_OPEN:
        raise Redirect("/console/password")
    if (
        needs_totp_enrolment(account, page.user.principal.role, login_policy(page.settings))
        and path not in _ALWAYS_OPEN
    ):
        raise Redirect("/console/account/totp")
    return page


def _admin(page: Annotated[Page, Depends(_signed_in)]) -> Page:
    if page.role != "office_admin":
        raise refuse(page, N_("You may not open this page"))
    return page


def _office(page: Annotated[Page, Depends(_signed_in)]) -> Page:
    """The community work pages: office admins and community cadres (the services scope)."""
    if page.role not in OFFICE_ROLES:
        raise refuse(page, N_("You may not open this page"))
    return page


_ALWAYS_OPEN = frozenset({"/console/password", "/console/account/totp", "/console/logout"})


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


SignedIn = Annotated[Page, Depends(_signed_in)]
AdminPage = Annotated[Page, Depends(_admin)]
OfficePage = Annotated[Page, Depends(_office)]
