"""The insert guard: the database itself refuses any row of the log the log did not append.

The append-only triggers (`audit.store.ddl`) refuse UPDATE and DELETE. Without a guard on
INSERT, a row written straight into `audit_entries` at the head (or far beyond it) stayed for
good, and from then on every append collided with it: every audited request answered 503. The
guard makes the database check each new entry row against the log:

1. **Contiguous**: its index is the next one (one more than the largest stored).
2. **Reserved**: the head already covers it. The append moves the head first, then writes the
   entries under it, so a row nobody reserved (at the head or beyond) is refused, and the head
   may only move while the entries end exactly at its old size.
3. **Its own bytes**: the entry carries its index, and the leaf hash is SHA-256(0x00 || entry).
4. **Chained**: the interior hashes it completes are SHA-256(0x01 || left || right) of the
   stored hashes before it (RFC 6962; node (k, j) lives in the row of its last leaf).

On PostgreSQL the checks run once per INSERT statement, set-based over all its new rows (a
transition table), so a batched append pays one check, not one per row; a deferred check also
refuses to commit a head whose entries fall short of it. SQLite checks row by row and has no
deferred triggers; there an append that did not fill its reservation is refused
by the next one (rule 2) and reported by fsck.

**PostgreSQL role split.** Triggers bind the application, not the table owner. The broker's
role gets no INSERT on `audit_entries` and no UPDATE on `audit_head` at all: it appends through
two SECURITY DEFINER functions owned by `exchange_audit_appender` (NOLOGIN; INSERT on the
entries, UPDATE of the head's size and frontier, nothing else): `audit_lock_head()` takes the
head row lock and returns size and frontier, `audit_append(...)` checks the start, moves the
head and inserts the rows, which then pass the same triggers. `broker_role_sql(role)` grants a
broker role what it needs. The appender role is cluster-wide and shared by every schema that
installs the guard, so it is created idempotently and never dropped.

**SQLite** computes the hashes through two deterministic SQL functions, registered on every
connection the broker opens (`register_sqlite_functions`, called by exchange.db.engine, and by
`append_many` for any other engine). A tool without them (the sqlite3 shell) cannot insert into
`audit_entries` at all. Anyone who can write the file can also drop the triggers: that is what
the signed checkpoints and `exchange audit fsck` are for.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, text

APPENDER_ROLE = "exchange_audit_appender"
_MAX_LEVEL = 63  # indexes are signed 64-bit integers: at most 63 interior levels

LEAF_FUNCTION = "audit_leaf_hash"
NODE_FUNCTION = "audit_node_hash"
_APPEND_SIGNATURE = "audit_append(bigint, bytea[], bytea[], bytea[], bytea)"


# -- SQLite ---------------------------------------------------------------------------------
def _leaf(entry: Any) -> bytes | None:
    if not isinstance(entry, bytes):
        return None
    return hashlib.sha256(b"\x00" + entry).digest()


def _node(left: Any, right: Any) -> bytes | None:
    if not isinstance(left, bytes) or not isinstance(right, bytes):
        return None  # a missing or malformed stored hash never matches
    return hashlib.sha256(b"\x01" + left + right).digest()


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """The hash functions the SQLite guard calls; idempotent, cheap."""
    dbapi_connection.create_function(LEAF_FUNCTION, 1, _leaf, deterministic=True)
    dbapi_connection.create_function(NODE_FUNCTION, 2, _node, deterministic=True)


def _refuse(why: str) -> str:
    return f"SELECT RAISE(ABORT, 'audit entry refused: {why}')"


def sqlite_statements() -> list[str]:
    """The SQLite guard: one BEFORE INSERT trigger on the entries, one BEFORE UPDATE on the
    head. The chain check is unrolled per level: a level a row does not complete costs one
    integer comparison."""
    checks = [
        _refuse("not the next index of the log")  # noqa: S608
        + " WHERE NEW.idx IS NOT (SELECT coalesce(max(idx) + 1, 0) FROM audit_entries)",
        _refuse("the head has not reserved this index; entries are written only by the "  # noqa
                "log''s append")
        + " WHERE NEW.idx >= (SELECT size FROM audit_head WHERE id = 1)",
        _refuse("its bytes do not carry its index")
        + " WHERE instr(NEW.entry, CAST('\"index\":' || NEW.idx || ',' AS BLOB)) = 0",
        _refuse("the leaf hash does not match its bytes")
        + f" WHERE NEW.leaf_hash IS NOT {LEAF_FUNCTION}(NEW.entry)",
    ]
    levels = " + ".join(f"((NEW.idx & {(1 << k) - 1}) = {(1 << k) - 1})"
                        for k in range(1, _MAX_LEVEL + 1))
    chain = _refuse("its interior hashes do not chain to the entries before it")
    checks.append(f"{chain} WHERE length(NEW.nodes) IS NOT 32 * ({levels})")
    for k in range(1, _MAX_LEVEL + 1):
        mask = (1 << k) - 1
        left = "leaf_hash" if k == 1 else f"substr(nodes, {32 * (k - 2) + 1}, 32)"
        right = "NEW.leaf_hash" if k == 1 else f"substr(NEW.nodes, {32 * (k - 2) + 1}, 32)"
        checks.append(
            f"{chain} WHERE (NEW.idx & {mask}) = {mask} AND substr(NEW.nodes, "  # noqa: S608
            f"{32 * (k - 1) + 1}, 32) IS NOT {NODE_FUNCTION}((SELECT {left} FROM audit_entries "
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


# -- PostgreSQL -----------------------------------------------------------------------------
# {s} is the schema, quoted: the guard reads the tables of its own schema whatever the caller's
# search_path (a temporary table of the same name cannot stand in for the log).
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

# The log's only way in for the broker. SECURITY DEFINER with a fixed search_path (the
# schema, then pg_temp last), owned by the appender role below.
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
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APPENDER_ROLE}') THEN
    BEGIN
      CREATE ROLE {APPENDER_ROLE} NOLOGIN;
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN NULL;  -- created meanwhile: fine
      WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'creating role {APPENDER_ROLE} needs CREATEROLE: have a DBA run '
          'CREATE ROLE {APPENDER_ROLE} NOLOGIN; GRANT {APPENDER_ROLE} TO %', current_user;
    END;
  END IF;
  IF NOT pg_has_role(current_user, '{APPENDER_ROLE}', 'MEMBER') THEN
    EXECUTE format('GRANT {APPENDER_ROLE} TO %I', current_user);
  END IF;
END $$;
"""  # noqa: S608


def _pg_role_statements(schema: str) -> list[str]:
    """The appender owns the log's path; only it may write the log's tables."""
    role = APPENDER_ROLE
    return [
        _PG_APPENDER,
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT ON audit_entries TO {role}",
        f"GRANT SELECT, UPDATE (size, frontier) ON audit_head TO {role}",
        # a new owner needs CREATE on the schema, for the moment of the transfer only
        f"GRANT CREATE ON SCHEMA {schema} TO {role}",
        f"ALTER FUNCTION audit_lock_head() OWNER TO {role}",
        f"ALTER FUNCTION {_APPEND_SIGNATURE} OWNER TO {role}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {role}",
        f"REVOKE ALL ON FUNCTION audit_lock_head(), {_APPEND_SIGNATURE} FROM PUBLIC",
        # the owner may append too (a deployment with one role has no split, only the triggers)
        f"GRANT EXECUTE ON FUNCTION audit_lock_head(), {_APPEND_SIGNATURE} TO CURRENT_USER",
    ]


def postgresql_statements(schema: str) -> list[str]:
    """The PostgreSQL guard for `schema` (already quoted): triggers, the log's path and its
    owner role. Idempotent."""
    return [_PG_GUARD.format(s=schema), _PG_PATH.format(s=schema), *_pg_role_statements(schema)]


def install_guard(connection: Connection) -> None:
    """Install the insert guard for the connection's dialect (after the tables exist)."""
    dialect = connection.dialect
    if dialect.name == "postgresql":
        current = connection.execute(text("SELECT current_schema()")).scalar_one()
        statements = postgresql_statements(dialect.identifier_preparer.quote_identifier(current))
    elif dialect.name == "sqlite":
        register_sqlite_functions(connection.connection.driver_connection)
        statements = sqlite_statements()
    else:
        raise ValueError(f"audit store supports sqlite and postgresql, not {dialect.name}")
    for statement in statements:
        connection.execute(text(statement))


def broker_role_sql(role: str) -> str:
    """SQL granting a broker's role what it needs of the audit store, and nothing more: read
    everything, append through the log's path, add search rows, checkpoints and cosignatures.
    It can neither insert an entry nor move the head by itself, and rewrites nothing."""
    if not role.replace("_", "").isalnum():
        raise ValueError("role name must be alphanumeric with underscores")
    derived = "audit_search, audit_subjects, audit_checkpoints, audit_cosignatures"
    return (
        f"REVOKE ALL ON audit_entries, audit_head, {derived} FROM {role};\n"
        f"GRANT SELECT ON audit_entries, audit_head, {derived} TO {role};\n"
        f"GRANT INSERT ON {derived} TO {role};\n"
        f"GRANT EXECUTE ON FUNCTION audit_lock_head(), {_APPEND_SIGNATURE} TO {role};\n"
    )
