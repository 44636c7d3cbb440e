"""What a contractor may see: declarative policy documents and a pure engine.

No database, no web, no clock: every input is a frozen value and `now` is injected.
See docs/policies.md for the document format, transforms, conditions and reason codes.
"""

from __future__ import annotations

import datetime as dt

from policies.catalogue import ConsentScope, Purpose, Service, Stage
from policies.document import FieldRule, Policy, load_policy, parse_policy
from policies.engine import PolicySet, office_date
from policies.errors import (
    DuplicatePolicyError,
    EngineInputError,
    PolicyError,
    PolicyLoadError,
    PolicySetError,
    Problem,
    UnknownPolicyError,
)
from policies.inputs import (
    AgreementStatus,
    AgreementTerms,
    AssignmentStatus,
    AssignmentTerms,
    Booking,
    ConsentState,
    ResidentRecord,
)
from policies.preview import render_preview
from policies.results import Disclosed, Evaluation, FieldDecision, PolicyIdentity, Reason
from policies.shipped import load_policies, shipped_policies, shipped_policy


def evaluate(
    record: ResidentRecord,
    consents: ConsentState,
    agreement: AgreementTerms,
    assignment: AssignmentTerms,
    purpose: str,
    now: dt.datetime,
    *,
    policies: PolicySet | None = None,
) -> Evaluation:
    """Evaluate one case against the policy its agreement names for `purpose`.

    Uses the shipped policies unless a PolicySet is given.
    """
    chosen = shipped_policies() if policies is None else policies
    return chosen.evaluate(record, consents, agreement, assignment, purpose, now)


__all__ = [
    "AgreementStatus",
    "AgreementTerms",
    "AssignmentStatus",
    "AssignmentTerms",
    "Booking",
    "ConsentScope",
    "ConsentState",
    "Disclosed",
    "DuplicatePolicyError",
    "EngineInputError",
    "Evaluation",
    "FieldDecision",
    "FieldRule",
    "Policy",
    "PolicyError",
    "PolicyIdentity",
    "PolicyLoadError",
    "PolicySet",
    "PolicySetError",
    "Problem",
    "Purpose",
    "Reason",
    "ResidentRecord",
    "Service",
    "Stage",
    "UnknownPolicyError",
    "evaluate",
    "load_policies",
    "load_policy",
    "office_date",
    "parse_policy",
    "render_preview",
    "shipped_policies",
    "shipped_policy",
]
