"""Principals (API users and machines) with their role and scope.

Their bearer tokens live in `api_tokens` (exchange.db.models.api_token), several per principal;
revoking a principal stops all of them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.db.base import Base, created_at, one_of, uuid_pk
from exchange.db.models.api_token import ApiToken
from exchange.db.models.codes import ROLES
from exchange.db.models.community import Community
from exchange.db.types import UTCDateTime

principal_communities = Table(
    "principal_communities",
    Base.metadata,
    Column("principal_id", ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True),
    Column("community_id", ForeignKey("communities.id"), primary_key=True),
)


class Principal(Base):
    __tablename__ = "principals"
    __table_args__ = (
        one_of("role", ROLES),
        # a contractor principal is bound to exactly one contractor; nobody else is
        CheckConstraint(
            "(role = 'contractor') = (contractor_id IS NOT NULL)", name="contractor_binding"
        ),
    )

    id: Mapped[str] = uuid_pk()
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(128))
    contractor_id: Mapped[str | None] = mapped_column(ForeignKey("contractors.id"), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at()

    communities: Mapped[list[Community]] = relationship(secondary=principal_communities)
    tokens: Mapped[list[ApiToken]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by=ApiToken.created_at
    )

    def __repr__(self) -> str:
        return f"Principal(id={self.id!r}, role={self.role!r})"
