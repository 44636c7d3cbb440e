"""The audit tables, on their own MetaData so the exchange schema cannot alter them by accident.

Two parts with different jobs:

- The log: `audit_entries` (one row per entry: the canonical bytes, the leaf hash, and the
  interior node hashes that this leaf completed; node (k, j) lives in the row of its last leaf,
  (j + 1) * 2**k - 1, at offset (k - 1) * 32) and `audit_head`. Appends touch only these, so the
  head lock, which serialises every broker, is held for one plain insert per entry. Proofs and
  roots read O(log n) rows by primary key and no tree is ever recomputed on a request.
- The search projection: `audit_search` and `audit_subjects`, derived from the entries' own bytes
  by `refresh_search`, which every search runs first (so a search sees every entry committed
  before it began). Derived, so rebuildable and checked by fsck against the entries; append-only
  like the log, so a row once indexed cannot be edited away.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# On SQLite an INTEGER PRIMARY KEY is the rowid itself: one B-tree lookup per proof node.
Index64 = BigInteger().with_variant(Integer(), "sqlite")

entries = Table(
    "audit_entries",
    metadata,
    Column("idx", Index64, primary_key=True, autoincrement=False),
    Column("entry", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("nodes", LargeBinary, nullable=False),
    CheckConstraint("idx >= 0", name="idx_nonnegative"),
)

search = Table(
    "audit_search",
    metadata,
    Column("idx", Index64, ForeignKey("audit_entries.idx"), primary_key=True,
           autoincrement=False),
    Column("time", String(27), nullable=False),  # RFC 3339 UTC, sorts as time
    Column("actor_id", String(128), nullable=False),
    Column("actor_role", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("agreement", String(128), nullable=True),
    Column("outcome", String(16), nullable=False),
    Index(None, "actor_id"),
    Index(None, "agreement"),
    Index(None, "time"),
)

subjects = Table(
    "audit_subjects",
    metadata,
    Column("entry_idx", BigInteger, ForeignKey("audit_entries.idx"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("pseudonym", String(128), nullable=False),
    PrimaryKeyConstraint("entry_idx", "position"),
    Index(None, "pseudonym"),
    sqlite_with_rowid=False,  # one B-tree for the key instead of a rowid table and its index
)

head = Table(
    "audit_head",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    # The hashes of the perfect subtrees covering [0, size), left to right: what the next append
    # needs, read in the same statement that takes the head lock.
    Column("frontier", LargeBinary, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
    CheckConstraint("size >= 0", name="size_nonnegative"),
)

checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("issued_at", String(27), nullable=False),
)

cosignatures = Table(
    "audit_cosignatures",
    metadata,
    Column("tree_size", BigInteger, ForeignKey("audit_checkpoints.tree_size"), nullable=False),
    Column("witness_name", String(255), nullable=False),
    Column("witness_key_id", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("witness_vkey", Text, nullable=False),
    Column("line", Text, nullable=False),
    Column("received_at", String(27), nullable=False),
    PrimaryKeyConstraint("tree_size", "witness_name", "witness_key_id"),
)

APPEND_ONLY_TABLES = (entries.name, search.name, subjects.name, checkpoints.name,
                      cosignatures.name)
