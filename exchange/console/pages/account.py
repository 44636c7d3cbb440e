"""Signing in and out, the user's own password and second factor, and the language switch.

The login form is protected by a double-submit token (a random cookie and the same value in
the form: there is no session yet to hold a synchronizer token); every later form carries the
session's synchronizer token, checked in `csrf.require_token`.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

import segno
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from exchange.console import i18n
from exchange.console.context import AnyPage, LoginRequired, Page, SignedIn, login_policy
from exchange.console.csrf import require_token
from exchange.console.forms import field_errors
from exchange.console.security import CSRF_FIELD, cookie_name, same_origin
from exchange.console.templating import render
from exchange.services import accounts
from exchange.services.errors import FlowError, InvalidInput
from exchange.services.web_sessions import logout as end_session

router = APIRouter()
LOGIN_COOKIE = "exchange-login"

# login-log outcomes -> what the person at the login form is told; deliberately the same
# words for an unknown user and a wrong password
LOGIN_MESSAGES = {
    "unknown_user": i18n.N_("The user name or password is wrong"),
    "bad_password": i18n.N_("The user name or password is wrong"),
    "revoked": i18n.N_("The user name or password is wrong"),
    "locked": i18n.N_(
        "This account is locked after too many failed attempts; ask an office admin to unlock it"
    ),
    "totp_required": i18n.N_("Enter the 6-digit code from your authenticator app"),
    "bad_totp": i18n.N_("The verification code is wrong"),
}
SIGNED_OUT_MESSAGES = {
    "idle": i18n.N_("You were signed out after 30 minutes without activity"),
    "absolute": i18n.N_("Your session reached its 12-hour limit; please sign in again"),
    "ended_by_admin": i18n.N_("An office admin ended your session"),
    "password_changed": i18n.N_("Your password was changed; please sign in again"),
    "logout": i18n.N_("You have signed out"),
}


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/home"


def _login_form(page: Page, status: int = 200, *, error: str = "", notice: str = "",
                username: str = "", next_path: str = "/console/home") -> Response:  # fmt: skip
    nonce = secrets.token_urlsafe(24)
    response = render(page, "login.html", status, error=error, notice=notice, username=username,
                      nonce=nonce, next_path=next_path)  # fmt: skip
    response.set_cookie(cookie_name(LOGIN_COOKIE, page.secure), nonce, httponly=True,
                        secure=page.secure, samesite="strict", path="/", max_age=3600)  # fmt: skip
    return response


@router.get("/login")
def login_page(page: AnyPage, reason: str = "", next: str = "") -> Response:  # noqa: A002
    if page.user is not None:
        return RedirectResponse(_safe_next(next), 303)
    notice = SIGNED_OUT_MESSAGES.get(reason, "")
    return _login_form(page, notice=page._(notice) if notice else "", next_path=_safe_next(next))


@router.post("/login")
async def login_submit(page: AnyPage, request: Request) -> Response:
    form = await request.form()
    nonce = request.cookies.get(cookie_name(LOGIN_COOKIE, page.secure), "")
    offered = str(form.get(CSRF_FIELD, ""))
    username = str(form.get("username", ""))[:64]
    next_path = _safe_next(str(form.get("next", "")))
    if not same_origin(request) or not nonce or not secrets.compare_digest(
        nonce.encode(), offered.encode()
    ):
        return _login_form(page, 403, error=page._("The form expired; please try again"),
                           next_path=next_path)  # fmt: skip
    result = accounts.login(
        page.db, page.keyring, username, str(form.get("password", ""))[:256],
        str(form.get("totp", ""))[:16], address=page.client,
        user_agent=request.headers.get("user-agent", ""), now=page.now,
        policy=login_policy(page.settings),
    )  # fmt: skip
    if not result.ok:
        # the failure count and the log entry are committed with this response
        return _login_form(page, 401 if result.outcome != "locked" else 423,
                           error=page._(LOGIN_MESSAGES[result.outcome]),
                           username=username if result.outcome == "totp_required" else "",
                           next_path=next_path)  # fmt: skip
    response = RedirectResponse(next_path, 303)
    assert result.token is not None
    response.set_cookie(page.session_cookie, result.token, httponly=True, secure=page.secure,
                        samesite="strict", path="/")  # fmt: skip
    response.delete_cookie(cookie_name(LOGIN_COOKIE, page.secure), path="/",
                           secure=page.secure, httponly=True, samesite="strict")  # fmt: skip
    return response


@router.post("/logout")
async def logout(page: AnyPage, request: Request) -> Response:
    if page.user is not None:
        await require_token(page, request)
        end_session(page.db, page.user.session_id, page.now)
    response = RedirectResponse("/console/login?reason=logout", 303)
    response.delete_cookie(page.session_cookie, path="/", secure=page.secure, httponly=True,
                           samesite="strict")  # fmt: skip
    return response


@router.get("/password")
def password_page(page: SignedIn) -> Response:
    return render(page, "password.html", errors={}, done=False)


@router.post("/password")
async def password_submit(page: SignedIn, request: Request) -> Response:
    form = await require_token(page, request)
    assert page.user is not None
    new = str(form.get("new_password", ""))
    try:
        if new != str(form.get("confirm_password", "")):
            raise InvalidInput.field("confirm_password", "mismatch", "differs from the new one")
        with page.db.begin_nested():
            accounts.change_password(
                page.db, page.user.account, str(form.get("current_password", "")), new,
                now=page.now, keep_session=page.user.session_id,
            )  # fmt: skip
    except FlowError as exc:
        return render(page, "password.html", 422, errors=field_errors(exc, page._), done=False)
    return render(page, "password.html", errors={}, done=True)


@router.get("/account/totp")
def totp_page(page: SignedIn) -> Response:
    assert page.user is not None
    account = page.user.account
    uri = accounts.pending_totp_uri(page.keyring, account)
    return _totp(page, enabled=account.totp_enabled_at is not None, uri=uri)


def _totp(page: Page, status: int = 200, *, enabled: bool, uri: str | None,
          errors: dict[str, list[str]] | None = None) -> Response:  # fmt: skip
    """The set-up page: the key as text, the otpauth address as text and as a QR code (an SVG
    in a data: URI, which the CSP's img-src allows; no script draws it)."""
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=4) if uri else ""
    return render(page, "totp.html", status, enabled=enabled, uri=uri, secret=_secret_of(uri),
                  qr=qr, errors=errors or {})  # fmt: skip


def _secret_of(uri: str | None) -> str:
    if not uri or "secret=" not in uri:
        return ""
    return uri.split("secret=", 1)[1].split("&", 1)[0]


@router.post("/account/totp")
async def totp_submit(page: SignedIn, request: Request) -> Response:
    form = await require_token(page, request)
    assert page.user is not None
    account = page.user.account
    if form.get("action") == "begin":
        return _totp(page, enabled=False, uri=accounts.begin_totp(page.db, page.keyring, account))
    try:
        with page.db.begin_nested():
            accounts.confirm_totp(page.keyring, account, str(form.get("code", "")), page.now)
    except FlowError as exc:
        return _totp(page, 422, enabled=False, uri=accounts.pending_totp_uri(page.keyring, account),
                     errors=field_errors(exc, page._))  # fmt: skip
    return RedirectResponse("/console/home", 303)


@router.get("/language/{code}")
def language(code: str, next: str = "") -> Response:  # noqa: A002
    """Switch the language (a preference cookie, no personal data); back to the same page."""
    target = _safe_next(next)
    response = RedirectResponse(quote(target, safe="/?=&-_."), 303)
    if code in i18n.LANGUAGES:
        response.set_cookie(i18n.LANGUAGE_COOKIE, code, samesite="strict", path="/",
                            max_age=365 * 24 * 3600)  # fmt: skip
    return response


def login_redirect(exc: LoginRequired, request: Request) -> Response:
    reason = exc.reason if exc.reason in SIGNED_OUT_MESSAGES else ""
    target = f"/console/login?reason={reason}" if reason else "/console/login"
    if request.method == "GET" and request.url.path.startswith("/console/"):
        target += ("&" if reason else "?") + "next=" + quote(request.url.path, safe="/")
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, 303)
