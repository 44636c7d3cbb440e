"""Passphrase-encrypted keyring backups: the keyring never travels with the database backup.

A sealed backup is one JSON document (UTF-8, one line):

    {"format": "exchange-keyring-backup/1", "kdf": "scrypt", "n": 131072, "r": 8, "p": 1,
     "salt": <b64>, "nonce": <b64>, "ciphertext": <b64>}

The key is scrypt(passphrase, salt) (RFC 7914; n = 2**17 costs ~0.3 s and 128 MiB, so each
guess of a stolen backup costs the same); the keyring bytes are sealed with AES-256-GCM under
it, with the document's header (every member but the ciphertext, canonical) as associated data,
so no parameter can be changed without failing the opening. Wrong passphrase and tampering are
the same opaque `DecryptionError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from keys.errors import DecryptionError, FormatError

FORMAT: Final = "exchange-keyring-backup/1"
SCRYPT_N: Final = 2**17
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
MIN_PASSPHRASE: Final = 12
_MAX_N: Final = 2**20  # refuse documents that would make opening cost gigabytes


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _header(n: int, r: int, p: int, salt: bytes, nonce: bytes) -> dict[str, object]:
    return {"format": FORMAT, "kdf": "scrypt", "n": n, "r": r, "p": p,
            "salt": base64.b64encode(salt).decode(), "nonce": base64.b64encode(nonce).decode()}


def _aad(header: dict[str, object]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def seal_keyring_backup(keyring_bytes: bytes, passphrase: str, *, n: int = SCRYPT_N) -> bytes:
    """The sealed backup document of a keyring file's bytes."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise FormatError(f"the backup passphrase needs at least {MIN_PASSPHRASE} characters")
    salt, nonce = os.urandom(16), os.urandom(12)
    header = _header(n, SCRYPT_R, SCRYPT_P, salt, nonce)
    key = _derive(passphrase, salt, n, SCRYPT_R, SCRYPT_P)
    sealed = AESGCM(key).encrypt(nonce, keyring_bytes, _aad(header))
    document = {**header, "ciphertext": base64.b64encode(sealed).decode()}
    return (json.dumps(document, sort_keys=True) + "\n").encode("utf-8")


def _int(document: dict[str, object], name: str, low: int, high: int) -> int:
    value = document.get(name)
    if type(value) is not int or not low <= value <= high:
        raise FormatError(f"keyring backup: {name} out of range")
    return value


def _bytes(document: dict[str, object], name: str) -> bytes:
    value = document.get(name)
    if not isinstance(value, str):
        raise FormatError(f"keyring backup: {name} missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"keyring backup: {name} is not base64") from None


def open_keyring_backup(document_bytes: bytes, passphrase: str) -> bytes:
    """The keyring bytes in a sealed backup; `DecryptionError` for a wrong passphrase or any
    change to the document."""
    try:
        document = json.loads(document_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FormatError("not a keyring backup document") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT \
            or document.get("kdf") != "scrypt":
        raise FormatError(f"not a {FORMAT} document")
    n = _int(document, "n", 2**14, _MAX_N)
    if n & (n - 1):
        raise FormatError("keyring backup: n must be a power of two")
    r, p = _int(document, "r", 1, 32), _int(document, "p", 1, 16)
    salt, nonce = _bytes(document, "salt"), _bytes(document, "nonce")
    if len(salt) < 16 or len(nonce) != 12:
        raise FormatError("keyring backup: salt or nonce of the wrong size")
    sealed = _bytes(document, "ciphertext")
    key = _derive(passphrase, salt, n, r, p)
    try:
        return AESGCM(key).decrypt(nonce, sealed, _aad(_header(n, r, p, salt, nonce)))
    except InvalidTag:
        raise DecryptionError("keyring backup cannot be opened: wrong passphrase or "
                              "altered document") from None
