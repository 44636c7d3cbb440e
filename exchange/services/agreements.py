"""Entrustment agreements (PIPL Art. 21): contractor, purposes -> published policy versions,
period, retention, approved sub-processors, and their lifecycle (moving a purpose to another
policy version: `agreement_policies`).

    draft --activate--> active --suspend--> suspended --activate--> active
    any but terminated --terminate--> terminated (final)

Suspending tombstones every active case of the agreement (the contractor must stop and delete);
re-activating re-announces them. Terminating revokes every assignment, with tombstones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload
from typing_extensions import TypedDict

from audit.entry import Outcome
from exchange.db import models as m
from exchange.db.models.codes import PURPOSES
from exchange.identity import Acting
from exchange.services.assignments import bump, revoke_assignment, tombstone
from exchange.services.audit_access import record
from exchange.services.errors import Conflict, FieldErrors, NotFound
from exchange.services.policy_views import (
    ChangeView,
    PolicySummary,
    change_views,
    previous_version,
    summary,
)
from exchange.services.published_policies import published_set
from keys.keyring import Keyring
from policies.diff import diff_policies, introduce
from policies.errors import PolicyError
from policies.results import policy_reference

_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}\Z")
MAX_RETENTION_DAYS = 3650
# No tombstone reason names suspension; the contractor must delete either way and receives
# the case again on re-activation.
SUSPENSION_REASON = "assignment_revoked"


@dataclass(frozen=True, slots=True)
class AgreementInput:
    contractor_id: str
    reference: str
    valid_from: date
    valid_to: date
    retention_days: int
    purposes: Mapping[str, str]  # purpose -> policy id (its latest version) or id@version
    sub_processors: Sequence[str] = field(default_factory=tuple)


def _validate(session: Session, data: AgreementInput, errors: FieldErrors | None = None,
              *, dates_known: bool = True) -> list[tuple[str, str, int]]:  # fmt: skip
    """(purpose, policy id, version) of each purpose; every field problem raised at once
    (with those already in `errors`)."""
    errors = errors if errors is not None else FieldErrors()
    if not _REFERENCE.match(data.reference):
        errors.add("reference", "format", "must be 1-64 characters [A-Za-z0-9._/-]")
    if dates_known and data.valid_to < data.valid_from:
        errors.add("valid_to", "before_valid_from", "must not be before valid_from")
    if not 1 <= data.retention_days <= MAX_RETENTION_DAYS:
        errors.add("retention_days", "out_of_range", f"must be 1-{MAX_RETENTION_DAYS}")
    if not data.purposes:
        errors.add("purposes", "required", "name at least one purpose")
    for i, sub in enumerate(data.sub_processors):
        if not isinstance(sub, str) or not 1 <= len(sub.strip()) <= 128:
            errors.add(f"sub_processors.{i}", "format", "must be 1-128 characters")
    contractor = session.get(m.Contractor, data.contractor_id) if len(
        data.contractor_id) <= 36 else None  # fmt: skip
    if contractor is None:
        errors.add("contractor_id", "unknown", "no such contractor")
    policies = published_set(session)  # a bare id: its latest version
    out = []
    for purpose, policy_id in sorted(data.purposes.items()):
        where = f"purposes.{purpose}"
        if purpose not in PURPOSES:
            errors.add(where, "purpose_unknown", f"purpose must be one of {', '.join(PURPOSES)}")
            continue
        try:
            policy = policies.get(policy_id)
        except PolicyError:
            errors.add(where, "policy_unknown", "no such published policy")
            continue
        if policy.purpose != purpose:
            errors.add(where, "policy_purpose_mismatch", f"that policy is for {policy.purpose}")
            continue
        out.append((purpose, policy.id, policy.identity.version))
    errors.raise_any()
    return out


def create(session: Session, acting: Acting, data: AgreementInput) -> m.Agreement:
    purposes = _validate(session, data)
    if session.scalar(select(m.Agreement.id).where(m.Agreement.reference == data.reference)):
        raise Conflict("an agreement with this reference exists")
    return _insert(session, acting, data, purposes)


@dataclass(frozen=True, slots=True)
class AgreementText:
    """An agreement as typed into a form: dates and numbers still text, one sub-processor a
    line, purpose -> published version reference (empty: not agreed)."""

    contractor_id: str
    reference: str
    valid_from: str
    valid_to: str
    retention_days: str
    purposes: Mapping[str, str]
    sub_processors: str = ""


def _day(errors: FieldErrors, name: str, text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        errors.add(name, "required" if not text.strip() else "date_format", "must be YYYY-MM-DD")
        return None


def create_from_text(session: Session, acting: Acting, text: AgreementText) -> m.Agreement:
    """`create` from a form's text: every problem of every field at once, the reference
    already in use among them (the form names it; the API answers 409)."""
    errors = FieldErrors()
    start, end = _day(errors, "valid_from", text.valid_from), _day(errors, "valid_to",
                                                                   text.valid_to)  # fmt: skip
    days = text.retention_days.strip()
    if not days.isdigit() or len(days) > 6:
        errors.add("retention_days", "required" if not days else "out_of_range",
                   f"must be 1-{MAX_RETENTION_DAYS}")  # fmt: skip
    subs = tuple(line.strip() for line in text.sub_processors.splitlines() if line.strip())
    data = AgreementInput(
        contractor_id=text.contractor_id, reference=text.reference.strip(),
        valid_from=start or date.min, valid_to=end or date.max,
        retention_days=int(days) if days.isdigit() and len(days) <= 6 else 1,
        purposes={p: ref for p, ref in text.purposes.items() if ref}, sub_processors=subs,
    )  # fmt: skip
    if session.scalar(select(m.Agreement.id).where(m.Agreement.reference == data.reference)):
        errors.add("reference", "taken", "an agreement with this reference exists")
    purposes = _validate(session, data, errors, dates_known=start is not None and end is not None)
    return _insert(session, acting, data, purposes)


def _insert(session: Session, acting: Acting, data: AgreementInput,
            purposes: list[tuple[str, str, int]]) -> m.Agreement:  # fmt: skip
    row = m.Agreement(
        contractor_id=data.contractor_id, reference=data.reference, valid_from=data.valid_from,
        valid_to=data.valid_to, status="draft", retention_days=data.retention_days,
        sub_processors=[s.strip() for s in data.sub_processors], created_at=acting.now,
        updated_at=acting.now,
    )  # fmt: skip
    row.purposes = [m.AgreementPurpose(purpose=p, policy_id=pid, policy_version=v)
                    for p, pid, v in purposes]  # fmt: skip
    session.add(row)
    session.flush()
    record(session, acting, "agreement.create", agreement=row.id)
    return row


def get_agreement(session: Session, agreement_id: str) -> m.Agreement:
    row = session.get(m.Agreement, agreement_id) if len(agreement_id) <= 36 else None
    if row is None:
        raise NotFound("no such agreement")
    return row


def _active_assignments(session: Session, agreement_id: str) -> list[m.Assignment]:
    return list(session.scalars(
        select(m.Assignment).where(m.Assignment.agreement_id == agreement_id,
                                   m.Assignment.status == "active").order_by(m.Assignment.id)
    ))  # fmt: skip


def _transition(session: Session, acting: Acting, row: m.Agreement, to: str) -> None:
    record(session, acting, f"agreement.{to}", agreement=row.id,
           outcome=Outcome("ok", f"from_{row.status}"))  # fmt: skip
    row.status = to
    row.updated_at = acting.now


def activate(session: Session, acting: Acting, agreement_id: str) -> m.Agreement:
    row = get_agreement(session, agreement_id)
    if row.status not in ("draft", "suspended"):
        raise Conflict(f"an agreement that is {row.status} cannot be activated")
    resumed = row.status == "suspended"
    _transition(session, acting, row, "active")
    if resumed:
        for assignment in _active_assignments(session, row.id):
            bump(session, assignment)  # the contractor receives its cases again
    session.flush()
    return row


def suspend(session: Session, keyring: Keyring, acting: Acting, agreement_id: str) -> m.Agreement:
    row = get_agreement(session, agreement_id)
    if row.status != "active":
        raise Conflict(f"an agreement that is {row.status} cannot be suspended")
    _transition(session, acting, row, "suspended")
    for assignment in _active_assignments(session, row.id):
        tombstone(session, keyring, acting, contractor_id=assignment.contractor_id,
                  agreement_id=row.id, resident_id=assignment.resident_id,
                  reason=SUSPENSION_REASON)  # fmt: skip
    session.flush()
    return row


def terminate(
    session: Session, keyring: Keyring, acting: Acting, agreement_id: str
) -> m.Agreement:
    row = get_agreement(session, agreement_id)
    if row.status == "terminated":
        raise Conflict("the agreement is already terminated")
    _transition(session, acting, row, "terminated")
    row.terminated_at = acting.now
    for assignment in _active_assignments(session, row.id):
        revoke_assignment(session, keyring, acting, assignment, "agreement_terminated")
    session.flush()
    return row


class PolicyChoice(TypedDict):
    policy_id: str
    policy_version: int


class AgreementView(TypedDict):
    id: str
    contractor_id: str
    reference: str
    status: str
    valid_from: str
    valid_to: str
    retention_days: int
    sub_processors: list[str]
    purposes: dict[str, PolicyChoice]
    created_at: str
    terminated_at: str | None


def view(row: m.Agreement) -> AgreementView:
    return {
        "id": row.id, "contractor_id": row.contractor_id, "reference": row.reference,
        "status": row.status, "valid_from": row.valid_from.isoformat(),
        "valid_to": row.valid_to.isoformat(), "retention_days": row.retention_days,
        "sub_processors": list(row.sub_processors or []),
        "purposes": {p.purpose: {"policy_id": p.policy_id, "policy_version": p.policy_version}
                     for p in sorted(row.purposes, key=lambda p: p.purpose)},
        "created_at": row.created_at.isoformat(),
        "terminated_at": row.terminated_at.isoformat() if row.terminated_at else None,
    }  # fmt: skip


def list_agreements(
    session: Session, contractor_id: str | None = None, status: str | None = None
) -> list[AgreementView]:
    conds: list[ColumnElement[bool]] = []
    if contractor_id is not None:
        conds.append(m.Agreement.contractor_id == contractor_id)
    if status is not None:
        conds.append(m.Agreement.status == status)
    rows = session.scalars(
        select(m.Agreement).where(*conds).order_by(m.Agreement.created_at, m.Agreement.id)
        .options(selectinload(m.Agreement.purposes))
    ).all()  # fmt: skip
    return [view(r) for r in rows]


# -- what a change of state will do, shown before it is done --------------------------------


class PurposePreview(TypedDict):
    purpose: str
    policy: PolicySummary | None  # None: the pinned version is not published (an old database)
    previous: str | None  # the version compared against (id@version); None: a first version
    changes: list[ChangeView]  # against `previous`; for a first version, all it discloses
    widens: bool


class StatePreview(TypedDict):
    agreement: AgreementView
    contractor: str
    active_cases: int  # cases the contractor holds now (suspending/terminating tombstones them)
    purposes: list[PurposePreview]


def active_cases(session: Session, agreement_id: str) -> int:
    return session.scalar(
        select(func.count()).select_from(m.Assignment)
        .where(m.Assignment.agreement_id == agreement_id, m.Assignment.status == "active")
    ) or 0  # fmt: skip


def preview(session: Session, agreement_id: str) -> StatePreview:
    """What the agreement discloses per purpose (the policy version it is on, and the diff
    against that policy's previous published version), and how many cases it holds: what the
    office admin reads before activating, suspending or terminating. Not audited: a policy
    and a count are not personal data."""
    row = get_agreement(session, agreement_id)
    policies = published_set(session)
    purposes: list[PurposePreview] = []
    for pinned in sorted(row.purposes, key=lambda p: p.purpose):
        ref = policy_reference(pinned.policy_id, pinned.policy_version)
        if ref not in policies:
            purposes.append({"purpose": pinned.purpose, "policy": None, "previous": None,
                             "changes": [], "widens": False})  # fmt: skip
            continue
        policy = policies.get(ref)
        before = previous_version(policies, policy)
        changes = introduce(policy) if before is None else diff_policies(before, policy)
        purposes.append({
            "purpose": pinned.purpose, "policy": summary(policy),
            "previous": before.identity.reference if before else None,
            "changes": change_views(changes), "widens": any(c.widens for c in changes),
        })  # fmt: skip
    contractor = session.get(m.Contractor, row.contractor_id)
    return {"agreement": view(row), "contractor": contractor.name if contractor else "",
            "active_cases": active_cases(session, row.id), "purposes": purposes}  # fmt: skip
