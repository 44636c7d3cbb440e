"""Communities (社区) of the street office; the scope unit for cadres."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at, uuid_pk


class Community(Base):
    __tablename__ = "communities"

    id: Mapped[str] = uuid_pk()
    name: Mapped[str] = mapped_column(String(64), unique=True)
    district: Mapped[str] = mapped_column(String(64))
    street: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()

    def __repr__(self) -> str:
        return f"Community(id={self.id!r})"
