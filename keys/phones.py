"""Mainland mobile number normalisation before blind indexing. Normalisation only.

One form for every door: the ledger import's validation, a registration, the 居民台账 lookup
and the phone blind index all go through `normalise_mobile`, so the index a writer stores and
the index a lookup computes are of the same text. Full-width digits and signs are folded
(NFKC), spaces, hyphens and brackets dropped, a `+86` (or a bare `86` before 11 digits) country
code removed; what remains must be 11 digits starting 13-19. Errors never contain the number.
"""

from __future__ import annotations

import re
import unicodedata

from keys.errors import InvalidIdentifierError

_MOBILE = re.compile(r"1[3-9]\d{9}")
_NOISE = re.compile(r"[\s\-()]")


def normalise_mobile(raw: str) -> str:
    """The 11-digit form of a mainland mobile number."""
    digits = _NOISE.sub("", unicodedata.normalize("NFKC", raw))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not digits.isascii() or not _MOBILE.fullmatch(digits):
        raise InvalidIdentifierError("mobile number must be 11 digits starting 13-19")
    return digits
