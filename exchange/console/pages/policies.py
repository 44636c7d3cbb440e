"""策略版本: the published policy versions, and publishing a new one from an uploaded TOML file.

The same steps as `exchange policy publish FILE` (services.published_policies): the document is
checked as `policy check` checks it, compared with the version in force, shown with the
agreements on each version; a change that newly discloses anything needs a ticked
confirmation; the publication is stored with its hash and audited. Agreements keep their
version until moved (the agreement's page). The document travels from the check to the
confirmation base64-encoded (a form would turn its line ends into CRLF and change its hash),
and the confirmation is refused unless it is the document whose hash was shown.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from exchange.console.context import AdminPage, Page, PageError
from exchange.console.csrf import require_token
from exchange.console.forms import field_errors
from exchange.console.i18n import N_
from exchange.console.policy_words import PolicyWords
from exchange.console.templating import render
from exchange.services import policy_views
from exchange.services import published_policies as store
from exchange.services.errors import Conflict, FlowError, InvalidInput, NotFound

router = APIRouter(prefix="/policies")
MAX_DOCUMENT = 64 * 1024
_VERSION_IN_FORCE = "is in force; a new document needs a higher version"


def _list(page: Page, status: int = 200, errors: dict[str, list[str]] | None = None,
          done: str = "") -> Response:  # fmt: skip
    return render(page, "policies/list.html", status, listing=store.list_view(page.db)["items"],
                  errors=errors or {}, done=done, words=PolicyWords(page._))  # fmt: skip


@router.get("")
def policy_list(page: AdminPage, done: str = "") -> Response:
    return _list(page, done=done[:96])


def _errors(page: Page, exc: FlowError) -> dict[str, list[str]]:
    """A policy's own problems keep the checker's words (line and key, never personal data)
    after the translated label; a version not above the one in force is said plainly."""
    if isinstance(exc, Conflict) and _VERSION_IN_FORCE in exc.detail:
        return {"": [page._("This version is not above the version in force: raise `version` "
                            "in the document")]}  # fmt: skip
    out = field_errors(exc, page._)
    for problem in exc.errors:
        if problem.reason == "policy_invalid":
            label = page._("The policy document is not valid") + page._(": ")
            out[problem.field] = [label + problem.message]
    return out


async def _upload(request: Request) -> tuple[str, str]:
    form = await request.form()
    upload = form.get("document")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput.field("document", "required", "choose a policy file (.toml)")
    data = await upload.read(MAX_DOCUMENT + 1)
    if len(data) > MAX_DOCUMENT:
        raise InvalidInput.field("document", "policy_too_large", "at most 64 KiB")
    if not upload.filename.lower().endswith(".toml"):
        raise InvalidInput.field("document", "policy_file_type", "must be a .toml file")
    try:
        return data.decode("utf-8"), upload.filename[:128]
    except UnicodeDecodeError:
        raise InvalidInput.field("document", "format", "must be UTF-8 text") from None


def _proposal_page(page: Page, proposal: store.Proposal, status: int = 200,
                   errors: dict[str, list[str]] | None = None) -> Response:  # fmt: skip
    policy = policy_views.summary(proposal.policy)
    used = [(version, users) for (pid, version), users in sorted(store.usage(page.db).items())
            if pid == policy["id"]]  # fmt: skip
    return render(page, "policies/proposal.html", status, policy=policy,
                  in_force=proposal.in_force.identity.reference if proposal.in_force else None,
                  changes=policy_views.change_views(proposal.changes), widens=proposal.widens,
                  already=proposal.already_published, used=used,
                  encoded=base64.b64encode(proposal.text.encode("utf-8")).decode("ascii"),
                  errors=errors or {}, words=PolicyWords(page._))  # fmt: skip


@router.post("/check")
async def policy_check(page: AdminPage, request: Request) -> Response:
    """The uploaded document checked and compared with the version in force; nothing is
    written yet."""
    await require_token(page, request)
    try:
        text, name = await _upload(request)
        proposal = store.propose(page.db, text, name)
    except FlowError as exc:
        return _list(page, 422 if exc.status == 422 else 409, errors=_errors(page, exc))
    return _proposal_page(page, proposal)


@router.post("/publish")
async def policy_publish(page: AdminPage, request: Request) -> Response:
    form = await require_token(page, request)
    try:
        text = base64.b64decode(str(form.get("document", "")), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise PageError(400, N_("The request could not be completed")) from None
    try:
        proposal = store.propose(page.db, text)
    except FlowError as exc:
        return _list(page, 409, errors=_errors(page, exc))
    if proposal.policy.identity.sha256 != str(form.get("sha256", "")):
        raise PageError(409, N_("The document is not the one that was checked"))
    try:
        with page.db.begin_nested():
            store.publish(page.db, page.acting, proposal,
                          confirm_widening=form.get("confirm_widening") == "on")  # fmt: skip
    except store.WideningNotConfirmed:
        return _proposal_page(page, proposal, 409, errors={"confirm_widening": [page._(
            "The document discloses more: tick the confirmation to publish")]})  # fmt: skip
    except FlowError as exc:
        return _proposal_page(page, proposal, exc.status, errors=_errors(page, exc))
    return RedirectResponse(f"/console/policies?done={proposal.policy.identity.reference}", 303)


@router.get("/{sha256}")
def policy_document(page: AdminPage, sha256: str) -> Response:
    """One published version's document, exactly as published (re-verified against its
    hash)."""
    try:
        document = store.document_view(page.db, sha256[:64])
    except NotFound:
        raise PageError(404, N_("No such policy version")) from None
    parsed = store.published_set(page.db).get(f"{document['id']}@{document['version']}")
    return render(page, "policies/document.html", document=document,
                  policy=policy_views.summary(parsed), words=PolicyWords(page._))  # fmt: skip
