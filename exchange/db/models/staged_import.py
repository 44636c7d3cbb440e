"""A ledger file uploaded in the console and waiting for its uploader to confirm or cancel.

Between the validation report and the confirmation the file must survive one request to the
next, in any server process: it is kept here, encrypted under a data key of its own (wrapped
by the root key, like a resident's), and deleted at confirmation, cancellation or expiry;
deleting the row crypto-shreds the file.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, one_of, uuid_pk
from exchange.db.types import EncryptedField, UTCDateTime
from keys.fields import EncryptedValue

STAGED_FORMATS = ("csv", "xlsx")


class StagedImport(Base):
    __tablename__ = "console_staged_imports"
    __table_args__ = (one_of("file_format", STAGED_FORMATS),)

    id: Mapped[str] = uuid_pk()
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    file_format: Mapped[str] = mapped_column(String(8))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    data_key: Mapped[bytes] = mapped_column(LargeBinary)
    content: Mapped[EncryptedValue] = mapped_column(EncryptedField())
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_invalid: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"StagedImport(id={self.id!r}, format={self.file_format!r})"
