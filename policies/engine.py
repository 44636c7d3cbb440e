"""The engine: (record, consents, agreement, assignment, purpose, now) -> Evaluation.

A `PolicySet` holds the loaded policies, each compiled once into a `policies.plan.Plan`. To
evaluate a case it finds the plan the agreement names for the purpose (deny by default: a
purpose the agreement does not map, or maps to another purpose's policy, discloses nothing)
and runs it. `reads(purpose)` tells a loader which record fields the purpose's plans read, so
that nothing else is decrypted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from policies.document import Policy
from policies.errors import DuplicatePolicyError, EngineInputError, UnknownPolicyError
from policies.inputs import AgreementTerms, AssignmentTerms, ConsentState, ResidentRecord
from policies.plan import Plan, deny_unmapped
from policies.results import Evaluation

# The programme runs in Qingdao: calendar dates (bookings, agreement periods, ages) are in
# China Standard Time, which has had no daylight saving since 1991.
CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")


def office_date(now: dt.datetime) -> dt.date:
    """The programme's calendar date at `now`: the date in China Standard Time, which is what
    a booking, a due date or "within 7 days" mean to the office and the contractor (from
    16:00 UTC on, it is already tomorrow there)."""
    if not isinstance(now, dt.datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise EngineInputError("now: must be a timezone-aware datetime")
    return now.astimezone(CHINA_STANDARD_TIME).date()


class PolicySet:
    """Loaded policies by id, each compiled into a plan; evaluates a case against the one its
    agreement names."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        plans: dict[str, Plan] = {}
        for policy in policies:
            if policy.id in plans:
                raise DuplicatePolicyError(
                    f"policy id {policy.id!r} in both {plans[policy.id].policy.file} "
                    f"and {policy.file}"
                )
            plans[policy.id] = Plan(policy)
        self._plans: Mapping[str, Plan] = MappingProxyType(plans)
        reads: dict[str, frozenset[str]] = {}
        for plan in plans.values():
            reads[plan.purpose] = reads.get(plan.purpose, frozenset()) | plan.reads
        self._reads: Mapping[str, frozenset[str]] = MappingProxyType(reads)

    def __contains__(self, policy_id: object) -> bool:
        return policy_id in self._plans

    def __iter__(self) -> Iterator[Policy]:
        return iter(p.policy for p in self._plans.values())

    def get(self, policy_id: str) -> Policy:
        return self.plan(policy_id).policy

    def plan(self, policy_id: str) -> Plan:
        try:
            return self._plans[policy_id]
        except KeyError:
            raise UnknownPolicyError(f"no policy with id {policy_id!r} is loaded") from None

    def policy_for(self, agreement: AgreementTerms, purpose: str) -> Policy | None:
        """The policy the agreement names for a purpose (None: purpose not agreed)."""
        policy_id = agreement.purposes.get(purpose)
        return None if policy_id is None else self.get(policy_id)

    def reads(self, purpose: str) -> frozenset[str]:
        """The record fields any loaded policy of `purpose` reads (none for an unknown one)."""
        return self._reads.get(purpose, frozenset())

    def evaluate(
        self,
        record: ResidentRecord,
        consents: ConsentState,
        agreement: AgreementTerms,
        assignment: AssignmentTerms,
        purpose: str,
        now: dt.datetime,
    ) -> Evaluation:
        return self.evaluate_on(record, consents, agreement, assignment, purpose, office_date(now))

    def evaluate_on(
        self,
        record: ResidentRecord,
        consents: ConsentState,
        agreement: AgreementTerms,
        assignment: AssignmentTerms,
        purpose: str,
        today: dt.date,
    ) -> Evaluation:
        """`evaluate` with the programme's date already known (`office_date(now)`, once for a
        whole page of cases)."""
        policy_id = agreement.purposes.get(purpose)
        if policy_id is None:
            return deny_unmapped(record, purpose, "agreement does not cover this purpose")
        plan = self._plans.get(policy_id)
        if plan is None:
            raise UnknownPolicyError(f"agreement names policy {policy_id!r}, which is not loaded")
        if plan.purpose != purpose:
            return deny_unmapped(
                record, purpose, "agreement maps purpose to another purpose's policy"
            )
        return plan.evaluate(record, consents, agreement, assignment, today)
