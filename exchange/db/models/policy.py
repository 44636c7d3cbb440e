"""Policy documents the office has published: every version, kept forever, found by hash.

A row is the document as published (its TOML text), with the identity the engine computes
from it (id, version, SHA-256 of the canonical content) and who published it when (`None`:
`exchange admin init`, publishing the shipped defaults). Rows are never updated or deleted
(the database refuses it, migration 0007): an agreement names (id, version), a disclosure
cites the hash, and an auditor must be able to fetch that exact document years later.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at, one_of, uuid_pk
from exchange.db.models.codes import PURPOSES

POLICY_ORIGINS = ("shipped", "office")


class PublishedPolicy(Base):
    __tablename__ = "published_policies"
    __table_args__ = (
        UniqueConstraint("policy_id", "version"),
        CheckConstraint("version > 0", name="version_positive"),
        CheckConstraint("length(sha256) = 64", name="sha256_length"),
        one_of("purpose", PURPOSES),
        one_of("origin", POLICY_ORIGINS),
    )

    id: Mapped[str] = uuid_pk()
    policy_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    document: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))
    published_at: Mapped[datetime] = created_at()
    published_by: Mapped[str | None] = mapped_column(ForeignKey("principals.id"))

    def __repr__(self) -> str:
        return f"PublishedPolicy({self.policy_id}@{self.version})"
