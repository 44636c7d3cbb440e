"""Field encryption at rest: the EncryptedValue byte format and its cipher.

EncryptedValue byte format, version 1 (16-byte header, integers big-endian):

    "EV" | 0x01 | suite id (1) | data-key id (8) | data-key version (4) | nonce (12) | ct+tag

Associated data = the header followed by the framed (table, column, row id) (see
`FieldContext.associated_data`), so a ciphertext cannot be moved to another row or column, nor
relabelled with another key or suite. tests/keys/test_golden.py freezes this layout.
"""

from __future__ import annotations

import secrets
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
_BODY_START = HEADER_LENGTH + NONCE_LENGTH
_MIN_LENGTH = _BODY_START + TAG_LENGTH
_SUITE_IDS = frozenset(s.wire_id for s in Suite)
_DOMAIN = b"exchange/field/v1"
_PREFIX_CACHE: dict[str, dict[str, bytes]] = {}  # table -> column -> framed prefix
_PREFIX_CACHE_LIMIT = 4096

_log = structlog.get_logger("keys.fields")
_set = object.__setattr__


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


def _row_part(row_id: str) -> bytes:
    row = row_id.encode("utf-8")
    return len(row).to_bytes(4, "big") + row


class EncryptedValue:
    """Ciphertext bytes produced by the field cipher. Valid once constructed; never shows data."""

    __slots__ = ("_data",)
    _data: bytes

    def __init__(self, data: bytes) -> None:
        if type(data) is not bytes:
            raise FormatError("encrypted value must be bytes")
        if not (data.startswith(_PREFIX) and len(data) >= _MIN_LENGTH and data[3] in _SUITE_IDS):
            raise FormatError(_why_not(data))
        _set(self, "_data", data)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> EncryptedValue:
        """Parse stored bytes; raises FormatError unless the field cipher produced them."""
        return cls(data if type(data) is bytes else bytes(data))

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
        (version,) = struct.unpack(">I", self._data[12:16])
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
    if not isinstance(plaintext, str):
        raise FormatError(f"plaintext for {context.table}.{context.column} must be str")
    header = _PREFIX + key.label
    nonce = nonce if nonce is not None else secrets.token_bytes(NONCE_LENGTH)
    if len(nonce) != NONCE_LENGTH:
        raise FormatError("nonce must be 12 bytes")
    body = key.aead.encrypt(nonce, plaintext.encode("utf-8"), header + context.associated_data())
    return EncryptedValue(header + nonce + body)


def decrypt(key: DataKey, value: EncryptedValue, context: FieldContext) -> str:
    """Decrypt one field; any failure is the same opaque DecryptionError, logged without values."""
    return decrypt_row(key, context.table, context.row_id, {context.column: value})[context.column]


def decrypt_row(
    key: DataKey, table: str, row_id: str, values: Mapping[str, EncryptedValue]
) -> dict[str, str]:
    """Decrypt several columns of one row; the row framing is computed once.

    A value whose header is not exactly this key's (format, suite, id, version) is refused
    before any decryption; the header is also authenticated as associated data.
    """
    header = _PREFIX + key.label
    row_part = _row_part(row_id)
    decrypt_aead = key.aead.decrypt
    prefixes = _PREFIX_CACHE.get(table) or {}
    out: dict[str, str] = {}
    for column, value in values.items():
        data = value._data
        if data.startswith(header):
            prefix = prefixes.get(column) or _column_prefix(table, column)
            try:
                out[column] = decrypt_aead(
                    data[HEADER_LENGTH:_BODY_START], data[_BODY_START:], header + prefix + row_part
                ).decode("utf-8")
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
