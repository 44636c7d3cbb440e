"""Shared plumbing of the office and auditor routers.

`translate_errors` is a router-level dependency: a flow's `FlowError` becomes its RFC 9457
problem and a failed audit append a 503 (after the request's unit of work rolled back, since
the session dependency is entered later and so exits first).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Depends, Request

from exchange.api.auth import Principal
from exchange.api.deps import Clock
from exchange.api.routers._contractor import audit_unavailable, flow_problem, json_bytes
from exchange.api.routers._contractor import request_id as _request_id
from exchange.services.audit_access import Caller
from exchange.services.auditing import AuditUnavailable
from exchange.services.errors import FlowError

__all__ = ["OFFICE_ERRORS", "caller", "json_bytes"]


def translate_errors() -> Iterator[None]:
    try:
        yield
    except FlowError as exc:
        raise flow_problem(exc) from None
    except AuditUnavailable:
        raise audit_unavailable() from None


OFFICE_ERRORS: list[Any] = [Depends(translate_errors, scope="function")]


def caller(request: Request, principal: Principal, clock: Clock) -> Caller:
    return Caller(principal, clock(), _request_id(request))
