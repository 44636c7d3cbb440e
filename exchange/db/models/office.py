"""Settings the office fixes once, at `exchange admin init`, and never changes.

Today one: `audit.origin`, the C2SP origin (the log's name) every checkpoint is signed under.
A verifier key's id is computed over that name, so changing it would orphan every checkpoint
an auditor kept: the row is written once, the database refuses UPDATE and DELETE on it
(migration 0007), and the service refuses to start under another `EXCHANGE_AUDIT_ORIGIN`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at, one_of

FIXED_SETTINGS = ("audit.origin",)


class FixedSetting(Base):
    __tablename__ = "fixed_settings"
    __table_args__ = (one_of("name", FIXED_SETTINGS),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    fixed_at: Mapped[datetime] = created_at()

    def __repr__(self) -> str:
        return f"FixedSetting(name={self.name!r})"
