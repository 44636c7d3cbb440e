"""The API's refusals into the audit log (exchange.services.denials), each in its own unit of
work, so the entry commits although the request fails: a 401 from `auth.authenticate`
(rate-limited, keyed by the token's keyed reference), a 403 from the permission gate, from a
principal bound to no contractor, or from a service's `NotPermitted` (through the error
mapping). If the entry cannot be appended the answer is 503, as for every audited request."""

from __future__ import annotations

from fastapi import Request

from exchange.db.engine import unit_of_work
from exchange.identity import Acting, Identity
from exchange.routes import route_template
from exchange.services import denials


def route_of(request: Request) -> str:
    """The matched route's template with its prefix, never the path (which may hold a
    value); the access log's own reading of it."""
    return route_template(request.scope)


def _request_id(request: Request, name: str = "request_id") -> str | None:
    """The server's request id, or (`client_request_id`) the caller's own beside it."""
    value = getattr(request.state, name, None)
    return value if isinstance(value, str) else None


def audit_unauthenticated(request: Request, reason: str, token: str | None) -> None:
    state = request.app.state
    client_id = _request_id(request, "client_request_id")
    with unit_of_work(state.session_factory) as session:
        denials.record_unauthenticated(session, state.keyring, state.clock(),
                                       _request_id(request), reason, route_of(request),
                                       token, client_id)  # fmt: skip


def remember(request: Request, identity: Identity) -> None:
    """Keep the authenticated caller on the request, for a refusal raised later by a flow."""
    request.state.identity = identity


def audit_forbidden(request: Request, reason: str, identity: Identity | None = None) -> None:
    identity = identity or getattr(request.state, "identity", None)
    if not isinstance(identity, Identity):
        return  # no principal: its 401 was audited instead
    state = request.app.state
    acting = Acting(identity, state.clock(), _request_id(request),
                    _request_id(request, "client_request_id"))
    with unit_of_work(state.session_factory) as session:
        denials.record_forbidden(session, acting, route_of(request), reason)
