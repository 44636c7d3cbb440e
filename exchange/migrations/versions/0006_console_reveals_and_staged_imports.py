"""Console reveals (查看明文: field, reason, the note encrypted under the resident's key; the
per-user rate limit counts these rows) and staged imports (an uploaded ledger, encrypted under
its own key, waiting for confirm or cancel).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:54:07.166602
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_staged_imports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("file_format", sa.String(length=8), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data_key", sa.LargeBinary(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_invalid", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "file_format IN ('csv', 'xlsx')", name=op.f("ck_console_staged_imports_file_format")
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_console_staged_imports_principal_id_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_staged_imports")),
    )
    with op.batch_alter_table("console_staged_imports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_staged_imports_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_console_staged_imports_principal_id"), ["principal_id"], unique=False
        )

    op.create_table(
        "resident_reveals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=False),
        sa.Column("resident_id", sa.String(length=36), nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audit_index", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "field IN ('name', 'national_id', 'phone', 'address')",
            name=op.f("ck_resident_reveals_field"),
        ),
        sa.CheckConstraint(
            "reason IN ('home_service_contact', 'identity_check', 'resident_request', 'other')",
            name=op.f("ck_resident_reveals_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_resident_reveals_principal_id_principals"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_resident_reveals_resident_id_residents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_reveals")),
    )
    with op.batch_alter_table("resident_reveals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_resident_reveals_principal_time", ["principal_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_resident_reveals_resident_id"), ["resident_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("resident_reveals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resident_reveals_resident_id"))
        batch_op.drop_index("ix_resident_reveals_principal_time")

    op.drop_table("resident_reveals")
    with op.batch_alter_table("console_staged_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_staged_imports_principal_id"))
        batch_op.drop_index(batch_op.f("ix_console_staged_imports_created_at"))

    op.drop_table("console_staged_imports")
