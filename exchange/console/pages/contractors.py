"""服务机构: the contractors (entrusted parties) and their HPKE public keys, for office admins.

The list; a new contractor; one contractor's page with its keys (fingerprint, KEM, active or
retired) and its agreements; registering a key in two steps: the pasted public key is checked
and its fingerprint shown (to be read back to the contractor, who saw it at `exchange
contractor keygen`) with the key it will retire, then registered on confirmation. Registering
is a rotation (services.contractors.register_key): the new key is the one fields are sealed to,
older ones are retired; every key event is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from exchange.console.context import AdminPage, Page, PageError
from exchange.console.csrf import require_token
from exchange.console.forms import field_errors
from exchange.console.i18n import N_
from exchange.console.paging import paging, with_total
from exchange.console.policy_words import PolicyWords
from exchange.console.templating import render
from exchange.services import agreements, contractors
from exchange.services.errors import FlowError, NotFound

router = APIRouter(prefix="/contractors")
NAME_LABEL = {"name": N_("Contractor name")}
MAX_KEY_TEXT = 8192  # a hybrid ML-KEM key's text form is about 1.7 KB


@router.get("")
def contractor_list(page: AdminPage, request: Request) -> Response:
    p = paging(request)
    rows = contractors.list_contractors(page.db)
    return render(page, "contractors/list.html", rows=rows[p.offset:p.offset + p.size],
                  paging=with_total(p, len(rows)), errors={}, name="")  # fmt: skip


@router.post("")
async def contractor_create(page: AdminPage, request: Request) -> Response:
    form = await require_token(page, request)
    name = str(form.get("name", ""))[:200]
    try:
        with page.db.begin_nested():
            row = contractors.create(page.db, page.acting, name)
    except FlowError as exc:
        p = paging(request)
        rows = contractors.list_contractors(page.db)
        return render(page, "contractors/list.html", 422 if exc.status == 422 else 409,
                      rows=rows[:p.size], paging=with_total(p, len(rows)),
                      errors=field_errors(exc, page._, NAME_LABEL), name=name)  # fmt: skip
    return RedirectResponse(f"/console/contractors/{row.id}?done=created", 303)


def _detail(page: Page, contractor_id: str, status: int = 200, **extra: object) -> Response:
    try:
        view = contractors.view(contractors.get_contractor(page.db, contractor_id))
    except NotFound:
        raise PageError(404, N_("No such contractor")) from None
    held = agreements.list_agreements(page.db, contractor_id=view["id"])
    context: dict[str, object] = {"c": view, "agreements": held, "words": PolicyWords(page._),
                                  "errors": {}, "key_text": "", "done": ""}  # fmt: skip
    context.update(extra)
    return render(page, "contractors/detail.html", status, **context)


@router.get("/{contractor_id}")
def contractor_detail(page: AdminPage, contractor_id: str, done: str = "") -> Response:
    return _detail(page, contractor_id[:36], done=done[:16])


@router.post("/{contractor_id}/keys/check")
async def key_check(page: AdminPage, request: Request, contractor_id: str) -> Response:
    """The pasted key checked and its fingerprint shown; nothing is registered yet."""
    form = await require_token(page, request)
    text = str(form.get("public_key", ""))[:MAX_KEY_TEXT]
    try:
        check = contractors.check_key(page.db, contractor_id[:36], text)
    except NotFound:
        raise PageError(404, N_("No such contractor")) from None
    except FlowError as exc:
        return _detail(page, contractor_id[:36], 422 if exc.status == 422 else 409,
                       errors=field_errors(exc, page._), key_text=text)  # fmt: skip
    return _detail(page, contractor_id[:36], check=check, key_text=text)


@router.post("/{contractor_id}/keys")
async def key_register(page: AdminPage, request: Request, contractor_id: str) -> Response:
    form = await require_token(page, request)
    text = str(form.get("public_key", ""))[:MAX_KEY_TEXT]
    try:
        with page.db.begin_nested():
            row = contractors.register_key(page.db, page.acting, contractor_id[:36], text)
            if row.key_id != str(form.get("fingerprint", "")):
                raise PageError(409, N_("The key is not the one that was checked"))
    except NotFound:
        raise PageError(404, N_("No such contractor")) from None
    except FlowError as exc:
        return _detail(page, contractor_id[:36], 422 if exc.status == 422 else 409,
                       errors=field_errors(exc, page._), key_text=text)  # fmt: skip
    return RedirectResponse(f"/console/contractors/{contractor_id}?done=key", 303)
