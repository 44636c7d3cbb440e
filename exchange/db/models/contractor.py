"""Contractors (entrusted parties) and the HPKE public keys fields are sealed to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.db.base import Base, created_at, one_of, uuid_pk
from exchange.db.models.codes import CONTRACTOR_STATUSES, KEY_STATUSES
from exchange.db.types import UTCDateTime


class Contractor(Base):
    __tablename__ = "contractors"
    __table_args__ = (one_of("status", CONTRACTOR_STATUSES),)

    id: Mapped[str] = uuid_pk()
    name: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = created_at()

    keys: Mapped[list[ContractorKey]] = relationship(back_populates="contractor")

    def __repr__(self) -> str:
        return f"Contractor(id={self.id!r})"


class ContractorKey(Base):
    """A contractor's HPKE public key; at most one is active per contractor."""

    __tablename__ = "contractor_keys"
    __table_args__ = (
        one_of("status", KEY_STATUSES),
        Index(
            "uq_contractor_keys_one_active",
            "contractor_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[str] = uuid_pk()
    contractor_id: Mapped[str] = mapped_column(ForeignKey("contractors.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    kem_id: Mapped[int] = mapped_column(Integer)
    public_key: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = created_at()
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    contractor: Mapped[Contractor] = relationship(back_populates="keys")

    def __repr__(self) -> str:
        return f"ContractorKey(key_id={self.key_id!r}, status={self.status!r})"
