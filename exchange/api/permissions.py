"""The API's gate on the one permission table (exchange.permissions, shared by every door).

Every API route declares exactly one operation, through its context (`context_for(...)` in
exchange.api.context, which installs a `Requirement`); a test walks the app and fails if a
route has none or names one missing here. Scope checks (a cadre's communities, a contractor's
own cases) are the flows' job on top of this gate. A refusal is audited (`access.denied`).
"""

from __future__ import annotations

from fastapi import Request

from exchange.api.auth import CurrentIdentity
from exchange.api.denials import audit_forbidden, remember
from exchange.api.problems import Problem
from exchange.identity import Identity
from exchange.permissions import PERMISSIONS, allowed

__all__ = ["PERMISSIONS", "Requirement", "allowed"]


class Requirement:
    """The dependency that admits a role to `operation`; `operation` lets tests find it."""

    def __init__(self, operation: str) -> None:
        if operation not in PERMISSIONS:
            raise ValueError(f"unknown operation {operation!r}: add it to PERMISSIONS")
        self.operation = operation

    def __call__(self, request: Request, identity: CurrentIdentity) -> Identity:
        if not allowed(identity.role, self.operation):
            audit_forbidden(request, "role_not_permitted", identity)
            raise Problem(403, "forbidden", f"role {identity.role} may not {self.operation}")
        remember(request, identity)
        return identity

    def __repr__(self) -> str:
        return f"Requirement({self.operation!r})"
