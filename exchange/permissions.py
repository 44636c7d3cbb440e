"""Who may do what: one deny-by-default table of operation -> roles, for every door.

The API's routes declare one operation each (`exchange.api.context.context_for`), the console
asks the same table before it shows a form or takes a write (`Page.can`, `Page.require`), and
a service that a door without a gate of its own reaches (the CLI's import) asks it too, so no
door lets a role do more than another (invariant 12). Scope (a cadre's communities, a
contractor's own cases) is the services' job on top of this gate.

Web-free: no FastAPI, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from exchange.identity import AUDITOR, COMMUNITY_CADRE, CONTRACTOR, OFFICE_ADMIN

PERMISSIONS: Final[Mapping[str, frozenset[str]]] = {
    # contractor system
    "cases.read": frozenset({CONTRACTOR}),
    "cases.acknowledge": frozenset({CONTRACTOR}),
    "service_records.write": frozenset({CONTRACTOR}),
    "contractor_keys.write": frozenset({OFFICE_ADMIN}),
    # community work
    "residents.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE}),
    "residents.reveal": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE}),
    "residents.write": frozenset({COMMUNITY_CADRE}),
    # the office's service centre loads ledgers too (any community); a cadre into hers
    "residents.import": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE}),
    "residents.erase": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE}),
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
    # "who saw my data" (个人信息查阅记录): the office answers a resident's request, and so does
    # her community's cadre (DESIGN.md §2); the service scopes it to the caller's communities.
    # An auditor accounts for disclosures through the audit log, by pseudonym.
    "disclosures.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE}),
    # whoami
    "session.read": frozenset({OFFICE_ADMIN, COMMUNITY_CADRE, CONTRACTOR, AUDITOR}),
}


def allowed(role: str, operation: str) -> bool:
    return role in PERMISSIONS.get(operation, frozenset())
