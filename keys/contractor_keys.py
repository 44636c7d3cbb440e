"""Contractor HPKE key pairs and their stable text form (used by `exchange contractor keygen`).

KEMs: `x25519` (DHKEM(X25519, HKDF-SHA256), HPKE KEM id 0x0020; the default) and
`mlkem768-x25519` (hybrid ML-KEM-768 + X25519, KEM id 0x647a) as a per-contractor option.
Raw forms: X25519 public/private 32 bytes; hybrid public = ML-KEM-768 public (1184) || X25519
public (32), hybrid private = ML-KEM-768 seed (64) || X25519 private (32).

Text form (PEM-like, with RFC 1421-style header lines; the fingerprint is checked on load):

    -----BEGIN EXCHANGE HPKE PUBLIC KEY-----
    KEM: x25519
    Fingerprint: 9f1c2a7d0e4b5c61

    <base64 of the raw form, 64 columns>
    -----END EXCHANGE HPKE PUBLIC KEY-----
"""

from __future__ import annotations

import base64
import binascii
import enum
import textwrap
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from keys.errors import FormatError, UnsupportedSuiteError

FINGERPRINT_LENGTH = 8
_MLKEM_PUBLIC = 1184
_MLKEM_SEED = 64


class Kem(enum.Enum):
    X25519 = "x25519"
    MLKEM768_X25519 = "mlkem768-x25519"

    @property
    def wire_id(self) -> int:
        return 0x0020 if self is Kem.X25519 else 0x647A

    @classmethod
    def from_wire(cls, wire_id: int) -> Kem:
        for kem in cls:
            if kem.wire_id == wire_id:
                return kem
        raise UnsupportedSuiteError(f"unknown KEM id {wire_id:#06x}")

    @classmethod
    def parse(cls, name: str) -> Kem:
        try:
            return cls(name)
        except ValueError:
            raise UnsupportedSuiteError(f"unknown KEM {name!r}") from None

    def hpke_suite(self) -> hpke.Suite:
        kem = hpke.KEM.X25519 if self is Kem.X25519 else hpke.KEM.MLKEM768_X25519
        return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)

    @property
    def public_length(self) -> int:
        return 32 if self is Kem.X25519 else _MLKEM_PUBLIC + 32

    @property
    def private_length(self) -> int:
        return 32 if self is Kem.X25519 else _MLKEM_SEED + 32


HpkePublic = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
HpkePrivate = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey


@dataclass(frozen=True)
class ContractorPublicKey:
    kem: Kem
    raw: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.raw) != self.kem.public_length:
            raise FormatError(f"{self.kem.value} public key must be {self.kem.public_length} bytes")
        self.hpke_key  # noqa: B018 - parse now so an invalid key is refused at the boundary

    @cached_property
    def hpke_key(self) -> HpkePublic:
        try:
            if self.kem is Kem.X25519:
                return x25519.X25519PublicKey.from_public_bytes(self.raw)
            return hpke.MLKEM768X25519PublicKey(
                mlkem.MLKEM768PublicKey.from_public_bytes(self.raw[:_MLKEM_PUBLIC]),
                x25519.X25519PublicKey.from_public_bytes(self.raw[_MLKEM_PUBLIC:]),
            )
        except ValueError:
            raise FormatError(f"invalid {self.kem.value} public key") from None

    @cached_property
    def fingerprint(self) -> bytes:
        digest = hashes.Hash(hashes.SHA256())
        digest.update(b"exchange/contractor-key/v1\x00")
        digest.update(self.kem.wire_id.to_bytes(2, "big"))
        digest.update(self.raw)
        return digest.finalize()[:FINGERPRINT_LENGTH]

    def to_text(self) -> str:
        return _armour("PUBLIC", self.kem, self.fingerprint, self.raw)

    @classmethod
    def from_text(cls, text: str) -> ContractorPublicKey:
        kem, fingerprint, raw = _dearmour("PUBLIC", text)
        key = cls(kem, raw)
        if fingerprint is not None and fingerprint != key.fingerprint:
            raise FormatError("public key fingerprint does not match its key")
        return key

    def __repr__(self) -> str:
        return f"ContractorPublicKey({self.kem.value}, {self.fingerprint.hex()})"


@dataclass(frozen=True)
class ContractorPrivateKey:
    kem: Kem
    raw: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.raw) != self.kem.private_length:
            raise FormatError(f"{self.kem.value} private key has the wrong length")
        self.hpke_key  # noqa: B018 - parse now

    @classmethod
    def generate(cls, kem: Kem = Kem.X25519) -> ContractorPrivateKey:
        x = x25519.X25519PrivateKey.generate().private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        if kem is Kem.X25519:
            return cls(kem, x)
        return cls(kem, mlkem.MLKEM768PrivateKey.generate().private_bytes_raw() + x)

    @cached_property
    def hpke_key(self) -> HpkePrivate:
        try:
            if self.kem is Kem.X25519:
                return x25519.X25519PrivateKey.from_private_bytes(self.raw)
            return hpke.MLKEM768X25519PrivateKey(
                mlkem.MLKEM768PrivateKey.from_seed_bytes(self.raw[:_MLKEM_SEED]),
                x25519.X25519PrivateKey.from_private_bytes(self.raw[_MLKEM_SEED:]),
            )
        except ValueError:
            raise FormatError(f"invalid {self.kem.value} private key") from None

    def public_key(self) -> ContractorPublicKey:
        key = self.hpke_key
        if isinstance(key, x25519.X25519PrivateKey):
            return ContractorPublicKey(
                self.kem, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            )
        mlkem_pub = mlkem.MLKEM768PrivateKey.from_seed_bytes(self.raw[:_MLKEM_SEED]).public_key()
        x_pub = x25519.X25519PrivateKey.from_private_bytes(self.raw[_MLKEM_SEED:]).public_key()
        return ContractorPublicKey(
            self.kem,
            mlkem_pub.public_bytes_raw() + x_pub.public_bytes(Encoding.Raw, PublicFormat.Raw),
        )

    def to_text(self) -> str:
        return _armour("PRIVATE", self.kem, self.public_key().fingerprint, self.raw)

    @classmethod
    def from_text(cls, text: str) -> ContractorPrivateKey:
        kem, fingerprint, raw = _dearmour("PRIVATE", text)
        key = cls(kem, raw)
        if fingerprint is not None and fingerprint != key.public_key().fingerprint:
            raise FormatError("private key fingerprint does not match its key")
        return key

    def __repr__(self) -> str:
        return f"ContractorPrivateKey({self.kem.value}, <hidden>)"

    __str__ = __repr__


def generate_keypair(kem: Kem = Kem.X25519) -> tuple[ContractorPrivateKey, ContractorPublicKey]:
    private = ContractorPrivateKey.generate(kem)
    return private, private.public_key()


def _armour(kind: str, kem: Kem, fingerprint: bytes, raw: bytes) -> str:
    body = textwrap.fill(base64.b64encode(raw).decode("ascii"), 64)
    return (
        f"-----BEGIN EXCHANGE HPKE {kind} KEY-----\n"
        f"KEM: {kem.value}\nFingerprint: {fingerprint.hex()}\n\n{body}\n"
        f"-----END EXCHANGE HPKE {kind} KEY-----\n"
    )


def _dearmour(kind: str, text: str) -> tuple[Kem, bytes | None, bytes]:
    begin = f"-----BEGIN EXCHANGE HPKE {kind} KEY-----"
    end = f"-----END EXCHANGE HPKE {kind} KEY-----"
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 4 or lines[0] != begin or lines[-1] != end:
        raise FormatError(f"not an EXCHANGE HPKE {kind} KEY block")
    headers: dict[str, str] = {}
    index = 1
    while index < len(lines) - 1 and lines[index]:
        name, sep, value = lines[index].partition(":")
        if not sep:
            raise FormatError(f"key block header line {index + 1} is not 'Name: value'")
        headers[name.strip().lower()] = value.strip()
        index += 1
    if "kem" not in headers:
        raise FormatError("key block lacks its KEM header")
    try:
        kem = Kem.parse(headers["kem"])
    except UnsupportedSuiteError as exc:
        raise FormatError(str(exc)) from None
    fingerprint = None
    if "fingerprint" in headers:
        try:
            fingerprint = bytes.fromhex(headers["fingerprint"])
        except ValueError:
            raise FormatError("key block fingerprint is not hex") from None
    try:
        raw = base64.b64decode("".join(lines[index:-1]), validate=True)
    except binascii.Error:
        raise FormatError("key block body is not base64") from None
    return kem, fingerprint, raw
