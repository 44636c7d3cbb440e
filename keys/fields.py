"""Field encryption at rest: the EncryptedValue byte format and its cipher.

EncryptedValue byte format, version 1 (16-byte header, integers big-endian):

    "EV" | 0x01 | suite id (1) | data-key id (8) | data-key version (4) | nonce (12) | ct+tag

Associated data = the header followed by the framed (table, column, row id) (see
`FieldContext.associated_data`), so a ciphertext cannot be moved to another row or column, nor
relabelled with another key or suite. tests/keys/test_golden.py freezes this layout.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import structlog
from cryptography.exceptions import InvalidTag

from keys._codec import framed
from keys.datakeys import DATA_KEY_ID_LENGTH, DataKey
from keys.errors import DecryptionError, FormatError
from keys.suites import NONCE_LENGTH, TAG_LENGTH, Suite

FIELD_MAGIC = b"EV"
FIELD_FORMAT = 1
HEADER_LENGTH = 2 + 1 + 1 + DATA_KEY_ID_LENGTH + 4
_PREFIX = FIELD_MAGIC + bytes([FIELD_FORMAT])
_LABEL_START = len(_PREFIX)  # where DataKey.label (suite | key id | version) sits in a header
_BODY_START = HEADER_LENGTH + NONCE_LENGTH
_MIN_LENGTH = _BODY_START + TAG_LENGTH
_SUITE_IDS = frozenset(s.wire_id for s in Suite)
# magic | format | suite: the first 4 bytes of every value the cipher can produce
_HEADS = frozenset(_PREFIX + bytes([s.wire_id]) for s in Suite)
# Bytes order lexicographically, so for data of 4 bytes or more, _HEAD_LOW <= data < _HEAD_HIGH
# holds exactly when data[:4] is one of _HEADS: the suite ids are consecutive (checked here).
_HEAD_LOW, _HEAD_HIGH = _PREFIX + bytes([min(_SUITE_IDS)]), _PREFIX + bytes([max(_SUITE_IDS) + 1])
if len(_SUITE_IDS) != max(_SUITE_IDS) - min(_SUITE_IDS) + 1:
    raise RuntimeError("keys.fields: suite wire ids must be consecutive for the header check")
_DOMAIN = b"exchange/field/v1"
_PREFIX_CACHE: dict[str, dict[str, bytes]] = {}  # table -> column -> framed prefix
_PREFIX_CACHE_LIMIT = 4096
_NO_COLUMNS: dict[str, bytes] = {}  # never written: the default of a cache lookup
_KEY_PREFIX_LIMIT = 64  # (table, column) pairs cached per data key; names come from our schema

_log = structlog.get_logger("keys.fields")
_new = object.__new__


class FieldContext(NamedTuple):
    """Where a ciphertext lives; bound into its associated data. Immutable."""

    table: str
    column: str
    row_id: str

    def associated_data(self) -> bytes:
        """framed(domain, table, column, row id); the (table, column) part is cached."""
        return _column_prefix(self.table, self.column) + _row_part(self.row_id)


def _column_prefix(table: str, column: str) -> bytes:
    columns = _PREFIX_CACHE.get(table)
    if columns is None:
        columns = {}
        if len(_PREFIX_CACHE) < _PREFIX_CACHE_LIMIT:  # bounded: names come from our schema
            _PREFIX_CACHE[table] = columns
    prefix = columns.get(column)
    if prefix is None:
        prefix = framed(_DOMAIN, table, column)
        if len(columns) < _PREFIX_CACHE_LIMIT:
            columns[column] = prefix
    return prefix


def _key_prefixes(key: DataKey, table: str) -> dict[str, bytes]:
    """This key's (header ‖ framed table, column) per column of `table`, cached on the key.

    Keys the keyring caches are reused across reads, so the associated data of a field is then
    one concatenation (prefix ‖ row part). Bounded per key; past the bound it is not cached.
    """
    columns = key.aad_prefixes.get(table)
    if columns is None:
        columns = {}
        if sum(map(len, key.aad_prefixes.values())) < _KEY_PREFIX_LIMIT:
            key.aad_prefixes[table] = columns
    return columns


def _key_column_prefix(key: DataKey, columns: dict[str, bytes], table: str, column: str) -> bytes:
    prefix = _PREFIX + key.label + _column_prefix(table, column)
    if len(columns) < _KEY_PREFIX_LIMIT:
        columns[column] = prefix
    return prefix


def _row_part(row_id: str) -> bytes:
    row = row_id.encode("utf-8")
    return len(row).to_bytes(4, "big") + row


class EncryptedValue:
    """Ciphertext bytes produced by the field cipher. Valid once constructed; never shows data.

    Construction checks only what is cheap and sufficient to refuse anything the cipher did not
    produce (length, magic, format version, known suite); the rest of the header (key id and
    version) is read on demand, and is authenticated as associated data when decrypting.
    """

    __slots__ = ("_data",)
    _data: bytes

    def __init__(self, data: bytes) -> None:
        if type(data) is not bytes:
            raise FormatError("encrypted value must be bytes")
        if len(data) < _MIN_LENGTH or data[:4] not in _HEADS:
            raise FormatError(_why_not(data))
        _store(self, data)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> EncryptedValue:
        """Parse stored bytes; raises FormatError unless the field cipher produced them."""
        # The hot path of every read (the column type calls it per value): no __init__ call,
        # and two bytes comparisons check magic, format and suite (see _HEAD_LOW) without the
        # argument parsing of startswith or the slice of `data[:4] in _HEADS`.
        if type(data) is bytes and _HEAD_LOW <= data < _HEAD_HIGH and len(data) >= _MIN_LENGTH:
            value: EncryptedValue = _new(cls)
            _store(value, data)
            return value
        # buffers and bytes subclasses are copied to exact bytes; anything else is refused
        return cls(bytes(data) if isinstance(data, bytes | bytearray | memoryview) else data)

    def to_bytes(self) -> bytes:
        return self._data

    @property
    def data(self) -> bytes:
        return self._data

    @property
    def suite(self) -> Suite:
        return Suite.from_wire(self._data[3])

    @property
    def key_id(self) -> bytes:
        return self._data[4 : 4 + DATA_KEY_ID_LENGTH]

    @property
    def key_version(self) -> int:
        (version,) = _VERSION.unpack_from(self._data, 4 + DATA_KEY_ID_LENGTH)
        return int(version)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("EncryptedValue is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("EncryptedValue is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EncryptedValue) and other._data == self._data

    def __hash__(self) -> int:
        return hash((EncryptedValue, self._data))

    def __reduce__(self) -> tuple[object, ...]:
        return (EncryptedValue, (self._data,))

    def __repr__(self) -> str:
        return (
            f"EncryptedValue(suite={self.suite.value}, key={self.key_id.hex()}@{self.key_version},"
            f" {len(self._data)} bytes)"
        )

    __str__ = __repr__


# The slot's own setter: bypasses the refusing __setattr__ (construction only).
_store = EncryptedValue.__dict__["_data"].__set__
_VERSION = struct.Struct(">I")


def _why_not(data: bytes) -> str:
    if len(data) < _MIN_LENGTH or data[:2] != FIELD_MAGIC:
        return "not an encrypted field value"
    if data[2] != FIELD_FORMAT:
        return f"unsupported encrypted field format version {data[2]}"
    return f"unknown crypto suite id {data[3]}"


def header_for(key: DataKey) -> bytes:
    return _PREFIX + key.label


def encrypt(
    key: DataKey, plaintext: str, context: FieldContext, nonce: bytes | None = None
) -> EncryptedValue:
    """Encrypt one field. `nonce` exists for golden tests only; leave it None."""
    table, column, row_id = context
    if not isinstance(plaintext, str):
        raise FormatError(f"plaintext for {table}.{column} must be str")
    if nonce is None:
        nonce = os.urandom(NONCE_LENGTH)
    elif len(nonce) != NONCE_LENGTH:
        raise FormatError("nonce must be 12 bytes")
    # global (table, column) cache, not the per-key one: an import makes one key per resident
    header = _PREFIX + key.label
    prefix = _PREFIX_CACHE.get(table, _NO_COLUMNS).get(column) or _column_prefix(table, column)
    row = row_id.encode("utf-8")
    aad = header + prefix + len(row).to_bytes(4, "big") + row
    body = key.aead.encrypt(nonce, plaintext.encode("utf-8"), aad)
    value: EncryptedValue = _new(EncryptedValue)
    _store(value, header + nonce + body)
    return value


def encrypt_row(
    key: DataKey, table: str, row_id: str, values: Mapping[str, str]
) -> dict[str, EncryptedValue]:
    """Encrypt several columns of one row (an import): row framing and header computed once.

    Exactly what `encrypt` gives per column: same format, same associated data, fresh nonces.
    """
    columns, texts = tuple(values), tuple(values.values())
    if None in texts:  # a NULL is the caller's to leave out; `encrypt_row_bytes` allows it
        column = columns[texts.index(None)]
        raise FormatError(f"plaintext for {table}.{column} must be str")
    out: dict[str, EncryptedValue] = {}
    sealed = encrypt_row_bytes(key, table, row_id, columns, texts)
    for column, data in zip(columns, sealed, strict=True):
        value: EncryptedValue = _new(EncryptedValue)
        _store(value, data)
        out[column] = value
    return out


def encrypt_row_bytes(
    key: DataKey,
    table: str,
    row_id: str,
    columns: Sequence[str],
    plaintexts: Sequence[str | None],
) -> list[bytes | None]:
    """`encrypt_row` for a bulk insert: the stored bytes of each column, in `columns` order
    (None where the plaintext is None), without building an EncryptedValue per field.

    Exactly the bytes `EncryptedValue.to_bytes()` of `encrypt_row` gives: same header, same
    associated data, a fresh random nonce per value.
    """
    if len(columns) != len(plaintexts):
        raise ValueError("one plaintext per column")
    header = _PREFIX + key.label
    row = row_id.encode("utf-8")
    row_part = len(row).to_bytes(4, "big") + row
    prefixes = _PREFIX_CACHE.get(table, _NO_COLUMNS)
    encrypt_aead = key.aead.encrypt
    # every nonce of the row from one CSPRNG read (a system call each otherwise); still a
    # distinct random 96-bit nonce per value, and nothing is kept between calls (fork-safe).
    # NULL columns take a nonce they do not use.
    nonces = os.urandom(NONCE_LENGTH * len(columns))
    start = -NONCE_LENGTH
    out: list[bytes | None] = []
    append = out.append
    for column, plaintext in zip(columns, plaintexts):  # noqa: B905 (lengths checked)
        start += NONCE_LENGTH
        if plaintext is None:
            append(None)
            continue
        if type(plaintext) is not str:
            raise FormatError(f"plaintext for {table}.{column} must be str")
        prefix = prefixes.get(column) or _column_prefix(table, column)
        nonce = nonces[start : start + NONCE_LENGTH]
        aad = header + prefix + row_part
        append(header + nonce + encrypt_aead(nonce, plaintext.encode("utf-8"), aad))
    return out


def decrypt(key: DataKey, value: EncryptedValue, context: FieldContext) -> str:
    """Decrypt one field; any failure is the same opaque DecryptionError, logged without values."""
    table, column, row_id = context
    data = value._data
    # the value names exactly this key (suite, id, version), checked before any decryption;
    # magic and format were checked when the value was built
    if data[_LABEL_START:HEADER_LENGTH] == key.label:
        try:
            prefix = key.aad_prefixes[table][column]
        except KeyError:
            prefix = _key_column_prefix(key, _key_prefixes(key, table), table, column)
        row = row_id.encode("utf-8")
        try:
            return key.aead.decrypt(
                data[HEADER_LENGTH:_BODY_START],
                data[_BODY_START:],
                prefix + len(row).to_bytes(4, "big") + row,
            ).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            pass
    raise _failed(key, table, column)


def decrypt_row(
    key: DataKey, table: str, row_id: str, values: Mapping[str, EncryptedValue]
) -> dict[str, str]:
    """Decrypt several columns of one row; the row framing is computed once.

    A value whose header is not exactly this key's (format, suite, id, version) is refused
    before any decryption; the header is also authenticated as associated data.
    """
    # The per-record hot path of a pull: every statement in the loop runs once per field, so
    # a cache miss or a failure leaves the loop instead of being tested for inside it.
    row = row_id.encode("utf-8")
    row_part = len(row).to_bytes(4, "big") + row
    columns = key.aad_prefixes.get(table)
    if not columns:  # this key's first row of this table (a cold cache)
        return _decrypt_row_caching(key, table, row_part, values)
    label = key.label
    decrypt_aead = key.aead.decrypt
    out: dict[str, str] = {}
    column = ""
    try:
        for column, value in values.items():
            data = value._data
            if data[_LABEL_START:HEADER_LENGTH] != label:
                break
            out[column] = decrypt_aead(
                data[HEADER_LENGTH:_BODY_START], data[_BODY_START:], columns[column] + row_part
            ).decode()  # UTF-8, strict
        else:
            return out
    except KeyError:  # a column this key has not decrypted yet: take the caching path
        return _decrypt_row_caching(key, table, row_part, values)
    except (InvalidTag, UnicodeDecodeError):
        pass
    raise _failed(key, table, column)


def _decrypt_row_caching(
    key: DataKey, table: str, row_part: bytes, values: Mapping[str, EncryptedValue]
) -> dict[str, str]:
    """decrypt_row that fills this key's prefix cache as it goes (first use of a column)."""
    label = key.label
    columns = _key_prefixes(key, table)
    decrypt_aead = key.aead.decrypt
    out: dict[str, str] = {}
    for column, value in values.items():
        data = value._data
        if data[_LABEL_START:HEADER_LENGTH] == label:
            prefix = columns.get(column) or _key_column_prefix(key, columns, table, column)
            try:
                out[column] = decrypt_aead(
                    data[HEADER_LENGTH:_BODY_START], data[_BODY_START:], prefix + row_part
                ).decode()
                continue
            except (InvalidTag, UnicodeDecodeError):
                pass
        raise _failed(key, table, column)
    return out


def _failed(key: DataKey, table: str, column: str) -> DecryptionError:
    _log.warning(
        "field_decrypt_failed",
        table=table,
        column=column,
        key_id=key.id_hex,
        key_version=key.version,
    )
    return DecryptionError()


# -- decrypting straight from stored bytes -------------------------------------------------
_STORED_COLUMNS: dict[tuple[str, tuple[str, ...]], StoredColumns] = {}
_STORED_COLUMNS_LIMIT = 256  # (table, column set) pairs; names come from our schema
_KEY_PLAN_LIMIT = 16  # StoredColumns planned per data key
# a key's ciphertext header, its AEAD's decrypt, and (column, header ‖ framed table, column)
# in the order of a StoredColumns: everything decrypt_stored_row needs per key, kept in the
# key's `plans` under the StoredColumns
StoredPlan = tuple[bytes, Callable[[bytes, bytes, bytes], bytes], tuple[tuple[str, bytes], ...]]


class StoredColumns:
    """Which columns of a table a read decrypts, in order; get one with `stored_columns`.

    Compared by identity (a key caches its per-column associated data under it), so the same
    (table, columns) gives the same object while the module cache has room.
    """

    __slots__ = ("table", "columns", "prefixes")

    def __init__(self, table: str, columns: tuple[str, ...]) -> None:
        if len(set(columns)) != len(columns):
            raise ValueError("stored columns must be distinct")
        self.table = table
        self.columns = columns
        # framed (domain, table, column): without any key's header
        self.prefixes = tuple(_column_prefix(table, column) for column in columns)

    def __repr__(self) -> str:
        return f"StoredColumns({self.table!r}, {self.columns!r})"


def stored_columns(table: str, columns: tuple[str, ...]) -> StoredColumns:
    plan = _STORED_COLUMNS.get((table, columns))
    if plan is None:
        plan = StoredColumns(table, columns)
        if len(_STORED_COLUMNS) < _STORED_COLUMNS_LIMIT:
            _STORED_COLUMNS[(table, columns)] = plan
    return plan


def _plan(key: DataKey, columns: StoredColumns) -> StoredPlan:
    header = _PREFIX + key.label
    plan = (
        header,
        key.aead.decrypt,
        tuple(zip(columns.columns, [header + p for p in columns.prefixes], strict=True)),
    )
    if len(key.plans) < _KEY_PLAN_LIMIT:
        key.plans[columns] = plan
    return plan


def decrypt_stored_row(
    key: DataKey,
    columns: StoredColumns,
    row_id: str,
    stored: Sequence[bytes | bytearray | memoryview | None],
) -> dict[str, str]:
    """Decrypt one row's columns from their stored bytes (in `columns` order; None = NULL,
    left out of the result) without building an EncryptedValue per field.

    Exactly `decrypt_row` of the parsed values: each value's 16-byte header must equal this
    key's (magic, format, suite, key id, version) before any decryption, and the associated
    data binds header, table, column and row. Any failure is the same opaque DecryptionError.
    """
    # The per-record hot path of a pull. A value shorter than a header, nonce and tag cannot
    # pass (the nonce or the ciphertext is then too short and the AEAD refuses it), so no
    # length test is needed here; NULLs are skipped (left out, as the checked path leaves
    # them); buffers and failures leave the loop for the checked path, which resumes at the
    # column this one stopped at. The offsets are literals (HEADER_LENGTH, _BODY_START;
    # checked below at import): two global reads per field fewer.
    planned_for_key: StoredPlan = key.plans.get(columns) or _plan(key, columns)
    header, decrypt_aead, planned = planned_for_key
    row = row_id.encode("utf-8")
    row_part = len(row).to_bytes(4, "big") + row
    out: dict[str, str] = {}
    if len(stored) != len(planned):  # cheaper than zip(strict=True)
        raise ValueError("one stored value per planned column")
    at = 0
    try:
        for (column, prefix), data in zip(planned, stored):  # noqa: B905 (lengths checked)
            if data is not None:
                if data[:16] != header:
                    break
                out[column] = decrypt_aead(
                    data[16:28],  # type: ignore[arg-type]
                    data[28:],  # type: ignore[arg-type]
                    prefix + row_part,
                ).decode()  # UTF-8, strict
            at += 1
        else:
            return out
    except (InvalidTag, UnicodeDecodeError, ValueError, TypeError):
        pass
    return _decrypt_stored_checked(
        key, columns, header, decrypt_aead, planned, row_part, stored, out, at
    )


if (HEADER_LENGTH, _BODY_START) != (16, 28):
    raise RuntimeError("keys.fields: decrypt_stored_row's offsets must follow the header layout")


def _decrypt_stored_checked(
    key: DataKey,
    columns: StoredColumns,
    header: bytes,
    decrypt_aead: Callable[[bytes, bytes, bytes], bytes],
    planned: tuple[tuple[str, bytes], ...],
    row_part: bytes,
    stored: Sequence[bytes | bytearray | memoryview | None],
    out: dict[str, str],
    start: int,
) -> dict[str, str]:
    """decrypt_stored_row from the first column the fast loop did not finish (`start`), each
    value checked as EncryptedValue.from_bytes checks it."""
    for (column, prefix), raw in list(zip(planned, stored, strict=True))[start:]:
        if raw is None:
            continue
        data = bytes(raw) if isinstance(raw, bytes | bytearray | memoryview) else None
        if data is not None and len(data) >= _MIN_LENGTH and data[:HEADER_LENGTH] == header:
            try:
                out[column] = decrypt_aead(
                    data[HEADER_LENGTH:_BODY_START], data[_BODY_START:], prefix + row_part
                ).decode()
                continue
            except (InvalidTag, UnicodeDecodeError):
                pass
        raise _failed(key, columns.table, column)
    return out
