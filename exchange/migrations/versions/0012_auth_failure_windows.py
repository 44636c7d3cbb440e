"""Failed authentications per client address and minute, in the database so that every server
process shares the API's failure limiter (issue 14, finding 3).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_failure_windows",
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("window", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client", "window", name=op.f("pk_auth_failure_windows")),
    )


def downgrade() -> None:
    op.drop_table("auth_failure_windows")
