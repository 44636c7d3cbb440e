"""协议管理: the office admin's entrustment agreements (PIPL Art. 21).

The list with its query form; a new agreement (every field problem named at once, nothing
written); one agreement's page; activating, suspending and terminating each behind a page that
says what it will do before it is done (for activation: what each purpose's policy version
discloses and its diff against the previous version); and moving one purpose to another
published policy version (`exchange policy move`: the same proposal, the same refusal of a
widening unless confirmed, the same audit). Every action is one service call.
"""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from exchange.console.context import AdminPage, Page, PageError
from exchange.console.csrf import require_token
from exchange.console.forms import field_errors
from exchange.console.i18n import N_
from exchange.console.paging import paging, with_total
from exchange.console.policy_words import STATUS_LABELS, PolicyWords
from exchange.console.templating import render
from exchange.db.models.codes import PURPOSES
from exchange.services import agreement_policies, agreements, contractors, policy_views
from exchange.services.errors import FlowError, NotFound
from exchange.services.published_policies import WideningNotConfirmed, published_set

router = APIRouter(prefix="/agreements")
ACTIONS = {"activate": N_("Activate"), "suspend": N_("Suspend"), "terminate": N_("Terminate")}


def _words(page: Page) -> PolicyWords:
    return PolicyWords(page._)


def _contractor_names(page: Page) -> dict[str, str]:
    return {c["id"]: c["name"] for c in contractors.list_contractors(page.db)}


def _versions(page: Page) -> dict[str, list[str]]:
    """purpose -> the published versions for it (id@version), newest first."""
    out: dict[str, list[str]] = {p: [] for p in PURPOSES}
    for policy in sorted(published_set(page.db), key=lambda p: (p.id, -p.version)):
        out.setdefault(policy.purpose.value, []).append(policy.identity.reference)
    return out


def _agreement(page: Page, agreement_id: str) -> agreements.AgreementView:
    try:
        return agreements.view(agreements.get_agreement(page.db, agreement_id))
    except NotFound:
        raise PageError(404, N_("No such agreement")) from None


@router.get("")
def agreement_list(page: AdminPage, request: Request, status: str = "",
                   contractor: str = "") -> Response:  # fmt: skip
    p = paging(request, "status", "contractor")
    rows = agreements.list_agreements(page.db, contractor_id=contractor[:36] or None,
                                      status=status if status in STATUS_LABELS else None)
    return render(page, "agreements/list.html", rows=rows[p.offset:p.offset + p.size],
                  paging=with_total(p, len(rows)), chosen_status=status,
                  contractor=contractor, names=_contractor_names(page),
                  status_labels=STATUS_LABELS, words=_words(page))  # fmt: skip


def _new_form(page: Page, status: int = 200, *, values: dict[str, object] | None = None,
              errors: dict[str, list[str]] | None = None) -> Response:  # fmt: skip
    defaults: dict[str, object] = {
        "contractor_id": "", "reference": "", "valid_from": "", "valid_to": "",
        "retention_days": "365", "sub_processors": "",
        "purposes": dict.fromkeys(PURPOSES, ""),  # deny by default: each one a choice
    }  # fmt: skip
    return render(page, "agreements/new.html", status, values=values or defaults,
                  errors=errors or {}, names=_contractor_names(page), versions=_versions(page),
                  purposes=PURPOSES, words=_words(page))  # fmt: skip


@router.get("/new")
def agreement_new(page: AdminPage) -> Response:
    return _new_form(page)


def _text(form: FormData) -> agreements.AgreementText:
    def get(name: str, limit: int = 64) -> str:
        return str(form.get(name, ""))[:limit]

    return agreements.AgreementText(
        contractor_id=get("contractor_id"), reference=get("reference"),
        valid_from=get("valid_from", 16), valid_to=get("valid_to", 16),
        retention_days=get("retention_days", 16),
        purposes={p: get(f"purpose_{p}", 96) for p in PURPOSES},
        sub_processors=get("sub_processors", 2000),
    )  # fmt: skip


@router.post("/new")
async def agreement_create(page: AdminPage, request: Request) -> Response:
    form = await require_token(page, request)
    text = _text(form)
    try:
        with page.db.begin_nested():
            row = agreements.create_from_text(page.db, page.acting, text)
    except FlowError as exc:
        return _new_form(page, 422, values=dataclasses.asdict(text),
                         errors=field_errors(exc, page._))  # fmt: skip
    return RedirectResponse(f"/console/agreements/{row.id}?done=created", 303)


@router.get("/{agreement_id}")
def agreement_detail(page: AdminPage, agreement_id: str, done: str = "") -> Response:
    return render(page, "agreements/detail.html", preview=_preview(page, agreement_id),
                  done=done, versions=_versions(page), words=_words(page),
                  errors={})  # fmt: skip


def _preview(page: Page, agreement_id: str) -> agreements.StatePreview:
    try:
        return agreements.preview(page.db, agreement_id)
    except NotFound:
        raise PageError(404, N_("No such agreement")) from None


@router.get("/{agreement_id}/{action}")
def agreement_confirm(page: AdminPage, agreement_id: str, action: str) -> Response:
    """What activating, suspending or terminating will do, before it is done."""
    if action not in ACTIONS:
        raise PageError(404, N_("No such page"))
    return render(page, "agreements/confirm.html", action=action, actions=ACTIONS,
                  preview=_preview(page, agreement_id), words=_words(page),
                  errors={})  # fmt: skip


@router.post("/{agreement_id}/{action}")
async def agreement_change(page: AdminPage, request: Request, agreement_id: str,
                           action: str) -> Response:  # fmt: skip
    if action not in ACTIONS:
        raise PageError(404, N_("No such page"))
    await require_token(page, request)
    _agreement(page, agreement_id)
    try:
        with page.db.begin_nested():
            if action == "activate":
                agreements.activate(page.db, page.acting, agreement_id)
            elif action == "suspend":
                agreements.suspend(page.db, page.keyring, page.acting, agreement_id)
            else:
                agreements.terminate(page.db, page.keyring, page.acting, agreement_id)
    except FlowError as exc:
        return render(page, "agreements/confirm.html", 409, action=action, actions=ACTIONS,
                      preview=_preview(page, agreement_id), words=_words(page),
                      errors=field_errors(exc, page._))  # fmt: skip
    return RedirectResponse(f"/console/agreements/{agreement_id}?done={action}", 303)


# -- moving a purpose to another published policy version ----------------------------------


def _move_page(page: Page, agreement_id: str, purpose: str, to: str, status: int = 200,
               errors: dict[str, list[str]] | None = None) -> Response:  # fmt: skip
    try:
        proposal = agreement_policies.propose_move(page.db, agreement_id, purpose, to or None)
    except NotFound:
        raise PageError(404, N_("No such agreement")) from None
    except FlowError as exc:
        return render(page, "agreements/detail.html", 409 if exc.status == 409 else 422,
                      preview=_preview(page, agreement_id), done="", versions=_versions(page),
                      words=_words(page), errors=field_errors(exc, page._))  # fmt: skip
    target = policy_views.summary(proposal.target)
    return render(page, "agreements/move.html", status, agreement_id=agreement_id,
                  reference=proposal.agreement.reference, purpose=purpose,
                  current=proposal.current.identity.reference if proposal.current else None,
                  target=target,
                  changes=policy_views.change_views(proposal.changes),
                  widens=proposal.widens, words=_words(page), errors=errors or {},
                  cases=agreements.active_cases(page.db, proposal.agreement.id))  # fmt: skip


@router.get("/{agreement_id}/move/{purpose}")
def agreement_move_page(page: AdminPage, agreement_id: str, purpose: str,
                        to: str = "") -> Response:  # fmt: skip
    """What moving the purpose to the chosen version would change, before it is done."""
    return _move_page(page, agreement_id, purpose[:32], to[:96])


@router.post("/{agreement_id}/move/{purpose}")
async def agreement_move(page: AdminPage, request: Request, agreement_id: str,
                         purpose: str) -> Response:  # fmt: skip
    form = await require_token(page, request)
    to = str(form.get("to", ""))[:96]
    try:
        with page.db.begin_nested():
            proposal = agreement_policies.propose_move(page.db, agreement_id, purpose[:32], to)
            agreement_policies.move(page.db, page.acting, proposal,
                                    confirm_widening=form.get("confirm_widening") == "on")
    except WideningNotConfirmed:
        return _move_page(page, agreement_id, purpose[:32], to, 409, errors={"confirm_widening": [
            page._("The new version discloses more: tick the confirmation to move")]})
    except NotFound:
        raise PageError(404, N_("No such agreement")) from None
    except FlowError as exc:
        return _move_page(page, agreement_id, purpose[:32], to, 422,
                          errors=field_errors(exc, page._))  # fmt: skip
    return RedirectResponse(f"/console/agreements/{agreement_id}?done=moved", 303)
