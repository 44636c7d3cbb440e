"""What one resident's case would disclose to its contractor, for the office's preview.

The case is loaded and evaluated by the steps the feed discloses through
(`services.disclosure`: only the fields the purpose's policies read, the same plans), now.
The office principal then sees the unsealed values, so the preview is audited like a resident
read, naming those fields.
"""

from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from audit.entry import Outcome
from exchange.db import models as m
from exchange.identity import Acting
from exchange.services import disclosure
from exchange.services.audit_access import record, subject
from exchange.services.errors import Conflict, NotFound
from exchange.services.published_policies import published_set
from exchange.services.residents import visible_resident
from keys.keyring import Keyring
from policies import PolicySet
from policies.results import Evaluation

PREVIEW_ACTION = "policy.preview"


def _case(
    session: Session, policies: PolicySet, purpose: str, resident_id: str, agreement_id: str
) -> disclosure.StoredRow:
    """The resident's case under the agreement: the active assignment, else the newest."""
    found = session.scalars(
        select(m.Assignment.id)
        .where(m.Assignment.resident_id == resident_id, m.Assignment.agreement_id == agreement_id)
        .order_by(case((m.Assignment.status == "active", 0), else_=1),
                  m.Assignment.created_at.desc(), m.Assignment.id.desc())
        .limit(1)
    ).first()  # fmt: skip
    row = None if found is None else disclosure.case_by_id(session, policies, purpose, found)
    if row is None:
        raise NotFound("the resident has no assignment under this agreement")
    return row


def preview_case(
    session: Session, keyring: Keyring, acting: Acting, resident_id: str, agreement_id: str,
    purpose: str,
) -> Evaluation:  # fmt: skip
    purpose = disclosure.check_purpose(purpose)
    resident = visible_resident(session, acting, resident_id)
    policy_set = published_set(session)
    row = _case(session, policy_set, purpose, resident.id, agreement_id)
    (case_inputs,) = disclosure.load(
        session, keyring, [row], policy_set.reads(purpose),
        policy_versions=disclosure.policy_versions(policy_set),
    )  # fmt: skip
    if isinstance(case_inputs, disclosure.Unreadable):
        raise Conflict(f"the resident's stored data cannot be read ({case_inputs.reason})")
    (evaluated,) = disclosure.evaluate([case_inputs], purpose, acting.now, policy_set)
    evaluation = evaluated.evaluation
    shown = tuple(sorted(name for name, item in evaluation.view.items() if not item.sealed))
    record(session, acting, PREVIEW_ACTION, agreement=agreement_id,
           subjects=[subject(keyring, resident.id, case=case_inputs.record.case_reference,
                             disclosed=shown)],
           outcome=Outcome("ok", f"purpose.{purpose}"))  # fmt: skip
    return evaluation
