"""The contractor feed: a per-contractor change counter and tombstones (delete instructions)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at, one_of, uuid_pk
from exchange.db.models.codes import TOMBSTONE_REASONS
from exchange.db.types import UTCDateTime


class FeedCounter(Base):
    """The last feed sequence handed out for a contractor.

    Sequences come from an UPDATE of this row, whose lock is held to commit, so one
    contractor's changes commit in sequence order and a cursor never skips a late commit.
    """

    __tablename__ = "feed_counters"
    __table_args__ = (CheckConstraint("last_seq >= 0", name="last_seq_nonnegative"),)

    contractor_id: Mapped[str] = mapped_column(ForeignKey("contractors.id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"FeedCounter(contractor_id={self.contractor_id!r}, last_seq={self.last_seq})"


class Tombstone(Base):
    """Tells a contractor to delete a case; its acknowledgement is recorded."""

    __tablename__ = "tombstones"
    __table_args__ = (
        one_of("reason", TOMBSTONE_REASONS),
        UniqueConstraint("contractor_id", "seq"),
        CheckConstraint("seq > 0", name="seq_positive"),
    )

    id: Mapped[str] = uuid_pk()
    contractor_id: Mapped[str] = mapped_column(ForeignKey("contractors.id"), index=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"))
    case_reference: Mapped[str] = mapped_column(String(128), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at()
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"Tombstone(id={self.id!r}, reason={self.reason!r}, seq={self.seq})"
