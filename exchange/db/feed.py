"""Feed sequences: the per-contractor counter behind "changes since cursor"."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from exchange.db.models.feed import FeedCounter


def next_feed_seq(session: Session, contractor_id: str) -> int:
    """Reserve the contractor's next feed sequence inside the caller's transaction.

    The UPDATE takes a row lock held until commit, so concurrent writers for one contractor
    serialise and sequences become visible in order.
    """
    stmt = (
        update(FeedCounter)
        .where(FeedCounter.contractor_id == contractor_id)
        .values(last_seq=FeedCounter.last_seq + 1)
        .returning(FeedCounter.last_seq)
    )
    seq = session.execute(stmt).scalar_one_or_none()
    if seq is None:
        session.execute(insert(FeedCounter).values(contractor_id=contractor_id, last_seq=1))
        return 1
    return int(seq)


def current_feed_seq(session: Session, contractor_id: str) -> int:
    stmt = select(FeedCounter.last_seq).where(FeedCounter.contractor_id == contractor_id)
    return int(session.execute(stmt).scalar_one_or_none() or 0)
