"""Hardening (issue 14): the audit log's insert guard and, on PostgreSQL, its role split; the
blind-index version marker.

The database refuses any row of `audit_entries` that is not the log's contiguous next index,
reserved by the head, carrying its own index, with its leaf hash and the interior hashes it
completes chaining to the rows before it; the head may only move while the entries end exactly
at its size (and, on PostgreSQL, may not commit beyond them). On PostgreSQL the broker appends
through two SECURITY DEFINER functions owned by the role `exchange_audit_appender` (created here
if missing, never dropped: roles are cluster-wide and shared by every schema). See
audit/store/guard.py, which holds the current statements; these are this revision's, frozen.

`blind_index_marker` (one row) records which blind-index key version the stored ID-number
indexes are under (1: the only version before this revision) and, during a rotation, the next;
`residents.national_id_index_version` records it per row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPENDER = "exchange_audit_appender"
_APPEND = "audit_append(bigint, bytea[], bytea[], bytea[], bytea)"
_LEVELS = 63


def _dialect() -> str:
    return op.get_bind().dialect.name


def upgrade() -> None:
    _blind_index_marker()
    if _dialect() == "sqlite":
        for statement in _sqlite_guard():
            op.execute(statement)
        return
    schema = op.get_bind().dialect.identifier_preparer.quote_identifier(
        op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one())
    op.execute(_PG_GUARD.format(s=schema))
    op.execute(_PG_PATH.format(s=schema))
    for statement in _pg_roles(schema):
        op.execute(statement)


def downgrade() -> None:
    op.drop_column("residents", "national_id_index_version")
    op.drop_table("blind_index_marker")
    if _dialect() == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_entries_guard")
        op.execute("DROP TRIGGER IF EXISTS audit_head_guard")
        return
    schema = op.get_bind().dialect.identifier_preparer.quote_identifier(
        op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one())
    for statement in (
        "DROP TRIGGER IF EXISTS audit_entries_guard ON audit_entries",
        "DROP TRIGGER IF EXISTS audit_head_guard ON audit_head",
        "DROP TRIGGER IF EXISTS audit_head_filled ON audit_head",
        "DROP FUNCTION IF EXISTS audit_entries_guard()",
        "DROP FUNCTION IF EXISTS audit_head_guard()",
        "DROP FUNCTION IF EXISTS audit_head_filled()",
        "DROP FUNCTION IF EXISTS audit_lock_head()",
        f"DROP FUNCTION IF EXISTS {_APPEND}",
        f"REVOKE ALL ON audit_entries, audit_head FROM {_APPENDER}",
        f"REVOKE ALL ON SCHEMA {schema} FROM {_APPENDER}",
    ):
        op.execute(statement)


def _blind_index_marker() -> None:
    marker = op.create_table(
        "blind_index_marker",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_blind_index_marker_single_row")),
        sa.CheckConstraint("version > 0", name=op.f("ck_blind_index_marker_version_positive")),
        sa.CheckConstraint("next_version IS NULL OR next_version > version",
                           name=op.f("ck_blind_index_marker_next_is_newer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blind_index_marker")),
    )
    op.bulk_insert(marker, [{"id": 1, "version": 1, "next_version": None,
                             "updated_at": datetime.now(UTC)}])
    op.add_column("residents", sa.Column("national_id_index_version", sa.Integer(),
                                         server_default=sa.text("1"), nullable=False))


def _sqlite_guard() -> list[str]:
    def refuse(why: str) -> str:
        return f"SELECT RAISE(ABORT, 'audit entry refused: {why}')"

    checks = [
        refuse("not the next index of the log")  # noqa: S608
        + " WHERE NEW.idx IS NOT (SELECT coalesce(max(idx) + 1, 0) FROM audit_entries)",
        refuse("the head has not reserved this index; entries are written only by the "  # noqa
               "log''s append")
        + " WHERE NEW.idx >= (SELECT size FROM audit_head WHERE id = 1)",
        refuse("its bytes do not carry its index")
        + " WHERE instr(NEW.entry, CAST('\"index\":' || NEW.idx || ',' AS BLOB)) = 0",
        refuse("the leaf hash does not match its bytes")
        + " WHERE NEW.leaf_hash IS NOT audit_leaf_hash(NEW.entry)",
    ]
    levels = " + ".join(f"((NEW.idx & {(1 << k) - 1}) = {(1 << k) - 1})"
                        for k in range(1, _LEVELS + 1))
    chain = refuse("its interior hashes do not chain to the entries before it")
    checks.append(f"{chain} WHERE length(NEW.nodes) IS NOT 32 * ({levels})")
    for k in range(1, _LEVELS + 1):
        mask = (1 << k) - 1
        left = "leaf_hash" if k == 1 else f"substr(nodes, {32 * (k - 2) + 1}, 32)"
        right = "NEW.leaf_hash" if k == 1 else f"substr(NEW.nodes, {32 * (k - 2) + 1}, 32)"
        checks.append(
            f"{chain} WHERE (NEW.idx & {mask}) = {mask} AND substr(NEW.nodes, "  # noqa: S608
            f"{32 * (k - 1) + 1}, 32) IS NOT audit_node_hash((SELECT {left} FROM audit_entries "
            f"WHERE idx = NEW.idx - {1 << (k - 1)}), {right})"
        )
    return [
        "CREATE TRIGGER IF NOT EXISTS audit_entries_guard BEFORE INSERT ON audit_entries "
        "BEGIN " + "; ".join(checks) + "; END",
        "CREATE TRIGGER IF NOT EXISTS audit_head_guard BEFORE UPDATE ON audit_head "
        "WHEN OLD.size IS NOT (SELECT coalesce(max(idx) + 1, 0) FROM audit_entries) "
        "BEGIN SELECT RAISE(ABORT, 'audit head refused: the entries do not end at its size; "
        "run exchange audit fsck'); END",
    ]


_PG_GUARD = """
CREATE OR REPLACE FUNCTION audit_entries_guard() RETURNS trigger LANGUAGE plpgsql
  SET jit = off  -- the planner's guess for the transition table would have it compile (~0.5 s)
  AS $$
DECLARE
  first_idx bigint;
  last_idx bigint;
  n bigint;
  expected bigint;
  bad bigint;
BEGIN
  SELECT min(idx), max(idx), count(*) INTO first_idx, last_idx, n FROM new_rows;
  IF n = 0 THEN
    RETURN NULL;
  END IF;
  SELECT coalesce(max(idx) + 1, 0) INTO expected FROM {s}.audit_entries WHERE idx < first_idx;
  IF first_idx <> expected OR last_idx - first_idx + 1 <> n OR last_idx >= 4611686018427387904
     OR (SELECT max(idx) FROM {s}.audit_entries) > last_idx THEN
    RAISE EXCEPTION 'audit entries %..% refused: not the next index of the log (%)', first_idx,
      last_idx, expected USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF last_idx >= (SELECT size FROM {s}.audit_head WHERE id = 1) THEN
    RAISE EXCEPTION 'audit entries %..% refused: the head has not reserved this index; entries '
      'are written only by the log''s append', first_idx, last_idx
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  SELECT min(idx) INTO bad FROM new_rows
    WHERE position(convert_to('"index":' || idx || ',', 'UTF8') IN entry) = 0;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'audit entry % refused: its bytes do not carry its index', bad
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  SELECT min(idx) INTO bad FROM new_rows
    WHERE leaf_hash IS DISTINCT FROM sha256('\\x00'::bytea || entry);
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'audit entry % refused: the leaf hash does not match its bytes', bad
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  -- row r completes level l + 1 when the low l + 1 bits of r are ones; that node's left child
  -- is the level-l hash of row r - 2^l, its right child row r's own level-l hash
  SELECT min(r.idx) INTO bad FROM new_rows r
    WHERE length(r.nodes) % 32 <> 0 OR length(r.nodes) > 61 * 32
       OR (1::bigint << (length(r.nodes) / 32)) <> ((r.idx + 1) & -(r.idx + 1));
  IF bad IS NULL THEN  -- each row holds as many levels as the low ones of its index
    SELECT min(r.idx) INTO bad
      FROM new_rows r CROSS JOIN LATERAL generate_series(0, length(r.nodes) / 32 - 1) AS l
      CROSS JOIN LATERAL (SELECT leaf_hash, nodes FROM {s}.audit_entries
                          WHERE idx = r.idx - (1::bigint << l)
                          OFFSET 0) AS e  -- not flattened: one primary-key read per node
      WHERE substring(r.nodes FROM l * 32 + 1 FOR 32) IS DISTINCT FROM sha256('\\x01'::bytea
          || CASE WHEN l = 0 THEN e.leaf_hash ELSE substring(e.nodes FROM l * 32 - 31 FOR 32) END
          || CASE WHEN l = 0 THEN r.leaf_hash ELSE substring(r.nodes FROM l * 32 - 31 FOR 32) END);
  END IF;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'audit entry % refused: its interior hashes do not chain to the entries '
      'before it', bad USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.size <> (SELECT coalesce(max(idx) + 1, 0) FROM {s}.audit_entries) THEN
    RAISE EXCEPTION 'audit head refused: the entries do not end at its size; run exchange audit '
      'fsck' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION audit_head_filled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT size FROM {s}.audit_head WHERE id = 1)
     <> (SELECT coalesce(max(idx) + 1, 0) FROM {s}.audit_entries) THEN
    RAISE EXCEPTION 'audit head refused: it would commit beyond its entries'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS audit_entries_guard ON audit_entries;
CREATE TRIGGER audit_entries_guard AFTER INSERT ON audit_entries
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_guard();
CREATE OR REPLACE TRIGGER audit_head_guard BEFORE UPDATE ON audit_head
  FOR EACH ROW EXECUTE FUNCTION audit_head_guard();
DROP TRIGGER IF EXISTS audit_head_filled ON audit_head;
CREATE CONSTRAINT TRIGGER audit_head_filled AFTER UPDATE ON audit_head
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_head_filled();
"""

_PG_PATH = """
CREATE OR REPLACE FUNCTION audit_lock_head(OUT size bigint, OUT frontier bytea)
  LANGUAGE sql SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
  SELECT size, frontier FROM audit_head WHERE id = 1 FOR UPDATE
$$;
CREATE OR REPLACE FUNCTION audit_append(p_start bigint, p_entries bytea[], p_leaves bytea[],
                                        p_nodes bytea[], p_frontier bytea) RETURNS bigint
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = {s}, pg_temp AS $$
DECLARE
  n bigint := coalesce(cardinality(p_entries), 0);
  current_size bigint;
BEGIN
  SELECT size INTO current_size FROM audit_head WHERE id = 1 FOR UPDATE;
  IF current_size IS DISTINCT FROM p_start THEN
    RAISE EXCEPTION 'audit append refused: the head is at %, not %', current_size, p_start
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF n = 0 OR cardinality(p_leaves) <> n OR cardinality(p_nodes) <> n THEN
    RAISE EXCEPTION 'audit append refused: malformed batch'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  UPDATE audit_head SET size = p_start + n, frontier = p_frontier WHERE id = 1;
  INSERT INTO audit_entries (idx, entry, leaf_hash, nodes)
    SELECT p_start + i - 1, e, l, x FROM unnest(p_entries, p_leaves, p_nodes)
      WITH ORDINALITY AS batch (e, l, x, i) ORDER BY i;
  RETURN p_start + n;
END $$;
"""

_PG_APPENDER = f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{_APPENDER}') THEN
    BEGIN
      CREATE ROLE {_APPENDER} NOLOGIN;
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN NULL;
      WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'creating role {_APPENDER} needs CREATEROLE: have a DBA run '
          'CREATE ROLE {_APPENDER} NOLOGIN; GRANT {_APPENDER} TO %', current_user;
    END;
  END IF;
  IF NOT pg_has_role(current_user, '{_APPENDER}', 'MEMBER') THEN
    EXECUTE format('GRANT {_APPENDER} TO %I', current_user);
  END IF;
END $$;
"""  # noqa: S608


def _pg_roles(schema: str) -> list[str]:
    role = _APPENDER
    return [
        _PG_APPENDER,
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT ON audit_entries TO {role}",
        f"GRANT SELECT, UPDATE (size, frontier) ON audit_head TO {role}",
        f"GRANT CREATE ON SCHEMA {schema} TO {role}",
        f"ALTER FUNCTION audit_lock_head() OWNER TO {role}",
        f"ALTER FUNCTION {_APPEND} OWNER TO {role}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {role}",
        f"REVOKE ALL ON FUNCTION audit_lock_head(), {_APPEND} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION audit_lock_head(), {_APPEND} TO CURRENT_USER",
    ]
