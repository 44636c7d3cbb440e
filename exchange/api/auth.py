"""Bearer-token authentication.

Tokens are 256-bit random strings shown once; the database holds only their SHA-256 (domain
separated), so a database dump grants no access. Failed attempts are logged as denials without
the token and rate-limited per client address.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from exchange.api.problems import Problem
from exchange.db import models as m
from exchange.identity import Identity
from exchange.logs import get_logger

TOKEN_PREFIX = "exq_"
DEFAULT_TOKEN_TTL = timedelta(days=90)
_HASH_DOMAIN = b"exchange/api-token/v1\x00"
_log = get_logger("exchange.auth")


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(_HASH_DOMAIN + token.encode("utf-8")).hexdigest()


def issue_token(row: m.Principal, *, now: datetime, ttl: timedelta = DEFAULT_TOKEN_TTL) -> str:
    """Give `row` a fresh token (replacing any previous one); returns the token, once."""
    token = generate_token()
    row.token_hash = hash_token(token)
    row.token_expires_at = now + ttl
    return token


def revoke(row: m.Principal, *, now: datetime) -> None:
    row.revoked_at = now
    row.token_hash = None


_principals = m.Principal.__table__
_communities = m.principal_communities
# one Core statement per request (no ORM object): the principal once per community it holds
_LOOKUP = (
    select(
        _principals.c.id,
        _principals.c.name,
        _principals.c.role,
        _principals.c.display_name,
        _principals.c.contractor_id,
        _principals.c.revoked_at,
        _principals.c.token_expires_at,
        _communities.c.community_id,
    )
    .outerjoin(_communities, _communities.c.principal_id == _principals.c.id)
    .where(_principals.c.token_hash == bindparam("token_hash"))
)


def lookup(session: Session, token: str, now: datetime) -> tuple[Identity | None, str]:
    """The principal holding `token`, or None and the reason (for logs, never for clients)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None, "malformed"
    rows = session.connection().execute(_LOOKUP, {"token_hash": hash_token(token)}).all()
    if not rows:
        return None, "unknown"
    principal_id, name, role, display_name, contractor_id, revoked_at, expires_at, _ = rows[0]
    if revoked_at is not None:
        return None, "revoked"
    if expires_at is not None and expires_at <= now:
        return None, "expired"
    communities = frozenset(r.community_id for r in rows if r.community_id is not None)
    return Identity(principal_id, name, role, display_name, contractor_id, communities), "ok"


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


def _deny(request: Request, reason: str) -> Problem:
    state = request.app.state
    state.failure_limiter.record_failure(_client(request))
    state.metrics.auth_failures.labels(reason).inc()
    _log.warning("auth_denied", reason=reason, client=_client(request), path=request.url.path)
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
        identity, reason = lookup(session, token.strip(), now)
    if identity is None:
        raise _deny(request, reason)
    return identity


CurrentIdentity = Annotated[Identity, Depends(authenticate)]
