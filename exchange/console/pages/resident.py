"""One resident's page: her masked record with 查看明文, the consent timeline and the form to
record consent or its withdrawal, assignments (pick 4 of 6, bookings, revoke after a
confirmation that says what it will do), the contractor's service records, and the printable
个人信息查阅记录 ("who saw my data").

Every action is one service call (consent, assignments, reveal, requests), which checks scope
and audits; a refused form shows the fields named in the reader's words and changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData, UploadFile

from exchange.console.context import OfficePage, Page, PageError
from exchange.console.csrf import require_token
from exchange.console.forms import field_errors
from exchange.console.i18n import N_
from exchange.console.pages.residents import STAGE_LABELS
from exchange.console.templating import render
from exchange.db import models as m
from exchange.db.models.codes import CONSENT_METHODS, CONSENT_SCOPES, SERVICES
from exchange.db.models.reveal import REVEAL_FIELDS, REVEAL_REASONS
from exchange.services import assignments, consent, resident_ledger, reveal
from exchange.services import requests as resident_requests
from exchange.services.errors import FlowError, InvalidInput, NotFound

router = APIRouter()

PROGRAMME = "cy1000"  # consent to the whole programme: every agreement under it
EVIDENCE_MAX = 10 * 1024 * 1024
SCOPE_LABELS = {
    "service_contact": N_("Service contact"),
    "pregnancy_health": N_("Pregnancy health (sensitive)"),
    "birth_health": N_("Birth health (sensitive)"),
    "child_data": N_("Infant data (child)"),
}
METHOD_LABELS = {"paper": N_("Signed paper form"), "phone": N_("By telephone"),
                 "wechat": N_("By WeChat")}  # fmt: skip
SERVICE_LABELS = {
    "mid_pregnancy": N_("Mid-pregnancy guidance"),
    "late_pregnancy": N_("Late-pregnancy guidance"),
    "confinement": N_("Confinement guidance"),
    "early_education": N_("Early-education guidance"),
    "postpartum_recovery": N_("Postpartum-recovery guidance"),
    "parenting": N_("Parenting guidance"),
}
SEX_LABELS = {"M": N_("Boy"), "F": N_("Girl")}
REVEAL_LABELS = {"name": N_("Name"), "national_id": N_("ID number"), "phone": N_("Phone"),
                 "address": N_("Full address")}  # fmt: skip
REASON_LABELS = {
    "home_service_contact": N_("Contact for a home service"),
    "identity_check": N_("Identity check"),
    "resident_request": N_("The resident's own request"),
    "other": N_("Other"),
}
# catalogue field names, as the "who saw my data" report lists them
FIELD_NAMES = {
    "resident.name": N_("Name"), "resident.national_id": N_("ID number"),
    "resident.phone": N_("Phone"), "resident.birth_date": N_("Birth date"),
    "address.district": N_("District"), "address.street": N_("Street"),
    "address.community": N_("Community"), "address.compound": N_("Compound"),
    "address.building": N_("Building"), "address.unit": N_("Unit"), "address.room": N_("Room"),
    "episode.stage": N_("Stage"), "episode.due_date": N_("Due date"),
    "episode.delivery_date": N_("Delivery date"), "episode.parity": N_("Parity"),
    "episode.risk_flags": N_("Risk factors"), "child.birth_date": N_("Infant's birth date"),
    "child.sex": N_("Infant's sex"),
}  # fmt: skip
PURPOSE_LABELS = {"home_visit": N_("Home visit"), "online_guidance": N_("Online guidance"),
                  "class_invitation": N_("Class invitation")}  # fmt: skip
assert set(SCOPE_LABELS) == set(CONSENT_SCOPES) and set(METHOD_LABELS) == set(CONSENT_METHODS)
assert set(SERVICE_LABELS) == set(SERVICES) and set(REVEAL_LABELS) == set(REVEAL_FIELDS)
assert set(REASON_LABELS) == set(REVEAL_REASONS)


def _resident_or_404(call: Any) -> Any:
    try:
        return call()
    except NotFound:
        raise PageError(404, N_("No such resident")) from None


def _names(page: Page, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = page.db.execute(select(m.Principal.id, m.Principal.display_name)
                           .where(m.Principal.id.in_(ids)))  # fmt: skip
    return dict(rows.all())


def _agreements(page: Page) -> dict[str, tuple[str, str, str]]:
    """Agreement id -> (reference, contractor name, status), for labels and choices."""
    rows = page.db.execute(
        select(m.Agreement.id, m.Agreement.reference, m.Contractor.name, m.Agreement.status)
        .join(m.Contractor, m.Contractor.id == m.Agreement.contractor_id)
        .order_by(m.Agreement.reference)
    )  # fmt: skip
    return {aid: (ref, name, status) for aid, ref, name, status in rows}


def detail_page(page: Page, resident_id: str, status: int = 200, **extra: Any) -> Response:
    """The resident page; `extra` carries a revealed value or a form's errors and values."""
    acting = page.acting
    record = _resident_or_404(
        lambda: resident_ledger.detail(page.db, page.keyring, acting, resident_id))
    history = consent.history(page.db, acting, resident_id)
    _, held = assignments.list_assignments(page.db, acting, resident_id=resident_id, limit=200)
    records = {a["id"]: assignments.service_records(page.db, page.keyring, acting, a["id"])
               for a in held}  # fmt: skip
    agreements = _agreements(page)
    people = _names(page, {e["recorded_by"] for e in history["events"]})
    values = {"consent": {"action": "grant", "basis": "", "scopes": [], "method": "paper",
                          "notice_version": "", "separate": False, "guardian": False},
              "assign": {"agreement": "", "services": [], "booking_service": "",
                         "booking_on": ""}}  # fmt: skip
    values.update(extra.pop("values", {}))
    context = {
        "r": record, "history": history, "assignments": held, "records": records,
        "agreements": agreements, "people": people, "values": values,
        "active_agreements": {k: v for k, v in agreements.items() if v[2] == "active"},
        "programme": PROGRAMME, "stage_labels": STAGE_LABELS, "scope_labels": SCOPE_LABELS,
        "method_labels": METHOD_LABELS, "service_labels": SERVICE_LABELS,
        "reveal_labels": REVEAL_LABELS, "sex_labels": SEX_LABELS,
        "reason_labels": REASON_LABELS, "revealed": None,
        "reveal_errors": {}, "consent_errors": {}, "assign_errors": {}, "booking_errors": {},
        "done": page.request.query_params.get("done", ""), "personal": True,
    }  # fmt: skip
    context.update(extra)
    return render(page, "residents/detail.html", status, **context)


@router.get("/residents/{resident_id}")
def resident_detail(page: OfficePage, resident_id: str) -> Response:
    return detail_page(page, resident_id)


@router.post("/residents/{resident_id}/reveal")
async def resident_reveal(page: OfficePage, request: Request, resident_id: str) -> Response:
    form = await require_token(page, request)
    field = str(form.get("field", ""))
    page.require("residents.reveal")
    policy = reveal.policy_for(page.settings)
    try:
        shown = _resident_or_404(lambda: reveal.reveal(
            page.db, page.keyring, page.acting, resident_id, field,
            str(form.get("reason", "")), str(form.get("note", ""))[:1000], policy))  # fmt: skip
    except reveal.RevealRateLimited:
        # the refusal's audit entry commits with this page (no exception leaves the route)
        return detail_page(page, resident_id, 429, reveal_errors={"": [page._(
            "You have reached the hourly limit of full views; try again later")]},
            reveal_field=field)  # fmt: skip
    except FlowError as exc:
        return detail_page(page, resident_id, 422, reveal_errors=field_errors(exc, page._),
                           reveal_field=field)  # fmt: skip
    seconds = page.settings.console_reveal_seconds
    return detail_page(page, resident_id, revealed=shown, reveal_seconds=seconds)


def _evidence(form: FormData, required: bool) -> tuple[str, bool]:
    """SHA-256 of the uploaded evidence (the file itself is not kept); ("", False) if none."""
    upload = form.get("evidence")
    if isinstance(upload, UploadFile) and upload.filename:
        digest = hashlib.sha256()
        size = 0
        while chunk := upload.file.read(1 << 16):
            size += len(chunk)
            if size > EVIDENCE_MAX:
                raise InvalidInput.field("evidence", "too_large", "at most 10 MB")
            digest.update(chunk)
        return digest.hexdigest(), True
    if required:
        raise InvalidInput.field("evidence", "required", "attach the signed consent form")
    return hashlib.sha256(b"").hexdigest(), False  # a withdrawal needs no proof (as the CLI)


@router.post("/residents/{resident_id}/consent")
async def resident_consent(page: OfficePage, request: Request, resident_id: str) -> Response:
    page.require("consents.write")
    form = await require_token(page, request)
    action = "withdraw" if form.get("action") == "withdraw" else "grant"
    basis = str(form.get("basis", ""))
    scopes = [str(s) for s in form.getlist("scopes")][:8]
    values: dict[str, object] = {"action": action, "basis": basis, "scopes": scopes,
              "method": str(form.get("method", "")),
              "notice_version": str(form.get("notice_version", ""))[:32],
              "separate": form.get("separate") == "on",
              "guardian": form.get("guardian") == "on"}  # fmt: skip
    try:
        digest, _ = _evidence(form, required=action == "grant")
        data = consent.ConsentInput(
            scopes=tuple(scopes), method=str(values["method"]),
            notice_version=str(values["notice_version"]), evidence_sha256=digest,
            agreement_id=None if basis in ("", f"programme:{PROGRAMME}") else basis,
            programme=PROGRAMME if basis == f"programme:{PROGRAMME}" else None,
            separate=bool(values["separate"]), guardian=bool(values["guardian"]),
        )  # fmt: skip
        with page.db.begin_nested():
            call = consent.grant if action == "grant" else consent.withdraw
            _resident_or_404(lambda: call(page.db, page.keyring, page.acting, resident_id, data))
    except FlowError as exc:
        return detail_page(page, resident_id, 422, consent_errors=field_errors(exc, page._),
                           values={"consent": values})  # fmt: skip
    return RedirectResponse(f"/console/residents/{resident_id}?done=consent#consent", 303)


def _booking(form: FormData, service_key: str,
             date_key: str) -> tuple[assignments.BookingInput, ...]:  # fmt: skip
    service, on = str(form.get(service_key, "")), str(form.get(date_key, ""))
    if not service and not on:
        return ()
    try:
        day = date.fromisoformat(on)
    except ValueError:
        raise InvalidInput.field("bookings.0.on", "format", "must be YYYY-MM-DD") from None
    return (assignments.BookingInput(service, day),)


@router.post("/residents/{resident_id}/assignments")
async def resident_assign(page: OfficePage, request: Request, resident_id: str) -> Response:
    page.require("assignments.write")
    form = await require_token(page, request)
    agreement_id = str(form.get("agreement", ""))
    services = [str(s) for s in form.getlist("services")][:8]
    values: dict[str, object] = {"agreement": agreement_id, "services": services,
              "booking_service": str(form.get("booking_service", "")),
              "booking_on": str(form.get("booking_on", ""))}  # fmt: skip
    try:
        agreement = page.db.get(m.Agreement, agreement_id) if agreement_id else None
        if agreement is None:
            raise InvalidInput.field("agreement_id", "required", "choose an agreement")
        data = assignments.AssignmentInput(
            resident_id=resident_id, contractor_id=agreement.contractor_id,
            agreement_id=agreement.id, services=tuple(services),
            bookings=_booking(form, "booking_service", "booking_on"),
        )  # fmt: skip
        with page.db.begin_nested():
            _resident_or_404(lambda: assignments.create(page.db, page.keyring, page.acting, data))
    except FlowError as exc:
        return detail_page(page, resident_id, 422, assign_errors=field_errors(exc, page._),
                           values={"assign": values})  # fmt: skip
    return RedirectResponse(f"/console/residents/{resident_id}?done=assigned#assignments", 303)


def _assignment(page: Page, assignment_id: str) -> assignments.AssignmentView:
    try:
        return assignments.get(page.db, page.acting, assignment_id)
    except NotFound:
        raise PageError(404, N_("No such assignment")) from None


@router.post("/assignments/{assignment_id}/bookings")
async def assignment_booking(page: OfficePage, request: Request, assignment_id: str) -> Response:
    page.require("assignments.write")
    form = await require_token(page, request)
    held = _assignment(page, assignment_id)
    try:
        bookings = _booking(form, "service", "on")
        if not bookings:
            raise InvalidInput.field("bookings.0.on", "required", "give the service and date")
        with page.db.begin_nested():
            assignments.add_booking(page.db, page.keyring, page.acting, assignment_id,
                                    bookings[0])  # fmt: skip
    except FlowError as exc:
        return detail_page(page, held["resident_id"], 422,
                           booking_errors={assignment_id: field_errors(exc, page._)})  # fmt: skip
    return RedirectResponse(f"/console/residents/{held['resident_id']}?done=booked#assignments",
                            303)  # fmt: skip


@router.get("/assignments/{assignment_id}/revoke")
def assignment_revoke_page(page: OfficePage, assignment_id: str) -> Response:
    """The confirmation: what revoking will do, in words, before it is done."""
    page.require("assignments.write")
    held = _assignment(page, assignment_id)
    return render(page, "residents/revoke.html", a=held, agreements=_agreements(page),
                  service_labels=SERVICE_LABELS)  # fmt: skip


@router.post("/assignments/{assignment_id}/revoke")
async def assignment_revoke(page: OfficePage, request: Request, assignment_id: str) -> Response:
    page.require("assignments.write")
    await require_token(page, request)
    held = _assignment(page, assignment_id)
    try:
        with page.db.begin_nested():
            assignments.revoke(page.db, page.keyring, page.acting, assignment_id)
    except FlowError as exc:
        return render(page, "residents/revoke.html", 409, a=held, agreements=_agreements(page),
                      service_labels=SERVICE_LABELS,
                      errors=field_errors(exc, page._))  # fmt: skip
    return RedirectResponse(f"/console/residents/{held['resident_id']}?done=revoked#assignments",
                            303)  # fmt: skip


@router.get("/residents/{resident_id}/report")
def disclosure_report(page: OfficePage, resident_id: str) -> Response:
    """个人信息查阅记录: every disclosure of her data (to whom, when, which fields, why) and
    every deletion notice; printable."""
    page.require("disclosures.read")
    report = _resident_or_404(lambda: resident_requests.disclosures(
        page.db, page.keyring, page.acting, resident_id))  # fmt: skip
    record = resident_ledger.detail(page.db, page.keyring, page.acting, resident_id)
    reasons = _reveal_reasons(page, [d["audit_index"] for d in report["disclosures"]])
    return render(page, "residents/report.html", report=report, r=record,
                  agreements=_agreements(page), reasons=reasons, reason_labels=REASON_LABELS,
                  field_labels=FIELD_NAMES, purpose_labels=PURPOSE_LABELS,
                  personal=True)  # fmt: skip


def _reveal_reasons(page: Page, indexes: list[int]) -> dict[int, str]:
    """The reason codes of the reveals among these audit entries (kept with each reveal)."""
    if not indexes:
        return {}
    rows = page.db.execute(select(m.Reveal.audit_index, m.Reveal.reason)
                           .where(m.Reveal.audit_index.in_(indexes)))  # fmt: skip
    return dict(rows.all())
