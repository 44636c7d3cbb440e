"""Console accounts, their server-side sessions and the login log.

A console user is an existing principal with a password. The password is stored only as an
argon2id hash; the TOTP secret is encrypted under the account's own data key (wrapped by the
root key, like a resident's). A session row is found by the SHA-256 of the random cookie value,
so a database dump opens no session; its `id` is the handle an office admin ends it by.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.db.base import Base, created_at, one_of, uuid_pk
from exchange.db.models.principal import Principal
from exchange.db.types import EncryptedField, UTCDateTime
from keys.fields import EncryptedValue

SESSION_END_REASONS = ("logout", "idle", "absolute", "ended_by_admin", "password_changed")
LOGIN_OUTCOMES = (
    "success",
    "bad_password",
    "unknown_user",
    "locked",
    "no_password",
    "revoked",
    "totp_required",
    "bad_totp",
)


class ConsoleAccount(Base):
    __tablename__ = "console_accounts"
    __table_args__ = (
        CheckConstraint("failed_attempts >= 0", name="failed_attempts_nonnegative"),
        # a TOTP secret needs the account's data key to be read
        CheckConstraint("totp_secret IS NULL OR data_key IS NOT NULL", name="totp_needs_key"),
    )

    principal_id: Mapped[str] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    data_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_secret: Mapped[EncryptedValue | None] = mapped_column(EncryptedField())
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the last accepted TOTP time step: a code is accepted once (RFC 6238 section 5.2)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at()

    principal: Mapped[Principal] = relationship()

    def __repr__(self) -> str:
        return f"ConsoleAccount(principal_id={self.principal_id!r})"


class ConsoleSession(Base):
    __tablename__ = "console_sessions"
    __table_args__ = (
        CheckConstraint(
            "(ended_at IS NULL) = (end_reason IS NULL)", name="ended_with_reason"
        ),
        one_of("end_reason", SESSION_END_REASONS),
    )

    id: Mapped[str] = uuid_pk()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    principal_id: Mapped[str] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = created_at()
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    address: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(128), default="")
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    end_reason: Mapped[str | None] = mapped_column(String(16))

    principal: Mapped[Principal] = relationship()

    def __repr__(self) -> str:
        return f"ConsoleSession(id={self.id!r})"


class LoginEvent(Base):
    """One login attempt: who (when known), from where, when, and how it ended. Never the
    password; the typed user name only when it has the shape of a principal name."""

    __tablename__ = "console_login_events"
    __table_args__ = (one_of("outcome", LOGIN_OUTCOMES),)

    id: Mapped[str] = uuid_pk()
    time: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    principal_id: Mapped[str | None] = mapped_column(
        ForeignKey("principals.id", ondelete="SET NULL"), index=True
    )
    username: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))

    def __repr__(self) -> str:
        return f"LoginEvent(id={self.id!r}, outcome={self.outcome!r})"
