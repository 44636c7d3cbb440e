"""Who may do what: one deny-by-default table of operation -> roles.

Every API route declares exactly one operation, through its context (`context_for(...)` in
exchange.api.context, which installs a `Requirement`); a test walks the app and fails if a
route has none or names one missing here. Scope checks (a cadre's communities, a contractor's
own cases) are the flows' job on top of this gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from exchange.api.auth import CurrentIdentity
from exchange.api.problems import Problem
from exchange.identity import AUDITOR, COMMUNITY_CADRE, CONTRACTOR, OFFICE_ADMIN, Identity

PERMISSIONS: Final[Mapping[str, frozenset[str]]] = {
    # contractor system
    "cases.read": frozenset({CONTRACTOR}),
    "cases.acknowledge": frozenset({CONTRACTOR}),
    "service_records.write": frozenset({CONTRACTOR}),
    "contractor_keys.write": frozenset({OFFICE_ADMIN}),
    # community work
    "residents.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE}),
    "residents.write": frozenset({COMMUNITY_CADRE}),
    "residents.import": frozenset({COMMUNITY_CADRE}),
    "residents.erase": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE}),
    "residents.report": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE}),
    "residents.pseudonym": frozenset({OFFICE_ADMIN}),
    "consents.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE, AUDITOR}),
    "consents.write": frozenset({COMMUNITY_CADRE}),
    "assignments.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE}),
    "assignments.write": frozenset({COMMUNITY_CADRE}),
    "progress.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE}),
    # administration
    "communities.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE, AUDITOR}),
    "communities.write": frozenset({OFFICE_ADMIN}),
    "contractors.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE, AUDITOR}),
    "contractors.write": frozenset({OFFICE_ADMIN}),
    "agreements.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE, AUDITOR}),
    "agreements.write": frozenset({OFFICE_ADMIN}),
    "policies.read": frozenset({OFFICE_ADMIN, AUDITOR}),
    "policies.write": frozenset({OFFICE_ADMIN}),
    "principals.read": frozenset({OFFICE_ADMIN}),
    "principals.write": frozenset({OFFICE_ADMIN}),
    "keys.rotate": frozenset({OFFICE_ADMIN}),
    "statistics.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE, AUDITOR}),  # cadres: theirs
    # audit
    "audit.read": frozenset({AUDITOR}),
    "audit.checkpoint": frozenset({AUDITOR, OFFICE_ADMIN}),
    "audit.cosign": frozenset({AUDITOR}),
    "disclosures.read": frozenset({AUDITOR, OFFICE_ADMIN}),
    # whoami
    "session.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE, CONTRACTOR, AUDITOR}),
}


def allowed(role: str, operation: str) -> bool:
    return role in PERMISSIONS.get(operation, frozenset())


class Requirement:
    """The dependency that admits a role to `operation`; `operation` lets tests find it."""

    def __init__(self, operation: str) -> None:
        if operation not in PERMISSIONS:
            raise ValueError(f"unknown operation {operation!r}: add it to PERMISSIONS")
        self.operation = operation

    def __call__(self, identity: CurrentIdentity) -> Identity:
        if not allowed(identity.role, self.operation):
            raise Problem(403, "forbidden", f"role {identity.role} may not {self.operation}")
        return identity

    def __repr__(self) -> str:
        return f"Requirement({self.operation!r})"
