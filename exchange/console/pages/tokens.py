"""接口令牌: API tokens of contractor systems. The list (expiry, last use, certificate binding,
state), issuing one (shown once, on the page that answers the form: never in a URL, never
again), and revoking one behind a confirmation. Every change is a `system_tokens` call, which
checks the role and audits."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from exchange.console.context import AdminPage, Page, PageError
from exchange.console.csrf import require_token
from exchange.console.forms import field_errors
from exchange.console.i18n import N_
from exchange.console.paging import paging, with_total
from exchange.console.templating import render
from exchange.services import contractors, system_tokens
from exchange.services.errors import FlowError, NotFound

router = APIRouter(prefix="/tokens")
STATE_LABELS = {"active": N_("Valid"), "expired": N_("Expired"), "revoked": N_("Token revoked")}
DEFAULT_TTL_DAYS = 90


def _list(page: Page, request: Request, status: int = 200, *,
          errors: dict[str, list[str]] | None = None,
          values: dict[str, str] | None = None, done: str = "") -> Response:  # fmt: skip
    contractor = request.query_params.get("contractor", "")[:36]
    p = paging(request, "contractor")
    rows = system_tokens.list_tokens(page.db, page.now, contractor_id=contractor or None)
    listed = contractors.list_contractors(page.db)
    return render(page, "tokens/list.html", status, rows=rows[p.offset:p.offset + p.size],
                  paging=with_total(p, len(rows)), contractor=contractor, done=done,
                  contractors=listed, errors=errors or {},
                  contractor_names={c["id"]: c["name"] for c in listed},
                  values=values or {"contractor_id": contractor, "principal": "",
                                    "ttl_days": str(DEFAULT_TTL_DAYS), "cert_thumbprint": ""},
                  state_labels=STATE_LABELS,
                  binding_required=page.settings.is_production)  # fmt: skip


@router.get("")
def token_list(page: AdminPage, request: Request, done: str = "") -> Response:
    return _list(page, request, done=done[:16])


@router.post("")
async def token_issue(page: AdminPage, request: Request) -> Response:
    form = await require_token(page, request)
    values = {name: str(form.get(name, ""))[:64] for name in
              ("contractor_id", "principal", "ttl_days", "cert_thumbprint")}  # fmt: skip
    ttl = values["ttl_days"].strip()
    try:
        with page.db.begin_nested():
            issued = system_tokens.issue(
                page.db, page.acting, values["contractor_id"], principal_name=values["principal"],
                ttl_days=int(ttl) if ttl.isdigit() and len(ttl) <= 6 else 0,
                cert_thumbprint=values["cert_thumbprint"],
                require_binding=page.settings.is_production,
            )  # fmt: skip
    except FlowError as exc:
        return _list(page, request, 422, errors=field_errors(exc, page._), values=values)
    # shown once, in this answer (no-store, like every console page); nowhere else
    return render(page, "tokens/issued.html", issued=issued)


def _token(page: Page, token_id: str) -> system_tokens.TokenView:
    found = [t for t in system_tokens.list_tokens(page.db, page.now) if t["id"] == token_id]
    if not found:
        raise PageError(404, N_("No such token"))
    return found[0]


@router.get("/{token_id}/revoke")
def token_revoke_page(page: AdminPage, token_id: str) -> Response:
    """The confirmation: what revoking will do, before it is done."""
    return render(page, "tokens/revoke.html", t=_token(page, token_id[:36]),
                  state_labels=STATE_LABELS)  # fmt: skip


@router.post("/{token_id}/revoke")
async def token_revoke(page: AdminPage, request: Request, token_id: str) -> Response:
    await require_token(page, request)
    try:
        with page.db.begin_nested():
            system_tokens.revoke(page.db, page.acting, token_id[:36])
    except NotFound:
        raise PageError(404, N_("No such token")) from None
    return RedirectResponse("/console/tokens?done=revoked", 303)
