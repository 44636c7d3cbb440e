"""Bearer-token authentication.

Tokens are 256-bit random strings shown once; the database holds only their SHA-256 (domain
separated), so a database dump grants no access (exchange.services.tokens issues, resolves and
records their last use). A token bound to a client certificate works only with it. Failed
attempts are logged as denials without the token and rate-limited per client address, and
audited (exchange.api.denials: a bounded number per minute, keyed by the token's keyed
reference, never the token).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from exchange.api.client_cert import binding_holds, presented_thumbprint
from exchange.api.denials import audit_unauthenticated
from exchange.api.problems import Problem
from exchange.identity import Identity
from exchange.logs import get_logger
from exchange.services import tokens
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
    """Token bucket per client address, spent by failed authentications only."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _level(self, client: str, now: float) -> float:
        tokens, last = self._buckets.get(client, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.rate)

    def blocked(self, client: str) -> bool:
        with self._lock:
            return self._level(client, self.clock()) < 1.0

    def record_failure(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                self._buckets.clear()  # bounded memory; a flood resets rather than grows
            self._buckets[client] = (max(0.0, self._level(client, now) - 1.0), now)

    def retry_after(self) -> int:
        return max(1, int(1 / self.rate))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _deny(request: Request, reason: str, token: str | None = None) -> Problem:
    state = request.app.state
    audit_unauthenticated(request, reason, token)  # rate-limited; never the token
    state.failure_limiter.record_failure(_client(request))
    state.metrics.auth_failures.labels(reason).inc()
    _log.warning("auth_denied", reason=reason, client=_client(request), path=request.url.path)
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
    limiter: FailureLimiter = state.failure_limiter
    if limiter.blocked(_client(request)):
        _log.warning("auth_rate_limited", client=_client(request))
        raise Problem(
            429,
            "too-many-requests",
            "too many failed authentications; retry later",
            headers={"Retry-After": str(limiter.retry_after())},
        )
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
