"""Crypto suites: which AEAD and which MAC hash a deployment uses.

`intl` (id 1): AES-256-GCM, HMAC-SHA-256. `gm` (id 2): SM4-GCM, HMAC-SM3, for deployments that must
pass a commercial-cryptography (商用密码) assessment. The suite id is written into every at-rest
ciphertext and wrapped key, so a database holding both stays readable.
"""

from __future__ import annotations

import enum
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keys.errors import UnsupportedSuiteError

NONCE_LENGTH = 12
TAG_LENGTH = 16


class Suite(enum.Enum):
    INTL = "intl"
    GM = "gm"

    @property
    def wire_id(self) -> int:
        # keyed by the value: a str hashes in C, an Enum member through Enum.__hash__ in Python
        return _WIRE_IDS_BY_VALUE[self._value_]

    @property
    def wire_byte(self) -> bytes:
        """`wire_id` as the one byte written into headers."""
        return _WIRE_BYTES_BY_VALUE[self._value_]

    @classmethod
    def from_wire(cls, wire_id: int) -> Suite:
        suite = _SUITES_BY_WIRE_ID.get(wire_id)
        if suite is None:
            raise UnsupportedSuiteError(f"unknown crypto suite id {wire_id}")
        return suite

    @classmethod
    def parse(cls, name: str) -> Suite:
        try:
            return cls(name)
        except ValueError:
            raise UnsupportedSuiteError(f"unknown crypto suite {name!r}") from None

    @property
    def key_length(self) -> int:
        """Length of an AEAD key (data key) in this suite."""
        return 32 if self is _INTL else 16

    def hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA256() if self is _INTL else hashes.SM3()

    def aead(self, key: bytes) -> Aead:
        """An AEAD object, built once per key. Failures raise cryptography's InvalidTag."""
        if self is _INTL:
            return AESGCM(key)
        return Sm4Gcm(key)

    def derive(self, material: bytes, info: bytes, length: int | None = None) -> bytes:
        """HKDF over this suite's hash: a subkey bound to `info`."""
        hkdf = HKDF(algorithm=self.hash(), length=length or self.key_length, salt=None, info=info)
        return hkdf.derive(material)


_INTL = Suite.INTL  # a module global: reading Suite.INTL goes through the Enum metaclass
_WIRE_IDS = {Suite.INTL: 1, Suite.GM: 2}
_WIRE_IDS_BY_VALUE = {suite.value: number for suite, number in _WIRE_IDS.items()}
_SUITES_BY_WIRE_ID = {number: suite for suite, number in _WIRE_IDS.items()}
_WIRE_BYTES_BY_VALUE = {suite.value: bytes([number]) for suite, number in _WIRE_IDS.items()}


class Aead(Protocol):
    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes: ...


class Sm4Gcm:
    """SM4 in GCM mode through `cryptography`'s Cipher API, shaped like AESGCM (tag appended)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        algorithms.SM4(key)  # validates the key length now rather than at first use
        self._key = key

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(associated_data)
        body = encryptor.update(data) + encryptor.finalize()
        return body + encryptor.tag

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        if len(data) < TAG_LENGTH:
            raise InvalidTag()
        body, tag = data[:-TAG_LENGTH], data[-TAG_LENGTH:]
        decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(associated_data)
        return decryptor.update(body) + decryptor.finalize()

    def __repr__(self) -> str:
        return "<SM4-GCM key>"
