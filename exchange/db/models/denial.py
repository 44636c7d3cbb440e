"""Counts of refused authentications per minute, so the audit log records a bounded number of
them however many are sprayed (exchange.services.denials). Shared by every process through the
database; a row names a keyed reference of the presented token, never the token."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base


class AuthDenialWindow(Base):
    """How many refusals one key (a token's keyed reference, a reason without a token, or
    `all`) met in one minute (`window`: minutes since the epoch)."""

    __tablename__ = "auth_denial_windows"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
