"""A policy version compiled once into a plan, and the evaluation of one case by running it.

The plan holds what a policy means, resolved ahead of any case: which record fields it reads
(so a loader decrypts those and no others), which consent scopes it requires, and for each
output field its getter, its conditions as predicates, its transform function, and every
decision the field can get, prebuilt. Evaluating a case is a loop over the plan against inputs
that were checked once, when they were built (`policies.inputs`): no name lookup, no enum
construction, no validation per field. Only the values themselves are read and transformed.

Deny by default, in this order: the agreement is active and in date, the assignment is active
and under it, the policy's required scopes are granted; then per field: the scope covering its
source is granted, all its conditions hold and the transform yields a value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

from policies.catalogue import ADDRESS_PARTS, RECORD_FIELDS, SOURCE_FIELDS, ConsentScope
from policies.conditions import Predicate
from policies.derivation import DERIVATION_READS, DERIVATIONS
from policies.document import FieldRule, Policy
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

Getter = Callable[[ResidentRecord, AssignmentTerms, dt.date], object]
# NamedTuple's generated __new__ is a Python function; building the tuple directly skips it
# in the hot loop (the field order is Disclosed's).
_disclosed = tuple.__new__
_EMPTY_VIEW: MappingProxyType[str, Disclosed] = MappingProxyType({})


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


def record_fields_read(policy: Policy) -> frozenset[str]:
    """The record fields a policy reads: the sources of the rules that disclose (a composite
    or derived source stands for what it is made of) and what their conditions look at."""
    needed: set[str] = set()
    for rule in policy.fields:
        if not rule.discloses:
            continue
        for source in _sources_read(rule):
            needed.update(DERIVATION_READS.get(source, (source,)))
        for condition in rule.conditions:
            needed.update(condition.reads)
    return frozenset(needed & RECORD_FIELDS)


@dataclass(frozen=True, slots=True)
class FieldStep:
    """One output field of a plan, with every decision it can get."""

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
    def build(cls, rule: FieldRule) -> FieldStep:
        name = rule.name
        how = f"{rule.source} via {rule.transform}"
        scope = rule.scope
        return cls(
            name=name,
            get=_getter(rule.source),
            scope=scope,
            predicates=tuple(
                (c.predicate(), FieldDecision(name, False, Reason.CONDITION_UNMET, c.describe()))
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


class Plan:
    """A policy compiled for evaluation. Build one per policy version, once."""

    __slots__ = ("policy", "purpose", "reads", "required", "fields", "unused", "_required_denials")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.purpose: str = policy.purpose.value
        self.reads = record_fields_read(policy)
        self.fields = tuple(FieldStep.build(rule) for rule in policy.fields)
        self.required = tuple(sorted(policy.required_scopes))
        self._required_denials = tuple(
            (scope, f"required scope {scope.value} not granted") for scope in self.required
        )
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

    def evaluate(
        self,
        record: ResidentRecord,
        consents: ConsentState,
        agreement: AgreementTerms,
        assignment: AssignmentTerms,
        today: dt.date,
    ) -> Evaluation:
        """One case, whose agreement maps the purpose to this plan's policy; `today` is the
        programme's calendar date (`policies.office_date`)."""
        gate = _gate(agreement, assignment, today)
        if gate is not None:
            return self.deny_all(record, *gate)
        granted = consents.granted
        for needed, detail in self._required_denials:
            if needed not in granted:
                return self.deny_all(record, Reason.NO_CONSENT, detail)

        values = record.values
        view: dict[str, Disclosed] = {}
        decisions: list[FieldDecision] = []
        relied = {granted[s] for s in self.required}
        for field in self.fields:
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
        decisions += [d for name, d in self.unused if values.get(name) is not None]
        return Evaluation(
            purpose=self.purpose,
            policy=self.policy.identity,
            view=MappingProxyType(view),
            decisions=tuple(decisions),
            consent_event_ids=tuple(sorted(relied)) if view else (),
        )

    def deny_all(self, record: ResidentRecord, reason: Reason, detail: str) -> Evaluation:
        """Every field of the plan withheld for one reason (and present unused fields)."""
        decisions = [FieldDecision(f.name, False, reason, detail) for f in self.fields]
        decisions.extend(d for name, d in self.unused if record.values.get(name) is not None)
        return Evaluation(
            purpose=self.purpose,
            policy=self.policy.identity,
            view=_EMPTY_VIEW,
            decisions=tuple(decisions),
            consent_event_ids=(),
        )

    def __repr__(self) -> str:
        return f"Plan({self.policy.identity})"


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


def deny_unmapped(record: ResidentRecord, purpose: str, detail: str) -> Evaluation:
    """No plan applies (the agreement does not map the purpose to a policy of that purpose):
    every present record field withheld, the never-share ones as never-share."""
    decisions = [
        FieldDecision(name, False, Reason.NEVER_SHARE, "never-share source field")
        if SOURCE_FIELDS[name].never_share
        else FieldDecision(name, False, Reason.PURPOSE_NOT_AGREED, detail)
        for name in SOURCE_FIELDS
        if record.values.get(name) is not None
    ]
    return Evaluation(
        purpose=purpose,
        policy=None,
        view=_EMPTY_VIEW,
        decisions=tuple(decisions),
        consent_event_ids=(),
    )
