"""The ledger import service: validate and write a whole file, in the caller's transaction.

One streaming pass, so memory does not depend on the file size except for one 64-bit keyed
hash per valid row (in-file duplicate detection; never the ID number itself). Each row is
validated once; valid rows are written in batches of `BATCH_SIZE`: matched on the resident
blind index, new residents inserted (a fresh data key each) and existing ones updated
(re-encrypted under their own key).

All-or-nothing (the default) runs inside a SAVEPOINT: the first invalid row stops the writing
(the rest is still validated, so the report lists every problem) and the savepoint is rolled
back, so nothing of the import remains. `partial` writes only the valid rows.

Never commits: the caller's unit of work does, so an exception anywhere leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, exists, select, update
from sqlalchemy.orm import Session

from exchange.db.base import new_id, utcnow
from exchange.db.models import Child, Community, MaternalEpisode, Resident, ResidentDataKey
from exchange.ledger import storage
from exchange.ledger.errors import HeaderError, LedgerError
from exchange.ledger.headers import HeaderMap, map_headers
from exchange.ledger.reader import LedgerSource
from exchange.ledger.report import ImportReport
from exchange.ledger.validate import LedgerRow, RowError, Rules, validate_row
from exchange.ledger.vocabulary import CHENGYANG_COMMUNITIES, DISTRICT, STREET
from keys.datakeys import DataKey, WrappedKey
from keys.fields import EncryptedValue
from keys.keyring import Keyring

BATCH_SIZE = 500
Progress = Callable[[str, int], None]  # (phase "validate" | "write", rows advanced)
_PROGRESS_EVERY = 256

_RESIDENTS = cast(Table, Resident.__table__)
_KEYS = cast(Table, ResidentDataKey.__table__)
_EPISODES = cast(Table, MaternalEpisode.__table__)
_CHILDREN = cast(Table, Child.__table__)
_COMMUNITIES = cast(Table, Community.__table__)

# Encrypted columns, in the order of the plaintexts `_texts` builds for each table.
_RESIDENT_SEALED = ("name", "national_id", "phone", "birth_date", "address_compound",
                    "address_building", "address_unit", "address_room")  # fmt: skip
_EPISODE_SEALED = ("due_date", "delivery_date", "parity", "risk_flags")
_CHILD_SEALED = ("birth_date", "sex")

# Every column an insert writes, in the order of the row tuples `_write_batch` builds.
_INSERT_COLUMNS: dict[str, tuple[str, ...]] = {
    "residents": ("id", "community_id", "district", "street", "national_id_index", "created_at",
                  "updated_at", *_RESIDENT_SEALED),
    "resident_data_keys": ("resident_id", "wrapped_key", "kek_id", "kek_version", "created_at"),
    "maternal_episodes": ("id", "resident_id", "stage", "created_at", "updated_at",
                          *_EPISODE_SEALED),
    "children": ("id", "resident_id", "created_at", *_CHILD_SEALED),
}  # fmt: skip
_TABLES = {t.name: t for t in (_RESIDENTS, _KEYS, _EPISODES, _CHILDREN)}
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@dataclass(frozen=True, slots=True)
class _Scope:
    community_ids: dict[str, str]
    rules: Rules


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
) -> ImportReport:
    """Import a ledger. Raises LedgerFileError for a file that cannot be read at all; row
    problems are in the returned report. All-or-nothing unless `partial`."""
    headers = read_header(source)
    community_ids = known_communities(session)
    if not community_ids:
        raise LedgerError("no communities are registered; initialise the office first")
    rules = Rules(today, frozenset(community_ids), allowed_communities)
    report = ImportReport(source=source.description, partial=partial)
    report.refused_columns = headers.refused

    savepoint = None if partial else session.begin_nested()
    writer = _Writer(session, keyring, _Scope(community_ids, rules), report)
    _import_rows(source, headers, rules, keyring, writer, report, partial, progress, batch_size)
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
    headers: HeaderMap,
    rules: Rules,
    keyring: Keyring,
    writer: _Writer,
    report: ImportReport,
    partial: bool,
    progress: Progress,
    batch_size: int,
) -> None:
    """The single pass: validate each row once; write valid rows in batches while the import
    can still apply (always with `partial`; until the first invalid row otherwise)."""
    seen: set[int] = set()  # 64-bit prefixes of keyed blind indexes: never the ID itself
    batch: list[tuple[LedgerRow, str]] = []
    for raw in source.rows():
        report.rows_read += 1
        result = validate_row(raw, headers, rules)
        if isinstance(result, LedgerRow):
            index = keyring.blind_index(result.national_id.value)
            fingerprint = _fingerprint(index)
            if fingerprint in seen:
                report.add_errors([RowError(raw.number, "resident.national_id",
                                            "duplicate_in_file", "身份证号")])  # fmt: skip
            else:
                seen.add(fingerprint)
                report.rows_valid += 1
                if partial or not report.invalid_rows:
                    batch.append((result, index))
        else:
            report.add_errors(result)
        if not partial and report.invalid_rows:
            batch.clear()  # nothing will be applied: stop encrypting and writing
        elif len(batch) >= batch_size:
            writer.write(batch)
            progress("write", len(batch))
            batch = []
        if report.rows_read % _PROGRESS_EVERY == 0:
            progress("validate", _PROGRESS_EVERY)
    progress("validate", report.rows_read % _PROGRESS_EVERY)
    if batch:
        writer.write(batch)
        progress("write", len(batch))


def _fingerprint(blind_index: str) -> int:
    # 64 bits of the (already keyed) blind index, whatever its text encoding: an int is the
    # smallest thing a Python set holds; a collision could only refuse a row, never merge two.
    return int.from_bytes(hashlib.blake2b(blind_index.encode(), digest_size=8).digest(), "big")


def _new_ids(count: int) -> list[str]:
    """`count` random (version 4) UUIDs as text, as `exchange.db.base.new_id` makes them;
    one urandom call for the batch instead of a `uuid.UUID` object per id."""
    raw = bytearray(os.urandom(16 * count))
    out = []
    for start in range(0, 16 * count, 16):
        raw[start + 6] = raw[start + 6] & 0x0F | 0x40  # version 4
        raw[start + 8] = raw[start + 8] & 0x3F | 0x80  # RFC 4122 variant
        h = raw[start : start + 16].hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def _date(value: date | None) -> str | None:
    return None if value is None else storage.encode_date(value)


def _resident_texts(row: LedgerRow) -> tuple[str | None, ...]:
    return (row.name, row.national_id.value, row.phone, storage.encode_date(row.birth_date),
            row.compound, row.building, row.unit, row.room)  # fmt: skip


def _episode_texts(row: LedgerRow) -> tuple[str | None, ...]:
    return (
        _date(row.due_date),
        _date(row.delivery_date),
        None if row.parity is None else storage.encode_int(row.parity),
        storage.encode_flags(row.risk_flags) if row.risk_flags else None,
    )


def _child_texts(row: LedgerRow) -> tuple[str | None, ...]:
    return (_date(row.child_birth_date), row.child_sex)


def _has_child(row: LedgerRow) -> bool:
    return row.child_birth_date is not None or row.child_sex is not None


def _sealed(
    keyring: Keyring,
    key: DataKey,
    table: str,
    row_id: str,
    columns: tuple[str, ...],
    texts: tuple[str | None, ...],
) -> list[EncryptedValue | None]:
    """The encrypted values of `columns` (None where there is no text), straight from keys."""
    present = {c: t for c, t in zip(columns, texts, strict=True) if t is not None}
    sealed = keyring.encrypt_row(key, table, row_id, present)
    return [sealed.get(c) for c in columns]


@dataclass
class _Existing:
    resident_id: str
    wrapped: bytes
    episode_id: str | None = None
    child_id: str | None = None


def _existing(session: Session, indexes: Sequence[str]) -> dict[str, _Existing]:
    found: dict[str, _Existing] = {}
    for index, rid, wrapped in session.execute(
        select(Resident.national_id_index, Resident.id, ResidentDataKey.wrapped_key)
        .join(ResidentDataKey, ResidentDataKey.resident_id == Resident.id)
        .where(Resident.national_id_index.in_(indexes))
    ):
        if index is not None:
            found[index] = _Existing(rid, bytes(wrapped))
    if not found:
        return found
    by_resident = {e.resident_id: e for e in found.values()}
    # the latest episode / child per resident is the one the ledger row describes
    for rid, eid in session.execute(
        select(MaternalEpisode.resident_id, MaternalEpisode.id)
        .where(MaternalEpisode.resident_id.in_(by_resident))
        .order_by(MaternalEpisode.created_at, MaternalEpisode.id)
    ):
        by_resident[rid].episode_id = eid
    for rid, cid in session.execute(
        select(Child.resident_id, Child.id)
        .where(Child.resident_id.in_(by_resident))
        .order_by(Child.created_at, Child.id)
    ):
        by_resident[rid].child_id = cid
    return found


class _Inserts:
    """Multi-row inserts of new residents, through the driver's executemany.

    The rows carry values already in their stored form, so SQLAlchemy's per-value processing
    is skipped: encrypted columns hold `EncryptedValue.to_bytes()` of values `keys` has just
    produced (the invariant `EncryptedField` enforces for everything else), timestamps hold
    the column type's own bind processing of the batch's `now`, computed once. A driver whose
    parameter style this does not handle gets Core executemany with the typed values instead.
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
                for table, columns in _INSERT_COLUMNS.items()
            }
        stamp = _RESIDENTS.c.created_at.type.bind_processor(dialect)
        self._stamp: Callable[[datetime], Any] = stamp if stamp is not None else _same

    def stamp(self, now: datetime) -> Any:
        """`now` as the timestamp columns store it (these all share the `UTCDateTime` type)."""
        return self._stamp(now) if self._sql is not None else now

    def sealed(self, value: EncryptedValue | None) -> Any:
        if self._sql is None or value is None:
            return value
        return value.to_bytes()

    def run(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._sql is not None:
            self._connection.exec_driver_sql(self._sql[table], rows)
            return
        columns = _INSERT_COLUMNS[table]
        params = [dict(zip(columns, row, strict=True)) for row in rows]
        self._connection.execute(_TABLES[table].insert(), params)


def _same(value: datetime) -> datetime:
    return value


class _Writer:
    """Writes batches of valid rows in the caller's transaction."""

    def __init__(self, session: Session, keyring: Keyring, scope: _Scope, report: ImportReport):
        self._session = session
        self._keyring = keyring
        self._scope = scope
        self._report = report
        self._inserts: _Inserts | None = None
        # residents present before this import; when there were none, every row is new (an
        # in-file repeat is refused as duplicate_in_file) and no batch needs a lookup
        self._lookup = bool(session.scalar(select(exists().select_from(_RESIDENTS))))

    def write(self, batch: list[tuple[LedgerRow, str]]) -> None:
        if self._inserts is None:
            self._inserts = _Inserts(self._session.connection())
        existing = _existing(self._session, [i for _, i in batch]) if self._lookup else {}
        fresh = [(row, index) for row, index in batch if index not in existing]
        if fresh:
            self._insert(self._inserts, fresh)
        if existing:
            self._update([(row, existing[index]) for row, index in batch if index in existing])

    def _insert(self, inserts: _Inserts, batch: list[tuple[LedgerRow, str]]) -> None:
        keyring, community_ids = self._keyring, self._scope.community_ids
        stamp = inserts.stamp(utcnow())
        sealed = inserts.sealed
        root = keyring.current_root()  # one root key for the batch, as new_data_key would use
        ids = iter(_new_ids(3 * len(batch)))
        residents: list[tuple[Any, ...]] = []
        keys: list[tuple[Any, ...]] = []
        episodes: list[tuple[Any, ...]] = []
        children: list[tuple[Any, ...]] = []
        for row, index in batch:
            rid, eid, cid = next(ids), next(ids), next(ids)
            key = DataKey.generate(keyring.suite)
            wrapped = keyring.wrap(key, root)
            resident = _sealed(keyring, key, "residents", rid, _RESIDENT_SEALED,
                               _resident_texts(row))  # fmt: skip
            residents.append((rid, community_ids[row.community], DISTRICT, STREET, index, stamp,
                              stamp, *map(sealed, resident)))  # fmt: skip
            keys.append((rid, wrapped.to_bytes(), root.key_id, root.version, stamp))
            episode = _sealed(keyring, key, "maternal_episodes", eid, _EPISODE_SEALED,
                              _episode_texts(row))  # fmt: skip
            episodes.append((eid, rid, row.stage, stamp, stamp, *map(sealed, episode)))
            if _has_child(row):
                child = _sealed(keyring, key, "children", cid, _CHILD_SEALED, _child_texts(row))
                children.append((cid, rid, stamp, *map(sealed, child)))
        # parents first: foreign keys are checked per statement
        inserts.run("residents", residents)
        inserts.run("resident_data_keys", keys)
        inserts.run("maternal_episodes", episodes)
        inserts.run("children", children)
        self._report.inserted += len(batch)

    def _update(self, matches: list[tuple[LedgerRow, _Existing]]) -> None:
        """Existing residents: re-encrypted under their own key, latest episode and child
        updated in place (or added). Through Core, so `EncryptedField` checks every value."""
        keyring, session = self._keyring, self._session
        community_ids = self._scope.community_ids
        now = utcnow()
        upd_residents: list[dict[str, Any]] = []
        upd_episodes: list[dict[str, Any]] = []
        upd_children: list[dict[str, Any]] = []
        new_episodes: list[dict[str, Any]] = []
        new_children: list[dict[str, Any]] = []
        for row, match in matches:
            key = keyring.unwrap(WrappedKey.from_bytes(match.wrapped))
            rid = match.resident_id
            upd_residents.append({"b_id": rid, "community_id": community_ids[row.community],
                                  "updated_at": now, **_sealed_dict(
                                      keyring, key, "residents", rid, _RESIDENT_SEALED,
                                      _resident_texts(row))})  # fmt: skip
            eid = match.episode_id or new_id()
            episode = _sealed_dict(keyring, key, "maternal_episodes", eid, _EPISODE_SEALED,
                                   _episode_texts(row))  # fmt: skip
            if match.episode_id is None:
                new_episodes.append({"id": eid, "resident_id": rid, "stage": row.stage,
                                     "created_at": now, "updated_at": now, **episode})  # fmt: skip
            else:
                upd_episodes.append({"b_id": eid, "stage": row.stage, "updated_at": now,
                                     **episode})  # fmt: skip
            if _has_child(row):
                cid = match.child_id or new_id()
                child = _sealed_dict(keyring, key, "children", cid, _CHILD_SEALED,
                                     _child_texts(row))  # fmt: skip
                if match.child_id is None:
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
    return dict(zip(columns, _sealed(keyring, key, table, row_id, columns, texts), strict=True))
