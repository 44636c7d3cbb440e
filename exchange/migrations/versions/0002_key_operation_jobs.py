"""Key operation jobs: resumable root re-wrap cursor and pseudonym re-mapping exports.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:24:06.322306
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_jobs",
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.String(length=128), nullable=True),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "from_version IS NULL OR from_version > 0",
            name=op.f("ck_key_jobs_from_version_positive"),
        ),
        sa.CheckConstraint(
            "to_version IS NULL OR to_version > 0", name=op.f("ck_key_jobs_to_version_positive")
        ),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_key_jobs")),
    )
    op.create_table(
        "pseudonym_remaps",
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "row_count >= 0", name=op.f("ck_pseudonym_remaps_row_count_nonnegative")
        ),
        sa.CheckConstraint(
            "to_version > from_version", name=op.f("ck_pseudonym_remaps_versions_increase")
        ),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_pseudonym_remaps_agreement_id_agreements"),
        ),
        sa.PrimaryKeyConstraint("agreement_id", "to_version", name=op.f("pk_pseudonym_remaps")),
    )


def downgrade() -> None:
    op.drop_table("pseudonym_remaps")
    op.drop_table("key_jobs")
