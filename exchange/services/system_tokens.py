"""接口令牌: API tokens of contractor systems, managed by an office admin (the console's tokens
page; `exchange admin principal create|rotate|revoke` is the CLI's way to the same table).

    issue(...)     a token for a contractor's system account (created on first use, role
                   contractor, bound to that contractor), optionally bound to a client
                   certificate thumbprint (RFC 8705 x5t#S256); returned once, only its hash kept
    list_tokens    every contractor token with expiry, LAST USE, binding and state; never a
                   token or its hash
    revoke(...)    one token stops working at once
    last_used(...) the latest use of any token of each principal (the users page)

Each change is audited (`token.issue`, `token.revoke`) naming the token and the system account
by id (details), never the token. The CLI's changes, made by an operator at the server rather
than by a principal, are audited the same way under the system actor `exchange-cli`
(`record_operator_change`), with `principal.create` and `principal.revoke` beside them.
Production requires a certificate binding for contractor tokens, as `exchange admin principal
create` does unless `--unbound`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import AuditEntry, DetailValue
from exchange.clientcert import is_thumbprint
from exchange.db import models as m
from exchange.identity import CONTRACTOR, OFFICE_ADMIN, Acting
from exchange.services.audit_access import record
from exchange.services.auditing import SqlAuditSink
from exchange.services.auditing import append as audit_append
from exchange.services.errors import FieldErrors, NotFound, NotPermitted
from exchange.services.key_events import CLI_ACTOR
from exchange.services.tokens import issue_token

MAX_TTL_DAYS = 3650
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}\Z")


@dataclass(frozen=True, slots=True, repr=False)
class Issued:
    """The token, shown once; repr hides it."""

    token: str
    token_id: str
    principal_id: str
    principal_name: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"Issued(token_id={self.token_id!r}, principal={self.principal_name!r})"


def _admin(acting: Acting) -> None:
    if acting.identity.role != OFFICE_ADMIN:
        raise NotPermitted(f"role {acting.identity.role} may not manage API tokens")


def _principal(session: Session, errors: FieldErrors, name: str,
               contractor: m.Contractor | None) -> m.Principal | None:  # fmt: skip
    """The system account `name`: an existing one must be this contractor's and live."""
    if not _NAME.match(name):
        errors.add("principal", "format", "3-64 of a-z 0-9 . _ -, starting with a letter or digit")
        return None
    row = session.scalars(select(m.Principal).where(m.Principal.name == name)).first()
    if row is None:
        return None
    if row.role != CONTRACTOR or contractor is None or row.contractor_id != contractor.id:
        errors.add("principal", "taken", "the name belongs to another account")
    elif row.revoked_at is not None:
        errors.add("principal", "revoked", "this system account is revoked")
    return row


def issue(
    session: Session,
    acting: Acting,
    contractor_id: str,
    *,
    principal_name: str,
    ttl_days: int,
    cert_thumbprint: str = "",
    require_binding: bool = False,
) -> Issued:
    """A new token for the contractor's system account `principal_name` (created if new);
    every field problem at once. Never commits."""
    _admin(acting)
    errors = FieldErrors()
    contractor = session.get(m.Contractor, contractor_id) if len(contractor_id) <= 36 else None
    if contractor is None:
        errors.add("contractor_id", "unknown" if contractor_id else "required",
                   "no such contractor")
    elif contractor.status != "active":
        errors.add("contractor_id", "inactive", "the contractor is not active")
    name = principal_name.strip()
    row = _principal(session, errors, name, contractor)
    if not 1 <= ttl_days <= MAX_TTL_DAYS:
        errors.add("ttl_days", "out_of_range", f"must be 1-{MAX_TTL_DAYS}")
    thumbprint = cert_thumbprint.strip() or None
    if thumbprint is not None and not is_thumbprint(thumbprint):
        errors.add("cert_thumbprint", "thumbprint_format", "must be a base64url SHA-256 (43)")
    elif thumbprint is None and require_binding:
        errors.add("cert_thumbprint", "required", "production tokens are bound to a certificate")
    errors.raise_any()
    assert contractor is not None
    if row is None:
        row = m.Principal(name=name, role=CONTRACTOR, display_name=f"{contractor.name} ({name})",
                          contractor_id=contractor.id, created_at=acting.now)  # fmt: skip
        session.add(row)
        session.flush()
    token = issue_token(row, now=acting.now, ttl=timedelta(days=ttl_days),
                        cnf_x5t_s256=thumbprint)  # fmt: skip
    session.flush()
    new = max(row.tokens, key=lambda t: (t.created_at, t.id))
    record(session, acting, "token.issue", details={
        "token.id": new.id, "principal.id": row.id, "contractor.id": contractor.id,
        "token.cert_bound": thumbprint is not None, "token.ttl_days": ttl_days,
    })  # fmt: skip
    return Issued(token, new.id, row.id, row.name, new.expires_at)


class TokenView(TypedDict):
    id: str
    principal_id: str
    principal: str
    contractor_id: str | None
    contractor: str | None
    created_at: str
    expires_at: str
    last_used_at: str | None
    revoked_at: str | None
    cert_thumbprint: str | None
    state: str  # active | expired | revoked


def _state(token: m.ApiToken, principal: m.Principal, now: datetime) -> str:
    if token.revoked_at is not None or principal.revoked_at is not None:
        return "revoked"
    return "active" if token.expires_at > now else "expired"


def list_tokens(session: Session, now: datetime, *,
                contractor_id: str | None = None) -> list[TokenView]:  # fmt: skip
    """Every contractor system's token, newest first."""
    conds = [m.Principal.role == CONTRACTOR]
    if contractor_id:
        conds.append(m.Principal.contractor_id == contractor_id)
    rows = session.execute(
        select(m.ApiToken, m.Principal, m.Contractor.name)
        .join(m.Principal, m.Principal.id == m.ApiToken.principal_id)
        .outerjoin(m.Contractor, m.Contractor.id == m.Principal.contractor_id)
        .where(*conds).order_by(m.ApiToken.created_at.desc(), m.ApiToken.id)
    ).all()  # fmt: skip

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return [{
        "id": t.id, "principal_id": p.id, "principal": p.name, "contractor_id": p.contractor_id,
        "contractor": c, "created_at": t.created_at.isoformat(),
        "expires_at": t.expires_at.isoformat(), "last_used_at": iso(t.last_used_at),
        "revoked_at": iso(t.revoked_at or p.revoked_at), "cert_thumbprint": t.cnf_x5t_s256,
        "state": _state(t, p, now),
    } for t, p, c in rows]  # fmt: skip


def revoke(session: Session, acting: Acting, token_id: str) -> None:
    """The token stops working at once (its system account's other tokens do not)."""
    _admin(acting)
    row = session.get(m.ApiToken, token_id) if len(token_id) <= 36 else None
    principal = session.get(m.Principal, row.principal_id) if row is not None else None
    if row is None or principal is None or principal.role != CONTRACTOR:
        raise NotFound("no such token")
    if row.revoked_at is None:
        row.revoked_at = acting.now
        session.flush()
        record(session, acting, "token.revoke", details={"token.id": row.id,
                                                           "principal.id": principal.id})


def last_used(session: Session, principal_ids: Iterable[str]) -> dict[str, datetime]:
    """principal id -> the latest use of any of its tokens (recorded at most once a minute)."""
    ids = list(principal_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(m.ApiToken.principal_id, func.max(m.ApiToken.last_used_at))
        .where(m.ApiToken.principal_id.in_(ids), m.ApiToken.last_used_at.is_not(None))
        .group_by(m.ApiToken.principal_id)
    )  # fmt: skip
    return {pid: used for pid, used in rows if used is not None}


def record_operator_change(session: Session, action: str, principal: m.Principal,
                           now: datetime, *, ttl_days: int | None = None) -> None:  # fmt: skip
    """Audit what `exchange admin principal create|rotate|revoke` changed, as the system actor
    (an operator at the server has no principal): the account and its newest token by id, the
    role, whether the token is bound to a certificate. Never the token. Never commits."""
    session.flush()
    details: dict[str, DetailValue] = {"principal.id": principal.id,
                                       "principal.role": principal.role}
    if principal.contractor_id is not None:
        details["contractor.id"] = principal.contractor_id
    if action == "token.issue":
        newest = max(principal.tokens, key=lambda t: (t.created_at, t.id))
        details |= {"token.id": newest.id, "token.cert_bound": newest.cnf_x5t_s256 is not None}
        if ttl_days is not None:
            details["token.ttl_days"] = ttl_days
    entry = AuditEntry(time=now, actor=CLI_ACTOR, action=action, details=details)
    audit_append(session, SqlAuditSink(), [entry])
