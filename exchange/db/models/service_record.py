"""Service delivery reported back by a contractor; idempotent per (contractor, key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at, one_of, uuid_pk
from exchange.db.models.codes import SERVICES
from exchange.db.types import EncryptedField, UTCDateTime
from keys.fields import EncryptedValue


class ServiceRecord(Base):
    __tablename__ = "service_records"
    __table_args__ = (
        one_of("service_code", SERVICES),
        UniqueConstraint("contractor_id", "idempotency_key"),
    )

    id: Mapped[str] = uuid_pk()
    assignment_id: Mapped[str] = mapped_column(ForeignKey("assignments.id"), index=True)
    contractor_id: Mapped[str] = mapped_column(ForeignKey("contractors.id"))
    service_code: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # encrypted with the resident's data key; free text may hold anything
    notes: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    recorded_at: Mapped[datetime] = created_at()

    def __repr__(self) -> str:
        return f"ServiceRecord(id={self.id!r}, service_code={self.service_code!r})"
