"""Bearer-token authentication.

Tokens are 256-bit random strings shown once; the database holds only their SHA-256 (domain
separated), so a database dump grants no access (exchange.services.tokens issues, resolves and
records their last use). A token bound to a client certificate works only with it. Failed
attempts are logged as denials without the token, rate-limited per client address in the
database (exchange.services.auth_failures; a token that authenticates is never limited), and
audited (exchange.api.denials: a bounded number per minute, keyed by the token's keyed
reference, never the token).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from exchange.api.client_cert import binding_holds, presented_thumbprint
from exchange.api.denials import audit_unauthenticated
from exchange.api.problems import Problem
from exchange.db.engine import unit_of_work
from exchange.identity import Identity
from exchange.logs import get_logger
from exchange.routes import route_template
from exchange.services import auth_failures, tokens
from exchange.services.tokens import (  # noqa: F401  (re-exported: the API's token vocabulary)
    DEFAULT_TOKEN_TTL,
    TOKEN_PREFIX,
    generate_token,
    hash_token,
    issue_token,
)

_log = get_logger("exchange.auth")


def lookup(session: Session, token: str, now: datetime) -> tuple[Identity | None, str]:
    """The principal holding `token`, or None and the reason (for logs, never for clients)."""
    resolved, reason = tokens.resolve(session, token, now)
    return (resolved.identity if resolved else None), reason


class FailureLimiter:
    """Failed authentications per client address, counted in the database
    (exchange.services.auth_failures), so every process shares the count. Only failures
    are limited: a token that authenticates is never refused here."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute

    def record_failure(self, request: Request) -> auth_failures.Verdict:
        state = request.app.state
        with unit_of_work(state.session_factory) as session:
            client = auth_failures.client_key(state.keyring, client_address(request))
            return auth_failures.record_failure(session, client, state.clock(), self.per_minute)


def client_address(request: Request) -> str:
    """The direct peer, or the client a trusted proxy named (exchange.api.client_cert applies
    X-Forwarded-For from EXCHANGE_FORWARDED_ALLOW_IPS only)."""
    return request.client.host if request.client else "unknown"


def _deny(request: Request, reason: str, token: str | None = None) -> Problem:
    state = request.app.state
    verdict = state.failure_limiter.record_failure(request)
    state.metrics.auth_failures.labels(reason).inc()
    _log.warning("auth_denied", reason=reason, client=client_address(request),
                 route=route_template(request.scope), limited=verdict.limited)
    if verdict.limited:
        # answered 429, not 401, and without a write: a flood of bad tokens from one
        # address costs the database reads only (its first failures were audited)
        return Problem(
            429,
            "too-many-requests",
            "too many failed authentications; retry later",
            headers={"Retry-After": str(verdict.retry_after)},
        )
    audit_unauthenticated(request, reason, token)  # rate-limited; never the token
    if reason == "certificate_mismatch":  # RFC 6750 error code for a token used out of bounds
        return Problem(401, "invalid-token", "this token is bound to another client certificate",
                       headers={"WWW-Authenticate": 'Bearer realm="exchange", '
                                                    'error="invalid_token"'})
    return Problem(
        401,
        "unauthenticated",
        "a valid bearer token is required",
        headers={"WWW-Authenticate": 'Bearer realm="exchange"'},
    )


def authenticate(request: Request) -> Identity:
    """Dependency: resolve `Authorization: Bearer <token>` to an Identity, or answer 401/429."""
    state = request.app.state
    header = request.headers.get("authorization")
    if not header:
        raise _deny(request, "missing")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _deny(request, "malformed")
    now: datetime = state.clock()
    with state.session_factory() as session:
        resolved, reason = tokens.resolve(session, token.strip(), now)
        identity = resolved.identity if resolved else None
    if resolved is None or identity is None:
        raise _deny(request, reason, token.strip())
    # -- issue 17: client-certificate binding (exchange.api.client_cert) and last use --------
    thumbprint = presented_thumbprint(request)
    if not binding_holds(resolved.cnf_x5t_s256, thumbprint):
        raise _deny(request, "certificate_mismatch", token.strip())
    state.last_use.record(state.session_factory, resolved, now)
    return replace(identity, cert_thumbprint=thumbprint) if thumbprint else identity


CurrentIdentity = Annotated[Identity, Depends(authenticate)]
