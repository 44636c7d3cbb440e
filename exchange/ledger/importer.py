"""The ledger import service: validate and write a whole file, in the caller's transaction.

One streaming pass, so memory does not depend on the file size except for one 64-bit keyed
hash per valid row (in-file duplicate detection; never the ID number itself). Each row is
validated once and new residents are encrypted (a fresh data key each) by `prepare`, in forked
worker processes for a large file while this process reads and writes; valid rows are written
in batches of `BATCH_SIZE`: matched on the resident blind index, new residents inserted through
the driver's executemany and existing ones updated (re-encrypted under their own key, both
blind indexes, ID number and phone, rewritten under the current blind-index version). The
page cache of the connection is enlarged for the import (`bulk_write_pragmas`).

All-or-nothing (the default) runs inside a SAVEPOINT: the first invalid row stops the writing
(the rest is still validated, so the report lists every problem) and the savepoint is rolled
back, so nothing of the import remains. `partial` writes only the valid rows.

Never commits: the caller's unit of work does, so an exception anywhere leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Table, bindparam, exists, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from exchange.db.base import utcnow
from exchange.db.blind_index import BlindIndexVersions, blind_index_versions
from exchange.db.engine import bulk_write_pragmas
from exchange.db.ids import new_id
from exchange.db.models import Child, Community, MaternalEpisode, Resident, ResidentDataKey
from exchange.ledger.errors import HeaderError, LedgerError
from exchange.ledger.headers import HeaderMap, map_headers
from exchange.ledger.prepare import (
    CHILD_SEALED,
    CHUNK_SIZE,
    EPISODE_SEALED,
    INSERT_COLUMNS,
    RESIDENT_SEALED,
    Preparer,
    Ready,
    Sealed,
    child_texts,
    default_workers,
    due_month,
    episode_texts,
    has_child,
    prepared_chunks,
    resident_texts,
    seal_values,
)
from exchange.ledger.reader import LedgerSource
from exchange.ledger.report import ImportReport
from exchange.ledger.validate import LedgerRow, RowError, Rules
from exchange.ledger.vocabulary import CHENGYANG_COMMUNITIES, DISTRICT, STREET
from keys.datakeys import DataKey, WrappedKey
from keys.fields import EncryptedValue
from keys.keyring import Keyring
from keys.pseudonyms import BlindIndexField

BATCH_SIZE = 500
Progress = Callable[[str, int], None]  # (phase "validate" | "write", rows advanced)
_PROGRESS_EVERY = 256

_RESIDENTS = cast(Table, Resident.__table__)
_KEYS = cast(Table, ResidentDataKey.__table__)
_EPISODES = cast(Table, MaternalEpisode.__table__)
_CHILDREN = cast(Table, Child.__table__)
_COMMUNITIES = cast(Table, Community.__table__)

_TABLES = {t.name: t for t in (_RESIDENTS, _KEYS, _EPISODES, _CHILDREN)}
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@dataclass(frozen=True, slots=True)
class _Options:
    partial: bool
    progress: Progress
    batch_size: int
    workers: int
    chunk_size: int


def _no_progress(_phase: str, _n: int) -> None:
    return None


def known_communities(session: Session) -> dict[str, str]:
    return {r.name: r.id for r in session.execute(select(Community.name, Community.id))}


def ensure_communities(session: Session, names: Iterable[str] = CHENGYANG_COMMUNITIES) -> int:
    """Register the street office's communities that are missing; returns how many were added."""
    present = known_communities(session)
    missing = [n for n in names if n not in present]
    if missing:
        session.execute(
            _COMMUNITIES.insert(),
            [{"id": new_id(), "name": n, "district": DISTRICT, "street": STREET,
              "created_at": utcnow()} for n in missing],
        )  # fmt: skip
    return len(missing)


def read_header(source: LedgerSource) -> HeaderMap:
    _, cells = source.header()
    mapped = map_headers(cells)
    if isinstance(mapped, tuple):
        raise HeaderError(f"{source.description}: " + "; ".join(mapped))
    return mapped


def import_ledger(
    session: Session,
    keyring: Keyring,
    source: LedgerSource,
    *,
    today: date,
    partial: bool = False,
    allowed_communities: frozenset[str] | None = None,
    progress: Progress = _no_progress,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    insert_only: bool = False,
) -> ImportReport:
    """Import a ledger. Raises LedgerFileError for a file that cannot be read at all; row
    problems are in the returned report. All-or-nothing unless `partial`.

    A row whose ID number is already registered updates that resident only if she lives in
    one of `allowed_communities` (an import never moves or overwrites a resident outside the
    importer's scope, issue 14) and `insert_only` is not set (a registration); otherwise the
    row is refused as `already_registered`, the same whichever community holds her. The
    lookup happens only for a row valid in every field and in scope.

    A file longer than `chunk_size` rows is validated and encrypted by `workers` forked
    processes (default: one per core, up to two; 0 keeps everything in this process) while
    this one reads and writes; the outcome is the same either way."""
    headers = read_header(source)
    community_ids = known_communities(session)
    if not community_ids:
        raise LedgerError("no communities are registered; initialise the office first")
    rules = Rules(today, frozenset(community_ids), allowed_communities)
    report = ImportReport(source=source.description, partial=partial)
    report.refused_columns = headers.refused

    # before the savepoint: held to the end of the caller's transaction, so a blind-index
    # rotation can neither start nor finish while this import writes
    versions = blind_index_versions(session)
    savepoint = None if partial else session.begin_nested()
    inserts = _Inserts(session.connection())
    preparer = Preparer(headers, rules, keyring, community_ids, inserts.stamp, inserts.raw,
                        versions.write)  # fmt: skip
    allowed_ids = None if allowed_communities is None else frozenset(
        community_ids[n] for n in allowed_communities if n in community_ids)
    writer = _Writer(session, keyring, community_ids, inserts, report, versions,
                     _Refusal(allowed_ids, insert_only))  # fmt: skip
    options = _Options(partial, progress, batch_size,
                       default_workers() if workers is None else workers, chunk_size)  # fmt: skip
    with bulk_write_pragmas(session.connection()):
        _import_rows(source, preparer, writer, report, options)
    if report.rows_valid == 0 or (report.invalid_rows and not partial):
        if savepoint is not None:
            savepoint.rollback()  # all-or-nothing: whatever was written before the bad row
        report.inserted = report.updated = 0
        return report
    if savepoint is not None:
        savepoint.commit()  # releases the savepoint; the caller's transaction still decides
    report.applied = True
    return report


def _import_rows(
    source: LedgerSource,
    preparer: Preparer,
    writer: _Writer,
    report: ImportReport,
    options: _Options,
) -> None:
    """The single pass: each row validated once (in file order, here or in workers); valid
    rows written in batches while the import can still apply (always with `partial`; until
    the first invalid row otherwise)."""
    partial, progress = options.partial, options.progress
    seen: set[int] = set()  # 64-bit prefixes of keyed blind indexes: never the ID itself
    batch: list[Ready] = []

    def applies() -> bool:
        return partial or not report.invalid_rows

    chunks = prepared_chunks(preparer, source.rows(), encrypt=applies, keep_rows=writer.lookup,
                             workers=options.workers, chunk_size=options.chunk_size)  # fmt: skip
    with closing(chunks):  # stops the workers at once if anything below raises
        for outcomes in chunks:
            for outcome in outcomes:
                report.rows_read += 1
                if isinstance(outcome, list):
                    report.add_errors(outcome)
                elif outcome[2] in seen:  # its fingerprint
                    report.add_errors([RowError(outcome[0], "resident.national_id",
                                                "duplicate_in_file", "身份证号")])  # fmt: skip
                else:
                    seen.add(outcome[2])
                    report.rows_valid += 1
                    if applies():
                        batch.append(outcome)
                if not applies():
                    batch.clear()  # nothing will be applied: stop encrypting and writing
                elif len(batch) >= options.batch_size:
                    writer.write(batch)
                    progress("write", len(batch))
                    batch = []
                if report.rows_read % _PROGRESS_EVERY == 0:
                    progress("validate", _PROGRESS_EVERY)
    progress("validate", report.rows_read % _PROGRESS_EVERY)
    if batch:
        writer.write(batch)
        progress("write", len(batch))


@dataclass
class _Existing:
    resident_id: str
    wrapped: bytes
    community_id: str = ""
    episode_id: str | None = None
    episode_stage: str | None = None
    episode_created: datetime | None = None
    child_id: str | None = None
    child_created: datetime | None = None

    def new_pregnancy(self, stage: str) -> bool:
        """A ledger row that is preparing or pregnant again after the latest episode ended in a
        delivery starts a new episode: the earlier one (and its child) is history, kept."""
        return self.episode_stage == "postpartum" and stage in _BEFORE_DELIVERY

    def child_of_earlier_episode(self) -> bool:
        """The latest child was recorded before the latest episode began, so a delivery in
        this episode is another child (a pregnant row that still names the earlier child
        keeps updating that one)."""
        if self.child_created is None or self.episode_created is None:
            return False
        return self.child_created < self.episode_created


_BEFORE_DELIVERY = frozenset({"preparing", "pregnant"})


def _existing(session: Session, indexes: Sequence[str]) -> dict[str, _Existing]:
    found: dict[str, _Existing] = {}
    for index, rid, wrapped, community_id in session.execute(
        select(Resident.national_id_index, Resident.id, ResidentDataKey.wrapped_key,
               Resident.community_id)
        .join(ResidentDataKey, ResidentDataKey.resident_id == Resident.id)
        .where(Resident.national_id_index.in_(indexes))
    ):  # fmt: skip
        if index is not None:
            found[index] = _Existing(rid, bytes(wrapped), community_id)
    if not found:
        return found
    by_resident = {e.resident_id: e for e in found.values()}
    # the latest episode / child per resident is the one the ledger row describes
    for rid, eid, stage, created in session.execute(
        select(MaternalEpisode.resident_id, MaternalEpisode.id, MaternalEpisode.stage,
               MaternalEpisode.created_at)
        .where(MaternalEpisode.resident_id.in_(by_resident))
        .order_by(MaternalEpisode.created_at, MaternalEpisode.id)
    ):  # fmt: skip
        match = by_resident[rid]
        match.episode_id, match.episode_stage, match.episode_created = eid, stage, created
    for rid, cid, created in session.execute(
        select(Child.resident_id, Child.id, Child.created_at)
        .where(Child.resident_id.in_(by_resident))
        .order_by(Child.created_at, Child.id)
    ):
        by_resident[rid].child_id, by_resident[rid].child_created = cid, created
    return found


class _Inserts:
    """Multi-row inserts of new residents: PostgreSQL's COPY through psycopg, else the
    driver's executemany.

    The rows carry values already in their stored form, so SQLAlchemy's per-value processing
    is skipped: encrypted columns hold `EncryptedValue.to_bytes()` of values `keys` has just
    produced (the invariant `EncryptedField` enforces for everything else), timestamps hold
    the column type's own bind processing of the chunk's `now`, computed once. A driver whose
    parameter style this does not handle gets Core executemany with the typed values instead.
    On PostgreSQL a batch is one COPY per table (about twice the rows per second of pipelined
    INSERTs): the same values, sent by psycopg's own adapters, in the caller's transaction and
    savepoint, with every constraint and trigger checked as for an INSERT.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        dialect = connection.dialect
        placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
        quote = dialect.identifier_preparer.quote
        self._sql: dict[str, str] | None = None
        if placeholder is not None:
            # only our own table and column names (quoted) and placeholders: no value is ever
            # formatted into the SQL
            self._sql = {
                table: "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
                    quote(table),
                    ", ".join(map(quote, columns)),
                    ", ".join([placeholder] * len(columns)),
                )
                for table, columns in INSERT_COLUMNS.items()
            }
        self._copy: dict[str, str] | None = None
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            self._copy = {
                table: f"COPY {quote(table)} ({', '.join(map(quote, columns))}) FROM STDIN"
                for table, columns in INSERT_COLUMNS.items()
            }
        self.raw = self._sql is not None
        # `now` as the timestamp columns store it (these all share the `UTCDateTime` type)
        self.stamp: Callable[[datetime], Any] = _stored_stamp(dialect) if self.raw else _same

    def run(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._copy is not None:
            self._copy_rows(self._copy[table], rows)
            return
        if self._sql is not None:
            self._connection.exec_driver_sql(self._sql[table], rows)
            return
        columns = INSERT_COLUMNS[table]
        params = [dict(zip(columns, row, strict=True)) for row in rows]
        self._connection.execute(_TABLES[table].insert(), params)

    def _copy_rows(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        dbapi = self._connection.dialect.loaded_dbapi
        cursor = self._connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except dbapi.Error as exc:
            # as SQLAlchemy raises for its own statements (IntegrityError, OperationalError
            # ...), so callers and the API's handlers see one kind of database error; without
            # the rows (ciphertexts, blind indexes, ids: nothing an error message needs)
            raise DBAPIError.instance(sql, None, exc, dbapi.Error, hide_parameters=True) from exc
        finally:
            cursor.close()


def _stored_stamp(dialect: Dialect) -> Callable[[datetime], Any]:
    """The column type's bind processing, then (sqlite3) the driver's own adapter, which
    would otherwise run again for each of the ~4 timestamps of every row."""
    process = _RESIDENTS.c.created_at.type.bind_processor(dialect) or _same
    dbapi = dialect.dbapi
    adapters = getattr(dbapi, "adapters", None) if dialect.driver == "pysqlite" else None
    adapt = None
    if isinstance(adapters, dict):
        adapt = adapters.get((datetime, getattr(dbapi, "PrepareProtocol", None)))
    if adapt is None:
        return process

    def stamp(now: datetime) -> Any:
        value = process(now)
        return adapt(value) if isinstance(value, datetime) else value

    return stamp


def _same(value: datetime) -> datetime:
    return value


@dataclass(frozen=True, slots=True)
class _Refusal:
    """Which stored residents a row may not update: any (a registration), or those outside
    the importer's communities (None: the whole district)."""

    allowed_ids: frozenset[str] | None
    insert_only: bool

    def refuses(self, match: _Existing) -> bool:
        return self.insert_only or (
            self.allowed_ids is not None and match.community_id not in self.allowed_ids)


class _Writer:
    """Writes batches of prepared rows in the caller's transaction."""

    def __init__(
        self,
        session: Session,
        keyring: Keyring,
        community_ids: dict[str, str],
        inserts: _Inserts,
        report: ImportReport,
        versions: BlindIndexVersions,
        refusal: _Refusal = _Refusal(None, False),
    ) -> None:
        self._session = session
        self._refusal = refusal
        self._keyring = keyring
        self._community_ids = community_ids
        self._inserts = inserts
        self._report = report
        # versions other than the one new indexes are computed under (during a rotation)
        self._older = versions.lookup[1:]
        self._versions = versions
        # residents present before this import; when there were none, every row is new (an
        # in-file repeat is refused as duplicate_in_file) and no batch needs a lookup
        self.lookup = bool(session.scalar(select(exists().select_from(_RESIDENTS))))

    def write(self, batch: list[Ready]) -> None:
        indexes = [index for _, index, _, _, _ in batch]
        existing = self._matches(indexes, batch) if self.lookup else {}
        refused = {i for i, match in existing.items() if self._refusal.refuses(match)}
        if refused:
            for number, index, _, _, _ in batch:
                if index in refused:
                    self._report.rows_valid -= 1
                    self._report.add_errors([RowError(number, "resident.national_id",
                                                      "already_registered", "身份证号")])
            batch = [ready for ready in batch if ready[1] not in refused]
            existing = {i: match for i, match in existing.items() if i not in refused}
        fresh = [sealed for _, index, _, sealed, _ in batch if index not in existing]
        if fresh:
            self._insert(cast(list[Sealed], fresh))  # rows that still apply are always sealed
        if existing:
            matches = [(row, existing[i]) for _, i, _, _, row in batch if i in existing]
            self._update(cast(list[tuple[LedgerRow, _Existing]], matches))  # rows were kept

    def _matches(self, indexes: list[str], batch: list[Ready]) -> dict[str, _Existing]:
        """Residents already stored, by the index this import computed for them. While a
        rotation runs, a resident it has not reached yet is found under the older version."""
        if not self._older:
            return _existing(self._session, indexes)
        blind_index = self._keyring.blind_index
        older = {blind_index(cast(LedgerRow, row).national_id.value, version): index
                 for _, index, _, _, row in batch for version in self._older}  # fmt: skip
        found = _existing(self._session, [*indexes, *older])
        return {older.get(index, index): match for index, match in found.items()}

    def _insert(self, batch: list[Sealed]) -> None:
        run = self._inserts.run
        # parents first: foreign keys are checked per statement
        run("residents", [resident for resident, _, _, _ in batch])
        run("resident_data_keys", [data_key for _, data_key, _, _ in batch])
        run("maternal_episodes", [episode for _, _, episode, _ in batch])
        run("children", [child for _, _, _, child in batch if child is not None])
        self._report.inserted += len(batch)

    def _update(self, matches: list[tuple[LedgerRow, _Existing]]) -> None:
        """Existing residents: re-encrypted under their own key, latest episode and child
        updated in place, or added: a new episode when the row is a new pregnancy after a
        delivery, a new child when a delivery in the latest episode names one and the latest
        child predates that episode. Through Core, so `EncryptedField` checks every value."""
        keyring, session = self._keyring, self._session
        community_ids = self._community_ids
        now = utcnow()
        upd_residents: list[dict[str, Any]] = []
        upd_episodes: list[dict[str, Any]] = []
        upd_children: list[dict[str, Any]] = []
        new_episodes: list[dict[str, Any]] = []
        new_children: list[dict[str, Any]] = []
        versions = self._versions
        for row, match in matches:
            key = keyring.unwrap(WrappedKey.from_bytes(match.wrapped), match.resident_id)
            rid = match.resident_id
            # both blind indexes of the row under the version new indexes are written under
            # (the one version marker covers both; during a rotation the row moves with them)
            indexes = {"national_id_index": versions.index(keyring, row.national_id.value),
                       "phone_index": versions.index(keyring, row.phone, BlindIndexField.PHONE),
                       "national_id_index_version": versions.write}  # fmt: skip
            upd_residents.append({"b_id": rid, "community_id": community_ids[row.community],
                                  "updated_at": now, **indexes, **_sealed_dict(
                                      keyring, key, "residents", rid, RESIDENT_SEALED,
                                      resident_texts(row))})  # fmt: skip
            new_episode = match.episode_id is None or match.new_pregnancy(row.stage)
            eid = new_id() if new_episode else cast(str, match.episode_id)
            episode = _sealed_dict(keyring, key, "maternal_episodes", eid, EPISODE_SEALED,
                                   episode_texts(row))  # fmt: skip
            if new_episode:
                new_episodes.append({"id": eid, "resident_id": rid, "stage": row.stage,
                                     "due_month": due_month(row), "created_at": now,
                                     "updated_at": now, **episode})  # fmt: skip
            else:
                upd_episodes.append({"b_id": eid, "stage": row.stage, "updated_at": now,
                                     "due_month": due_month(row), **episode})  # fmt: skip
            if has_child(row):
                new_child = match.child_id is None or (
                    row.stage == "postpartum" and match.child_of_earlier_episode()
                )
                cid = new_id() if new_child else cast(str, match.child_id)
                child = _sealed_dict(keyring, key, "children", cid, CHILD_SEALED,
                                     child_texts(row))  # fmt: skip
                if new_child:
                    new_children.append({"id": cid, "resident_id": rid, "created_at": now,
                                         **child})  # fmt: skip
                else:
                    upd_children.append({"b_id": cid, **child})
        for table, params in ((_EPISODES, new_episodes), (_CHILDREN, new_children)):
            if params:
                session.execute(table.insert(), params)
        for table, params in ((_RESIDENTS, upd_residents), (_EPISODES, upd_episodes),
                              (_CHILDREN, upd_children)):  # fmt: skip
            if params:
                statement = update(table).where(table.c.id == bindparam("b_id"))
                session.execute(statement, params)
        self._report.updated += len(matches)


def _sealed_dict(
    keyring: Keyring,
    key: DataKey,
    table: str,
    row_id: str,
    columns: tuple[str, ...],
    texts: tuple[str | None, ...],
) -> dict[str, EncryptedValue | None]:
    return dict(zip(columns, seal_values(keyring, key, table, row_id, columns, texts), strict=True))
