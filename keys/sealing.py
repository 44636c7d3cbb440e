"""Sealing fields to a contractor with HPKE (RFC 9180); the broker never holds the private key.

Two modes, both binding each value to (agreement, case reference, field name):

* `seal_field` / `open_field` — one self-contained HPKE message per value (about 100 µs each).
  Token: "s1." + base64url(KEM id (2) | key fingerprint (8) | enc | ciphertext); the HPKE info
  frames the agreement, case reference, field, KEM id and fingerprint.
* `ResponseSealer` / `ResponseOpener` — ONE HPKE encapsulation per response carries a fresh
  random 32-byte response secret in the envelope "r1." + base64url(KEM id | fingerprint |
  response id (16) | enc | ciphertext); an AES-256-GCM key is derived from it with HKDF-SHA256
  (salt = response id, info framing the agreement); each value is "t1." + base64url(nonce (12)
  | ciphertext+tag) with associated data framing agreement, case reference and field.
Any failure to open is the same opaque DecryptionError.
"""

from __future__ import annotations

import os
import secrets
from binascii import b2a_base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keys._codec import b64url, framed, unb64url
from keys.contractor_keys import (
    FINGERPRINT_LENGTH,
    ContractorPrivateKey,
    ContractorPublicKey,
    Kem,
)
from keys.errors import DecryptionError, FormatError

SINGLE_PREFIX = "s1."
ENVELOPE_PREFIX = "r1."
TOKEN_PREFIX = "t1."
RESPONSE_ID_LENGTH = 16
_SECRET_LENGTH = 32
_NONCE = 12
_KEY_HEADER = 2 + FINGERPRINT_LENGTH
_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _key_header(key: ContractorPublicKey) -> bytes:
    return key.kem.wire_id.to_bytes(2, "big") + key.fingerprint


def _single_info(header: bytes, agreement_id: str, case_ref: str, field: str) -> bytes:
    return framed(b"exchange/seal/v1", agreement_id, case_ref, field, header)


def seal_field(
    public_key: ContractorPublicKey, agreement_id: str, case_ref: str, field: str, value: str
) -> str:
    header = _key_header(public_key)
    info = _single_info(header, agreement_id, case_ref, field)
    sealed = public_key.kem.hpke_suite().encrypt(value.encode("utf-8"), public_key.hpke_key, info)
    return SINGLE_PREFIX + b64url(header + sealed)


def open_field(
    private_key: ContractorPrivateKey, agreement_id: str, case_ref: str, field: str, token: str
) -> str:
    try:
        if not token.startswith(SINGLE_PREFIX):
            raise DecryptionError()
        raw = unb64url(token[len(SINGLE_PREFIX) :], "sealed token")
        header = raw[:_KEY_HEADER]
        if header != _key_header(private_key.public_key()):
            raise DecryptionError()
        info = _single_info(header, agreement_id, case_ref, field)
        plain = private_key.kem.hpke_suite().decrypt(raw[_KEY_HEADER:], private_key.hpke_key, info)
        return plain.decode("utf-8")
    except Exception:  # HPKE failures surface as library-specific errors; all look alike
        raise DecryptionError() from None


def _response_aead(secret: bytes, response_id: bytes, agreement_id: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=response_id,
        info=framed(b"exchange/response-key/v1", agreement_id),
    ).derive(secret)
    return AESGCM(key)


def _envelope_info(agreement_id: str, header: bytes) -> bytes:
    return framed(b"exchange/response/v1", agreement_id, header)


def _field_aad(agreement_id: str, *case_ref_and_field: str) -> bytes:
    return framed(b"exchange/response-field/v1", agreement_id, *case_ref_and_field)


def _part(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(4, "big") + raw


class ResponseSealer:
    """One HPKE encapsulation per response; each value then costs one AES-GCM encryption."""

    __slots__ = ("agreement_id", "envelope", "_aead", "_aad_prefix")

    def __init__(self, public_key: ContractorPublicKey, agreement_id: str) -> None:
        secret = secrets.token_bytes(_SECRET_LENGTH)
        response_id = secrets.token_bytes(RESPONSE_ID_LENGTH)
        header = _key_header(public_key) + response_id
        sealed = public_key.kem.hpke_suite().encrypt(
            secret, public_key.hpke_key, _envelope_info(agreement_id, header)
        )
        self.agreement_id = agreement_id
        self.envelope = ENVELOPE_PREFIX + b64url(header + sealed)
        self._aead = _response_aead(secret, response_id, agreement_id)
        self._aad_prefix = _field_aad(agreement_id)

    def seal(self, case_ref: str, field: str, value: str) -> str:
        # == _field_aad(agreement, case_ref, field), with the agreement part computed once
        aad = self._aad_prefix + _part(case_ref) + _part(field)
        nonce = os.urandom(_NONCE)
        body = self._aead.encrypt(nonce, value.encode("utf-8"), aad)
        return TOKEN_PREFIX + b2a_base64(nonce + body, newline=False).translate(_URL_SAFE).rstrip(
            b"="
        ).decode("ascii")

    def __repr__(self) -> str:
        return f"ResponseSealer(agreement={self.agreement_id!r})"


class ResponseOpener:
    """The contractor side: open the envelope once, then each token of the response."""

    __slots__ = ("agreement_id", "_aead")

    def __init__(self, private_key: ContractorPrivateKey, envelope: str, agreement_id: str) -> None:
        try:
            if not envelope.startswith(ENVELOPE_PREFIX):
                raise FormatError("not a response envelope")
            raw = unb64url(envelope[len(ENVELOPE_PREFIX) :], "response envelope")
            header_end = _KEY_HEADER + RESPONSE_ID_LENGTH
            header = raw[:header_end]
            if header[:_KEY_HEADER] != _key_header(private_key.public_key()):
                raise DecryptionError()
            secret = private_key.kem.hpke_suite().decrypt(
                raw[header_end:], private_key.hpke_key, _envelope_info(agreement_id, header)
            )
            if len(secret) != _SECRET_LENGTH:
                raise DecryptionError()
        except Exception:
            raise DecryptionError() from None
        self.agreement_id = agreement_id
        self._aead = _response_aead(secret, header[_KEY_HEADER:], agreement_id)

    def open(self, case_ref: str, field: str, token: str) -> str:
        try:
            if not token.startswith(TOKEN_PREFIX):
                raise DecryptionError()
            raw = unb64url(token[len(TOKEN_PREFIX) :], "sealed token")
            plain = self._aead.decrypt(
                raw[:_NONCE], raw[_NONCE:], _field_aad(self.agreement_id, case_ref, field)
            )
            return plain.decode("utf-8")
        except Exception:
            raise DecryptionError() from None

    def __repr__(self) -> str:
        return f"ResponseOpener(agreement={self.agreement_id!r})"


def kem_of_envelope(envelope: str) -> Kem:
    """Which KEM an envelope was sealed with (so a client can pick its key)."""
    raw = unb64url(envelope.removeprefix(ENVELOPE_PREFIX), "response envelope")
    if len(raw) < 2:
        raise FormatError("response envelope truncated")
    return Kem.from_wire(int.from_bytes(raw[:2], "big"))
