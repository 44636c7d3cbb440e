"""Refusals in the audit log (issue 14, finding 9): every 401 and 403 leaves an entry, in its
own transaction, so it commits although the request fails.

- `auth.denied` (401): no principal, so the actor is the system actor `unauthenticated`; the
  details name the reason (`auth.reason`: missing, malformed, unknown, expired, revoked,
  certificate_mismatch, ...), the route template and, when a token was presented, its keyed
  reference (`token.ref`: the audit pseudonym key over the token, never the token or its
  hash). Rate-limited through `minute_counts` (counter `auth.denied`), shared by every
  process: at most one entry per presented token (or per reason, without one) per minute,
  and at most `AUDITED_PER_MINUTE` in all per minute; each entry counts the refusals of its
  minute so far (`window.denials`), and the metric `auth_failures` counts every one.
- `access.denied` (403): an authenticated principal refused; the actor is the principal, the
  details the route template and the reason code (`role_not_permitted`, `not_permitted`,
  ...). Not rate-limited: a principal's refusals are few and each one is worth reading.

Entries carry names, codes and keyed references only (audit.entry refuses anything else).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from sqlalchemy.orm import Session

from audit.entry import Actor, AuditEntry, DetailValue, Outcome
from exchange.identity import CLIENT_REQUEST_DETAIL, Acting
from exchange.services import minute_counts
from exchange.services.audit_access import lookup_reference, record
from exchange.services.auditing import SqlAuditSink
from exchange.services.auditing import append as audit_append
from keys.keyring import Keyring

AUTH_DENIED: Final = "auth.denied"
ACCESS_DENIED: Final = "access.denied"
UNAUTHENTICATED: Final = Actor("unauthenticated", "system")
AUDITED_PER_MINUTE: Final = 30  # 401 entries per minute in all, whatever is sprayed
_KEEP_WINDOWS: Final = 10  # minutes of counts kept (older rows are deleted as new ones come)
_ALL: Final = "all"
_PARAM = re.compile(r"\{([^}]*)\}")


def route_name(template: str) -> str:
    """A route template as an audit identifier: `/v1/residents/{resident_id}` becomes
    `v1/residents/:resident_id` (no values: the template, never the path)."""
    name = _PARAM.sub(r":\1", template).strip("/")
    return name[:128] or "root"


def token_reference(keyring: Keyring, token: str) -> str:
    """The keyed reference of a presented token (HMAC under the audit pseudonym key)."""
    return lookup_reference(keyring, "auth.token", token)


def _bump(session: Session, key: str, window: int) -> int:
    """Count one refusal for `key` in `window`; the count so far (atomic across processes)."""
    return minute_counts.bump(session, AUTH_DENIED, key, window)


def record_unauthenticated(
    session: Session,
    keyring: Keyring,
    now: datetime,
    request_id: str | None,
    reason: str,
    route: str,
    token: str | None,
    client_request_id: str | None = None,
) -> bool:
    """Count a 401 and, within the bounds, audit it; True when an entry was appended. The
    caller commits (its own unit of work: the request itself fails)."""
    window = int(now.timestamp() // 60)
    ref = token_reference(keyring, token) if token else None
    total = _bump(session, _ALL, window)
    if total == 1:  # the first refusal of a minute clears counts nobody reads any more
        minute_counts.forget_before(session, AUTH_DENIED, window - _KEEP_WINDOWS)
    mine = _bump(session, f"token:{ref}" if ref else f"reason:{reason}", window)
    if mine > 1 or total > AUDITED_PER_MINUTE:
        return False
    details: dict[str, DetailValue] = {"auth.reason": reason, "route": route_name(route),
                                       "window.denials": total}  # fmt: skip
    if ref is not None:
        details["token.ref"] = ref
    if client_request_id is not None:  # the caller's own X-Request-ID, beside ours
        details[CLIENT_REQUEST_DETAIL] = client_request_id
    entry = AuditEntry(time=now, actor=UNAUTHENTICATED, action=AUTH_DENIED,
                       request_id=request_id, outcome=Outcome("denied", reason),
                       details=details)  # fmt: skip
    audit_append(session, SqlAuditSink(), [entry])
    return True


def record_forbidden(session: Session, acting: Acting, route: str, reason: str) -> None:
    """Audit a 403 of an authenticated principal; the caller commits."""
    record(session, acting, ACCESS_DENIED, outcome=Outcome("denied", reason),
           details={"route": route_name(route)})  # fmt: skip
