"""查看明文: each reveal of one personal value to an office user, with its reason.

The rows are the database's record of reveals (the audit log has the entry too): a per-user
rate limit counts them, so every server process shares it. The free-text note the user writes
is encrypted under the resident's own data key, so erasing her crypto-shreds the notes about
her; it never goes to the audit log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, one_of, uuid_pk
from exchange.db.types import EncryptedField, UTCDateTime
from keys.fields import EncryptedValue

REVEAL_FIELDS = ("name", "national_id", "phone", "address")
REVEAL_REASONS = ("home_service_contact", "identity_check", "resident_request", "other")


class Reveal(Base):
    __tablename__ = "resident_reveals"
    __table_args__ = (
        one_of("field", REVEAL_FIELDS),
        one_of("reason", REVEAL_REASONS),
        Index("ix_resident_reveals_principal_time", "principal_id", "created_at"),
    )

    id: Mapped[str] = uuid_pk()
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    resident_id: Mapped[str] = mapped_column(ForeignKey("residents.id"), index=True)
    field: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    audit_index: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"Reveal(id={self.id!r}, field={self.field!r}, reason={self.reason!r})"
