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
    """Loaded policies, each version compiled into a plan; evaluates a case against the one
    its agreement names.

    A set may hold several versions of one policy (an office publishes new versions, and each
    agreement stays on its version until it is moved). An agreement names a policy by
    reference: `id@version` for that exact version, or the bare `id` for its latest version
    in the set. Two documents with the same id and version are refused.
    """

    def __init__(self, policies: Iterable[Policy]) -> None:
        versions: dict[str, Plan] = {}
        latest: dict[str, Plan] = {}
        for policy in policies:
            ref = policy.identity.reference
            if ref in versions:
                raise DuplicatePolicyError(
                    f"policy {policy.id!r} version {policy.version} in both "
                    f"{versions[ref].policy.file} and {policy.file}"
                )
            versions[ref] = plan = Plan(policy)
            if policy.id not in latest or latest[policy.id].policy.version < policy.version:
                latest[policy.id] = plan
        self._versions: tuple[Plan, ...] = tuple(versions.values())
        self._plans: Mapping[str, Plan] = MappingProxyType({**versions, **latest})
        reads: dict[str, frozenset[str]] = {}
        for plan in self._versions:
            reads[plan.purpose] = reads.get(plan.purpose, frozenset()) | plan.reads
        self._reads: Mapping[str, frozenset[str]] = MappingProxyType(reads)

    def __contains__(self, reference: object) -> bool:
        return reference in self._plans

    def __iter__(self) -> Iterator[Policy]:
        """Every version in the set, once."""
        return iter(p.policy for p in self._versions)

    def get(self, reference: str) -> Policy:
        """The policy `id@version` names, or the latest version of a bare `id`."""
        return self.plan(reference).policy

    def plan(self, reference: str) -> Plan:
        """The plan of the policy `id@version` names, or of the latest version of `id`."""
        try:
            return self._plans[reference]
        except KeyError:
            raise UnknownPolicyError(f"no policy {reference!r} is loaded") from None

    def policy_for(self, agreement: AgreementTerms, purpose: str) -> Policy | None:
        """The policy the agreement names for a purpose (None: purpose not agreed); the
        agreement's purposes map to references (`id@version` or `id`)."""
        policy_id = agreement.purposes.get(purpose)
        return None if policy_id is None else self.get(policy_id)

    def reads(self, purpose: str) -> frozenset[str]:
        """The record fields any loaded version of a policy for `purpose` reads (none for an
        unknown purpose): what a loader decrypts for it."""
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
