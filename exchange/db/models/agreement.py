"""Entrustment agreements (PIPL Art. 21): contractor, period, purposes and their policies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.db.base import Base, created_at, one_of, utcnow, uuid_pk
from exchange.db.models.codes import AGREEMENT_STATUSES, PURPOSES
from exchange.db.types import UTCDateTime


class Agreement(Base):
    __tablename__ = "agreements"
    __table_args__ = (
        one_of("status", AGREEMENT_STATUSES),
        CheckConstraint("valid_to >= valid_from", name="period"),
        CheckConstraint("retention_days > 0", name="retention_positive"),
        CheckConstraint(
            "(status = 'terminated') = (terminated_at IS NOT NULL)", name="terminated_at"
        ),
    )

    id: Mapped[str] = uuid_pk()
    contractor_id: Mapped[str] = mapped_column(ForeignKey("contractors.id"), index=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)  # the contract number
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    retention_days: Mapped[int] = mapped_column(Integer)
    sub_processors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    purposes: Mapped[list[AgreementPurpose]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"Agreement(id={self.id!r}, status={self.status!r})"


class AgreementPurpose(Base):
    """One purpose of an agreement and the exact policy (id + version) governing it."""

    __tablename__ = "agreement_purposes"
    __table_args__ = (
        one_of("purpose", PURPOSES),
        UniqueConstraint("agreement_id", "purpose"),
        CheckConstraint("policy_version > 0", name="policy_version_positive"),
    )

    id: Mapped[str] = uuid_pk()
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    policy_id: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[int] = mapped_column(Integer)

    agreement: Mapped[Agreement] = relationship(back_populates="purposes")

    def __repr__(self) -> str:
        return f"AgreementPurpose(purpose={self.purpose!r}, policy={self.policy_id!r})"
