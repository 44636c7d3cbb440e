"""Episode due month in the clear, for statistics (GROUP BY without decrypting anyone).

`maternal_episodes.due_month` is "YYYY-MM" of the encrypted due date. The migration holds no
keys, so rows that already exist get it from `exchange stats backfill`, which decrypts each
due date once with the office keyring; until then the residents table refuses to release
(a half-filled month column would count residents under "none"). See docs/statistics.md for
why a month may be stored in the clear when the date may not.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("maternal_episodes") as batch:
        batch.add_column(sa.Column("due_month", sa.String(length=7), nullable=True))
        batch.create_check_constraint(
            op.f("ck_maternal_episodes_due_month_shape"),
            "due_month IS NULL OR length(due_month) = 7",
        )


def downgrade() -> None:
    with op.batch_alter_table("maternal_episodes") as batch:
        batch.drop_constraint(op.f("ck_maternal_episodes_due_month_shape"), type_="check")
        batch.drop_column("due_month")
