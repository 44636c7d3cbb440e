"""The web console (中文 first): server-rendered pages for the street office, one more door into
the same services as the API and the CLI. Scope, masking, consent and audit live in
exchange/services; nothing here decides who may see what beyond choosing which page to show.

    console/
      __init__.py   install_console(app): routes under /console, static files, headers, errors
      context.py    one request: unit of work, clock, language, signed-in user -> Acting
      security.py   CSP and the other headers, cookie names (__Host- over TLS)
      csrf.py       the synchronizer token check of every state-changing request
      i18n.py       Babel catalogues (zh_CN default, en)
      templating.py Jinja2 and `render`
      forms.py      field errors in the reader's words
      paging.py     list pages: page, size (10/20/50), “共 N 条”
      pages/        one router per area (account, home, users, logins, residents, ...)
      templates/    Jinja2 templates      static/   CSS, and vendored htmx 2.0 and Bootstrap 5.3

Cookies are only read here: `/v1` authenticates by bearer token and never looks at them.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from exchange.console import i18n
from exchange.console.context import LoginRequired, PageError, Redirect
from exchange.console.security import CONSOLE_PREFIX, SecurityHeadersMiddleware

STATIC = Path(__file__).parent / "static"


def _router() -> APIRouter:
    from exchange.console.pages import (
        account,
        agreements,
        contractors,
        home,
        intake,
        logins,
        policies,
        resident,
        residents,
        tokens,
        users,
    )

    router = APIRouter(prefix=CONSOLE_PREFIX, include_in_schema=False)
    # /residents/new, /lookup and /export.xlsx before /residents/{resident_id}
    for module in (home, account, users, logins, residents, intake, resident, agreements,
                   policies, tokens, contractors):
        router.include_router(module.router)
    router.include_router(_statistics_router())
    return router


def _statistics_router() -> APIRouter:
    from exchange.console.pages import statistics

    return statistics.router


async def _on_login_required(request: Request, exc: Exception) -> Response:
    from exchange.console.pages.account import login_redirect

    assert isinstance(exc, LoginRequired)
    return login_redirect(exc, request)


async def _on_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Redirect)
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": exc.location})
    return RedirectResponse(exc.location, 303)


async def _on_page_error(request: Request, exc: Exception) -> Response:
    """An error page in the reader's language; its own unit of work has rolled back."""
    from exchange.console.templating import error_page

    assert isinstance(exc, PageError)
    return error_page(request, exc)


def install_console(app: FastAPI) -> None:
    i18n.check_catalogues()
    app.include_router(_router())
    app.mount(f"{CONSOLE_PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(f"{CONSOLE_PREFIX}/", 303)

    app.add_exception_handler(LoginRequired, _on_login_required)
    app.add_exception_handler(Redirect, _on_redirect)
    app.add_exception_handler(PageError, _on_page_error)
    app.add_middleware(SecurityHeadersMiddleware)
