"""Audit search projection: the search columns leave audit_entries for audit_search.

Appends then write only the log (entry bytes and hashes); `audit.store.search.refresh_search`
derives the search rows from the entries. Existing rows are copied across, so no entry becomes
unsearchable. audit_search is append-only like the other audit tables.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MOVED = ("time", "actor_id", "actor_role", "action", "agreement", "outcome")
_INDEXED = ("actor_id", "agreement", "time")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "audit_search",
        sa.Column("idx", _INDEX64, autoincrement=False, nullable=False),
        sa.Column("time", sa.String(length=27), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("agreement", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["idx"], ["audit_entries.idx"],
                                name=op.f("fk_audit_search_idx_audit_entries")),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_audit_search")),
    )
    for column in _INDEXED:
        op.create_index(op.f(f"ix_audit_search_{column}"), "audit_search", [column])
    columns = ", ".join(_MOVED)
    op.execute(f"INSERT INTO audit_search (idx, {columns}) SELECT idx, {columns} "  # noqa: S608 - constant names
               "FROM audit_entries ORDER BY idx")
    for column in _INDEXED:
        op.drop_index(op.f(f"ix_audit_entries_{column}"), table_name="audit_entries")
    for column in _MOVED:
        # a schema change, not an UPDATE: the append-only triggers do not fire
        op.execute(f'ALTER TABLE audit_entries DROP COLUMN "{column}"')
    for statement in _append_only("audit_search"):
        op.execute(statement)


def downgrade() -> None:
    for column in _MOVED:
        nullable = column == "agreement"
        op.execute(f'ALTER TABLE audit_entries ADD COLUMN "{column}" VARCHAR(128)'
                   + ("" if nullable else " NOT NULL DEFAULT ''"))
    assignments = ", ".join(
        f'"{c}" = (SELECT s."{c}" FROM audit_search s WHERE s.idx = audit_entries.idx)'  # noqa: S608
        for c in _MOVED)
    # The copy back is the one UPDATE the log ever sees: its guard is lifted for it alone.
    if _sqlite():
        op.execute("DROP TRIGGER audit_entries_no_update")
        op.execute(f"UPDATE audit_entries SET {assignments}")  # noqa: S608
        op.execute("CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
                   "BEGIN SELECT RAISE(ABORT, 'audit table audit_entries is append-only'); END")
    else:
        op.execute("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
        op.execute(f"UPDATE audit_entries SET {assignments}")  # noqa: S608
        op.execute("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only")
    for column in _INDEXED:
        op.create_index(op.f(f"ix_audit_entries_{column}"), "audit_entries", [column])
    op.drop_table("audit_search")


def _append_only(table: str) -> list[str]:
    if _sqlite():
        return [f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'audit table {table} is append-only'); END"
                for verb in ("UPDATE", "DELETE")]
    return [
        f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
        f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    ]
