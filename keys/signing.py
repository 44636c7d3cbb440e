"""The audit log's Ed25519 signing key, derived deterministically from its provider secret."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def signing_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """The provider secret (32 random bytes) is the RFC 8032 private key seed."""
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_text(key: Ed25519PublicKey) -> str:
    """Base64 of the raw 32-byte public key, as verifiers are configured with it."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")
