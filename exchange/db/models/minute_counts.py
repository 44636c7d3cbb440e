"""Counts per minute for the limits every server process and instance shares through the
database (exchange.services.minute_counts): the failed-authentication limiter and the bound on
audited 401s. A row names the limit (`counter`), a keyed reference (`key`: never a token, an
address or a personal value) and the minute (`window`: minutes since the epoch); rows of past
minutes are deleted as new minutes begin."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base


class MinuteCount(Base):
    __tablename__ = "minute_counts"

    counter: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"MinuteCount(counter={self.counter!r}, window={self.window!r})"
