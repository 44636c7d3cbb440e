"""Assignments of a resident to a contractor under an agreement, with the 4 chosen services.

`change_seq` is the contractor's feed sequence of the assignment's latest change (see
`exchange.db.feed.next_feed_seq`); the feed is "assignments and tombstones with seq > cursor".
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from exchange.db.base import Base, created_at, one_of, utcnow, uuid_pk
from exchange.db.models.codes import ASSIGNMENT_STATUSES, SERVICES, validate_services
from exchange.db.types import UTCDateTime


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (
        one_of("status", ASSIGNMENT_STATUSES),
        CheckConstraint("(status = 'revoked') = (revoked_at IS NOT NULL)", name="revoked_at"),
        CheckConstraint("change_seq > 0", name="change_seq_positive"),
        UniqueConstraint("contractor_id", "change_seq"),
        Index(
            "uq_assignments_one_active",
            "resident_id",
            "agreement_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[str] = uuid_pk()
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    contractor_id: Mapped[str] = mapped_column(ForeignKey("contractors.id"), index=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"), index=True)
    services: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")
    change_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at()
    created_by: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    bookings: Mapped[list[Booking]] = relationship(
        back_populates="assignment", cascade="all, delete-orphan"
    )

    @validates("services")
    def _check_services(self, _key: str, services: list[str]) -> list[str]:
        return validate_services(services)

    def __repr__(self) -> str:
        return f"Assignment(id={self.id!r}, status={self.status!r})"


class Booking(Base):
    """A booked date for one of the assignment's services."""

    __tablename__ = "bookings"
    __table_args__ = (one_of("service_code", SERVICES),)

    id: Mapped[str] = uuid_pk()
    assignment_id: Mapped[str] = mapped_column(ForeignKey("assignments.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(32))
    scheduled_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = created_at()

    assignment: Mapped[Assignment] = relationship(back_populates="bookings")

    @validates("service_code")
    def _check_service(self, _key: str, code: str) -> str:
        if code not in SERVICES:
            raise ValueError(f"unknown service code: {code}")
        return code

    def __repr__(self) -> str:
        return f"Booking(id={self.id!r}, service_code={self.service_code!r})"
