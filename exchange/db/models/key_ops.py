"""State of long-running key operations, so they survive a crash and a second run resumes.

`KeyJob`: one row per job in progress (root re-wrap cursor, pseudonym rotation from -> to);
the row is deleted when the job completes. `PseudonymRemap`: which agreements have had their
re-mapping export for a case-pseudonym version (ids and counts only; never a reference).
`BlindIndexMarker`: which blind-index key version the stored ID-number indexes are under, and
the one a rotation is moving them to (exchange.services.blind_index).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at, utcnow
from exchange.db.types import UTCDateTime


class KeyJob(Base):
    __tablename__ = "key_jobs"
    __table_args__ = (
        CheckConstraint("from_version IS NULL OR from_version > 0", name="from_version_positive"),
        CheckConstraint("to_version IS NULL OR to_version > 0", name="to_version_positive"),
    )

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    # the last owner id whose batch committed (a resident id; never a personal value)
    cursor: Mapped[str | None] = mapped_column(String(128))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"KeyJob(job={self.job!r}, to_version={self.to_version})"


class BlindIndexMarker(Base):
    """One row: the blind-index key version of the stored indexes (`version`) and, while
    `exchange keys rotate-blind-index` runs, the version it moves them to (`next_version`):
    writers then index under it and lookups try both. Every writer and the rotation read it
    in their own transaction (writers FOR SHARE, the rotation FOR UPDATE), so none changes it
    under another."""

    __tablename__ = "blind_index_marker"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("version > 0", name="version_positive"),
        CheckConstraint("next_version IS NULL OR next_version > version", name="next_is_newer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
    next_version: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"BlindIndexMarker(version={self.version}, next_version={self.next_version})"


class PseudonymRemap(Base):
    """An agreement's case references were re-mapped to `to_version` and exported."""

    __tablename__ = "pseudonym_remaps"
    __table_args__ = (
        CheckConstraint("to_version > from_version", name="versions_increase"),
        CheckConstraint("row_count >= 0", name="row_count_nonnegative"),
    )

    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"), primary_key=True)
    to_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_version: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int] = mapped_column(Integer)
    exported_at: Mapped[datetime] = created_at()

    def __repr__(self) -> str:
        return f"PseudonymRemap(agreement_id={self.agreement_id!r}, to={self.to_version})"
