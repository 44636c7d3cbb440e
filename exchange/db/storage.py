"""How ledger values become the plaintext of encrypted columns (and back).

The storage text of a non-string field is part of the storage format: dates are ISO
`YYYY-MM-DD`, parity a decimal integer, risk flags their codes sorted and joined by ",",
sex `F`/`M`. Whoever decrypts a resident (the feed, the reports) decodes with these functions.
"""

from __future__ import annotations

from datetime import date


def encode_date(value: date) -> str:
    return value.isoformat()


def decode_date(text: str) -> date:
    return date.fromisoformat(text)


def encode_int(value: int) -> str:
    return str(value)


def decode_int(text: str) -> int:
    return int(text)


def encode_flags(flags: tuple[str, ...]) -> str:
    return ",".join(sorted(flags))


def decode_flags(text: str) -> tuple[str, ...]:
    return tuple(f for f in text.split(",") if f)
