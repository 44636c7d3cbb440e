"""用户管理: the office admin's list of console users, a new user, and one user's page (role
and community scope, reset password, unlock, reset the second factor). Every change is a
service call that checks the role again and is audited."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from exchange.console.context import AdminPage, Page, PageError
from exchange.console.csrf import require_token
from exchange.console.forms import field_errors
from exchange.console.i18n import N_
from exchange.console.paging import paging, with_total
from exchange.console.templating import render
from exchange.db import models as m
from exchange.services import accounts, system_tokens
from exchange.services.errors import FlowError, NotFound

router = APIRouter(prefix="/users")
ROLE_CHOICES = ("office_admin", "community_cadre", "auditor")


def _communities(page: Page) -> list[m.Community]:
    return list(page.db.scalars(select(m.Community).order_by(m.Community.name)))


@router.get("")
def user_list(page: AdminPage, request: Request, name: str = "", role: str = "") -> Response:
    p = paging(request, "name", "role")
    total, rows = accounts.list_users(page.db, page.acting, name=name, role=role,
                                      offset=p.offset, limit=p.size)  # fmt: skip
    used = system_tokens.last_used(page.db, [a.principal_id for a in rows])
    return render(page, "users/list.html", rows=rows, paging=with_total(p, total),
                  name=name, role=role, roles=ROLE_CHOICES, used=used)  # fmt: skip


def _new_form(page: Page, status: int = 200, *, errors: dict[str, list[str]] | None = None,
              values: dict[str, object] | None = None) -> Response:  # fmt: skip
    return render(page, "users/new.html", status, errors=errors or {},
                  values=values or {"name": "", "display_name": "", "role": "community_cadre",
                                    "communities": []},
                  roles=ROLE_CHOICES, communities=_communities(page))  # fmt: skip


@router.get("/new")
def user_new(page: AdminPage) -> Response:
    return _new_form(page)


@router.post("/new")
async def user_create(page: AdminPage, request: Request) -> Response:
    form = await require_token(page, request)
    values = _values(form)
    new = accounts.NewUser(
        name=str(values["name"]), display_name=str(values["display_name"]),
        role=str(values["role"]), community_ids=tuple(str(c) for c in form.getlist("communities")),
        password=str(form.get("password", "")),
    )  # fmt: skip
    try:
        with page.db.begin_nested():
            account = accounts.create_user(page.db, page.acting, new)
    except FlowError as exc:
        return _new_form(page, 422, errors=field_errors(exc, page._), values=values)
    return RedirectResponse(f"/console/users/{account.principal_id}?done=created", 303)


def _values(form: FormData) -> dict[str, object]:
    """What the admin typed, to show the form again (never the password)."""
    return {
        "name": str(form.get("name", ""))[:64],
        "display_name": str(form.get("display_name", ""))[:64],
        "role": str(form.get("role", "")),
        "communities": [str(c) for c in form.getlist("communities")],
    }


def _account(page: Page, principal_id: str) -> m.ConsoleAccount:
    try:
        return accounts.account_of(page.db, principal_id)
    except NotFound:
        raise PageError(404, N_("No such user")) from None


def _detail(page: Page, account: m.ConsoleAccount, status: int = 200, *,
            errors: dict[str, list[str]] | None = None, done: str = "") -> Response:  # fmt: skip
    return render(page, "users/detail.html", status, account=account, errors=errors or {},
                  done=done, roles=ROLE_CHOICES, communities=_communities(page),
                  scope={c.id for c in account.principal.communities})  # fmt: skip


@router.get("/{principal_id}")
def user_detail(page: AdminPage, principal_id: str, done: str = "") -> Response:
    return _detail(page, _account(page, principal_id), done=done)


@router.post("/{principal_id}")
async def user_update(page: AdminPage, request: Request, principal_id: str) -> Response:
    form = await require_token(page, request)
    account = _account(page, principal_id)
    action = str(form.get("action", ""))
    acting = page.acting
    try:
        with page.db.begin_nested():
            if action == "role":
                accounts.set_role(page.db, acting, principal_id, str(form.get("role", "")),
                                  [str(c) for c in form.getlist("communities")],
                                  str(form.get("display_name", "")))  # fmt: skip
            elif action == "password":
                accounts.reset_password(page.db, acting, principal_id,
                                        str(form.get("password", "")))  # fmt: skip
            elif action == "unlock":
                accounts.unlock(page.db, acting, principal_id)
            elif action == "totp":
                accounts.reset_totp(page.db, acting, principal_id)
            else:
                raise PageError(400, N_("The request could not be completed"))
    except FlowError as exc:
        page.db.refresh(account)
        return _detail(page, account, 422, errors=field_errors(exc, page._))
    return RedirectResponse(f"/console/users/{principal_id}?done={action}", 303)
