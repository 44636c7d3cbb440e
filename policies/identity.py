"""A policy's identity: id, version and SHA-256 of its canonical content.

The parsed document (not the text: comments and layout do not matter) is canonicalised with
RFC 8785 and hashed under its own domain prefix, so no other hash in the system can collide
with a policy hash by construction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, cast

import rfc8785

from policies.results import PolicyIdentity

HASH_DOMAIN = b"resident-exchange/policy/v1\x00"


def canonical_bytes(document: Mapping[str, object]) -> bytes:
    """RFC 8785 canonical JSON of a parsed policy document."""
    encoded: bytes = rfc8785.dumps(cast("dict[str, Any]", dict(document)))
    return encoded


def policy_digest(document: Mapping[str, object]) -> str:
    return hashlib.sha256(HASH_DOMAIN + canonical_bytes(document)).hexdigest()


def policy_identity(policy_id: str, version: int, document: Mapping[str, object]) -> PolicyIdentity:
    return PolicyIdentity(policy_id, version, policy_digest(document))
