"""Consent: append-only events (grant | withdraw) and the feed effects of a change; current
consent is their fold (`exchange.services.consent_state`).

Rules (PIPL): pregnancy_health and birth_health are sensitive and need separate consent
(Art. 29): a grant naming them must say `separate=True`; child_data needs the guardian's
consent (Art. 31). Withdrawal is immediate (Art. 15): withdrawing service_contact revokes the
resident's assignments under the agreement and tombstones them; any other change re-announces
the assignments so the contractor's next sync carries the reduced (or widened) view.

A consent event names an agreement, or the programme (then it applies to every agreement).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import Outcome
from exchange.db import models as m
from exchange.db.models.codes import CONSENT_METHODS, CONSENT_SCOPES
from exchange.identity import Acting
from exchange.services.assignments import active_for_resident, bump, revoke_assignment
from exchange.services.audit_access import record, subject
from exchange.services.consent_state import current_consent, events
from exchange.services.errors import Conflict, FieldErrors, InvalidInput, NotFound
from exchange.services.residents import visible_resident
from keys.keyring import Keyring

SENSITIVE_SCOPES = frozenset({"pregnancy_health", "birth_health"})
GUARDIAN_SCOPES = frozenset({"child_data"})
REQUIRED_SCOPE = "service_contact"
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_NOTICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}\Z")
_PROGRAMME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")


@dataclass(frozen=True, slots=True)
class ConsentInput:
    scopes: tuple[str, ...]
    method: str
    notice_version: str
    evidence_sha256: str
    agreement_id: str | None = None
    programme: str | None = None
    separate: bool = False  # the sensitive scopes were asked and agreed to on their own
    guardian: bool = False  # child_data given by the infant's guardian


def _validate(data: ConsentInput, action: str) -> list[str]:
    """The scopes in catalogue order; every field problem raised at once."""
    errors = FieldErrors()
    if (data.agreement_id is None) == (data.programme is None):
        errors.add("agreement_id", "agreement_or_programme",
                   "give exactly one of agreement_id and programme")  # fmt: skip
    if data.programme is not None and not _PROGRAMME.match(data.programme):
        errors.add("programme", "format", "must be a lower-case code")
    scopes = list(data.scopes)
    unknown = sorted(set(scopes) - set(CONSENT_SCOPES))
    if not scopes:
        errors.add("scopes", "required", "name at least one consent scope")
    elif unknown:
        errors.add("scopes", "scope_unknown", f"unknown scope(s): {', '.join(unknown)}")
    elif len(set(scopes)) != len(scopes):
        errors.add("scopes", "duplicate", "a scope is named twice")
    if data.method not in CONSENT_METHODS:
        errors.add("method", "method_unknown", f"must be one of {', '.join(CONSENT_METHODS)}")
    if not _NOTICE.match(data.notice_version):
        errors.add("notice_version", "format", "must be 1-32 characters [A-Za-z0-9._-]")
    if not _SHA256.match(data.evidence_sha256):
        errors.add("evidence_sha256", "format", "must be 64 lower-case hexadecimal digits")
    if action == "grant":
        if set(scopes) & SENSITIVE_SCOPES and not data.separate:
            errors.add(
                "separate", "separate_consent_required",
                "pregnancy_health and birth_health need separate consent (PIPL Art. 29): "
                "record them with separate=true",
            )  # fmt: skip
        if set(scopes) & GUARDIAN_SCOPES and not data.guardian:
            errors.add("guardian", "guardian_consent_required",
                       "child_data needs the guardian's consent (PIPL Art. 31)")  # fmt: skip
    errors.raise_any()
    return sorted(scopes, key=CONSENT_SCOPES.index)


def _append(
    session: Session, keyring: Keyring, acting: Acting, resident: m.Resident, action: str,
    data: ConsentInput,
) -> tuple[m.ConsentEvent, list[str]]:  # fmt: skip
    scopes = _validate(data, action)
    if resident.erased_at is not None:
        raise Conflict("the resident was erased")
    if data.agreement_id is not None and session.get(m.Agreement, data.agreement_id) is None:
        raise InvalidInput.field("agreement_id", "unknown", "no such agreement")
    last = session.scalar(
        select(func.max(m.ConsentEvent.sequence)).where(m.ConsentEvent.resident_id == resident.id)
    )
    event = m.ConsentEvent(
        resident_id=resident.id, sequence=(last or 0) + 1, agreement_id=data.agreement_id,
        programme=data.programme, action=action, scopes=scopes, method=data.method,
        notice_version=data.notice_version, evidence_sha256=data.evidence_sha256,
        guardian=data.guardian, recorded_at=acting.now, recorded_by=acting.identity.id,
    )  # fmt: skip
    session.add(event)
    session.flush()
    record(session, acting, "consent.record", agreement=data.agreement_id,
           subjects=[subject(keyring, resident.id, consents=(event.id,))],
           outcome=Outcome("ok", f"consent.{action}"))  # fmt: skip
    return event, scopes


def _affected(session: Session, resident_id: str, data: ConsentInput) -> list[m.Assignment]:
    agreements = None if data.agreement_id is None else [data.agreement_id]
    return active_for_resident(session, resident_id, agreements)


def grant(
    session: Session, keyring: Keyring, acting: Acting, resident_id: str, data: ConsentInput
) -> m.ConsentEvent:
    resident = visible_resident(session, acting, resident_id)
    event, _ = _append(session, keyring, acting, resident, "grant", data)
    for assignment in _affected(session, resident.id, data):
        bump(session, assignment)  # the contractor's view may widen
    return event


def withdraw(
    session: Session, keyring: Keyring, acting: Acting, resident_id: str, data: ConsentInput
) -> m.ConsentEvent:
    resident = visible_resident(session, acting, resident_id)
    event, _ = _append(session, keyring, acting, resident, "withdraw", data)
    for assignment in _affected(session, resident.id, data):
        if REQUIRED_SCOPE not in current_consent(session, resident.id, assignment.agreement_id):
            revoke_assignment(session, keyring, acting, assignment, "consent_withdrawn")
        else:
            bump(session, assignment)  # the contractor's next sync carries the reduced view
    session.flush()
    return event


class ConsentEventView(TypedDict):
    id: str
    sequence: int
    action: str
    scopes: list[str]
    agreement_id: str | None
    programme: str | None
    method: str
    notice_version: str
    evidence_sha256: str
    guardian: bool
    recorded_at: str
    recorded_by: str


class ConsentHistory(TypedDict):
    events: list[ConsentEventView]
    current: dict[str, list[str]]  # agreement id -> the scopes consented to now


def event_view(event: m.ConsentEvent) -> ConsentEventView:
    return {
        "id": event.id, "sequence": event.sequence, "action": event.action,
        "scopes": list(event.scopes), "agreement_id": event.agreement_id,
        "programme": event.programme, "method": event.method,
        "notice_version": event.notice_version, "evidence_sha256": event.evidence_sha256,
        "guardian": event.guardian, "recorded_at": event.recorded_at.isoformat(),
        "recorded_by": event.recorded_by,
    }  # fmt: skip


def history(session: Session, acting: Acting, resident_id: str) -> ConsentHistory:
    """Every consent event of the resident in order, and the current consent per agreement."""
    if acting.identity.role == "auditor":  # no personal value here; auditors check consent
        found = session.get(m.Resident, resident_id) if len(resident_id) <= 36 else None
        if found is None:
            raise NotFound("no such resident")
        resident = found
    else:
        resident = visible_resident(session, acting, resident_id)
    history_events = events(session, resident.id, None)
    agreements = sorted({e.agreement_id for e in history_events if e.agreement_id})
    current = {a: sorted(current_consent(session, resident.id, a)) for a in agreements}
    return {"events": [event_view(e) for e in history_events], "current": current}
