"""API tokens in their own table: several per principal, last use, client-certificate binding.

Until now a principal held one token (`principals.token_hash`), so issuing a token revoked the
previous one: a second `make run` on the same database cut off the first one's clients. Each
active token moves across with its expiry; a token without an expiry gets the default 90 days
from the migration, since every token must expire now.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEFAULT_TTL = timedelta(days=90)


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    carried = _carried([tuple(r) for r in bind.execute(sa.text(
        "SELECT id, token_hash, token_expires_at FROM principals "
        "WHERE token_hash IS NOT NULL AND revoked_at IS NULL"))], now)
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_principals_token_hash"), type_="unique")
        batch_op.drop_column("token_hash")
        batch_op.drop_column("token_expires_at")

    tokens = op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cnf_x5t_s256", sa.String(length=43), nullable=True),
        sa.CheckConstraint("expires_at > created_at",
                           name=op.f("ck_api_tokens_expires_after_creation")),
        sa.CheckConstraint("length(cnf_x5t_s256) = 43",
                           name=op.f("ck_api_tokens_thumbprint_length")),
        sa.ForeignKeyConstraint(["principal_id"], ["principals.id"], ondelete="CASCADE",
                                name=op.f("fk_api_tokens_principal_id_principals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_principal_id"), ["principal_id"],
                              unique=False)
    if carried:
        op.bulk_insert(tokens, carried)


def _carried(rows: Sequence[Sequence[Any]], now: datetime) -> list[dict[str, object]]:
    """The old columns' live tokens as api_tokens rows (expired ones are not carried)."""
    out: list[dict[str, object]] = []
    for principal_id, token_hash, stored in rows:
        expires = datetime.fromisoformat(stored) if isinstance(stored, str) else stored
        if isinstance(expires, datetime) and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)  # SQLite hands back naive text
        if expires is None:
            expires = now + _DEFAULT_TTL
        if not isinstance(expires, datetime) or expires <= now:
            continue
        out.append({"id": str(uuid.uuid4()), "principal_id": principal_id,
                    "token_hash": token_hash, "created_at": now, "expires_at": expires})
    return out


def downgrade() -> None:
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("token_expires_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_principals_token_hash"),
                                          ["token_hash"])
    # the old layout holds one token per principal: keep the newest unrevoked one
    op.execute(
        "UPDATE principals SET "
        "token_hash = (SELECT t.token_hash FROM api_tokens t WHERE t.principal_id = principals.id "
        "AND t.revoked_at IS NULL ORDER BY t.created_at DESC LIMIT 1), "
        "token_expires_at = (SELECT t.expires_at FROM api_tokens t "
        "WHERE t.principal_id = principals.id AND t.revoked_at IS NULL "
        "ORDER BY t.created_at DESC LIMIT 1)"
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_principal_id"))
    op.drop_table("api_tokens")
