"""Assignments (a resident's case given to a contractor under an agreement, with 4 of the 6
services and their bookings) and the feed changes the contractor reads.

Feed rules (the contractor's `GET /v1/cases` reads them):
- an assignment created or changed takes `change_seq = next_feed_seq(contractor)`;
- a case that stops being visible gets a `Tombstone` with the next sequence, per contractor
  that held it, under its case reference (`keyring.case_reference(agreement, resident)`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload
from typing_extensions import TypedDict

from audit.entry import Outcome
from exchange.db import models as m
from exchange.db.feed import next_feed_seq
from exchange.db.models.codes import SERVICES, validate_services
from exchange.identity import Acting
from exchange.services.audit_access import record, subject
from exchange.services.consent_state import current_consent
from exchange.services.errors import Conflict, FieldErrors, NotFound, check_page
from exchange.services.residents import data_key, visible_resident
from keys.fields import FieldContext
from keys.keyring import Keyring

MAX_PAGE = 200


# -- feed effects -------------------------------------------------------------------------


def bump(session: Session, assignment: m.Assignment) -> None:
    """Re-announce the assignment to its contractor (its view changed)."""
    assignment.change_seq = next_feed_seq(session, assignment.contractor_id)


def tombstone(
    session: Session,
    keyring: Keyring,
    acting: Acting,
    *,
    contractor_id: str,
    agreement_id: str,
    resident_id: str,
    reason: str,
) -> m.Tombstone:
    """Tell the contractor to delete the case; audited as `case.tombstone`."""
    case = keyring.case_reference(agreement_id, resident_id)
    row = m.Tombstone(
        contractor_id=contractor_id, agreement_id=agreement_id, case_reference=case,
        reason=reason, seq=next_feed_seq(session, contractor_id), created_at=acting.now,
    )  # fmt: skip
    session.add(row)
    record(session, acting, "case.tombstone", agreement=agreement_id,
           subjects=[subject(keyring, resident_id, case=case)],
           outcome=Outcome("ok", reason))  # fmt: skip
    return row


def revoke_assignment(
    session: Session, keyring: Keyring, acting: Acting, row: m.Assignment, reason: str
) -> None:
    """Revoke an active assignment and tombstone its case (no-op if already revoked)."""
    if row.status != "active":
        return
    row.status = "revoked"
    row.revoked_at = acting.now
    session.flush()  # frees the one-active slot before anything else is written
    tombstone(session, keyring, acting, contractor_id=row.contractor_id,
              agreement_id=row.agreement_id, resident_id=row.resident_id,
              reason=reason)  # fmt: skip


def active_for_resident(
    session: Session, resident_id: str, agreement_ids: Iterable[str] | None = None
) -> list[m.Assignment]:
    conds = [m.Assignment.resident_id == resident_id, m.Assignment.status == "active"]
    if agreement_ids is not None:
        conds.append(m.Assignment.agreement_id.in_(list(agreement_ids)))
    return list(session.scalars(select(m.Assignment).where(*conds).order_by(m.Assignment.id)))


# -- create / revoke ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookingInput:
    service: str
    on: date


@dataclass(frozen=True, slots=True)
class AssignmentInput:
    resident_id: str
    contractor_id: str
    agreement_id: str
    services: tuple[str, ...]
    bookings: tuple[BookingInput, ...] = ()


def _check_services(
    services: Sequence[str], bookings: Sequence[BookingInput], errors: FieldErrors
) -> list[str]:
    try:
        chosen = validate_services(list(services))
    except ValueError as exc:
        errors.add("services", "services_invalid", str(exc))
        chosen = [s for s in services if s in SERVICES]
    for i, b in enumerate(bookings):
        if b.service not in SERVICES or b.service not in chosen:
            errors.add(f"bookings.{i}.service", "service_not_assigned",
                       "must be one of the assignment's services")  # fmt: skip
    return chosen


def create(session: Session, keyring: Keyring, acting: Acting, data: AssignmentInput) -> str:
    resident = visible_resident(session, acting, data.resident_id)
    if resident.erased_at is not None:
        raise Conflict("the resident was erased")
    errors = FieldErrors()
    services = _check_services(data.services, data.bookings, errors)
    agreement = session.get(m.Agreement, data.agreement_id)
    if agreement is None:
        errors.add("agreement_id", "unknown", "no such agreement")
    elif agreement.contractor_id != data.contractor_id:
        errors.add("contractor_id", "not_party", "the contractor is not party to this agreement")
    errors.raise_any()
    assert agreement is not None
    if agreement.status != "active":
        raise Conflict(f"the agreement is {agreement.status}, not active")
    contractor = session.get(m.Contractor, data.contractor_id)
    if contractor is None or contractor.status != "active":
        raise Conflict("the contractor is not active")
    if "service_contact" not in current_consent(session, resident.id, agreement.id):
        raise Conflict("the resident has not consented to service_contact for this agreement")
    if active_for_resident(session, resident.id, [agreement.id]):
        raise Conflict("the resident already has an active assignment under this agreement")
    row = m.Assignment(
        resident_id=resident.id, contractor_id=contractor.id, agreement_id=agreement.id,
        services=services, status="active", created_by=acting.identity.id,
        change_seq=next_feed_seq(session, contractor.id), created_at=acting.now,
        updated_at=acting.now,
    )  # fmt: skip
    row.bookings = [m.Booking(service_code=b.service, scheduled_on=b.on) for b in data.bookings]
    session.add(row)
    session.flush()
    record(session, acting, "assignment.create", agreement=agreement.id,
           subjects=[subject(keyring, resident.id,
                             case=keyring.case_reference(agreement.id, resident.id))])  # fmt: skip
    return row.id


def visible_assignment(session: Session, acting: Acting, assignment_id: str) -> m.Assignment:
    row = session.get(m.Assignment, assignment_id) if len(assignment_id) <= 36 else None
    if row is None:
        raise NotFound("no such assignment")
    resident = session.get(m.Resident, row.resident_id)
    if resident is None or not acting.identity.sees_community(resident.community_id):
        raise NotFound("no such assignment")
    return row


def revoke(session: Session, keyring: Keyring, acting: Acting, assignment_id: str) -> None:
    row = visible_assignment(session, acting, assignment_id)
    if row.status != "active":
        raise Conflict("the assignment is already revoked")
    revoke_assignment(session, keyring, acting, row, "assignment_revoked")


def add_booking(
    session: Session, keyring: Keyring, acting: Acting, assignment_id: str, booking: BookingInput
) -> None:
    row = visible_assignment(session, acting, assignment_id)
    if row.status != "active":
        raise Conflict("the assignment is revoked")
    errors = FieldErrors()
    _check_services(row.services, [booking], errors)
    errors.raise_any()
    row.bookings.append(m.Booking(service_code=booking.service, scheduled_on=booking.on))
    bump(session, row)
    session.flush()


# -- reading ------------------------------------------------------------------------------


class BookingView(TypedDict):
    service: str
    on: str


class Progress(TypedDict):
    delivered: dict[str, int]
    services_done: int
    services_total: int


class AssignmentView(TypedDict):
    id: str
    resident_id: str
    contractor_id: str
    agreement_id: str
    services: list[str]
    bookings: list[BookingView]
    status: str
    change_seq: int
    created_at: str
    revoked_at: str | None
    progress: Progress


class ServiceRecordView(TypedDict):
    id: str
    service: str
    delivered_at: str
    recorded_at: str
    notes: str | None


def view(row: m.Assignment, delivered: dict[str, int] | None = None) -> AssignmentView:
    done = delivered or {}
    return {
        "id": row.id,
        "resident_id": row.resident_id,
        "contractor_id": row.contractor_id,
        "agreement_id": row.agreement_id,
        "services": list(row.services),
        "bookings": [{"service": b.service_code, "on": b.scheduled_on.isoformat()}
                     for b in sorted(row.bookings, key=lambda b: (b.scheduled_on, b.id))],
        "status": row.status,
        "change_seq": row.change_seq,
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "progress": {
            "delivered": {s: done.get(s, 0) for s in row.services},
            "services_done": sum(1 for s in row.services if done.get(s)),
            "services_total": len(row.services),
        },
    }  # fmt: skip


def _delivered(session: Session, ids: Sequence[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if not ids:
        return out
    for aid, code, count in session.execute(
        select(m.ServiceRecord.assignment_id, m.ServiceRecord.service_code, func.count())
        .where(m.ServiceRecord.assignment_id.in_(ids))
        .group_by(m.ServiceRecord.assignment_id, m.ServiceRecord.service_code)
    ):
        out.setdefault(aid, {})[code] = int(count)
    return out


def get(session: Session, acting: Acting, assignment_id: str) -> AssignmentView:
    row = visible_assignment(session, acting, assignment_id)
    return view(row, _delivered(session, [row.id]).get(row.id))


def list_assignments(
    session: Session,
    acting: Acting,
    *,
    resident_id: str | None = None,
    contractor_id: str | None = None,
    agreement_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[AssignmentView]]:
    check_page(limit, offset, MAX_PAGE)
    conds: list[ColumnElement[bool]] = []
    if acting.identity.role != "office_admin":
        conds.append(m.Resident.community_id.in_(acting.identity.community_ids))
    for column, value in ((m.Assignment.resident_id, resident_id),
                          (m.Assignment.contractor_id, contractor_id),
                          (m.Assignment.agreement_id, agreement_id),
                          (m.Assignment.status, status)):  # fmt: skip
        if value is not None:
            conds.append(column == value)
    base = select(m.Assignment).join(m.Resident, m.Resident.id == m.Assignment.resident_id)
    total = session.scalar(select(func.count()).select_from(base.where(*conds).subquery())) or 0
    rows = session.scalars(
        base.where(*conds).order_by(m.Assignment.created_at, m.Assignment.id)
        .limit(limit).offset(offset).options(selectinload(m.Assignment.bookings))
    ).all()  # fmt: skip
    done = _delivered(session, [r.id for r in rows])
    return int(total), [view(r, done.get(r.id)) for r in rows]


def service_records(
    session: Session, keyring: Keyring, acting: Acting, assignment_id: str
) -> list[ServiceRecordView]:
    """What the contractor reported back; notes decrypted (office roles reach this only)."""
    row = visible_assignment(session, acting, assignment_id)
    resident = session.get(m.Resident, row.resident_id)
    key = data_key(keyring, resident) if resident is not None else None
    out: list[ServiceRecordView] = []
    for rec in session.scalars(
        select(m.ServiceRecord).where(m.ServiceRecord.assignment_id == row.id)
        .order_by(m.ServiceRecord.delivered_at, m.ServiceRecord.id)
    ):  # fmt: skip
        notes = None
        if rec.notes is not None and key is not None:
            notes = keyring.decrypt_field(
                key, rec.notes, FieldContext("service_records", "notes", rec.id)
            )
        out.append({
            "id": rec.id, "service": rec.service_code,
            "delivered_at": rec.delivered_at.isoformat(),
            "recorded_at": rec.recorded_at.isoformat(), "notes": notes,
        })  # fmt: skip
    if out and resident is not None:
        record(session, acting, "service_record.read", agreement=row.agreement_id,
               subjects=[subject(keyring, resident.id)])  # fmt: skip
    return out
