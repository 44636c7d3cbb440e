"""Dependencies shared by the contractor-facing routers (cases, tombstones).

The audit sink and policy set come from `app.state` when a test or deployment sets them
(`audit_sink`, `policies`); otherwise the SQL audit store and the shipped policies.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response

from exchange.api.auth import Principal
from exchange.api.deps import Clock
from exchange.api.problems import Problem, problem_response
from exchange.services.auditing import Acting, AuditSink, SqlAuditSink
from exchange.services.errors import FlowError
from policies.engine import PolicySet
from policies.shipped import shipped_policies

_SQL_SINK = SqlAuditSink()


def _sink(request: Request) -> AuditSink:
    sink: AuditSink | None = getattr(request.app.state, "audit_sink", None)
    return sink if sink is not None else _SQL_SINK


def _policies(request: Request) -> PolicySet:
    policies: PolicySet | None = getattr(request.app.state, "policies", None)
    return policies if policies is not None else shipped_policies()


Sink = Annotated[AuditSink, Depends(_sink)]
Policies = Annotated[PolicySet, Depends(_policies)]


def request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def acting(request: Request, principal: Principal, clock: Clock) -> Acting:
    return Acting(principal.id, principal.role, clock(), request_id(request))


def contractor_of(principal: Principal) -> str:
    if principal.contractor_id is None:  # the schema forbids it; refuse rather than assume
        raise Problem(403, "forbidden", "principal is not bound to a contractor")
    return principal.contractor_id


def not_found(request: Request, what: str) -> JSONResponse:
    """The one answer for every reference the caller may not see: same status, body, type."""
    return problem_response(
        404, "not-found", detail=f"no such {what}", request_id=request_id(request)
    )


def audit_unavailable() -> Problem:
    return Problem(503, "audit-unavailable", "the audit log could not record this request; "
                   "nothing was returned", headers={"Retry-After": "5"})  # fmt: skip


def flow_problem(exc: FlowError) -> Problem:
    errors = [{"field": e.field, "type": e.reason, "message": e.message} for e in exc.errors]
    return Problem(
        exc.status, exc.slug, exc.detail, extensions={"errors": errors} if errors else None
    )


def json_bytes(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
