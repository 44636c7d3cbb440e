"""Moving an agreement's purpose to another published policy version: the only way a new
version reaches a contractor.

An office admin moves one purpose of one agreement to a published version (by default the
latest of the policy it is on) after seeing what changes; a change that newly discloses
anything needs her confirmation. The move is audited (`agreement.policy_move`, citing the new
policy's id, version and hash, with the version it replaced), and every active case of the
agreement is announced again, so the contractor's next sync brings each case as the new
version discloses it (and without what it no longer discloses).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.entry import AuditEntry, DetailValue
from exchange.db import models as m
from exchange.identity import OFFICE_ADMIN, Acting
from exchange.services.assignments import bump
from exchange.services.auditing import SqlAuditSink, policy_ref
from exchange.services.auditing import append as audit_append
from exchange.services.errors import Conflict, InvalidInput, NotFound
from exchange.services.published_policies import (
    PublishForbidden,
    WideningNotConfirmed,
    published_set,
)
from policies.diff import Change, diff_policies, introduce
from policies.document import Policy
from policies.errors import PolicyError
from policies.results import policy_reference

MOVE = "agreement.policy_move"


@dataclass(frozen=True, slots=True)
class MoveProposal:
    agreement: m.Agreement
    purpose: str
    current: Policy | None  # None: the version it is on is not published (an old database)
    target: Policy
    changes: tuple[Change, ...]

    @property
    def widens(self) -> bool:
        return any(c.widens for c in self.changes)


def find_agreement(session: Session, agreement: str) -> m.Agreement:
    """By id or by reference (the contract number the office knows it by)."""
    row = session.get(m.Agreement, agreement) if len(agreement) <= 36 else None
    if row is None:
        row = session.scalars(select(m.Agreement).where(m.Agreement.reference == agreement)).first()
    if row is None:
        raise NotFound("no such agreement")
    return row


def propose_move(
    session: Session, agreement: str, purpose: str, to: str | None = None
) -> MoveProposal:
    """What moving `purpose` of `agreement` to `to` (`id@version`, a bare id for its latest
    version; default: the latest version of the policy it is on) would change."""
    row = find_agreement(session, agreement)
    if row.status == "terminated":
        raise Conflict("the agreement is terminated")
    pinned = next((p for p in row.purposes if p.purpose == purpose), None)
    if pinned is None:
        raise InvalidInput.field("purpose", "purpose_not_agreed",
                                 "the agreement does not cover this purpose")  # fmt: skip
    policies = published_set(session)
    current_ref = policy_reference(pinned.policy_id, pinned.policy_version)
    current = policies.get(current_ref) if current_ref in policies else None
    try:
        target = policies.get(to or pinned.policy_id)
    except PolicyError:
        raise InvalidInput.field("to", "policy_unknown", "no such published policy") from None
    if target.purpose.value != purpose:
        raise InvalidInput.field("to", "policy_purpose_mismatch",
                                 f"that policy is for {target.purpose.value}")  # fmt: skip
    if current is not None and current.identity == target.identity:
        raise Conflict(f"the agreement is already on {target.identity.reference} for {purpose}")
    changes = introduce(target) if current is None else diff_policies(current, target)
    return MoveProposal(row, purpose, current, target, changes)


def move(
    session: Session, acting: Acting, proposal: MoveProposal, *, confirm_widening: bool = False
) -> int:
    """Pin the purpose to the proposed version, announce the agreement's cases again and audit
    it; returns the audit entry's index. Never commits."""
    if acting.identity.role != OFFICE_ADMIN:
        raise PublishForbidden(f"role {acting.identity.role} may not move agreements")
    if proposal.widens and not confirm_widening:
        raise WideningNotConfirmed(
            "the new version newly discloses something (the changes marked +); confirm to move"
        )
    row, target = proposal.agreement, proposal.target
    pinned = next(p for p in row.purposes if p.purpose == proposal.purpose)
    previous = pinned.policy_version
    pinned.policy_id, pinned.policy_version = target.id, target.version
    row.updated_at = acting.now
    active = session.scalars(select(m.Assignment).where(
        m.Assignment.agreement_id == row.id, m.Assignment.status == "active")).all()  # fmt: skip
    for assignment in active:
        bump(session, assignment)
    session.flush()
    details: dict[str, DetailValue] = {
        "policy.previous_version": previous, "policy.widens": proposal.widens,
        "cases.announced": len(active),
    }  # fmt: skip
    if proposal.current is not None and proposal.current.id != target.id:
        details["policy.previous_id"] = proposal.current.id
    entry = AuditEntry(
        time=acting.now, actor=acting.actor, action=MOVE, agreement=row.id,
        purpose=proposal.purpose, policy=policy_ref(target.identity),
        request_id=acting.request_id, details={**acting.details, **details},
    )  # fmt: skip
    return audit_append(session, SqlAuditSink(), [entry])[0]
