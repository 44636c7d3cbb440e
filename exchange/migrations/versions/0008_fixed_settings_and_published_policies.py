"""Write-once office settings (the audit origin) and the published policy documents.

Both tables only grow: triggers refuse UPDATE and DELETE on them, so a fixed origin or a
published policy version cannot be changed behind the checkpoints and disclosures citing it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 16:58:13.099028
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WRITE_ONCE = ("fixed_settings", "published_policies")


def upgrade() -> None:
    op.create_table(
        "fixed_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("fixed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("name IN ('audit.origin')", name=op.f("ck_fixed_settings_name")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_fixed_settings")),
    )
    op.create_table(
        "published_policies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("policy_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "origin IN ('shipped', 'office')", name=op.f("ck_published_policies_origin")
        ),
        sa.CheckConstraint(
            "purpose IN ('home_visit', 'online_guidance', 'class_invitation')",
            name=op.f("ck_published_policies_purpose"),
        ),
        sa.CheckConstraint(
            "length(sha256) = 64", name=op.f("ck_published_policies_sha256_length")
        ),
        sa.CheckConstraint("version > 0", name=op.f("ck_published_policies_version_positive")),
        sa.ForeignKeyConstraint(
            ["published_by"],
            ["principals.id"],
            name=op.f("fk_published_policies_published_by_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_published_policies")),
        sa.UniqueConstraint(
            "policy_id", "version", name=op.f("uq_published_policies_policy_id_version")
        ),
        sa.UniqueConstraint("sha256", name=op.f("uq_published_policies_sha256")),
    )
    for table in WRITE_ONCE:
        for statement in _write_once_sql(table):
            op.execute(statement)


def downgrade() -> None:
    for table in WRITE_ONCE:
        for statement in _drop_write_once_sql(table):
            op.execute(statement)
    op.drop_table("published_policies")
    op.drop_table("fixed_settings")


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _write_once_sql(table: str) -> list[str]:
    if _postgresql():
        return [
            f"CREATE FUNCTION {table}_write_once() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{table} is write-once'; END $$",
            f"CREATE TRIGGER {table}_write_once BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_write_once()",
        ]
    return [
        f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is write-once'); END"
        for verb in ("UPDATE", "DELETE")
    ]


def _drop_write_once_sql(table: str) -> list[str]:
    if _postgresql():
        return [
            f"DROP TRIGGER IF EXISTS {table}_write_once ON {table}",
            f"DROP FUNCTION IF EXISTS {table}_write_once()",
        ]
    return [f"DROP TRIGGER IF EXISTS {table}_no_{verb}" for verb in ("update", "delete")]
