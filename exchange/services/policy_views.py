"""What a policy version discloses, and what a change of version changes, as typed views for
the office's screens (the console's agreement and policy pages; the CLI prints the same facts
from `policies.diff.Change.what`).

    summary(policy)          the version: id, hash, purpose, required consent, each field it
                             discloses (source, transform, sealed, conditions)
    change_views(changes)    each difference with its kind and before/after, widening marked
    previous_version(...)    the published version just below a version of the same policy

Pure functions of parsed policies: no database, no audit (a policy is not personal data).
"""

from __future__ import annotations

from collections.abc import Iterable

from typing_extensions import TypedDict

from policies.conditions import Condition
from policies.diff import Change
from policies.document import Policy


class ConditionView(TypedDict):
    name: str  # visit_booked_within_days | services_any | stage_in
    value: str  # days, or the codes joined by ", "


class RuleView(TypedDict):
    name: str  # the field as the contractor receives it
    source: str  # catalogue source (resident.phone, address, episode.stage, ...)
    transform: str
    sealed: bool  # opened only on the instructor's device
    conditions: list[ConditionView]
    description: str


class PolicySummary(TypedDict):
    id: str
    version: int
    reference: str  # id@version
    sha256: str
    title: str
    purpose: str
    legal_basis: str
    required_scopes: list[str]
    rules: list[RuleView]  # what it discloses
    withheld: list[str]  # fields it names only to record that they are never sent


class ChangeView(TypedDict):
    field: str  # "(policy)" for a change of the document as a whole
    kind: str  # see policies.diff.Change
    before: str
    after: str
    widens: bool
    text: str  # the English line, as the CLI prints it


def _condition(c: Condition) -> ConditionView:
    value = str(c.arg) if isinstance(c.arg, int) else ", ".join(c.arg)
    return {"name": c.name, "value": value}


def summary(policy: Policy) -> PolicySummary:
    ident = policy.identity
    return {
        "id": ident.id, "version": ident.version, "reference": ident.reference,
        "sha256": ident.sha256, "title": policy.title, "purpose": policy.purpose.value,
        "legal_basis": policy.legal_basis.value,
        "required_scopes": sorted(s.value for s in policy.required_scopes),
        "rules": [{"name": f.name, "source": f.source, "transform": f.transform,
                   "sealed": f.sealed, "conditions": [_condition(c) for c in f.conditions],
                   "description": f.description} for f in policy.fields if f.discloses],
        "withheld": [f.name for f in policy.fields if not f.discloses],
    }  # fmt: skip


def change_views(changes: Iterable[Change]) -> list[ChangeView]:
    return [{"field": c.field, "kind": c.kind, "before": c.before, "after": c.after,
             "widens": c.widens, "text": str(c)} for c in changes]  # fmt: skip


def previous_version(policies: Iterable[Policy], policy: Policy) -> Policy | None:
    """The highest published version of the same policy id below `policy`'s, if any."""
    earlier = [p for p in policies if p.id == policy.id and p.version < policy.version]
    return max(earlier, key=lambda p: p.version, default=None)
