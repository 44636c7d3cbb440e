"""Per-resident data keys and their wrapped (stored) form.

WrappedKey byte format, version 1 (all integers big-endian):

    "WK" | 0x01 | kek suite (1) | kek id length (1) | kek id (ASCII) | kek version (4)
         | data-key suite (1) | data-key id (8) | data-key version (4) | provider blob

The whole header is the associated data of the wrap, so no field of it can be altered. The
provider blob is whatever the root key's provider produced (locally: nonce 12 | ciphertext+tag).
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass, field

from keys.errors import FormatError, UnsupportedSuiteError
from keys.suites import Aead, Suite

WRAPPED_MAGIC = b"WK"
WRAPPED_FORMAT = 1
DATA_KEY_ID_LENGTH = 8
_MAX_KEK_ID = 64


class DataKey:
    """An unwrapped per-resident key. Holds its AEAD object so it is built once per unwrap."""

    __slots__ = ("key_id", "version", "suite", "_material", "aead", "label", "aad_prefixes")

    def __init__(self, key_id: bytes, version: int, suite: Suite, material: bytes) -> None:
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
        self.label = bytes([suite.wire_id]) + key_id + struct.pack(">I", version)
        # owned by keys.fields: table -> column -> this key's ciphertext header followed by the
        # framed (domain, table, column), so a decrypt only appends the row id per field
        self.aad_prefixes: dict[str, dict[str, bytes]] = {}

    @classmethod
    def generate(cls, suite: Suite, version: int = 1) -> DataKey:
        return cls(
            secrets.token_bytes(DATA_KEY_ID_LENGTH),
            version,
            suite,
            secrets.token_bytes(suite.key_length),
        )

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

    def to_bytes(self) -> bytes:
        kek_id = self.kek_id.encode("ascii")
        return b"".join(
            [
                WRAPPED_MAGIC,
                bytes([WRAPPED_FORMAT, self.kek_suite.wire_id, len(kek_id)]),
                kek_id,
                struct.pack(">I", self.kek_version),
                bytes([self.data_suite.wire_id]),
                self.data_key_id,
                struct.pack(">I", self.data_key_version),
            ]
        )


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key wrapped by a root key; the bytes stored in the database."""

    data: bytes = field(repr=False)
    header: WrappedHeader = field(init=False, repr=False, compare=False)
    header_length: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        header, length = _parse_header(bytes(self.data))
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "header_length", length)

    @classmethod
    def from_bytes(cls, data: bytes) -> WrappedKey:
        return cls(bytes(data))

    @classmethod
    def build(cls, header: WrappedHeader, blob: bytes) -> WrappedKey:
        return cls(header.to_bytes() + blob)

    @classmethod
    def assemble(cls, header: WrappedHeader, header_bytes: bytes, blob: bytes) -> WrappedKey:
        """A wrapped key from a header and its own encoding (`header.to_bytes()`), skipping
        the re-parse `__init__` does on bytes from storage."""
        if len(blob) == 0:
            raise FormatError("wrapped key truncated or malformed")
        key: WrappedKey = object.__new__(cls)
        object.__setattr__(key, "data", header_bytes + blob)
        object.__setattr__(key, "header", header)
        object.__setattr__(key, "header_length", len(header_bytes))
        return key

    def to_bytes(self) -> bytes:
        return self.data

    @property
    def header_bytes(self) -> bytes:
        return self.data[: self.header_length]

    @property
    def blob(self) -> bytes:
        return self.data[self.header_length :]

    def __repr__(self) -> str:
        h = self.header
        return (
            f"WrappedKey(kek={h.kek_id}@{h.kek_version}, data_key={h.data_key_id.hex()}"
            f"@{h.data_key_version}, suite={h.data_suite.value})"
        )

    __str__ = __repr__


def _parse_header(data: bytes) -> tuple[WrappedHeader, int]:
    if len(data) < 5 or data[:2] != WRAPPED_MAGIC:
        raise FormatError("not a wrapped key (bad magic)")
    if data[2] != WRAPPED_FORMAT:
        raise FormatError(f"unsupported wrapped key format version {data[2]}")
    try:
        kek_suite = Suite.from_wire(data[3])
    except UnsupportedSuiteError as exc:
        raise FormatError(str(exc)) from None
    id_length = data[4]
    end = 5 + id_length + 4 + 1 + DATA_KEY_ID_LENGTH + 4
    if id_length == 0 or id_length > _MAX_KEK_ID or len(data) <= end:
        raise FormatError("wrapped key truncated or malformed")
    try:
        kek_id = data[5 : 5 + id_length].decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("wrapped key names a non-ASCII key id") from None
    pos = 5 + id_length
    (kek_version,) = struct.unpack(">I", data[pos : pos + 4])
    try:
        data_suite = Suite.from_wire(data[pos + 4])
    except UnsupportedSuiteError as exc:
        raise FormatError(str(exc)) from None
    key_id = data[pos + 5 : pos + 5 + DATA_KEY_ID_LENGTH]
    (dk_version,) = struct.unpack(">I", data[pos + 5 + DATA_KEY_ID_LENGTH : end])
    header = WrappedHeader(kek_suite, kek_id, kek_version, data_suite, key_id, dk_version)
    return header, end
