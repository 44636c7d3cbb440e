"""Console accounts (argon2id password hash, lockout, encrypted TOTP secret), server-side
console sessions and the login log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 16:43:25.466920
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_accounts",
        sa.Column("principal_id", sa.String(length=36), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_key", sa.LargeBinary(), nullable=True),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=True),
        sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "failed_attempts >= 0", name=op.f("ck_console_accounts_failed_attempts_nonnegative")
        ),
        sa.CheckConstraint(
            "totp_secret IS NULL OR data_key IS NOT NULL",
            name=op.f("ck_console_accounts_totp_needs_key"),
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_console_accounts_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("principal_id", name=op.f("pk_console_accounts")),
    )
    op.create_table(
        "console_login_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('success', 'bad_password', 'unknown_user', 'locked', 'no_password', "
            "'revoked', 'totp_required', 'bad_totp')",
            name=op.f("ck_console_login_events_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_console_login_events_principal_id_principals"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_login_events")),
    )
    with op.batch_alter_table("console_login_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_login_events_principal_id"), ["principal_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_console_login_events_time"), ["time"], unique=False)

    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=128), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "end_reason IN ('logout', 'idle', 'absolute', 'ended_by_admin', 'password_changed')",
            name=op.f("ck_console_sessions_end_reason"),
        ),
        sa.CheckConstraint(
            "(ended_at IS NULL) = (end_reason IS NULL)",
            name=op.f("ck_console_sessions_ended_with_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_console_sessions_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_sessions_token_hash")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_sessions_ended_at"), ["ended_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_console_sessions_principal_id"), ["principal_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_sessions_principal_id"))
        batch_op.drop_index(batch_op.f("ix_console_sessions_ended_at"))

    op.drop_table("console_sessions")
    with op.batch_alter_table("console_login_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_login_events_time"))
        batch_op.drop_index(batch_op.f("ix_console_login_events_principal_id"))

    op.drop_table("console_login_events")
    op.drop_table("console_accounts")
