"""Bearer tokens of principals: issue, rotate, revoke, resolve, record last use, list.

A token is 256 random bits shown once; `api_tokens` keeps its SHA-256 (domain separated), so a
database dump grants no access. A principal may hold several tokens (two `make run` on one
database, or a rotation's overlap), each with its own expiry. Every process and instance reads
the same table, so a token issued by the CLI works on every worker at once and after restarts.

Last use is recorded without a write per request: `LastUseRecorder` writes a token's
`last_used_at` at most once per `LAST_USE_RESOLUTION` per process, and the UPDATE itself skips
rows another process refreshed within that window.

Never commits, except `LastUseRecorder.record`, which is its own small unit of work.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from exchange.db import models as m
from exchange.identity import Identity
from exchange.logs import get_logger

TOKEN_PREFIX = "exq_"
DEFAULT_TOKEN_TTL = timedelta(days=90)
LAST_USE_RESOLUTION = timedelta(minutes=1)
MAX_TOKEN_LENGTH = 128
_HASH_DOMAIN = b"exchange/api-token/v1\x00"
_log = get_logger("exchange.tokens")


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(_HASH_DOMAIN + token.encode("utf-8")).hexdigest()


def issue_token(
    row: m.Principal,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TOKEN_TTL,
    cnf_x5t_s256: str | None = None,
) -> str:
    """Give `row` one more token (its others stay valid); returns the token, once.

    `cnf_x5t_s256` binds the token to a client certificate (RFC 8705)."""
    if ttl <= timedelta(0):
        raise ValueError("a token's lifetime must be positive")
    token = generate_token()
    row.tokens.append(m.ApiToken(token_hash=hash_token(token), created_at=now,
                                 expires_at=now + ttl, cnf_x5t_s256=cnf_x5t_s256))
    return token


def active_tokens(row: m.Principal, now: datetime) -> list[m.ApiToken]:
    return [t for t in row.tokens if t.revoked_at is None and t.expires_at > now]


def rotate(
    row: m.Principal,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TOKEN_TTL,
    overlap: timedelta = timedelta(0),
    cnf_x5t_s256: str | None = None,
    keep_binding: bool = True,
) -> str:
    """A new token; the principal's other tokens end after `overlap` (at once when zero).

    The new token keeps the newest active token's certificate binding unless another is given
    (or `keep_binding` is false)."""
    current = active_tokens(row, now)
    if cnf_x5t_s256 is None and keep_binding and current:
        cnf_x5t_s256 = max(current, key=lambda t: t.created_at).cnf_x5t_s256
    for old in current:
        if overlap <= timedelta(0):
            old.revoked_at = now
        else:
            old.expires_at = min(old.expires_at, now + overlap)
    return issue_token(row, now=now, ttl=ttl, cnf_x5t_s256=cnf_x5t_s256)


def revoke_principal(row: m.Principal, *, now: datetime) -> None:
    """The principal and every token it holds stop working at once."""
    row.revoked_at = now
    for token in row.tokens:
        if token.revoked_at is None:
            token.revoked_at = now


@dataclass(frozen=True, slots=True)
class Resolved:
    """A token that authenticates: its row id, its certificate binding, and who holds it."""

    token_id: str
    cnf_x5t_s256: str | None
    identity: Identity
    last_used_at: datetime | None


_tokens = m.ApiToken.__table__
_principals = m.Principal.__table__
_communities = m.principal_communities
# every request runs this: one Core statement, no ORM object (the token and its principal,
# once per community the principal holds)
_RESOLVE = (
    select(
        _tokens.c.id,
        _tokens.c.cnf_x5t_s256,
        _tokens.c.revoked_at,
        _tokens.c.expires_at,
        _tokens.c.last_used_at,
        _principals.c.id,
        _principals.c.name,
        _principals.c.role,
        _principals.c.display_name,
        _principals.c.contractor_id,
        _principals.c.revoked_at,
        _communities.c.community_id,
    )
    .join(_principals, _principals.c.id == _tokens.c.principal_id)
    .outerjoin(_communities, _communities.c.principal_id == _principals.c.id)
    .where(_tokens.c.token_hash == bindparam("token_hash"))
)


def resolve(session: Session, token: str, now: datetime) -> tuple[Resolved | None, str]:
    """The principal holding `token`, or None and the reason (for logs, never for clients)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None, "malformed"
    rows = session.connection().execute(_RESOLVE, {"token_hash": hash_token(token)}).all()
    if not rows:
        return None, "unknown"
    (token_id, cnf, revoked_at, expires_at, last_used_at, principal_id, name, role, display_name,
     contractor_id, principal_revoked_at, _) = rows[0]  # fmt: skip
    if principal_revoked_at is not None or revoked_at is not None:
        return None, "revoked"
    if expires_at <= now:
        return None, "expired"
    communities = frozenset(r[-1] for r in rows if r[-1] is not None)
    identity = Identity(principal_id, name, role, display_name, contractor_id, communities)
    return Resolved(token_id, cnf, identity, last_used_at), "ok"


class LastUseRecorder:
    """Writes `api_tokens.last_used_at` at most once per resolution per token and process.

    In-memory memory of what this process wrote (bounded); the conditional UPDATE skips rows
    that any process refreshed within the resolution, so N workers write at most N times a
    minute per token and usually once."""

    def __init__(self, resolution: timedelta = LAST_USE_RESOLUTION,
                 max_tokens: int = 10_000) -> None:
        self.resolution = resolution
        self.max_tokens = max_tokens
        self._written: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def due(self, resolved: Resolved, now: datetime) -> bool:
        stored = resolved.last_used_at
        if stored is not None and now - stored < self.resolution:
            return False
        with self._lock:
            last = self._written.get(resolved.token_id)
            return last is None or now - last >= self.resolution

    def record(self, factory: sessionmaker[Session], resolved: Resolved, now: datetime) -> bool:
        """Write last use if due; True when a row was written. A failure is logged, not
        raised: last use is bookkeeping and must not fail an authenticated request."""
        if not self.due(resolved, now):
            return False
        with self._lock:
            if len(self._written) >= self.max_tokens:
                self._written.clear()
            self._written[resolved.token_id] = now
        cutoff = now - self.resolution
        try:
            with factory.begin() as session:
                result = session.execute(
                    update(m.ApiToken)
                    .where(m.ApiToken.id == resolved.token_id,
                           or_(m.ApiToken.last_used_at.is_(None),
                               m.ApiToken.last_used_at < cutoff))
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
                written = getattr(result, "rowcount", 0)
        except SQLAlchemyError as exc:
            _log.warning("token_last_use_not_recorded", error_type=type(exc).__name__)
            return False
        return bool(written)


@dataclass(frozen=True, slots=True)
class PrincipalListing:
    """What the CLI's and the console's principal lists show (never a token or its hash)."""

    id: str
    name: str
    role: str
    display_name: str
    communities: tuple[str, ...]
    contractor: str | None
    state: str  # active | revoked | no token | expired
    active_tokens: int
    expires_at: datetime | None  # the latest expiry among active tokens
    last_used_at: datetime | None  # the latest use of any of its tokens
    cert_bound: bool  # every active token is bound to a client certificate


def _state(row: m.Principal, active: Sequence[m.ApiToken]) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if active:
        return "active"
    return "expired" if row.tokens else "no token"


def list_principals(session: Session, now: datetime) -> list[PrincipalListing]:
    rows = session.scalars(
        select(m.Principal).order_by(m.Principal.name)
        .options(selectinload(m.Principal.communities), selectinload(m.Principal.tokens))
    ).all()
    contractors: dict[str, str] = {
        row.id: row.name for row in session.execute(select(m.Contractor.id, m.Contractor.name))
    }
    out = []
    for row in rows:
        active = active_tokens(row, now) if row.revoked_at is None else []
        used = [t.last_used_at for t in row.tokens if t.last_used_at is not None]
        out.append(PrincipalListing(
            id=row.id, name=row.name, role=row.role, display_name=row.display_name,
            communities=tuple(sorted(c.name for c in row.communities)),
            contractor=contractors.get(row.contractor_id) if row.contractor_id else None,
            state=_state(row, active), active_tokens=len(active),
            expires_at=max((t.expires_at for t in active), default=None),
            last_used_at=max(used, default=None),
            cert_bound=bool(active) and all(t.cnf_x5t_s256 for t in active),
        ))
    return out


def prune_expired(session: Session, now: datetime, *, keep: timedelta = timedelta(days=30)
                  ) -> int:
    """Delete tokens that expired or were revoked more than `keep` ago; returns how many."""
    cutoff = now - keep
    rows = session.scalars(select(m.ApiToken).where(or_(
        m.ApiToken.expires_at < cutoff, m.ApiToken.revoked_at < cutoff))).all()
    for row in rows:
        session.delete(row)
    return len(rows)

