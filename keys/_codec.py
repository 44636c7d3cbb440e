"""Unambiguous byte encodings for associated data and KDF info (length-prefixed parts)."""

from __future__ import annotations

import base64

from keys.errors import FormatError


def framed(domain: bytes, *parts: str | bytes) -> bytes:
    """`domain` then each part as a 4-byte big-endian length and its bytes.

    Length prefixes keep ("ab", "c") and ("a", "bc") apart; the domain keeps uses apart.
    """
    out = bytearray(domain)
    out += b"\x00"
    for part in parts:
        raw = part.encode("utf-8") if isinstance(part, str) else part
        out += len(raw).to_bytes(4, "big")
        out += raw
    return bytes(out)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64url(text: str, what: str) -> bytes:
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise FormatError(f"{what} is not valid base64url") from exc
