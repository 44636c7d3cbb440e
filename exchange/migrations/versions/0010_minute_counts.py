"""Counts per minute shared by every process (issue 14, findings 3 and 9): the
failed-authentication limiter (per client address, keyed) and the bound on audited 401s (per
presented token, keyed, and in all).

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
        "minute_counts",
        sa.Column("counter", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("window", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("counter", "key", "window", name=op.f("pk_minute_counts")),
    )


def downgrade() -> None:
    op.drop_table("minute_counts")
