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
from collections.abc import Callable, Mapping
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
    condition_keys: tuple[tuple[str, object], ...]  # (key, argument): equal ones hold alike
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
            condition_keys=tuple((c.name, c.arg) for c in rule.conditions),
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


# what a plan's fields step returns: the view and the decisions, with the consent events
# relied on added to the set it was given
FieldsStep = Callable[
    [ResidentRecord, AssignmentTerms, dt.date, Mapping[ConsentScope, str], set[str]],
    tuple[dict[str, Disclosed], list[FieldDecision]],
]


def _plain_source(source: str) -> bool:
    return source not in ("case.reference", "assignment.services", "address") and (
        source not in DERIVATIONS
    )


def compile_fields(
    fields: tuple[FieldStep, ...],
    sources: tuple[str, ...],
    unused: tuple[tuple[str, FieldDecision], ...],
) -> FieldsStep:
    """The plan's field loop unrolled into one straight-line Python function, built once per
    plan with `compile()`.

    The generated source holds only names made here (`d3`, `p1`, ...) and the fixed shape of
    the loop in `Plan.evaluate_loop`; every value of the policy (field names, scopes,
    predicates, transforms, prebuilt decisions) reaches the function as a constant of its
    namespace, never as text, so no part of a document is ever compiled. A condition shared by
    several fields (the same key and argument) is evaluated once per case, on first need: the
    predicates are pure functions of the case. Decisions come out in the loop's order, so the
    decision record is the loop's (tests/policies/test_plan.py compares them)."""
    namespace: dict[str, object] = {"_disclosed": _disclosed, "Disclosed": Disclosed}
    lines = [
        "def fields_step(record, assignment, today, granted, relied):",
        "    values = record.values",
        "    view = {}",
        "    decisions = []",
        "    append = decisions.append",
    ]
    keys: dict[object, str] = {}  # a condition's (key, argument) -> its memo variable
    for i, (field, source) in enumerate(zip(fields, sources, strict=True)):
        if field.dropped:
            namespace[f"dropped{i}"] = field.dropped_decision
            lines.append(f"    append(dropped{i})")
            continue
        branches: list[tuple[str, str]] = []
        if field.scope is not None:
            namespace[f"scope{i}"] = field.scope
            namespace[f"no_consent{i}"] = field.no_consent
            branches.append((f"scope{i} not in granted", f"append(no_consent{i})"))
        for j, ((holds, failed), key) in enumerate(
            zip(field.predicates, field.condition_keys, strict=True)
        ):
            var = keys.get(key)
            if var is None:
                var = keys[key] = f"c{len(keys)}"
                namespace[f"holds_{var}"] = holds
                lines.insert(5, f"    {var} = None")
            namespace[f"unmet{i}_{j}"] = failed
            test = (
                f"not ({var} if {var} is not None else "
                f"({var} := holds_{var}(values, assignment, today)))"
            )
            branches.append((test, f"append(unmet{i}_{j})"))
        if source == "case.reference":
            read = "record.case_reference"
        elif source == "assignment.services":
            read = "assignment.services"
        elif _plain_source(source):
            namespace[f"source{i}"] = source
            read = f"values.get(source{i})"
        else:
            namespace[f"get{i}"] = field.get
            read = f"get{i}(record, assignment, today)"
        namespace[f"transform{i}"] = field.transform
        namespace[f"name{i}"] = field.name
        namespace[f"sealed{i}"] = field.sealed
        namespace[f"how{i}"] = field.transform_name
        namespace[f"no_value{i}"] = field.no_value
        namespace[f"shared{i}"] = field.shared
        share = [
            f"value = transform{i}({read})",
            "if value is None:",
            f"    append(no_value{i})",
            "else:",
            f"    view[name{i}] = _disclosed(Disclosed, (value, sealed{i}, how{i}))",
            f"    append(shared{i})",
        ]
        if field.scope is not None:
            share.append(f"    relied.add(granted[scope{i}])")
        if not branches:
            lines += ["    " + line for line in share]
            continue
        for k, (test, action) in enumerate(branches):
            lines.append(f"    {'if' if k == 0 else 'elif'} {test}:")
            lines.append(f"        {action}")
        lines.append("    else:")
        lines += ["        " + line for line in share]
    for m, (name, decision) in enumerate(unused):
        namespace[f"unused_name{m}"] = name
        namespace[f"unused{m}"] = decision
        lines.append(f"    if values.get(unused_name{m}) is not None:")
        lines.append(f"        append(unused{m})")
    lines.append("    return view, decisions")
    code = compile("\n".join(lines) + "\n", "<policy plan>", "exec")
    exec(code, namespace)  # noqa: S102 - source built above from fixed fragments only
    step = namespace["fields_step"]
    return step  # type: ignore[return-value]


class Plan:
    """A policy compiled for evaluation. Build one per policy version, once."""

    __slots__ = (
        "policy", "purpose", "reads", "required", "fields", "unused", "_required_denials",
        "_fields_step",
    )  # fmt: skip

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
        self._fields_step = compile_fields(
            self.fields, tuple(rule.source for rule in policy.fields), self.unused
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

        relied = {granted[s] for s in self.required}
        view, decisions = self._fields_step(record, assignment, today, granted, relied)
        return Evaluation(
            purpose=self.purpose,
            policy=self.policy.identity,
            view=MappingProxyType(view),
            decisions=tuple(decisions),
            consent_event_ids=tuple(sorted(relied)) if view else (),
        )

    def evaluate_loop(
        self,
        record: ResidentRecord,
        consents: ConsentState,
        agreement: AgreementTerms,
        assignment: AssignmentTerms,
        today: dt.date,
    ) -> Evaluation:
        """`evaluate` as the loop over the plan's steps that the compiled function unrolls
        (kept as its specification: the tests compare the two)."""
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
