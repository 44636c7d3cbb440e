"""Failed authentications per client address and minute: the API's failure limiter
(exchange.services.auth_failures), shared by every server process through the database.

A row names a hash of the address, never the address; rows older than the previous minute are
deleted as new minutes begin."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base


class AuthFailureWindow(Base):
    """How many failed authentications came from one client (`client`: its address, keyed)
    in one minute (`window`: minutes since the epoch)."""

    __tablename__ = "auth_failure_windows"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
