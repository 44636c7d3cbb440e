"""The API's limiter of failed authentications, per client address, in the database.

Only failures are counted and only failures are limited: a request whose token authenticates
is never refused here, whatever its address has been sending (so bad tokens sent under a
victim's address cannot lock her out). Tokens are 256 random bits, so the limit is not what
stops guessing; it bounds the load and the log and audit noise one address can cause.

The count is a sliding minute estimated from two fixed one-minute windows (the previous one
weighted by how much of it still lies within the last 60 seconds), kept in `minute_counts`
(counter `auth.failure`) so that every worker process and every instance on the database
share it. Rows name the address's keyed reference (`client_key`: HMAC under the audit pseudonym key,
so nobody holding only the database can test a guessed address, as they could with a bare
hash of the few billion IPv4 addresses), never the address, and live about two minutes. The
address itself is the direct peer, or the client a configured proxy names
(`EXCHANGE_FORWARDED_ALLOW_IPS`; exchange.api.client_cert applies its X-Forwarded-For).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from exchange.services import minute_counts
from exchange.services.audit_access import lookup_reference
from keys.keyring import Keyring

WINDOW_SECONDS = 60
COUNTER = "auth.failure"


@dataclass(frozen=True, slots=True)
class Verdict:
    limited: bool  # over the limit: answer 429 instead of 401
    retry_after: int  # seconds until the estimate falls under the limit again (at most 60)


def client_key(keyring: Keyring, address: str) -> str:
    """The keyed reference the limiter counts an address under."""
    return lookup_reference(keyring, "auth.client", address)


def record_failure(session: Session, client: str, now: datetime, per_minute: int) -> Verdict:
    """Count one failed authentication from `client` (an address's `client_key`) and say
    whether it is over the limit (more than `per_minute` failures in the last minute, this one
    included). A failure already over the limit is answered without a write, so a flood of bad
    tokens costs the database reads, not writes. Never commits."""
    key = client
    seconds = now.timestamp()
    window = math.floor(seconds / WINDOW_SECONDS)
    into = (seconds - window * WINDOW_SECONDS) / WINDOW_SECONDS  # 0 <= into < 1
    current, previous = minute_counts.recent(session, COUNTER, key, window)
    weight = previous * (1.0 - into)
    if current + weight + 1 > per_minute:
        # the previous window's weight falls to zero at the end of this one
        return Verdict(True, max(1, math.ceil((1.0 - into) * WINDOW_SECONDS)))
    minute_counts.bump(session, COUNTER, key, window)
    if current == 0:  # this client's first failure of the minute: forget minutes gone by
        minute_counts.forget_before(session, COUNTER, window - 1)
    return Verdict(False, 0)
