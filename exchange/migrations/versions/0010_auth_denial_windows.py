"""Counts of refused authentications per minute (issue 14, finding 9): every 401 is audited,
at most once per presented token per minute and a bounded number per minute in all, counted
in the database so several processes share the bound.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_denial_windows",
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("window", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window", name=op.f("pk_auth_denial_windows")),
    )


def downgrade() -> None:
    op.drop_table("auth_denial_windows")
