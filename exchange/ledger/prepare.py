"""Raw ledger rows -> rows ready to insert, in this process or in forked worker processes.

Validating, blind indexing (ID number and phone), making and wrapping a data key and encrypting
the fields are pure CPU work on one row at a time, about as much as reading the file and
inserting. So for a file larger than one chunk, chunks of raw rows are prepared by worker
processes while this process reads the file and writes: on two cores the halves overlap.
Outcomes come back one per row in file order, so the importer sees exactly what a single
process would have produced.

Workers are forked: the keyring is inherited in memory and never serialised or sent over a
pipe. They only compute: no database connection, file or progress display is touched in them,
and at most `IN_FLIGHT` chunks are outstanding, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from itertools import islice
from operator import attrgetter
from typing import Any, cast

from exchange.db import storage
from exchange.db.base import utcnow
from exchange.db.ids import new_ids
from exchange.ledger.headers import HeaderMap
from exchange.ledger.reader import RawRow
from exchange.ledger.validate import LedgerRow, RowError, Rules, validate_row
from exchange.ledger.vocabulary import DISTRICT, STREET
from keys.datakeys import DataKey
from keys.fields import EncryptedValue
from keys.keyring import Keyring
from keys.pseudonyms import BlindIndexField

CHUNK_SIZE = 500
IN_FLIGHT = 4  # chunks submitted and not yet consumed: enough to keep two workers busy

# Encrypted columns, in the order of the plaintexts the `*_texts` functions build.
RESIDENT_SEALED = ("name", "national_id", "phone", "birth_date", "address_compound",
                   "address_building", "address_unit", "address_room")  # fmt: skip
EPISODE_SEALED = ("due_date", "delivery_date", "parity", "risk_flags")
CHILD_SEALED = ("birth_date", "sex")

# Every column an insert writes, in the order of the row tuples `Preparer` builds.
INSERT_COLUMNS: dict[str, tuple[str, ...]] = {
    "residents": ("id", "community_id", "district", "street", "national_id_index",
                  "national_id_index_version", "phone_index", "created_at", "updated_at",
                  *RESIDENT_SEALED),
    "resident_data_keys": ("resident_id", "wrapped_key", "kek_id", "kek_version", "created_at"),
    "maternal_episodes": ("id", "resident_id", "stage", "due_month", "created_at",
                          "updated_at", *EPISODE_SEALED),
    "children": ("id", "resident_id", "created_at", *CHILD_SEALED),
}  # fmt: skip

Insert = tuple[Any, ...]  # one row of an insert, values in their stored form


# Plain tuples, not NamedTuples: they cross a pipe per row, and a NamedTuple costs about three
# times as much to pickle and unpickle.
# A new resident's rows for residents, resident_data_keys, maternal_episodes and children
# (None: the ledger names no child).
Sealed = tuple[Insert, Insert, Insert, Insert | None]
# A valid row: (row number, keyed blind index of the ID number, 64-bit fingerprint of that
# index for in-file duplicate detection, its inserts, the row itself). The inserts are None
# when nothing will be written (an all-or-nothing import that already met an invalid row);
# the row only when the importer asked to keep it (to update an existing resident).
Ready = tuple[int, str, int, Sealed | None, LedgerRow | None]
Outcome = Ready | list[RowError]


def fingerprint(blind_index: str) -> int:
    # 64 bits of the (already keyed) blind index, whatever its text encoding: an int is the
    # smallest thing a Python set holds; a collision could only refuse a row, never merge two.
    return int.from_bytes(hashlib.blake2b(blind_index.encode(), digest_size=8).digest(), "big")


def _date(value: date | None) -> str | None:
    return None if value is None else storage.encode_date(value)


def resident_texts(row: LedgerRow) -> tuple[str | None, ...]:
    return (row.name, row.national_id.value, row.phone, storage.encode_date(row.birth_date),
            row.compound, row.building, row.unit, row.room)  # fmt: skip


def due_month(row: LedgerRow) -> str | None:
    """The due date's month, the one episode value stored in the clear (for statistics)."""
    return None if row.due_date is None else row.due_date.strftime("%Y-%m")


def episode_texts(row: LedgerRow) -> tuple[str | None, ...]:
    return (
        _date(row.due_date),
        _date(row.delivery_date),
        None if row.parity is None else storage.encode_int(row.parity),
        storage.encode_flags(row.risk_flags) if row.risk_flags else None,
    )


def child_texts(row: LedgerRow) -> tuple[str | None, ...]:
    return (_date(row.child_birth_date), row.child_sex)


def has_child(row: LedgerRow) -> bool:
    return row.child_birth_date is not None or row.child_sex is not None


def seal_values(
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


@dataclass(frozen=True, slots=True)
class Preparer:
    """Everything a row is prepared with. `stamp` turns a timestamp into its stored form;
    with `raw_values` encrypted columns are given as their bytes (the driver's executemany
    path), otherwise as `EncryptedValue`s for Core to check and convert. `index_version` is the
    blind-index key version new indexes are computed under (exchange.db.blind_index)."""

    headers: HeaderMap
    rules: Rules
    keyring: Keyring
    community_ids: dict[str, str]
    stamp: Callable[[datetime], Any]
    raw_values: bool
    index_version: int

    def prepare(self, raws: list[RawRow], encrypt: bool, keep_rows: bool) -> list[Outcome]:
        """One outcome per raw row, in order: its errors, or the row ready to insert.

        Stage by stage over the chunk (validate every row, then blind-index, then keys, then
        each table's encryption), not row by row: each stage's code and the OpenSSL state it
        uses stay in the CPU's caches, about 20% less CPU per row than interleaving them."""
        headers, rules = self.headers, self.rules
        results = [validate_row(raw, headers, rules) for raw in raws]
        valid = [r for r in results if type(r) is LedgerRow]
        blind_index, version = self.keyring.blind_index, self.index_version
        indexes = [blind_index(row.national_id.value, version) for row in valid]
        sealed: list[Sealed] | list[None]
        sealed = _Sealer(self).seal(valid, indexes) if encrypt and valid else [None] * len(valid)
        ready = iter(zip(valid, indexes, sealed, strict=True))
        outcomes: list[Outcome] = []
        for raw, result in zip(raws, results, strict=True):
            if type(result) is not LedgerRow:
                outcomes.append(cast(list[RowError], result))
                continue
            row, index, inserts = next(ready)
            outcomes.append((raw.number, index, fingerprint(index), inserts,
                             row if keep_rows else None))  # fmt: skip
        return outcomes


class _Sealer:
    """Makes the four inserts of new residents: one data key each, one root key and one
    timestamp per chunk (as a batch of the single-process import had)."""

    def __init__(self, preparer: Preparer) -> None:
        self._keyring = preparer.keyring
        self._community_ids = preparer.community_ids
        self._raw_values = preparer.raw_values
        self._index_version = preparer.index_version
        self._root = self._keyring.current_root()
        self._stamp = preparer.stamp(utcnow())

    def _encrypt(self) -> Callable[[DataKey, str, str, tuple[str, ...], tuple[str | None, ...]],
                                   list[Any]]:  # fmt: skip
        if self._raw_values:
            return self._keyring.encrypt_row_bytes
        keyring = self._keyring
        return lambda key, table, row_id, columns, texts: seal_values(
            keyring, key, table, row_id, columns, texts
        )

    def seal(self, rows: list[LedgerRow], indexes: list[str]) -> list[Sealed]:
        keyring, root, stamp, encrypt = self._keyring, self._root, self._stamp, self._encrypt()
        ids = new_ids(3 * len(rows))
        rids, eids, cids = ids[0::3], ids[1::3], ids[2::3]
        suite, wrap, community_ids = keyring.suite, keyring.wrap_bytes, self._community_ids
        keys = [DataKey.generate(suite) for _ in rows]
        data_keys = [
            (rid, wrap(key, rid, root), root.key_id, root.version, stamp)
            for rid, key in zip(rids, keys, strict=True)
        ]
        residents = []
        version = self._index_version
        phone_index = partial(keyring.blind_index, version=version, field=BlindIndexField.PHONE)
        for rid, key, row, index in zip(rids, keys, rows, indexes, strict=True):
            sealed = encrypt(key, "residents", rid, RESIDENT_SEALED, resident_texts(row))
            community = community_ids[row.community]
            residents.append((rid, community, DISTRICT, STREET, index, version,
                              phone_index(row.phone), stamp, stamp, *sealed))  # fmt: skip
        episodes = []
        for eid, rid, key, row in zip(eids, rids, keys, rows, strict=True):
            sealed = encrypt(key, "maternal_episodes", eid, EPISODE_SEALED, episode_texts(row))
            episodes.append((eid, rid, row.stage, due_month(row), stamp, stamp, *sealed))
        children: list[Insert | None] = []
        for cid, rid, key, row in zip(cids, rids, keys, rows, strict=True):
            if has_child(row):
                sealed = encrypt(key, "children", cid, CHILD_SEALED, child_texts(row))
                children.append((cid, rid, stamp, *sealed))
            else:
                children.append(None)
        return list(zip(residents, data_keys, episodes, children, strict=True))


def default_workers() -> int:
    """Worker processes for a large import: none on one core (nothing to overlap)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if cores < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return min(cores, 2)


def prepared_chunks(
    preparer: Preparer,
    rows: Iterator[RawRow],
    *,
    encrypt: Callable[[], bool],
    keep_rows: bool,
    workers: int,
    chunk_size: int = CHUNK_SIZE,
) -> Generator[list[Outcome], None, None]:
    """The outcomes of `rows`, chunk by chunk, in order. `encrypt` is asked as each chunk is
    handed out (an all-or-nothing import stops encrypting once a row was invalid). The first
    chunk is always prepared here: a small file (a registration) never starts a process."""
    first = list(islice(rows, chunk_size))
    yield preparer.prepare(first, encrypt(), keep_rows)
    if len(first) < chunk_size:
        return
    chunks = iter(lambda: list(islice(rows, chunk_size)), [])
    if workers < 1:
        for chunk in chunks:
            yield preparer.prepare(chunk, encrypt(), keep_rows)
        return
    yield from _in_workers(preparer, chunks, encrypt, keep_rows, workers)


_adopted: Preparer | None = None  # set in each worker process only


def _adopt(preparer: Preparer) -> None:
    global _adopted
    _adopted = preparer
    # what the worker inherited lives as long as it does: keep the collector from walking
    # (and so copying on write) the parent's objects again and again
    gc.freeze()


# A chunk of raw rows on its way to a worker: the row numbers, every cell joined into one
# string (unit separator between cells, record separator between rows) and the `numeric` sets
# that are not empty by position in the chunk. One string pickles and unpickles several times
# faster than a tuple of strings per row. A chunk whose cells hold a separator themselves
# (they never do in a ledger; the check is exact) goes as one plain tuple per row instead.
_CELL, _ROW = "\x1f", "\x1e"
_Packed = tuple[list[int], str, dict[int, frozenset[int]]]
_Chunk = _Packed | list[tuple[int, tuple[str, ...], frozenset[int]]]


def pack_chunk(chunk: list[RawRow]) -> _Chunk:
    text = _ROW.join([_CELL.join(r.cells) for r in chunk])
    cells = sum([len(r.cells) for r in chunk])
    if text.count(_CELL) != cells - len(chunk) or text.count(_ROW) != len(chunk) - 1:
        return [(r.number, r.cells, r.numeric) for r in chunk]
    # only a workbook's rows have numeric cells: a CSV chunk skips the per-row look
    numeric = (
        {i: r.numeric for i, r in enumerate(chunk) if r.numeric} if _any_numeric(chunk) else {}
    )
    return [r.number for r in chunk], text, numeric


def _any_numeric(chunk: list[RawRow]) -> bool:
    return any(map(bool, map(_numeric_of, chunk)))


_numeric_of = attrgetter("numeric")


def unpack_chunk(packed: _Chunk) -> list[RawRow]:
    if isinstance(packed, list):
        return [RawRow(*r) for r in packed]
    numbers, text, numeric = packed
    rows = [RawRow(n, tuple(line.split(_CELL)))
            for n, line in zip(numbers, text.split(_ROW), strict=True)]  # fmt: skip
    for i, indexes in numeric.items():
        rows[i] = RawRow(rows[i].number, rows[i].cells, indexes)
    return rows


def _prepare_adopted(packed: _Chunk, encrypt: bool, keep_rows: bool) -> list[Outcome]:
    assert _adopted is not None, "only called in a worker started by _in_workers"
    return _adopted.prepare(unpack_chunk(packed), encrypt, keep_rows)


def _in_workers(
    preparer: Preparer,
    chunks: Iterator[list[RawRow]],
    encrypt: Callable[[], bool],
    keep_rows: bool,
    workers: int,
) -> Iterator[list[Outcome]]:
    # fork: the preparer (and the keyring in it) reaches the workers as inherited memory;
    # the pool forks all its workers before starting any thread of its own
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_adopt,
        initargs=(preparer,),
    )
    pending: deque[Future[list[Outcome]]] = deque()
    try:
        for chunk in chunks:
            pending.append(pool.submit(_prepare_adopted, pack_chunk(chunk), encrypt(), keep_rows))
            if len(pending) >= IN_FLIGHT:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        # also when the importer stops early (an exception): nothing is left running
        pool.shutdown(wait=True, cancel_futures=True)
