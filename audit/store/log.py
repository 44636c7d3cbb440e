"""The audit log over a SQLAlchemy Session: append inside the caller's transaction, tree heads,
proofs from stored hashes, checkpoints, cosignatures, search, export and fsck.

Ordering: every append first reads the head's size and frontier under the head row lock
(PostgreSQL: `audit_lock_head()`, held to commit; after waiting it returns the head the previous
appender committed; SQLite: the engine's BEGIN IMMEDIATE holds the write lock). So concurrent
brokers get a total, gap-free order; a rolled-back transaction rolls its reservation back too.
Use READ COMMITTED on PostgreSQL (the default). The database checks every entry row it is given
(`audit.store.guard`): the head moves first, then the entries fill it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import and_, exists, select
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from audit import entry as codec
from audit import export as export_format
from audit.checkpoint import Checkpoint, find_cosignature, open_checkpoint, sign_checkpoint
from audit.entry import AuditEntry, format_time
from audit.errors import (
    AppendError,
    AuditError,
    CheckpointError,
    IntegrityError,
    NotFoundError,
    ProofError,
)
from audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    ConsistencyProof,
    InclusionProof,
    NodeId,
    build_consistency,
    build_inclusion,
    leaf_hash,
    node_row,
    perfect_nodes,
    root_from_nodes,
)
from audit.note import Signer, Verifier
from audit.store.guard import register_sqlite_functions
from audit.store.recovery import foreign_rows
from audit.store.search import indexed_size, projection_problems, refresh_search
from audit.store.tables import checkpoints, cosignatures, entries, head, search, subjects
from audit.verifier import Problem

Clock = Callable[[], datetime]
EXPORT_CHUNK = 5000


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _read_nodes(session: Session, ids: set[NodeId] | Sequence[NodeId]) -> dict[NodeId, bytes]:
    """Stored hashes of perfect nodes, one primary-key read per distinct row."""
    wanted = {node_row(n): n for n in ids}
    if not wanted:
        return {}
    rows = {r.idx: r for r in session.execute(
        select(entries.c.idx, entries.c.leaf_hash, entries.c.nodes)
        .where(entries.c.idx.in_(sorted({node_row(n) for n in ids})))
    )}
    out: dict[NodeId, bytes] = {}
    for n in ids:
        row = rows.get(node_row(n))
        if row is None:
            raise IntegrityError(f"entry {node_row(n)} is missing from the audit store")
        level = n[0]
        h = bytes(row.leaf_hash) if level == 0 else bytes(row.nodes)[
            (level - 1) * HASH_SIZE: level * HASH_SIZE]
        if len(h) != HASH_SIZE:
            raise IntegrityError(f"entry {row.idx} lacks its stored hash at level {level}")
        out[n] = h
    return out


# PostgreSQL: the log's own path (audit.store.guard), SECURITY DEFINER functions the broker's
# role may call although it may not write the tables: lock and read the head, then one call
# that moves the head and writes the rows (one round trip for any batch size), its arrays sent
# in binary (%b) so no value is quoted or escaped.
_PG_HEAD = "SELECT size, frontier FROM audit_lock_head()"
_PG_WRITE = "SELECT audit_append(%b, %b::bytea[], %b::bytea[], %b::bytea[], %b)"
_SQLITE_HEAD = "SELECT size, frontier FROM audit_head WHERE id = 1"
_SQLITE_ENTRY = "INSERT INTO audit_entries (idx, entry, leaf_hash, nodes) VALUES (?, ?, ?, ?)"
_SQLITE_NEW_HEAD = "UPDATE audit_head SET size = ?, frontier = ? WHERE id = 1"
_FUNCTIONS_REGISTERED = "audit.store.sqlite_functions"

EntryRow = tuple[int, bytes, bytes, bytes]


def _rows(start: int, frontier: bytes, batch: Sequence[AuditEntry]
          ) -> tuple[list[EntryRow], bytes]:
    """Entry rows and the new frontier for `batch` appended at `start`."""
    if len(frontier) != HASH_SIZE * len(perfect_nodes(0, start)):
        raise AppendError("audit head frontier does not match its size: run exchange audit fsck")
    tree = CompactRange(start, [frontier[i:i + HASH_SIZE]
                                for i in range(0, len(frontier), HASH_SIZE)])
    rows: list[EntryRow] = []
    for idx, item in enumerate(batch, start):
        data = codec.encode(idx, item)
        leaf = leaf_hash(data)
        rows.append((idx, data, leaf, b"".join(tree.append(leaf))))
    return rows, b"".join(tree.frontier())


def append_many(session: Session, batch: Sequence[AuditEntry]) -> list[int]:
    """Append entries in the caller's transaction (never commits); returns their indexes.

    Statements on the driver's own cursor (the SQLAlchemy statement layer would cost more
    than the database work): lock the head row and read its size and frontier, then move the
    head and write the entries under it (one call on PostgreSQL), each row checked by the
    database's insert guard. The search projection is derived later (audit.store.search), so
    the head lock covers nothing but the log itself.
    """
    if not batch:
        return []
    connection = session.connection()
    dbapi = connection.dialect.dbapi
    driver_errors = (dbapi.Error,) if dbapi is not None else ()
    postgres = connection.dialect.name == "postgresql"
    try:
        if not postgres and not connection.connection.info.get(_FUNCTIONS_REGISTERED):
            # an engine that did not register the guard's hash functions on connect
            register_sqlite_functions(connection.connection.driver_connection)
            connection.connection.info[_FUNCTIONS_REGISTERED] = True
        cursor = connection.connection.cursor()
        try:
            # FOR UPDATE waits for a concurrent appender and then reads its committed head
            # (READ COMMITTED); SQLite holds the write lock since BEGIN IMMEDIATE.
            cursor.execute(_PG_HEAD if postgres else _SQLITE_HEAD)
            found = cursor.fetchone()
            if found is None:
                raise AppendError("audit head row is missing: run "
                                  "audit.store.install_append_only")
            start = int(found[0])
            rows, frontier = _rows(start, bytes(found[1]), batch)
            after = start + len(batch)
            if postgres:
                _, entry_bytes, leaves, nodes = (list(c) for c in zip(*rows, strict=True))
                cursor.execute(_PG_WRITE, (start, entry_bytes, leaves, nodes, frontier))
            else:  # the head first: the guard refuses an entry the head has not reserved
                cursor.execute(_SQLITE_NEW_HEAD, (after, frontier))
                cursor.executemany(_SQLITE_ENTRY, rows)
        finally:
            cursor.close()
    except (SQLAlchemyError, *driver_errors) as exc:
        raise AppendError(f"audit append failed ({type(exc).__name__}); roll back, and run "
                          "exchange audit fsck if it persists") from exc
    return list(range(start, after))


def append(session: Session, item: AuditEntry) -> int:
    """Append one entry in the caller's transaction; returns its index."""
    return append_many(session, [item])[0]


@dataclass(frozen=True, slots=True)
class TreeHead:
    size: int
    root: bytes

    def to_json(self) -> dict[str, object]:
        return {"tree_size": self.size, "root": _b64(self.root)}


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    checkpoint: Checkpoint
    note: str  # the signed note, with any witness cosignature lines appended
    issued_at: str

    def to_json(self) -> dict[str, object]:
        return {"tree_size": self.checkpoint.size, "root": _b64(self.checkpoint.root),
                "issued_at": self.issued_at, "note": self.note}


@dataclass(frozen=True, slots=True)
class EntryFilter:
    actor: str | None = None
    action: str | None = None
    pseudonym: str | None = None
    agreement: str | None = None
    outcome: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class EntryPage:
    items: tuple[dict[str, object], ...]
    next_after: int | None  # pass as `after` for the next page; None when exhausted

    def to_json(self) -> dict[str, object]:
        return {"items": list(self.items), "next_after": self.next_after}


@dataclass(frozen=True, slots=True)
class FsckReport:
    entries: int
    head_size: int
    checkpoints: int
    problems: tuple[Problem, ...] = field(default=())
    recovery: str | None = None  # what to do about foreign rows, when there are any

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditLog:
    """Audit log service over one Session; never commits (the unit of work does)."""

    def __init__(self, session: Session, *, signer: Signer | None = None,
                 clock: Clock = _utcnow) -> None:
        self._session = session
        self._signer = signer
        self._clock = clock

    # -- writing ---------------------------------------------------------------------------
    def append(self, item: AuditEntry) -> int:
        return append(self._session, item)

    def append_many(self, batch: Sequence[AuditEntry]) -> list[int]:
        return append_many(self._session, batch)

    # -- tree ------------------------------------------------------------------------------
    def size(self) -> int:
        size = self._session.execute(select(head.c.size).where(head.c.id == 1)).scalar()
        if size is None:
            raise NotFoundError("audit head row is missing: run audit.store.install_append_only")
        return int(size)

    def _check_size(self, tree_size: int) -> None:
        current = self.size()
        if not 0 <= tree_size <= current:
            raise NotFoundError(f"tree size {tree_size} is not in a log of size {current}")

    def root(self, tree_size: int) -> bytes:
        self._check_size(tree_size)
        ids = perfect_nodes(0, tree_size)
        return root_from_nodes(tree_size, _read_nodes(self._session, ids)) if ids else EMPTY_ROOT

    def head(self) -> TreeHead:
        size = self.size()
        return TreeHead(size, self.root(size))

    def _reader(self) -> Callable[[set[NodeId]], Mapping[NodeId, bytes]]:
        return lambda ids: _read_nodes(self._session, ids)

    def inclusion_proof(self, index: int, tree_size: int) -> InclusionProof:
        self._check_size(tree_size)
        if not 0 <= index < tree_size:
            raise ProofError(f"leaf index {index} is outside a tree of size {tree_size}")
        return build_inclusion(index, tree_size, self._reader())

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        self._check_size(second)
        if not 0 < first <= second:
            raise ProofError(f"no consistency proof from size {first} to size {second}")
        return build_consistency(first, second, self._reader())

    def leaf(self, index: int) -> tuple[bytes, bytes]:
        """(canonical entry bytes, leaf hash) of one entry."""
        row = self._session.execute(
            select(entries.c.entry, entries.c.leaf_hash).where(entries.c.idx == index)
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"no audit entry {index}")
        return bytes(row.entry), bytes(row.leaf_hash)

    # -- checkpoints -----------------------------------------------------------------------
    @property
    def verifier(self) -> Verifier:
        if self._signer is None:
            raise CheckpointError("this AuditLog has no signing key")
        return self._signer.verifier

    def vkey(self) -> str:
        """The log's verifier key in `name+keyid+base64` form (GET /v1/audit/vkey)."""
        return self.verifier.text()

    def issue_checkpoint(self) -> StoredCheckpoint:
        """Sign and store a checkpoint of the current head (idempotent per tree size).

        Also brings the search projection up to date, so its backlog never outgrows the
        checkpoint interval.
        """
        if self._signer is None:
            raise CheckpointError("this AuditLog has no signing key")
        refresh_search(self._session)
        current = self.head()
        existing = self.checkpoint(current.size)
        if existing is not None:
            return existing
        cp = Checkpoint(self._signer.name, current.size, current.root)
        note = sign_checkpoint(cp, self._signer)
        issued = format_time(self._clock())
        try:
            with self._session.begin_nested():
                self._session.execute(sa_insert(checkpoints).values(
                    tree_size=cp.size, root_hash=cp.root, note=note, issued_at=issued))
        except SAIntegrityError:
            stored = self.checkpoint(current.size)  # another broker issued it first
            if stored is None:
                raise
            return stored
        return StoredCheckpoint(cp, note, issued)

    def _stored(self, size: int, note: str, issued: str) -> StoredCheckpoint:
        lines = self._session.execute(
            select(cosignatures.c.line).where(cosignatures.c.tree_size == size)
            .order_by(cosignatures.c.witness_name, cosignatures.c.witness_key_id)
        ).scalars().all()
        text = str(note) + "".join(lines)
        return StoredCheckpoint(Checkpoint.parse_body(note.split("\n\n")[0] + "\n"),
                                text, issued)

    def checkpoint(self, tree_size: int) -> StoredCheckpoint | None:
        row = self._session.execute(
            select(checkpoints.c.tree_size, checkpoints.c.root_hash, checkpoints.c.note,
                   checkpoints.c.issued_at).where(checkpoints.c.tree_size == tree_size)
        ).one_or_none()
        return None if row is None else self._stored(row.tree_size, row.note, row.issued_at)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The newest stored checkpoint (GET /v1/audit/checkpoint serves `.note`)."""
        row = self._session.execute(
            select(checkpoints.c.tree_size, checkpoints.c.root_hash, checkpoints.c.note,
                   checkpoints.c.issued_at).order_by(checkpoints.c.tree_size.desc()).limit(1)
        ).one_or_none()
        return None if row is None else self._stored(row.tree_size, row.note, row.issued_at)

    def add_cosignature(self, cosigned_note: str, witness_vkey: str) -> StoredCheckpoint:
        """Verify a witness cosignature on a stored checkpoint and store it beside it."""
        witness = Verifier.parse(witness_vkey)
        body, cosig = find_cosignature(cosigned_note, witness)
        cp = Checkpoint.parse_body(body)
        stored = self.checkpoint(cp.size)
        if stored is None or stored.checkpoint != cp:
            raise CheckpointError("the cosigned checkpoint is not one this log issued")
        try:
            with self._session.begin_nested():
                self._session.execute(sa_insert(cosignatures).values(
                    tree_size=cp.size, witness_name=witness.name, witness_key_id=witness.key_id,
                    timestamp=cosig.timestamp, witness_vkey=witness.text(), line=cosig.line,
                    received_at=format_time(self._clock())))
        except SAIntegrityError:
            raise CheckpointError("this witness already cosigned this checkpoint") from None
        result = self.checkpoint(cp.size)
        assert result is not None
        return result

    # -- reading ---------------------------------------------------------------------------
    def entries(self, filters: EntryFilter = EntryFilter(), *, after: int = -1,
                limit: int = 100) -> EntryPage:
        """Entries matching every filter, in index order, after index `after`.

        Refreshes the search projection first: the answer covers every entry committed before
        the call.
        """
        if not 1 <= limit <= 1000:
            raise ProofError("limit must be between 1 and 1000")
        refresh_search(self._session)
        conds = [search.c.idx > after]
        f = filters
        for col, value in ((search.c.actor_id, f.actor), (search.c.action, f.action),
                           (search.c.agreement, f.agreement), (search.c.outcome, f.outcome)):
            if value is not None:
                conds.append(col == value)
        if f.since is not None:
            conds.append(search.c.time >= format_time(f.since))
        if f.until is not None:
            conds.append(search.c.time < format_time(f.until))
        if f.pseudonym is not None:
            conds.append(exists().where(and_(subjects.c.entry_idx == search.c.idx,
                                             subjects.c.pseudonym == f.pseudonym)))
        rows = self._session.execute(
            select(entries.c.idx, entries.c.entry, entries.c.leaf_hash)
            .join(search, search.c.idx == entries.c.idx)
            .where(*conds).order_by(search.c.idx).limit(limit + 1)
        ).all()
        items = tuple({"index": r.idx, "entry": json.loads(bytes(r.entry)),
                       "entry_b64": _b64(bytes(r.entry)), "leaf_hash": _b64(bytes(r.leaf_hash))}
                      for r in rows[:limit])
        more = len(rows) > limit
        return EntryPage(items, rows[limit - 1].idx if more else None)

    def export(self, origin: str | None = None) -> Iterator[str]:
        """The export file, line by line (see audit.export), up to the current head. `origin`
        names the log when the caller knows it (a log with no checkpoint yet has no other
        record of its name)."""
        size = self.size()
        yield export_format.header_line(origin or self._origin_for_export(), size)
        for row in self._session.execute(
            select(checkpoints.c.tree_size).where(checkpoints.c.tree_size <= size)
            .order_by(checkpoints.c.tree_size)
        ).scalars():
            stored = self.checkpoint(row)
            assert stored is not None
            yield export_format.checkpoint_line(stored.note)
        after = -1
        while after + 1 < size:
            chunk = self._session.execute(
                select(entries.c.idx, entries.c.entry, entries.c.leaf_hash)
                .where(entries.c.idx > after, entries.c.idx < size)
                .order_by(entries.c.idx).limit(EXPORT_CHUNK)
            ).all()
            if not chunk:
                break
            for r in chunk:
                yield export_format.entry_line(r.idx, bytes(r.entry), bytes(r.leaf_hash))
            after = chunk[-1].idx

    def _origin_for_export(self) -> str:
        if self._signer is not None:
            return self._signer.name
        latest = self.latest_checkpoint()
        return latest.checkpoint.origin if latest else "unknown"

    # -- operators -------------------------------------------------------------------------
    def fsck(self, log_key: Verifier | None = None) -> FsckReport:
        """Recompute every stored hash, index, subject row and checkpoint; report all problems."""
        problems: list[Problem] = []
        tree = CompactRange()
        roots: dict[int, bytes] = {}
        cp_rows = self._session.execute(
            select(checkpoints.c.tree_size, checkpoints.c.root_hash, checkpoints.c.note)
            .order_by(checkpoints.c.tree_size)).all()
        wanted = {int(r.tree_size) for r in cp_rows}
        head_size = self.size()
        indexed = indexed_size(self._session)
        wanted.add(head_size)
        roots[0] = EMPTY_ROOT
        foreign: list[int] = []  # rows at or beyond the head: never appended by the log
        after = -1
        while True:
            chunk = self._session.execute(
                select(entries.c.idx, entries.c.entry, entries.c.leaf_hash, entries.c.nodes)
                .where(entries.c.idx > after).order_by(entries.c.idx).limit(EXPORT_CHUNK)).all()
            if not chunk:
                break
            projected = {int(p.idx): dict(p._mapping) for p in self._session.execute(
                select(search).where(search.c.idx > after, search.c.idx <= chunk[-1].idx))}
            pseudonyms: dict[int, list[str]] = {}
            for srow in self._session.execute(
                select(subjects.c.entry_idx, subjects.c.pseudonym)
                .where(subjects.c.entry_idx > after, subjects.c.entry_idx <= chunk[-1].idx)
                .order_by(subjects.c.entry_idx, subjects.c.position)):
                pseudonyms.setdefault(int(srow.entry_idx), []).append(srow.pseudonym)
            for r in chunk:
                if r.idx >= head_size:
                    foreign.append(int(r.idx))
                    continue
                pos, data = tree.size, bytes(r.entry)
                if r.idx != pos:
                    problems.append(Problem(f"index {r.idx} found where {pos} belongs: gap or "
                                            "deleted rows", pos))
                    return self._report(tree.size, head_size, len(cp_rows), problems)
                try:
                    logged = codec.decode(data)
                    if logged.index != pos:
                        problems.append(Problem(f"entry bytes carry index {logged.index}", pos))
                except AuditError as exc:
                    problems.append(Problem(f"entry does not decode: {exc}", pos))
                if pos < indexed or pos in projected or pos in pseudonyms:
                    wrong = projection_problems(pos, data, projected.get(pos),
                                                pseudonyms.get(pos, []))
                    if wrong:
                        problems.append(Problem(wrong, pos))
                leaf = leaf_hash(data)
                if leaf != bytes(r.leaf_hash):
                    problems.append(Problem("stored leaf hash does not match the entry", pos))
                completed = tree.append(bytes(r.leaf_hash))
                if b"".join(completed) != bytes(r.nodes):
                    problems.append(Problem("stored interior hashes are wrong", pos))
                if tree.size in wanted:
                    roots[tree.size] = tree.root()
            after = chunk[-1].idx
        recovery = None
        if foreign:
            problems.append(Problem(f"{len(foreign)} foreign row(s) at or beyond the head: the "
                                    "log never appended them, and no append succeeds while "
                                    "they are there", foreign[0], foreign[-1] + 1))
            dialect = self._session.get_bind().dialect.name
            recovery = foreign_rows(dialect, head_size, foreign[-1])
        if tree.size != head_size:
            problems.append(Problem(f"head says {head_size} entries, table holds {tree.size}",
                                    min(tree.size, head_size)))
        elif bytes(self._session.execute(select(head.c.frontier).where(head.c.id == 1)
                                         ).scalar_one()) != b"".join(tree.frontier()):
            problems.append(Problem("the head's frontier hashes do not match the entries "
                                    "(the next append would store wrong interior hashes)"))
        for cp in cp_rows:
            size = int(cp.tree_size)
            if roots.get(size) != bytes(cp.root_hash):
                problems.append(Problem(f"checkpoint of size {size} does not match the entries",
                                        None))
            if log_key is not None:
                try:
                    open_checkpoint(str(cp.note), log_key)
                except AuditError as exc:
                    problems.append(Problem(f"checkpoint of size {size} does not verify: {exc}"))
        return self._report(tree.size, head_size, len(cp_rows), problems, recovery)

    @staticmethod
    def _report(n: int, head_size: int, cps: int, problems: list[Problem],
                recovery: str | None = None) -> FsckReport:
        return FsckReport(n, head_size, cps, tuple(problems), recovery)
