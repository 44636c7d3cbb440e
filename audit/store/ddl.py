"""Database-enforced append-only rules, per dialect.

`install_append_only(connection)` runs after the tables exist (`create_schema`; production uses
the Alembic migrations, which hold their own frozen copy of these statements). It adds triggers
that refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the audit tables, lets the single
head row only move forward, creates that row, and installs the insert guard and the PostgreSQL
role split (`audit.store.guard`).
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, text

from audit.store.guard import install_guard
from audit.store.tables import APPEND_ONLY_TABLES, head, metadata

_PG_FUNCTIONS = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit table % is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'object_not_in_prerequisite_state';
END $$;
CREATE OR REPLACE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id <> OLD.id OR NEW.size <= OLD.size THEN
    RAISE EXCEPTION 'audit head may only grow' USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  RETURN NEW;
END $$;
"""


def _pg_statements() -> list[str]:
    out = [_PG_FUNCTIONS]
    for t in APPEND_ONLY_TABLES:
        out.append(f"CREATE OR REPLACE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                   "FOR EACH ROW EXECUTE FUNCTION audit_append_only()")
        out.append(f"CREATE OR REPLACE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()")
    out += [
        "CREATE OR REPLACE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION audit_head_forward()",
        "CREATE OR REPLACE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
        "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
        "CREATE OR REPLACE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    ]
    return out


def _sqlite_statements() -> list[str]:
    out = []
    for t in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            out.append(f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op.lower()} BEFORE {op} ON {t} "
                       f"BEGIN SELECT RAISE(ABORT, 'audit table {t} is append-only'); END")
    out += [
        "CREATE TRIGGER IF NOT EXISTS audit_head_forward BEFORE UPDATE ON audit_head "
        "WHEN NEW.id <> OLD.id OR NEW.size <= OLD.size "
        "BEGIN SELECT RAISE(ABORT, 'audit head may only grow'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head "
        "BEGIN SELECT RAISE(ABORT, 'audit head may not be deleted'); END",
    ]
    return out


def trigger_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return _pg_statements()
    if dialect == "sqlite":
        return _sqlite_statements()
    raise ValueError(f"audit store supports sqlite and postgresql, not {dialect}")


def install_append_only(connection: Connection) -> None:
    """Create the append-only triggers for the connection's dialect, the head row and the
    insert guard."""
    for stmt in trigger_statements(connection.dialect.name):
        connection.execute(text(stmt))
    if connection.execute(select(head.c.id)).first() is None:
        connection.execute(insert(head).values(id=1, size=0, frontier=b""))
    install_guard(connection)


def create_schema(connection: Connection) -> None:
    """Tables, triggers and head row in one go (tests, CLI, benchmarks; production uses Alembic)."""
    metadata.create_all(connection)
    install_append_only(connection)
