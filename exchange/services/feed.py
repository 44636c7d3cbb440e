"""The contractor feed: changes since a cursor, as disclosed case views and tombstones.

A page: this contractor's active assignments and tombstones with feed sequence > cursor (one
query each), merged in sequence order and cut at the page size; the assignments go through the
disclosure path (`services.disclosure`: load and decrypt only the needed fields, evaluate,
present and seal, one audit entry per response and agreement, appended in the caller's
transaction). If the audit append fails, `AuditUnavailable` propagates and the transaction
rolls back: nothing is returned.

A case whose evaluation discloses nothing (no consent, agreement out of date, purpose not
agreed...) is not shown; it is still audited as withheld. So is a case whose stored data cannot
be read (audited as an error). Deletions reach the contractor as tombstones, which the office
flows write when they revoke, withdraw, terminate or erase.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import Session

from exchange.db import models as m
from exchange.identity import Acting
from exchange.services import disclosure
from exchange.services.auditing import AuditSink
from exchange.services.bounds import MAX_SQL_INT32
from exchange.services.disclosure import check_purpose
from exchange.services.errors import InvalidInput
from keys.keyring import Keyring
from policies.engine import PolicySet

__all__ = ["DEFAULT_LIMIT", "FeedPage", "check_purpose", "decode_cursor", "encode_cursor", "pull"]

CURSOR_PREFIX = "fc1."
DEFAULT_LIMIT = 100


# -- cursor -------------------------------------------------------------------------------


def encode_cursor(seq: int, purpose: str) -> str:
    body = json.dumps({"s": seq, "p": purpose}, separators=(",", ":")).encode("ascii")
    return CURSOR_PREFIX + base64.urlsafe_b64encode(body).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, purpose: str) -> int:
    """The feed sequence a cursor stands for; refuses a malformed or other-purpose cursor."""
    if cursor is None or cursor == "":
        return 0
    try:
        if not cursor.startswith(CURSOR_PREFIX) or len(cursor) > 200:
            raise ValueError
        text = cursor[len(CURSOR_PREFIX) :]
        doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        seq, for_purpose = doc["s"], doc["p"]
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SQL_INT32:
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidInput.field("cursor", "malformed", "not a cursor this feed issued") from None
    if for_purpose != purpose:
        raise InvalidInput.field("cursor", "other_purpose", "cursor belongs to another purpose")
    return seq


@dataclass
class FeedPage:
    purpose: str
    items: list[dict[str, Any]]
    envelopes: dict[str, str]
    next_cursor: str
    has_more: bool
    audit_indexes: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "envelopes": self.envelopes,
            "items": self.items,
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
        }


_tombstones = m.Tombstone.__table__
_TOMBSTONES = (
    select(
        _tombstones.c.seq,
        _tombstones.c.case_reference,
        _tombstones.c.agreement_id,
        _tombstones.c.reason,
    )
    .where(_tombstones.c.contractor_id == bindparam("contractor"),
           _tombstones.c.seq > bindparam("after"))
    .order_by(_tombstones.c.seq)
    .limit(bindparam("limit", type_=Integer, literal_execute=True))  # as rows.changed_cases
)  # fmt: skip


def pull(
    session: Session,
    keyring: Keyring,
    sink: AuditSink,
    acting: Acting,
    contractor_id: str,
    purpose: str,
    cursor: str | None,
    limit: int,
    policies: PolicySet,
) -> FeedPage:
    """One page of the feed for `contractor_id`, audited in the current transaction."""
    purpose = check_purpose(purpose)
    after = decode_cursor(cursor, purpose)
    cases = disclosure.changed_cases(session, policies, purpose, contractor_id, after, limit + 1)
    tombstones = session.connection().execute(
        _TOMBSTONES, {"contractor": contractor_id, "after": after, "limit": limit + 1}
    ).all()
    # (seq, is a tombstone, row): a case and a tombstone never share a sequence
    merged: list[tuple[int, bool, Any]] = sorted(
        [(c.seq, False, c) for c in cases] + [(t.seq, True, t) for t in tombstones],
        key=lambda entry: entry[0],
    )
    has_more = len(merged) > limit
    merged = merged[:limit]
    shown = disclosure.disclose(
        session, keyring, sink, acting, contractor_id, purpose,
        [row for _, tombstone, row in merged if not tombstone], policies,
    )  # fmt: skip
    items: list[dict[str, Any]] = []
    for seq, tombstone, row in merged:
        if not tombstone:
            view = shown.views.get(row.id)
            if view is not None:
                items.append(view)
        else:
            items.append(
                {"type": "tombstone", "seq": seq, "case_reference": row.case_reference,
                 "agreement": row.agreement_id, "reason": row.reason}
            )  # fmt: skip
    next_seq = merged[-1][0] if merged else after
    return FeedPage(
        purpose, items, shown.envelopes, encode_cursor(next_seq, purpose), has_more,
        shown.audit_indexes,
    )  # fmt: skip
