"""The single declarative base; constraint names are deterministic so migrations can name them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import CheckConstraint, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from exchange.db.ids import new_id
from exchange.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def uuid_pk() -> Mapped[str]:
    """A UUID primary key (version 7, `exchange.db.ids`) stored as its 36-character string
    (portable across backends)."""
    return mapped_column(String(36), primary_key=True, default=new_id)


def created_at() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow)


def one_of(column: str, values: Iterable[str], name: str | None = None) -> CheckConstraint:
    """CHECK that a plain text column holds one of a closed set of codes."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=name or column)
