"""Per-resident data keys and their wrapped (stored) form.

WrappedKey byte format, version 2 (all integers big-endian):

    "WK" | 0x02 | kek suite (1) | kek id length (1) | kek id (ASCII) | kek version (4)
         | data-key suite (1) | data-key id (8) | data-key version (4) | provider blob

The associated data of the wrap is the whole header followed by the framed owner id
(`owner_binding`: the resident the key belongs to, which is the row's key and is not stored in
the bytes). So no field of the header can be altered, and a wrapped key copied to another
resident's row does not unwrap there. Version 1 (format byte 0x01) is the same layout with the
header alone as associated data: still read, never written; the root rotation job re-wraps
such keys as version 2. The provider blob is whatever the root key's provider produced
(locally: nonce 12 | ciphertext+tag).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from keys.errors import FormatError
from keys.suites import Aead, Suite

WRAPPED_MAGIC = b"WK"
WRAPPED_FORMAT = 2  # what a wrap writes: bound to its owner
UNBOUND_FORMAT = 1  # read only; bound to nothing but its header
_FORMATS = frozenset({UNBOUND_FORMAT, WRAPPED_FORMAT})
_OWNER_PREFIX = b"exchange/data-key-owner/v2\x00"  # keys._codec.framed's domain and separator
DATA_KEY_ID_LENGTH = 8
_MAX_KEK_ID = 64
_VERSION = struct.Struct(">I")
# after the kek id: kek version | data-key suite | data-key id | data-key version
_DATA_KEY_PART = struct.Struct(f">IB{DATA_KEY_ID_LENGTH}sI")
_SUITE_IDS = frozenset(suite.wire_id for suite in Suite)


class DataKey:
    """An unwrapped per-resident key. Holds its AEAD object so it is built once per unwrap."""

    __slots__ = (
        "key_id",
        "version",
        "suite",
        "_material",
        "aead",
        "label",
        "aad_prefixes",
        "plans",
        "owner",
    )

    def __init__(
        self,
        key_id: bytes,
        version: int,
        suite: Suite,
        material: bytes,
        owner: str | None = None,
    ) -> None:
        if len(key_id) != DATA_KEY_ID_LENGTH:
            raise FormatError("data key id must be 8 bytes")
        if len(material) != suite.key_length:
            raise FormatError(f"data key for suite {suite.value} must be {suite.key_length} bytes")
        if not 0 < version < 2**32:
            raise FormatError("data key version out of range")
        self.key_id = key_id
        self.version = version
        self.suite = suite
        self._material = material
        self.aead: Aead = suite.aead(material)
        # suite | id | version: how ciphertext headers name this key; built once, compared often
        self.label = data_key_part(suite, key_id, version)
        # What the key's users derive from it and keep for as long as the key lives (forgetting
        # the key forgets them). The key only carries them: the module using them (keys.fields)
        # fills and types them, so this module needs nothing of it. aad_prefixes: table ->
        # column -> the ciphertext header and framed (domain, table, column); plans: per read
        # shape, what a decrypt of stored bytes needs.
        self.aad_prefixes: dict[str, dict[str, bytes]] = {}
        self.plans: dict[Hashable, Any] = {}
        # the resident this key belongs to, as its wrap was bound (the keyring sets it)
        self.owner = owner

    @classmethod
    def generate(cls, suite: Suite, version: int = 1, owner: str | None = None) -> DataKey:
        # one CSPRNG read per key (an import makes one key per resident): id ‖ material
        fresh = os.urandom(DATA_KEY_ID_LENGTH + suite.key_length)
        return cls(fresh[:DATA_KEY_ID_LENGTH], version, suite, fresh[DATA_KEY_ID_LENGTH:], owner)

    @property
    def id_hex(self) -> str:
        return self.key_id.hex()

    def material(self) -> bytes:
        """Raw key bytes, for wrapping only."""
        return self._material

    def __repr__(self) -> str:
        return f"DataKey(id={self.id_hex}, version={self.version}, suite={self.suite.value})"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("DataKey cannot be pickled")


@dataclass(frozen=True, slots=True)
class WrappedHeader:
    kek_suite: Suite
    kek_id: str
    kek_version: int
    data_suite: Suite
    data_key_id: bytes
    data_key_version: int
    format: int = WRAPPED_FORMAT

    @classmethod
    def of(
        cls,
        kek_suite: Suite,
        kek_id: str,
        kek_version: int,
        data_suite: Suite,
        data_key_id: bytes,
        data_key_version: int,
        format: int = WRAPPED_FORMAT,
    ) -> WrappedHeader:
        """The same as the constructor, about 3x faster (one per imported resident): the
        frozen dataclass __init__ sets each field by name through object.__setattr__."""
        header: WrappedHeader = _new(cls)
        _set_kek_suite(header, kek_suite)
        _set_kek_id(header, kek_id)
        _set_kek_version(header, kek_version)
        _set_data_suite(header, data_suite)
        _set_data_key_id(header, data_key_id)
        _set_data_key_version(header, data_key_version)
        _set_format(header, format)
        return header

    @property
    def bound(self) -> bool:
        """True when the wrap is bound to its owner (format 2)."""
        return self.format == WRAPPED_FORMAT

    def to_bytes(self) -> bytes:
        return kek_part(self.kek_suite, self.kek_id, self.kek_version, self.format) + (
            data_key_part(self.data_suite, self.data_key_id, self.data_key_version)
        )


# The slots' own setters, which a frozen dataclass's __setattr__ refuses: construction only.
_new = object.__new__
_set_kek_suite = WrappedHeader.__dict__["kek_suite"].__set__
_set_kek_id = WrappedHeader.__dict__["kek_id"].__set__
_set_kek_version = WrappedHeader.__dict__["kek_version"].__set__
_set_data_suite = WrappedHeader.__dict__["data_suite"].__set__
_set_data_key_id = WrappedHeader.__dict__["data_key_id"].__set__
_set_data_key_version = WrappedHeader.__dict__["data_key_version"].__set__
_set_format = WrappedHeader.__dict__["format"].__set__


def kek_part(
    kek_suite: Suite, kek_id: str, kek_version: int, format: int = WRAPPED_FORMAT
) -> bytes:
    """The start of a wrapped-key header: magic, format and the wrapping (root) key."""
    if format not in _FORMATS:
        raise FormatError(f"unsupported wrapped key format version {format}")
    raw_id = kek_id.encode("ascii")
    return (
        WRAPPED_MAGIC
        + bytes([format, kek_suite.wire_id, len(raw_id)])
        + raw_id
        + _VERSION.pack(kek_version)
    )


def owner_binding(owner: str) -> bytes:
    """What a format-2 wrap appends to its header as associated data: the owner id framed as
    `keys._codec.framed(b"exchange/data-key-owner/v2", owner)` frames it (written out here:
    one per imported resident)."""
    raw = owner.encode("utf-8")
    if not raw:
        raise FormatError("a data key's owner id must not be empty")
    return _OWNER_PREFIX + len(raw).to_bytes(4, "big") + raw


def data_key_part(suite: Suite, key_id: bytes, version: int) -> bytes:
    """The end of a wrapped-key header: the wrapped data key; equal to `DataKey.label`."""
    return suite.wire_byte + key_id + _VERSION.pack(version)


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key wrapped by a root key; the bytes stored in the database."""

    data: bytes = field(repr=False)
    header_length: int = field(init=False, repr=False, compare=False)
    # built on first use: a pull parses a stored wrapped key per record only to find its
    # unwrapped key in the keyring's cache, which needs the bytes, not the header object
    _header: WrappedHeader | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        _set_header_length(self, _checked_header_length(bytes(self.data)))

    @classmethod
    def from_bytes(cls, data: bytes) -> WrappedKey:
        """Check stored bytes; raises FormatError unless they hold a well-formed header."""
        raw = bytes(data)
        key: WrappedKey = _new(cls)
        _set_header_length(key, _checked_header_length(raw))
        _set_data(key, raw)
        _set_header(key, None)
        return key

    @property
    def header(self) -> WrappedHeader:
        header = self._header
        if header is None:
            header = _parse_header(self.data)
            _set_header(self, header)
        return header

    @classmethod
    def build(cls, header: WrappedHeader, blob: bytes) -> WrappedKey:
        return cls(header.to_bytes() + blob)

    @classmethod
    def assemble(cls, header: WrappedHeader, header_bytes: bytes, blob: bytes) -> WrappedKey:
        """A wrapped key from a header and its own encoding (`header.to_bytes()`), skipping
        the re-parse `__init__` does on bytes from storage."""
        if len(blob) == 0:
            raise FormatError("wrapped key truncated or malformed")
        key: WrappedKey = _new(cls)
        _set_data(key, header_bytes + blob)
        _set_header_length(key, len(header_bytes))
        _set_header(key, header)
        return key

    def to_bytes(self) -> bytes:
        return self.data

    @property
    def format(self) -> int:
        return self.data[2]

    @property
    def bound(self) -> bool:
        """True when the wrap is bound to its owner (format 2); format 1 is read only."""
        return self.data[2] == WRAPPED_FORMAT

    def associated_data(self, owner: str) -> bytes:
        """The wrap's associated data for `owner`: the header, and for format 2 the owner."""
        header = self.data[: self.header_length]
        return header + owner_binding(owner) if self.data[2] == WRAPPED_FORMAT else header

    @property
    def header_bytes(self) -> bytes:
        return self.data[: self.header_length]

    @property
    def blob(self) -> bytes:
        return self.data[self.header_length :]

    def __repr__(self) -> str:
        h = self.header
        return (
            f"WrappedKey(v{h.format}, kek={h.kek_id}@{h.kek_version}, data_key="
            f"{h.data_key_id.hex()}@{h.data_key_version}, suite={h.data_suite.value})"
        )

    __str__ = __repr__


_set_data = WrappedKey.__dict__["data"].__set__
_set_header = WrappedKey.__dict__["_header"].__set__
_set_header_length = WrappedKey.__dict__["header_length"].__set__


def _checked_header_length(data: bytes) -> int:
    """Everything `_parse_header` checks, building nothing; the header's length."""
    if len(data) < 5 or data[:2] != WRAPPED_MAGIC:
        raise FormatError("not a wrapped key (bad magic)")
    if data[2] not in _FORMATS:
        raise FormatError(f"unsupported wrapped key format version {data[2]}")
    if data[3] not in _SUITE_IDS:
        raise FormatError(f"unknown crypto suite id {data[3]}")
    id_length = data[4]
    end = 5 + id_length + _DATA_KEY_PART.size
    if id_length == 0 or id_length > _MAX_KEK_ID or len(data) <= end:
        raise FormatError("wrapped key truncated or malformed")
    if not data[5 : 5 + id_length].isascii():
        raise FormatError("wrapped key names a non-ASCII key id")
    data_suite_id = data[5 + id_length + 4]
    if data_suite_id not in _SUITE_IDS:
        raise FormatError(f"unknown crypto suite id {data_suite_id}")
    return end


def _parse_header(data: bytes) -> WrappedHeader:
    _checked_header_length(data)
    id_length = data[4]
    kek_version, data_suite_id, key_id, dk_version = _DATA_KEY_PART.unpack_from(data, 5 + id_length)
    return WrappedHeader.of(
        Suite.from_wire(data[3]),
        data[5 : 5 + id_length].decode("ascii"),
        kek_version,
        Suite.from_wire(data_suite_id),
        key_id,
        dk_version,
        data[2],
    )
