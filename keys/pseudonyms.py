"""Keyed pseudonyms: case references, blind indexes, audit pseudonyms. Never an unkeyed hash.

Each purpose has its own provider secret; each agreement gets its own HMAC key derived from the
case-pseudonym secret with HKDF, so references differ across agreements (and so contractors)
and cannot be linked without the office's keys.
"""

from __future__ import annotations

from binascii import b2a_base64
from enum import StrEnum

from cryptography.hazmat.primitives import hmac

from keys._codec import framed
from keys.suites import Suite

_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _b64url(raw: bytes) -> str:
    # binascii directly: base64.urlsafe_b64encode adds two Python calls on the hot path.
    # Lengths used here are multiples of 3, so there is never padding to strip.
    return b2a_base64(raw, newline=False).translate(_URL_SAFE).decode("ascii")


def encode_reference(digest: bytes) -> str:
    """A case reference or audit pseudonym from its HMAC digest."""
    return b2a_base64(digest[:15], newline=False).translate(_URL_SAFE).decode("ascii")


# base64url without padding: 15 bytes -> 20 characters (120 bits), 24 bytes -> 32 (192 bits)
CASE_REFERENCE_LENGTH = 20
AUDIT_PSEUDONYM_LENGTH = 20
BLIND_INDEX_LENGTH = 32


class PseudonymKey:
    """An HMAC key object built once; each call copies the keyed state (no re-keying)."""

    __slots__ = ("_mac",)

    def __init__(self, suite: Suite, key: bytes) -> None:
        self._mac = hmac.HMAC(key, suite.hash())

    def digest(self, message: str) -> bytes:
        mac = self._mac.copy()
        mac.update(message.encode("utf-8"))
        return mac.finalize()

    def reference(self, message: str) -> str:
        """`encode_reference(digest(message))` in one frame: the per-case hot path of a pull."""
        mac = self._mac.copy()
        mac.update(message.encode("utf-8"))
        return b2a_base64(mac.finalize()[:15], newline=False).translate(_URL_SAFE).decode("ascii")

    def __repr__(self) -> str:
        return "PseudonymKey(<hidden>)"


def agreement_key(suite: Suite, case_secret: bytes, agreement_id: str) -> PseudonymKey:
    info = framed(b"exchange/case-reference-key/v1", agreement_id)
    return PseudonymKey(suite, suite.derive(case_secret, info, 32))


def purpose_key(suite: Suite, secret: bytes, label: bytes) -> PseudonymKey:
    return PseudonymKey(suite, suite.derive(secret, label, 32))


class BlindIndexField(StrEnum):
    """What a blind index is of: its hash domain. Each has its own key (`blind_index_key`)."""

    NATIONAL_ID = "national_id"
    PHONE = "phone"


_BLIND_INDEX_LABEL = b"exchange/blind_index/v1"


def blind_index_key(suite: Suite, secret: bytes, field: BlindIndexField) -> PseudonymKey:
    """The HMAC key of one field's blind index, derived (HKDF) from the blind-index secret.
    The ID number keeps the label it has always had (its stored indexes stay valid); every
    other field frames its name into the label, so no two fields share a key."""
    if field is BlindIndexField.NATIONAL_ID:
        return purpose_key(suite, secret, _BLIND_INDEX_LABEL)
    return purpose_key(suite, secret, framed(_BLIND_INDEX_LABEL, field.value))


def case_reference(key: PseudonymKey, resident_id: str) -> str:
    return key.reference(resident_id)


def audit_pseudonym(key: PseudonymKey, resident_id: str) -> str:
    return key.reference(resident_id)


def blind_index(key: PseudonymKey, normalised_id: str) -> str:
    return _b64url(key.digest(normalised_id)[:24])
