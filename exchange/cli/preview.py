"""What one resident's case would disclose to its contractor, for the office's preview.

The case is loaded exactly as the feed loads it (`records.load_cases`, only the fields the
purpose's policies read) and evaluated by the same engine, now. The office principal then sees
the unsealed values, so the preview is audited like a resident read, naming those fields.
"""

from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.orm import Session, selectinload

from audit.entry import Outcome
from exchange.db import models as m
from exchange.identity import Acting
from exchange.services import records
from exchange.services.audit_access import record, subject
from exchange.services.errors import NotFound
from exchange.services.feed import check_purpose, policies_for, policy_versions
from exchange.services.published_policies import published_set
from exchange.services.residents import visible_resident
from keys.keyring import Keyring
from policies import evaluate
from policies.results import Evaluation

PREVIEW_ACTION = "policy.preview"


def _assignment(session: Session, resident_id: str, agreement_id: str) -> m.Assignment:
    """The resident's case under the agreement: the active assignment, else the newest."""
    row = session.scalars(
        select(m.Assignment)
        .where(m.Assignment.resident_id == resident_id, m.Assignment.agreement_id == agreement_id)
        .order_by(case((m.Assignment.status == "active", 0), else_=1),
                  m.Assignment.created_at.desc(), m.Assignment.id.desc())
        .options(selectinload(m.Assignment.bookings))
        .limit(1)
    ).first()  # fmt: skip
    if row is None:
        raise NotFound("the resident has no assignment under this agreement")
    return row


def preview_case(
    session: Session, keyring: Keyring, acting: Acting, resident_id: str, agreement_id: str,
    purpose: str,
) -> Evaluation:  # fmt: skip
    purpose = check_purpose(purpose)
    resident = visible_resident(session, acting, resident_id)
    assignment = _assignment(session, resident.id, agreement_id)
    policy_set = published_set(session)
    fields = records.fields_needed(policies_for(policy_set, purpose))
    (case_inputs,) = records.load_cases(
        session, keyring, [assignment], fields, policy_versions=policy_versions(policy_set)
    )
    evaluation = evaluate(
        case_inputs.record, case_inputs.consents, case_inputs.agreement,
        case_inputs.assignment, purpose, acting.now, policies=policy_set,
    )  # fmt: skip
    shown = tuple(sorted(name for name, item in evaluation.view.items() if not item.sealed))
    record(session, acting, PREVIEW_ACTION, agreement=agreement_id,
           subjects=[subject(keyring, resident.id, case=case_inputs.record.case_reference,
                             disclosed=shown)],
           outcome=Outcome("ok", f"purpose.{purpose}"))  # fmt: skip
    return evaluation
