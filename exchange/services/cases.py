"""One case by its reference, for its contractor only (invariant 10).

Case references are keyed pseudonyms (keys/) and are not stored, so a reference is resolved by
recomputing the references of the caller's *active* assignments and comparing. A reference of
another contractor, of a revoked case, or of nothing at all goes through exactly the same work
and ends in the same `CaseNotFound`; so does a case whose evaluation now discloses nothing
(consent withdrawn, agreement ended). Every miss is audited as a denial.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.entry import Action
from exchange.db import models as m
from exchange.identity import Acting
from exchange.services import auditing, disclosure
from exchange.services.auditing import AuditSink
from exchange.services.errors import CaseNotFound
from keys.keyring import Keyring
from keys.pseudonyms import case_reference
from policies.engine import PolicySet

NOT_FOUND_REASON = "case_not_found"
MAX_REFERENCE_LENGTH = 128


def find_assignment_id(
    session: Session,
    keyring: Keyring,
    contractor_id: str,
    reference: str,
    *,
    statuses: Iterable[str] = ("active",),
) -> str | None:
    """The contractor's assignment (in `statuses`) whose case reference is `reference`."""
    rows = session.execute(
        select(m.Assignment.id, m.Assignment.resident_id, m.Assignment.agreement_id)
        .join(m.Agreement, m.Agreement.id == m.Assignment.agreement_id)
        .where(
            m.Assignment.contractor_id == contractor_id,
            m.Agreement.contractor_id == contractor_id,
            m.Assignment.status.in_(tuple(statuses)),
        )
        .order_by(m.Assignment.change_seq)
    ).all()
    wanted = reference.encode("utf-8")[:MAX_REFERENCE_LENGTH]
    found = None
    keys: dict[str, Any] = {}
    for assignment_id, resident_id, agreement_id in rows:
        key = keys.get(agreement_id)
        if key is None:
            key = keys[agreement_id] = keyring.case_key(agreement_id)
        # compare every candidate, constant-time: the scan costs the same whatever matches
        if hmac.compare_digest(case_reference(key, resident_id).encode("ascii"), wanted):
            found = assignment_id
    return found


def read_case(
    session: Session,
    keyring: Keyring,
    sink: AuditSink,
    acting: Acting,
    contractor_id: str,
    purpose: str,
    reference: str,
    policies: PolicySet,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(case view, envelopes) of one case; raises CaseNotFound after auditing the denial."""
    purpose = disclosure.check_purpose(purpose)
    assignment_id = find_assignment_id(session, keyring, contractor_id, reference)
    row = None
    if assignment_id is not None:
        row = disclosure.case_by_id(session, policies, purpose, assignment_id)
    if row is None:
        auditing.append(
            session,
            sink,
            [auditing.entry(acting, Action.DISCLOSE, purpose=purpose, denied=NOT_FOUND_REASON)],
        )
        raise CaseNotFound()
    shown = disclosure.disclose(
        session, keyring, sink, acting, contractor_id, purpose, [row], policies
    )
    view = shown.views.get(row.id)
    if view is None:  # nothing disclosed now, or its stored data unreadable: audited above
        raise CaseNotFound()
    return view, shown.envelopes
