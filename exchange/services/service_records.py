"""Service delivery reported back by a contractor (`POST /v1/cases/{ref}/service-records`).

Idempotent per (contractor, Idempotency-Key): a repeat with the same key and the same request
returns the stored record; the same key with a different request is refused. The service must
be one the assignment chose. Free-text notes are encrypted at rest under the resident's data
key (bound to the record's row) and never echoed back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import AuditEntry, Outcome, Subject
from exchange.db import models as m
from exchange.db.ids import new_id
from exchange.identity import Acting
from exchange.services import auditing
from exchange.services.auditing import AuditSink
from exchange.services.cases import find_assignment_id
from exchange.services.errors import (
    AuditedDenial,
    AuditedRefusal,
    AuditUnavailable,
    CaseNotFound,
    FieldErrors,
    FlowError,
    IdempotencyMismatch,
    InvalidInput,
)
from keys.datakeys import WrappedKey
from keys.errors import KeysError
from keys.fields import FieldContext
from keys.keyring import Keyring

ACTION = "service.record"
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{8,128}")
MAX_NOTES = 2000
CLOCK_SKEW = timedelta(minutes=5)
_NOTES = ("service_records", "notes")


@dataclass(frozen=True, slots=True)
class ServiceReport:
    service: str
    delivered_at: datetime
    notes: str | None = None


class ServiceRecordReceipt(TypedDict):
    """What the contractor gets back (never the notes: only whether some were recorded)."""

    id: str
    case_reference: str
    service: str
    delivered_at: str
    recorded_at: str
    notes_recorded: bool


@dataclass(frozen=True, slots=True)
class Recorded:
    record: ServiceRecordReceipt
    created: bool


def check_key(key: str | None, errors: FieldErrors) -> str:
    if key is None or not IDEMPOTENCY_KEY.fullmatch(key):
        errors.add(
            "Idempotency-Key", "invalid", "header required: 8-128 characters [A-Za-z0-9._:-]"
        )
    return key or ""


def _view(row: m.ServiceRecord, reference: str) -> ServiceRecordReceipt:
    return {
        "id": row.id,
        "case_reference": reference,
        "service": row.service_code,
        "delivered_at": row.delivered_at.astimezone(UTC).isoformat(),
        "recorded_at": row.recorded_at.astimezone(UTC).isoformat(),
        "notes_recorded": row.notes is not None,
    }


def _check(report: ServiceReport, now: datetime, errors: FieldErrors) -> None:
    if report.delivered_at.tzinfo is None:
        errors.add("delivered_at", "naive", "must carry a timezone offset")
    elif report.delivered_at > now + CLOCK_SKEW:
        errors.add("delivered_at", "future", "lies in the future")
    if report.notes is not None and len(report.notes) > MAX_NOTES:
        errors.add("notes", "too_long", f"at most {MAX_NOTES} characters")


def record_service(
    session: Session,
    keyring: Keyring,
    sink: AuditSink,
    acting: Acting,
    contractor_id: str,
    reference: str,
    idempotency_key: str | None,
    report: ServiceReport,
) -> Recorded:
    """Store (or find the stored) record; raises CaseNotFound, InvalidInput, IdempotencyMismatch.

    Every refusal is audited (issue 14): a `service.record` entry denied with the refusal's
    reason code (and the refused field names, never their values), committed although the
    request fails (the refusal is answered as an `AuditedRefusal`, a CaseNotFound as itself)."""
    try:
        return _record(session, keyring, sink, acting, contractor_id, reference,
                       idempotency_key, report)  # fmt: skip
    except FlowError as exc:
        if isinstance(exc, AuditUnavailable):
            raise
        reason = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
        fields = tuple(dict.fromkeys(p.field for p in exc.errors))
        denial = AuditEntry(time=acting.now, actor=acting.actor, action=ACTION,
                            request_id=acting.request_id, outcome=Outcome("denied", reason),
                            details={**acting.details,
                                     **({"refused.fields": fields} if fields else {})})
        auditing.append(session, sink, [denial])
        if isinstance(exc, AuditedDenial):
            raise
        raise AuditedRefusal(exc) from None


def _record(
    session: Session,
    keyring: Keyring,
    sink: AuditSink,
    acting: Acting,
    contractor_id: str,
    reference: str,
    idempotency_key: str | None,
    report: ServiceReport,
) -> Recorded:
    errors = FieldErrors()
    key = check_key(idempotency_key, errors)
    _check(report, acting.now, errors)
    errors.raise_any()
    assignment_id = find_assignment_id(session, keyring, contractor_id, reference)
    if assignment_id is None:
        raise CaseNotFound()
    assignment = session.get_one(m.Assignment, assignment_id)
    # FOR SHARE: a data-key rotation (FOR UPDATE) waits for this record to commit and then
    # re-encrypts it too; one that came first hands us its new key. PostgreSQL; SQLite
    # serialises writers anyway.
    wrapped = session.get(m.ResidentDataKey, assignment.resident_id,
                          with_for_update={"read": True})
    if wrapped is None:  # erased: the case can no longer be written to
        raise CaseNotFound()
    data_key = keyring.unwrap(WrappedKey.from_bytes(bytes(wrapped.wrapped_key)),
                              assignment.resident_id)

    existing = session.scalars(
        select(m.ServiceRecord).where(
            m.ServiceRecord.contractor_id == contractor_id,
            m.ServiceRecord.idempotency_key == key,
        )
    ).first()
    if existing is not None:
        same = (
            existing.assignment_id == assignment_id
            and existing.service_code == report.service
            and existing.delivered_at == report.delivered_at
            and _notes(keyring, data_key, existing) == report.notes
        )
        if not same:
            raise IdempotencyMismatch()
        return Recorded(_view(existing, reference), created=False)

    if report.service not in assignment.services:
        raise InvalidInput.field(
            "service", "not_assigned", "not one of the services chosen for this case"
        )
    row_id = new_id()
    row = m.ServiceRecord(
        id=row_id,
        assignment_id=assignment_id,
        contractor_id=contractor_id,
        service_code=report.service,
        idempotency_key=key,
        delivered_at=report.delivered_at,
        notes=None
        if report.notes is None
        else keyring.encrypt_field(data_key, report.notes, FieldContext(*_NOTES, row_id)),
        recorded_at=acting.now,
    )
    session.add(row)
    session.flush()
    subject = Subject(keyring.audit_pseudonym(assignment.resident_id), reference)
    auditing.append(
        session,
        sink,
        [auditing.entry(acting, ACTION, subjects=[subject], agreement=assignment.agreement_id)],
    )
    return Recorded(_view(row, reference), created=True)


def _notes(keyring: Keyring, data_key: Any, row: m.ServiceRecord) -> str | None:
    if row.notes is None:
        return None
    try:
        return keyring.decrypt_field(data_key, row.notes, FieldContext(*_NOTES, row.id))
    except KeysError:
        return "\x00unreadable"  # never equal to a submitted note: treated as a mismatch
