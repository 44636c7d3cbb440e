"""The contractor feed: changes since a cursor, as policy-engine case views and tombstones.

Pipeline per page (DESIGN.md §3): select this contractor's active assignments and tombstones
with feed sequence > cursor (one query each) → load and decrypt only the needed fields in
batched queries (`records.load_cases`) → `policies` evaluates each case → sealed fields are
sealed under ONE HPKE encapsulation per response and agreement (`keys.ResponseSealer`), each
value bound to agreement, case reference and field → ONE audit entry per response and
agreement naming every case pseudonym and the fields disclosed/withheld → the caller's unit
of work commits → respond. If the audit append fails, `AuditUnavailable` propagates and the
transaction rolls back: nothing is returned.

A case whose evaluation discloses nothing (no consent, agreement out of date, purpose not
agreed...) is not shown; it is still audited as withheld. Deletions reach the contractor as
tombstones, which the office flows write when they revoke, withdraw, terminate or erase.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from audit.entry import Action, AuditEntry, Subject
from audit.errors import AuditError
from exchange.db import models as m
from exchange.identity import Acting
from exchange.services import auditing, records
from exchange.services.auditing import AuditSink
from exchange.services.bounds import MAX_SQL_INT32
from exchange.services.errors import AuditUnavailable, Conflict, InvalidInput
from keys.contractor_keys import ContractorPublicKey
from keys.errors import KeysError
from keys.keyring import Keyring
from keys.sealing import ResponseSealer
from policies.catalogue import Purpose
from policies.document import Policy
from policies.engine import PolicySet
from policies.results import Evaluation

CURSOR_PREFIX = "fc1."
DEFAULT_LIMIT = 100


# -- cursor -------------------------------------------------------------------------------


def encode_cursor(seq: int, purpose: str) -> str:
    body = json.dumps({"s": seq, "p": purpose}, separators=(",", ":")).encode("ascii")
    return CURSOR_PREFIX + base64.urlsafe_b64encode(body).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, purpose: str) -> int:
    """The feed sequence a cursor stands for; refuses a malformed or other-purpose cursor."""
    if cursor is None or cursor == "":
        return 0
    try:
        if not cursor.startswith(CURSOR_PREFIX) or len(cursor) > 200:
            raise ValueError
        text = cursor[len(CURSOR_PREFIX) :]
        doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        seq, for_purpose = doc["s"], doc["p"]
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SQL_INT32:
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidInput.field("cursor", "malformed", "not a cursor this feed issued") from None
    if for_purpose != purpose:
        raise InvalidInput.field("cursor", "other_purpose", "cursor belongs to another purpose")
    return seq


def check_purpose(purpose: str) -> str:
    try:
        return Purpose(purpose).value
    except ValueError:
        raise InvalidInput.field("purpose", "unknown", "not a known purpose") from None


def policies_for(policies: PolicySet, purpose: str) -> list[Policy]:
    return [p for p in policies if p.purpose == purpose]


def policy_versions(policies: PolicySet) -> frozenset[str]:
    """The versions loaded, as the `id@version` references agreements pin."""
    return frozenset(p.identity.reference for p in policies)


# -- sealing and presentation ---------------------------------------------------------------


class Presenter:
    """Builds case views for one response; one `ResponseSealer` per agreement, made lazily
    (usually a response has one agreement, so one HPKE encapsulation)."""

    def __init__(self, public_key: ContractorPublicKey | None) -> None:
        self._public_key = public_key
        self._sealers: dict[str, ResponseSealer] = {}

    @property
    def envelopes(self) -> dict[str, str]:
        return {agreement: s.envelope for agreement, s in self._sealers.items()}

    def _sealer(self, agreement_id: str) -> ResponseSealer:
        sealer = self._sealers.get(agreement_id)
        if sealer is None:
            if self._public_key is None:
                raise Conflict("the contractor has no active public key to seal fields to")
            sealer = self._sealers[agreement_id] = ResponseSealer(self._public_key, agreement_id)
        return sealer

    def present(self, case: records.CaseInputs, evaluation: Evaluation, seq: int) -> dict[str, Any]:
        ref = case.record.case_reference
        agreement_id = case.agreement.id
        fields: dict[str, Any] = {}
        sealed: dict[str, str] = {}
        for name, disclosed in evaluation.view.items():
            value = disclosed.value
            if disclosed.sealed:
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                sealed[name] = self._sealer(agreement_id).seal(ref, name, text)
            else:
                fields[name] = list(value) if isinstance(value, tuple) else value
        policy = evaluation.policy
        return {
            "type": "case",
            "seq": seq,
            "case_reference": ref,
            "agreement": agreement_id,
            "purpose": evaluation.purpose,
            "policy": None
            if policy is None
            else {"id": policy.id, "version": policy.version, "sha256": policy.sha256},
            "services": fields.get("services"),
            "bookings": [
                {"service": b.service.value, "on": b.on.isoformat()}
                for b in case.assignment.bookings
            ],
            "fields": fields,
            "sealed": sealed,
        }


def active_public_key(session: Session, contractor_id: str) -> ContractorPublicKey | None:
    text = session.scalars(
        select(m.ContractorKey.public_key).where(
            m.ContractorKey.contractor_id == contractor_id, m.ContractorKey.status == "active"
        )
    ).first()
    if text is None:
        return None
    try:
        return ContractorPublicKey.from_text(text)
    except KeysError:
        raise Conflict("the contractor's registered public key is unusable") from None


# -- evaluation and audit -------------------------------------------------------------------


@dataclass
class Evaluated:
    case: records.CaseInputs
    evaluation: Evaluation
    seq: int

    @property
    def visible(self) -> bool:
        return bool(self.evaluation.view)


def evaluate_all(
    cases: Sequence[records.CaseInputs],
    seqs: Sequence[int],
    purpose: str,
    acting: Acting,
    policies: PolicySet,
) -> list[Evaluated]:
    return [
        Evaluated(
            c,
            policies.evaluate(c.record, c.consents, c.agreement, c.assignment, purpose, acting.now),
            s,
        )
        for c, s in zip(cases, seqs, strict=True)
    ]


def audit_entries(
    keyring: Keyring, acting: Acting, purpose: str, evaluated: Sequence[Evaluated]
) -> list[AuditEntry]:
    """One `case.disclose` entry per agreement in the response (normally exactly one)."""
    try:
        groups: dict[str, list[Evaluated]] = {}
        for item in evaluated:
            groups.setdefault(item.case.agreement.id, []).append(item)
        out = []
        for agreement_id, items in groups.items():
            identities = {i.evaluation.policy for i in items}
            policy = identities.pop() if len(identities) == 1 else None
            subjects: list[Subject] = [
                auditing.case_subject(
                    keyring, i.case.resident_id, i.case.record.case_reference, i.evaluation
                )
                for i in items
            ]
            visible = any(i.visible for i in items)
            out.append(
                auditing.entry(
                    acting,
                    Action.DISCLOSE,
                    subjects=subjects,
                    agreement=agreement_id,
                    purpose=purpose,
                    policy=policy,
                    denied=None if visible else _denial_reason(items),
                )
            )
        return out
    except AuditError as exc:
        raise AuditUnavailable(type(exc).__name__) from None


def _denial_reason(items: Sequence[Evaluated]) -> str:
    for item in items:
        for decision in item.evaluation.decisions:
            if not decision.shared:
                return decision.reason.value
    return "nothing_disclosed"


# -- the feed -----------------------------------------------------------------------------


@dataclass
class FeedPage:
    purpose: str
    items: list[dict[str, Any]]
    envelopes: dict[str, str]
    next_cursor: str
    has_more: bool
    audit_indexes: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "envelopes": self.envelopes,
            "items": self.items,
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
        }


def _changed_assignments(
    session: Session, contractor_id: str, after: int, limit: int
) -> list[m.Assignment]:
    return list(
        session.scalars(
            select(m.Assignment)
            .join(m.Agreement, m.Agreement.id == m.Assignment.agreement_id)
            .where(
                m.Assignment.contractor_id == contractor_id,
                m.Agreement.contractor_id == contractor_id,
                m.Assignment.status == "active",
                m.Assignment.change_seq > after,
            )
            .order_by(m.Assignment.change_seq)
            .limit(limit)
            .options(selectinload(m.Assignment.bookings))
        )
    )


def _tombstones(session: Session, contractor_id: str, after: int, limit: int) -> list[m.Tombstone]:
    return list(
        session.scalars(
            select(m.Tombstone)
            .where(m.Tombstone.contractor_id == contractor_id, m.Tombstone.seq > after)
            .order_by(m.Tombstone.seq)
            .limit(limit)
        )
    )


def pull(
    session: Session,
    keyring: Keyring,
    sink: AuditSink,
    acting: Acting,
    contractor_id: str,
    purpose: str,
    cursor: str | None,
    limit: int,
    policies: PolicySet,
) -> FeedPage:
    """One page of the feed for `contractor_id`, audited in the current transaction."""
    purpose = check_purpose(purpose)
    after = decode_cursor(cursor, purpose)
    assignments = _changed_assignments(session, contractor_id, after, limit + 1)
    tombstones = _tombstones(session, contractor_id, after, limit + 1)
    merged: list[tuple[int, m.Assignment | m.Tombstone]] = sorted(
        [(a.change_seq, a) for a in assignments] + [(t.seq, t) for t in tombstones],
        key=lambda pair: pair[0],
    )
    has_more = len(merged) > limit
    merged = merged[:limit]
    page_assignments = [row for _, row in merged if isinstance(row, m.Assignment)]
    fields = records.fields_needed(policies_for(policies, purpose))
    cases = records.load_cases(
        session, keyring, page_assignments, fields, policy_versions=policy_versions(policies)
    )
    evaluated = evaluate_all(
        cases, [a.change_seq for a in page_assignments], purpose, acting, policies
    )
    by_assignment = {e.case.assignment_id: e for e in evaluated}

    presenter = Presenter(
        active_public_key(session, contractor_id)
        if any(d.sealed for e in evaluated for d in e.evaluation.view.values())
        else None
    )
    items: list[dict[str, Any]] = []
    for seq, row in merged:
        if isinstance(row, m.Tombstone):
            items.append(
                {"type": "tombstone", "seq": seq, "case_reference": row.case_reference,
                 "agreement": row.agreement_id, "reason": row.reason}
            )  # fmt: skip
            continue
        item = by_assignment[row.id]
        if item.visible:
            items.append(presenter.present(item.case, item.evaluation, seq))
    indexes = auditing.append(session, sink, audit_entries(keyring, acting, purpose, evaluated))
    next_seq = merged[-1][0] if merged else after
    return FeedPage(
        purpose, items, presenter.envelopes, encode_cursor(next_seq, purpose), has_more, indexes
    )
