"""Server-side console sessions: a random 256-bit value in the cookie, its SHA-256 in a row.

A session ends on logout, after `idle` without a request, at `absolute` after sign-in, when an
office admin ends it, or when the user's password changes. The CSRF synchronizer token is
derived from the cookie value (a separate hash domain), so it changes with every sign-in and
needs no storage; a database dump yields neither.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from exchange.db import models as m
from exchange.identity import Acting
from exchange.services.audit_access import record
from exchange.services.errors import NotFound, NotPermitted

_TOKEN_DOMAIN = b"exchange/console-session/v1\x00"
_CSRF_DOMAIN = b"exchange/console-csrf/v1\x00"
MAX_TOKEN = 128
# last_seen_at is written at most this often (a page with many htmx requests writes once)
TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class ActiveSession:
    session_id: str
    principal: m.Principal
    account: m.ConsoleAccount
    csrf_token: str


def _hash(token: str) -> str:
    return hashlib.sha256(_TOKEN_DOMAIN + token.encode("utf-8")).hexdigest()


def csrf_token(token: str) -> str:
    return hashlib.sha256(_CSRF_DOMAIN + token.encode("utf-8")).hexdigest()


def csrf_matches(token: str, offered: str) -> bool:
    return hmac.compare_digest(csrf_token(token).encode(), offered.encode("utf-8"))


def open_session(session: Session, principal_id: str, *, address: str, user_agent: str,
                 now: datetime) -> tuple[str, m.ConsoleSession]:  # fmt: skip
    """A new session (always a new value: the id rotates at every sign-in)."""
    token = secrets.token_urlsafe(32)
    agent = "".join(c for c in user_agent[:128] if c.isprintable())
    row = m.ConsoleSession(token_hash=_hash(token), principal_id=principal_id, created_at=now,
                           last_seen_at=now, address=address[:64], user_agent=agent)  # fmt: skip
    session.add(row)
    session.flush()
    return token, row


def _expiry(row: m.ConsoleSession, now: datetime, policy: SessionPolicy) -> str | None:
    if now - row.created_at >= policy.absolute:
        return "absolute"
    if now - row.last_seen_at >= policy.idle:
        return "idle"
    return None


def resolve(session: Session, token: str, now: datetime,
            policy: SessionPolicy) -> tuple[ActiveSession | None, str]:  # fmt: skip
    """The live session behind a cookie value, or None and why; an expired one is ended."""
    if not token or len(token) > MAX_TOKEN:
        return None, "missing"
    row = session.scalars(
        select(m.ConsoleSession)
        .where(m.ConsoleSession.token_hash == _hash(token))
        .options(selectinload(m.ConsoleSession.principal).selectinload(m.Principal.communities))
    ).one_or_none()
    if row is None:
        return None, "unknown"
    if row.ended_at is not None:
        return None, row.end_reason or "ended"
    expired = _expiry(row, now, policy)
    if expired is not None:
        end(row, expired, now)
        return None, expired
    account = session.get(m.ConsoleAccount, row.principal_id)
    if account is None or row.principal.revoked_at is not None:
        end(row, "ended_by_admin", now)
        return None, "revoked"
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return ActiveSession(row.id, row.principal, account, csrf_token(token)), "ok"


def end(row: m.ConsoleSession, reason: str, now: datetime) -> None:
    if row.ended_at is None:
        row.ended_at = now
        row.end_reason = reason


def logout(session: Session, session_id: str, now: datetime) -> None:
    row = session.get(m.ConsoleSession, session_id)
    if row is not None:
        end(row, "logout", now)


def end_all_for(session: Session, principal_id: str, reason: str, now: datetime,
                keep: str | None = None) -> int:  # fmt: skip
    """End every live session of a user (but `keep`); returns how many ended."""
    query = update(m.ConsoleSession).where(
        m.ConsoleSession.principal_id == principal_id, m.ConsoleSession.ended_at.is_(None)
    )
    if keep is not None:
        query = query.where(m.ConsoleSession.id != keep)
    result = session.execute(query.values(ended_at=now, end_reason=reason))
    return int(getattr(result, "rowcount", 0) or 0)


def online(session: Session, acting: Acting, now: datetime,
           policy: SessionPolicy) -> list[m.ConsoleSession]:  # fmt: skip
    """Sessions that are live now (ended or expired ones are not shown), newest first."""
    if acting.identity.role != "office_admin":
        raise NotPermitted("only an office admin sees the online users")
    rows = session.scalars(
        select(m.ConsoleSession)
        .where(
            m.ConsoleSession.ended_at.is_(None),
            m.ConsoleSession.created_at > now - policy.absolute,
            m.ConsoleSession.last_seen_at > now - policy.idle,
        )
        .options(selectinload(m.ConsoleSession.principal))
        .order_by(m.ConsoleSession.last_seen_at.desc(), m.ConsoleSession.id)
    ).all()
    return list(rows)


def end_by_admin(session: Session, acting: Acting, session_id: str) -> None:
    """强退: an office admin ends another user's session; audited."""
    if acting.identity.role != "office_admin":
        raise NotPermitted("only an office admin ends sessions")
    row = session.get(m.ConsoleSession, session_id) if len(session_id) <= 36 else None
    if row is None or row.ended_at is not None:
        raise NotFound("no such live session")
    end(row, "ended_by_admin", acting.now)
    record(session, acting, "console_session.end",
           details={"console_user.id": row.principal_id})  # the user, never her name
