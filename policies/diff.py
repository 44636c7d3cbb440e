"""What a change of policy would newly disclose, field by field.

A change "widens" when the new document could send the contractor something the old one
could not: a new disclosing field, a finer transform, a field no longer sealed, a condition
removed or loosened, a required consent scope dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.conditions import Condition
from policies.document import FieldRule, Policy
from policies.transforms import TRANSFORMS


@dataclass(frozen=True, slots=True)
class Change:
    """One difference. `what` is the English line the CLI prints; `kind`, `before` and `after`
    are the same facts for a reader that words them itself (the console, in Chinese):

        disclosed  after = the rule          dropped / removed
        source, transform, condition_changed, purpose   before -> after
        unsealed, sealed                     condition_removed  before = the condition
        condition_added  after = the condition     scope_dropped / scope_required  the scope
    """

    field: str  # output field name, or "(policy)" for document-level changes
    what: str
    widens: bool
    kind: str = ""
    before: str = ""
    after: str = ""

    def __str__(self) -> str:
        mark = "+" if self.widens else "-"
        return f"{mark} {self.field}: {self.what}"


def _describe(rule: FieldRule) -> str:
    text = f"{rule.source} via {rule.transform}"
    if rule.sealed:
        text += " (sealed)"
    if rule.conditions:
        text += " when " + ", ".join(c.describe() for c in rule.conditions)
    return text


def _condition_changes(name: str, old: FieldRule, new: FieldRule) -> list[Change]:
    before = {c.name: c for c in old.conditions}
    after = {c.name: c for c in new.conditions}
    changes: list[Change] = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        if now is None:
            changes.append(Change(name, f"condition {key} removed (shared more often)", True,
                                  "condition_removed", was.describe() if was else key))
        elif was is None:
            changes.append(Change(name, f"condition {now.describe()} added", False,
                                  "condition_added", after=now.describe()))
        else:
            changes.append(
                Change(name, f"condition {was.describe()} -> {now.describe()}", _looser(was, now),
                       "condition_changed", was.describe(), now.describe())
            )
    return changes


def _looser(was: Condition, now: Condition) -> bool:
    if isinstance(was.arg, int) and isinstance(now.arg, int):
        return now.arg > was.arg
    if isinstance(was.arg, tuple) and isinstance(now.arg, tuple):
        return not set(now.arg) <= set(was.arg)
    return True


def _field_changes(old: FieldRule, new: FieldRule) -> list[Change]:
    name = new.name
    if not old.discloses and new.discloses:
        return [Change(name, f"newly disclosed: {_describe(new)}", True, "disclosed",
                       after=_describe(new))]
    if old.discloses and not new.discloses:
        return [Change(name, "no longer disclosed (drop)", False, "dropped")]
    if not new.discloses:
        return []
    changes: list[Change] = []
    if old.source != new.source:
        changes.append(Change(name, f"source {old.source} -> {new.source}", True, "source",
                              old.source, new.source))
    if old.transform != new.transform:
        finer = (
            old.source != new.source
            or TRANSFORMS[new.transform].precision > TRANSFORMS[old.transform].precision
        )
        changes.append(Change(name, f"transform {old.transform} -> {new.transform}", finer,
                              "transform", old.transform, new.transform))
    if old.sealed and not new.sealed:
        changes.append(Change(name, "no longer sealed (disclosed in clear)", True, "unsealed"))
    elif new.sealed and not old.sealed:
        changes.append(Change(name, "now sealed", False, "sealed"))
    changes.extend(_condition_changes(name, old, new))
    return changes


def diff_policies(old: Policy, new: Policy) -> tuple[Change, ...]:
    """Every difference that matters to disclosure, widening ones marked."""
    changes: list[Change] = []
    if old.purpose != new.purpose:
        changes.append(Change("(policy)", f"purpose {old.purpose} -> {new.purpose}", True,
                              "purpose", str(old.purpose), str(new.purpose)))
    for scope in sorted(old.required_scopes - new.required_scopes):
        changes.append(Change("(policy)", f"consent scope {scope.value} no longer required", True,
                              "scope_dropped", scope.value))
    for scope in sorted(new.required_scopes - old.required_scopes):
        changes.append(Change("(policy)", f"consent scope {scope.value} now required", False,
                              "scope_required", after=scope.value))
    before = {f.name: f for f in old.fields}
    after = {f.name: f for f in new.fields}
    for name, rule in after.items():
        if name not in before:
            if rule.discloses:
                changes.append(Change(name, f"newly disclosed: {_describe(rule)}", True,
                                      "disclosed", after=_describe(rule)))
        else:
            changes.extend(_field_changes(before[name], rule))
    for name, rule in before.items():
        if name not in after and rule.discloses:
            changes.append(Change(name, "no longer disclosed (removed)", False, "removed"))
    return tuple(changes)


def introduce(new: Policy) -> tuple[Change, ...]:
    """What a policy with no earlier version discloses: every disclosing field is new."""
    return tuple(Change(f.name, f"newly disclosed: {_describe(f)}", True, "disclosed",
                        after=_describe(f)) for f in new.fields if f.discloses)  # fmt: skip
