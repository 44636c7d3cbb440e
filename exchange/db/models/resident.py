"""Residents and their episodes and children; every personal value is an EncryptedField.

Plain columns are only what scoping, indexing and statistics need (district, street, community,
stage, and an episode's due month: the month of the encrypted due date, see docs/statistics.md).
Each resident has its own data key (`ResidentDataKey`); deleting that row crypto-shreds every
ciphertext of the resident, and `erased_at` rows must hold no ciphertext or blind index
(of the ID number or of the phone).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.db.base import Base, created_at, one_of, utcnow, uuid_pk
from exchange.db.models.codes import STAGES
from exchange.db.types import EncryptedField, UTCDateTime
from keys.fields import EncryptedValue

_PERSONAL = (
    "name",
    "national_id",
    "phone",
    "birth_date",
    "address_compound",
    "address_building",
    "address_unit",
    "address_room",
    "national_id_index",
    "phone_index",
)


class Resident(Base):
    __tablename__ = "residents"
    __table_args__ = (
        CheckConstraint(
            "erased_at IS NULL OR (" + " AND ".join(f"{c} IS NULL" for c in _PERSONAL) + ")",
            name="erased_holds_nothing",
        ),
    )

    id: Mapped[str] = uuid_pk()
    community_id: Mapped[str] = mapped_column(ForeignKey("communities.id"), index=True)
    district: Mapped[str] = mapped_column(String(64))
    street: Mapped[str] = mapped_column(String(64))
    name: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    national_id: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    # keyed blind index of the ID number, for de-duplication; never an unkeyed hash
    national_id_index: Mapped[str | None] = mapped_column(String(128), unique=True)
    # the blind-index key version it was computed under (exchange.db.blind_index): the one
    # version marker of both blind indexes of the row (ID number and phone)
    national_id_index_version: Mapped[int] = mapped_column(Integer, default=1,
                                                           server_default=text("1"))
    phone: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    # keyed blind index of the normalised mobile number (its own hash domain), for the exact
    # phone lookup; not unique (a family may share a phone). NULL until indexed: rows stored
    # before migration 0011 get it from `exchange keys reindex-phones`
    phone_index: Mapped[str | None] = mapped_column(String(128), index=True)
    birth_date: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    address_compound: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    address_building: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    address_unit: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    address_room: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    data_key: Mapped[ResidentDataKey | None] = relationship(
        back_populates="resident", cascade="all, delete-orphan", single_parent=True
    )
    episodes: Mapped[list[MaternalEpisode]] = relationship(back_populates="resident")
    children: Mapped[list[Child]] = relationship(back_populates="guardian")

    def __repr__(self) -> str:
        return f"Resident(id={self.id!r})"


class ResidentDataKey(Base):
    """A resident's data key, wrapped by the office KEK. Deleting the row crypto-shreds."""

    __tablename__ = "resident_data_keys"

    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(64))
    kek_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at()

    resident: Mapped[Resident] = relationship(back_populates="data_key")

    def __repr__(self) -> str:
        return f"ResidentDataKey(resident_id={self.resident_id!r}, kek_version={self.kek_version})"


class MaternalEpisode(Base):
    __tablename__ = "maternal_episodes"
    __table_args__ = (
        one_of("stage", STAGES),
        CheckConstraint("due_month IS NULL OR length(due_month) = 7", name="due_month_shape"),
    )

    id: Mapped[str] = uuid_pk()
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    due_date: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    # "YYYY-MM" of due_date, in the clear for GROUP BY: statistics never decrypt residents
    due_month: Mapped[str | None] = mapped_column(String(7))
    delivery_date: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    parity: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    risk_flags: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    resident: Mapped[Resident] = relationship(back_populates="episodes")

    def __repr__(self) -> str:
        return f"MaternalEpisode(id={self.id!r}, stage={self.stage!r})"


class Child(Base):
    """An infant; `resident_id` is the guardian (the mother in the ledger)."""

    __tablename__ = "children"

    id: Mapped[str] = uuid_pk()
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    birth_date: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    sex: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    created_at: Mapped[datetime] = created_at()

    guardian: Mapped[Resident] = relationship(back_populates="children")

    def __repr__(self) -> str:
        return f"Child(id={self.id!r})"
