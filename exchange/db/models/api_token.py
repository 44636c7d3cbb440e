"""API bearer tokens: several per principal, each with its own expiry, revocation and last use.

Only the SHA-256 of a high-entropy token is stored. A token may be bound to a client
certificate (RFC 8705 `cnf.x5t#S256`: the base64url SHA-256 of the certificate's DER); such a
token is accepted only with that certificate. `last_used_at` is written at most about once a
minute per token (exchange.services.tokens), not on every request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, created_at, uuid_pk
from exchange.db.types import UTCDateTime


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
        CheckConstraint("length(cnf_x5t_s256) = 43", name="thumbprint_length"),
    )

    id: Mapped[str] = uuid_pk()
    principal_id: Mapped[str] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cnf_x5t_s256: Mapped[str | None] = mapped_column(String(43))

    def __repr__(self) -> str:
        return f"ApiToken(id={self.id!r}, principal_id={self.principal_id!r})"
