"""The synchronizer token check every state-changing console request passes.

The token comes from the form field (plain forms) or the `X-CSRF-Token` header (htmx sends it
from `hx-headers` on <body>); it must equal the one derived from the session cookie. A
request from a foreign Origin is refused before that. A refusal changes nothing.
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import FormData

from exchange.console.context import LoginRequired, Page, refuse
from exchange.console.i18n import N_
from exchange.console.security import CSRF_FIELD, CSRF_HEADER, same_origin
from exchange.logs import get_logger
from exchange.routes import route_template
from exchange.services.web_sessions import csrf_matches

_log = get_logger("exchange.console")


async def require_token(page: Page, request: Request) -> FormData:
    """The request's form, once its origin and token are checked; else a 403 page."""
    if page.user is None:
        raise LoginRequired(page.session_end_reason)
    form = await request.form()
    offered = request.headers.get(CSRF_HEADER) or str(form.get(CSRF_FIELD, ""))
    token = request.cookies.get(page.session_cookie, "")
    if not same_origin(request) or not offered or not csrf_matches(token, offered):
        _log.warning("console_csrf_refused", route=route_template(request.scope),
                     origin_ok=same_origin(request))  # fmt: skip
        raise refuse(page, N_("The request was refused"), "csrf_refused", "csrf")
    return form
