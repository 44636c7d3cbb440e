"""Consent events: append-only; current consent is the fold of a resident's events in order.

`sequence` numbers a resident's events 1, 2, 3…; the unique constraint makes two recorders
racing on the same resident conflict instead of interleaving. The migration installs triggers
refusing UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at, one_of, uuid_pk
from exchange.db.models.codes import CONSENT_ACTIONS, CONSENT_METHODS


class ConsentEvent(Base):
    __tablename__ = "consent_events"
    __table_args__ = (
        one_of("action", CONSENT_ACTIONS),
        one_of("method", CONSENT_METHODS),
        UniqueConstraint("resident_id", "sequence"),
        CheckConstraint(
            "(agreement_id IS NULL) <> (programme IS NULL)", name="agreement_or_programme"
        ),
        CheckConstraint("length(evidence_sha256) = 64", name="evidence_sha256_hex"),
        CheckConstraint("sequence > 0", name="sequence_positive"),
    )

    id: Mapped[str] = uuid_pk()
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    agreement_id: Mapped[str | None] = mapped_column(ForeignKey("agreements.id"), index=True)
    programme: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(String(16))
    notice_version: Mapped[str] = mapped_column(String(32))
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    guardian: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[datetime] = created_at()
    recorded_by: Mapped[str] = mapped_column(ForeignKey("principals.id"))

    def __repr__(self) -> str:
        return f"ConsentEvent(id={self.id!r}, action={self.action!r})"
