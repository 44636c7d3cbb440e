"""登录日志 and 在线用户: who signed in (or failed to), and the live sessions an office admin
can end (强退)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from exchange.console.context import AdminPage, PageError, session_policy
from exchange.console.csrf import require_token
from exchange.console.i18n import N_
from exchange.console.paging import paging, with_total
from exchange.console.templating import render
from exchange.db.models.console import LOGIN_OUTCOMES
from exchange.services import accounts, web_sessions
from exchange.services.errors import NotFound

router = APIRouter()

OUTCOME_LABELS = {
    "success": N_("Signed in"),
    "bad_password": N_("Wrong password"),
    "unknown_user": N_("Unknown user"),
    "locked": N_("Locked"),
    "no_password": N_("No console password"),
    "revoked": N_("Account disabled"),
    "totp_required": N_("Code required"),
    "bad_totp": N_("Wrong code"),
}


@router.get("/login-log")
def login_log(page: AdminPage, request: Request, username: str = "",
              outcome: str = "") -> Response:  # fmt: skip
    p = paging(request, "username", "outcome")
    total, rows = accounts.login_log(page.db, page.acting, username=username, outcome=outcome,
                                     offset=p.offset, limit=p.size)  # fmt: skip
    return render(page, "login_log.html", rows=rows, paging=with_total(p, total),
                  username=username, outcome=outcome, outcomes=LOGIN_OUTCOMES,
                  outcome_labels=OUTCOME_LABELS)  # fmt: skip


@router.get("/online-users")
def online_users(page: AdminPage) -> Response:
    rows = web_sessions.online(page.db, page.acting, page.now, session_policy(page.settings))
    return render(page, "online.html", rows=rows)


@router.post("/online-users/{session_id}/end")
async def end_session(page: AdminPage, request: Request, session_id: str) -> Response:
    await require_token(page, request)
    try:
        web_sessions.end_by_admin(page.db, page.acting, session_id)
    except NotFound:
        raise PageError(404, N_("The session has already ended")) from None
    if request.headers.get("hx-request") == "true":
        return Response(status_code=200, content="")  # htmx removes the row
    return RedirectResponse("/console/online-users", 303)
