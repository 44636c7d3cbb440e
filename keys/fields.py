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
from collections.abc import Mapping
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
        # The hot path of every read (the column type calls it per value): no __init__ call.
        if type(data) is not bytes:
            data = bytes(data)
        if len(data) < _MIN_LENGTH or data[:4] not in _HEADS:
            raise FormatError(_why_not(data))
        value: EncryptedValue = _new(cls)
        _store(value, data)
        return value

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
    header = _PREFIX + key.label
    row = row_id.encode("utf-8")
    row_part = len(row).to_bytes(4, "big") + row
    prefixes = _PREFIX_CACHE.get(table, _NO_COLUMNS)
    encrypt_aead = key.aead.encrypt
    urandom = os.urandom
    out: dict[str, EncryptedValue] = {}
    for column, plaintext in values.items():
        if not isinstance(plaintext, str):
            raise FormatError(f"plaintext for {table}.{column} must be str")
        prefix = prefixes.get(column) or _column_prefix(table, column)
        nonce = urandom(NONCE_LENGTH)
        body = encrypt_aead(nonce, plaintext.encode("utf-8"), header + prefix + row_part)
        value: EncryptedValue = _new(EncryptedValue)
        _store(value, header + nonce + body)
        out[column] = value
    return out


def decrypt(key: DataKey, value: EncryptedValue, context: FieldContext) -> str:
    """Decrypt one field; any failure is the same opaque DecryptionError, logged without values."""
    table, column, row_id = context
    columns = key.aad_prefixes.get(table) or _key_prefixes(key, table)
    prefix = columns.get(column) or _key_column_prefix(key, columns, table, column)
    data = value._data
    # the value names exactly this key (suite, id, version), checked before any decryption;
    # magic and format were checked when the value was built
    if data.startswith(key.label, _LABEL_START):
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
    label = key.label
    columns = key.aad_prefixes.get(table) or _key_prefixes(key, table)
    row = row_id.encode("utf-8")
    row_part = len(row).to_bytes(4, "big") + row
    decrypt_aead = key.aead.decrypt
    out: dict[str, str] = {}
    for column, value in values.items():
        data = value._data
        if data.startswith(label, _LABEL_START):
            prefix = columns.get(column) or _key_column_prefix(key, columns, table, column)
            try:
                out[column] = decrypt_aead(
                    data[HEADER_LENGTH:_BODY_START], data[_BODY_START:], prefix + row_part
                ).decode()  # UTF-8, strict
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
