"""The policy engine as it was before policies were compiled into plans (issue 18), kept
verbatim as the oracle of tests/policies/test_plan.py: the plan must give exactly the same
Evaluation (view, decisions, consents relied on) for any input. Not used by the product.
"""

# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from policies.catalogue import ADDRESS_PARTS, RECORD_FIELDS, SOURCE_FIELDS, ConsentScope
from policies.conditions import Predicate
from policies.derivation import DERIVATIONS
from policies.document import FieldRule, Policy
from policies.errors import DuplicatePolicyError, EngineInputError, UnknownPolicyError
from policies.inputs import (
    AgreementStatus,
    AgreementTerms,
    AssignmentStatus,
    AssignmentTerms,
    ConsentState,
    ResidentRecord,
)
from policies.results import Disclosed, DisclosedValue, Evaluation, FieldDecision, Reason
from policies.transforms import TRANSFORMS

# The programme runs in Qingdao: calendar dates (bookings, agreement periods, ages) are in
# China Standard Time, which has had no daylight saving since 1991.
CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")

Getter = Callable[[ResidentRecord, AssignmentTerms, dt.date], object]
# NamedTuple's generated __new__ is a Python function; building the tuple directly skips it
# in the hot loop (the field order is Disclosed's).
_disclosed = tuple.__new__


def _getter(source: str) -> Getter:
    if source == "case.reference":
        return lambda record, assignment, today: record.case_reference
    if source == "assignment.services":
        return lambda record, assignment, today: assignment.services
    if source == "address":
        return lambda record, assignment, today: tuple(map(record.values.get, ADDRESS_PARTS))
    if source in DERIVATIONS:
        derive = DERIVATIONS[source]
        return lambda record, assignment, today: derive(record.values, today)
    return lambda record, assignment, today: record.values.get(source)


def _sources_read(rule: FieldRule) -> tuple[str, ...]:
    return ADDRESS_PARTS if rule.source == "address" else (rule.source,)


@dataclass(frozen=True, slots=True)
class _CompiledField:
    name: str
    get: Getter
    scope: ConsentScope | None
    predicates: tuple[tuple[Predicate, FieldDecision], ...]
    transform: Callable[[object], DisclosedValue | None]
    transform_name: str
    sealed: bool
    dropped: bool
    shared: FieldDecision
    no_consent: FieldDecision
    no_value: FieldDecision
    dropped_decision: FieldDecision

    @classmethod
    def build(cls, rule: FieldRule) -> _CompiledField:
        name = rule.name
        how = f"{rule.source} via {rule.transform}"
        scope = rule.scope
        return cls(
            name=name,
            get=_getter(rule.source),
            scope=scope,
            predicates=tuple(
                (
                    c.predicate(),
                    FieldDecision(name, False, Reason.CONDITION_UNMET, c.describe()),
                )
                for c in rule.conditions
            ),
            transform=TRANSFORMS[rule.transform].fn,
            transform_name=rule.transform,
            sealed=rule.sealed,
            dropped=not rule.discloses,
            shared=FieldDecision(
                name,
                True,
                Reason.SHARED_SEALED if rule.sealed else Reason.SHARED,
                how + (", sealed" if rule.sealed else ""),
            ),
            no_consent=FieldDecision(
                name,
                False,
                Reason.NO_CONSENT,
                f"needs consent scope {scope.value}" if scope else "needs consent",
            ),
            no_value=FieldDecision(
                name, False, Reason.NO_VALUE, f"{rule.source} empty or unusable"
            ),
            dropped_decision=FieldDecision(name, False, Reason.DROPPED_BY_POLICY, how),
        )


class CompiledPolicy:
    """A policy compiled for evaluation: closures and prebuilt decisions."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.fields = tuple(_CompiledField.build(rule) for rule in policy.fields)
        self.required = tuple(sorted(policy.required_scopes))
        read = {s for rule in policy.fields if rule.discloses for s in _sources_read(rule)}
        # Record fields this policy never reads: each present one is reported as withheld.
        self.unused = tuple(
            (
                name,
                FieldDecision(name, False, Reason.NEVER_SHARE, "never-share source field")
                if SOURCE_FIELDS[name].never_share
                else FieldDecision(name, False, Reason.NOT_IN_POLICY, "no rule of this policy"),
            )
            for name in SOURCE_FIELDS
            if name in RECORD_FIELDS and name not in read
        )


def office_date(now: dt.datetime) -> dt.date:
    """The programme's calendar date at `now`: the date in China Standard Time, which is what
    a booking, a due date or "within 7 days" mean to the office and the contractor (from
    16:00 UTC on, it is already tomorrow there)."""
    if not isinstance(now, dt.datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise EngineInputError("now: must be a timezone-aware datetime")
    return now.astimezone(CHINA_STANDARD_TIME).date()


_today = office_date


class PolicySet:
    """Loaded, compiled policies by id; evaluates a case against the one its agreement names."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        compiled: dict[str, CompiledPolicy] = {}
        for policy in policies:
            if policy.id in compiled:
                raise DuplicatePolicyError(
                    f"policy id {policy.id!r} in both {compiled[policy.id].policy.file} "
                    f"and {policy.file}"
                )
            compiled[policy.id] = CompiledPolicy(policy)
        self._compiled: Mapping[str, CompiledPolicy] = MappingProxyType(compiled)

    def __contains__(self, policy_id: object) -> bool:
        return policy_id in self._compiled

    def __iter__(self) -> Iterator[Policy]:
        return iter(c.policy for c in self._compiled.values())

    def get(self, policy_id: str) -> Policy:
        try:
            return self._compiled[policy_id].policy
        except KeyError:
            raise UnknownPolicyError(f"no policy with id {policy_id!r} is loaded") from None

    def policy_for(self, agreement: AgreementTerms, purpose: str) -> Policy | None:
        """The policy the agreement names for a purpose (None: purpose not agreed)."""
        policy_id = agreement.purposes.get(purpose)
        return None if policy_id is None else self.get(policy_id)

    def evaluate(
        self,
        record: ResidentRecord,
        consents: ConsentState,
        agreement: AgreementTerms,
        assignment: AssignmentTerms,
        purpose: str,
        now: dt.datetime,
    ) -> Evaluation:
        today = _today(now)
        policy_id = agreement.purposes.get(purpose)
        if policy_id is None:
            return _deny_unmapped(record, purpose, "agreement does not cover this purpose")
        if policy_id not in self._compiled:
            raise UnknownPolicyError(f"agreement names policy {policy_id!r}, which is not loaded")
        compiled = self._compiled[policy_id]
        policy = compiled.policy
        if policy.purpose != purpose:
            return _deny_unmapped(
                record, purpose, "agreement maps purpose to another purpose's policy"
            )

        gate = _gate(agreement, assignment, today)
        if gate is not None:
            return _deny_all(compiled, record, purpose, *gate)
        granted = consents.granted
        for needed in compiled.required:
            if needed not in granted:
                return _deny_all(
                    compiled,
                    record,
                    purpose,
                    Reason.NO_CONSENT,
                    f"required scope {needed.value} not granted",
                )

        values = record.values
        view: dict[str, Disclosed] = {}
        decisions: list[FieldDecision] = []
        relied = {granted[s] for s in compiled.required}
        for field in compiled.fields:
            if field.dropped:
                decisions.append(field.dropped_decision)
                continue
            scope = field.scope
            if scope is not None and scope not in granted:
                decisions.append(field.no_consent)
                continue
            unmet = None
            for holds, failed in field.predicates:
                if not holds(values, assignment, today):
                    unmet = failed
                    break
            if unmet is not None:
                decisions.append(unmet)
                continue
            value = field.transform(field.get(record, assignment, today))
            if value is None:
                decisions.append(field.no_value)
                continue
            view[field.name] = _disclosed(Disclosed, (value, field.sealed, field.transform_name))
            decisions.append(field.shared)
            if scope is not None:
                relied.add(granted[scope])
        decisions += [d for name, d in compiled.unused if values.get(name) is not None]
        return Evaluation(
            purpose=purpose,
            policy=policy.identity,
            view=MappingProxyType(view),
            decisions=tuple(decisions),
            consent_event_ids=tuple(sorted(relied)) if view else (),
        )


def _gate(
    agreement: AgreementTerms, assignment: AssignmentTerms, today: dt.date
) -> tuple[Reason, str] | None:
    if agreement.status is not AgreementStatus.ACTIVE:
        return Reason.AGREEMENT_INACTIVE, f"agreement is {agreement.status.value}"
    if not agreement.valid_from <= today <= agreement.valid_to:
        return Reason.AGREEMENT_OUT_OF_DATE, "today is outside the agreement period"
    if assignment.agreement_id != agreement.id:
        return Reason.ASSIGNMENT_OTHER_AGREEMENT, "assignment is under another agreement"
    if assignment.status is not AssignmentStatus.ACTIVE:
        return Reason.ASSIGNMENT_REVOKED, "assignment is revoked"
    return None


def _record_decisions(record: ResidentRecord, reason: Reason, detail: str) -> list[FieldDecision]:
    return [
        FieldDecision(name, False, Reason.NEVER_SHARE, "never-share source field")
        if SOURCE_FIELDS[name].never_share
        else FieldDecision(name, False, reason, detail)
        for name in SOURCE_FIELDS
        if record.values.get(name) is not None
    ]


def _deny_unmapped(record: ResidentRecord, purpose: str, detail: str) -> Evaluation:
    return Evaluation(
        purpose=purpose,
        policy=None,
        view=MappingProxyType({}),
        decisions=tuple(_record_decisions(record, Reason.PURPOSE_NOT_AGREED, detail)),
        consent_event_ids=(),
    )


def _deny_all(
    compiled: CompiledPolicy, record: ResidentRecord, purpose: str, reason: Reason, detail: str
) -> Evaluation:
    decisions = [FieldDecision(f.name, False, reason, detail) for f in compiled.fields]
    decisions.extend(d for name, d in compiled.unused if record.values.get(name) is not None)
    return Evaluation(
        purpose=purpose,
        policy=compiled.policy.identity,
        view=MappingProxyType({}),
        decisions=tuple(decisions),
        consent_event_ids=(),
    )
