"""Fill `maternal_episodes.due_month` for episodes stored before migration 0008.

The migration holds no keys, so the month of each existing due date is written here, once, by
decrypting the due date with the resident's data key (the one time statistics touch a
ciphertext; releases never do). Batches of `BATCH` episodes; safe to run again (it only
touches episodes whose month is missing) and to interrupt. One audit entry per run.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audit.entry import AuditEntry
from exchange.db import models as m
from exchange.db import storage
from exchange.identity import Acting
from exchange.services.auditing import SqlAuditSink
from exchange.services.auditing import append as audit_append
from keys.datakeys import WrappedKey
from keys.keyring import Keyring

BATCH: Final = 500
ACTION: Final = "statistics.backfill"


def backfill_due_months(session: Session, keyring: Keyring, acting: Acting) -> int:
    """Write the due month of every episode missing one; returns how many were written."""
    e, k = m.MaternalEpisode, m.ResidentDataKey
    written = 0
    while True:
        rows = session.execute(
            select(e.id, e.resident_id, e.due_date, k.wrapped_key)
            .join(k, k.resident_id == e.resident_id)
            .where(e.due_date.is_not(None), e.due_month.is_(None))
            .order_by(e.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for episode_id, resident_id, sealed, wrapped in rows:
            assert sealed is not None  # selected for it
            key = keyring.unwrap(WrappedKey.from_bytes(wrapped), resident_id)
            text = keyring.decrypt_row(key, "maternal_episodes", episode_id,
                                       {"due_date": sealed})["due_date"]  # fmt: skip
            month = storage.decode_date(text).strftime("%Y-%m")
            session.execute(update(e).where(e.id == episode_id).values(due_month=month))
        written += len(rows)
        session.flush()
    entry = AuditEntry(time=acting.now, actor=acting.actor, action=ACTION,
                       request_id=acting.request_id,
                       details={**acting.details, "episodes": written})  # fmt: skip
    audit_append(session, SqlAuditSink(), [entry])
    return written
