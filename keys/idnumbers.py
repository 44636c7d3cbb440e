"""National ID normalisation (GB 11643-1999) before blind indexing. Normalisation only.

Accepts an 18-character number (17 digits + check digit 0-9/X) or a legacy 15-digit number,
which is widened by inserting "19" before the two-digit birth year and appending the ISO 7064
MOD 11-2 check digit. Errors never contain the number.
"""

from __future__ import annotations

from operator import mul

from keys.errors import InvalidIdentifierError

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_ZERO_SUM = ord("0") * sum(_WEIGHTS)  # what the ASCII code of "0" adds to the weighted sum
_CHECK_CHARS = "10X98765432"  # index = weighted sum mod 11


def check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise InvalidIdentifierError("check digit needs exactly 17 ASCII digits")
    # over the ASCII codes, in C (map/mul/sum): every blind index of an import pays this once
    total: int = sum(map(mul, first17.encode("ascii"), _WEIGHTS)) - _ZERO_SUM
    return _CHECK_CHARS[total % 11]


def normalise_national_id(raw: str) -> str:
    """The canonical 18-character form: digits and an upper-case X check character."""
    value = raw.strip().replace(" ", "").upper()
    if not value.isascii():
        raise InvalidIdentifierError("national ID contains non-ASCII characters")
    if len(value) == 15:
        if not value.isdigit():
            raise InvalidIdentifierError("15-digit national ID must be all digits")
        body = value[:6] + "19" + value[6:]
        return body + check_digit(body)
    if len(value) != 18:
        raise InvalidIdentifierError(f"national ID must have 15 or 18 characters, not {len(value)}")
    body, check = value[:17], value[17]
    if not body.isdigit() or not (check.isdigit() or check == "X"):
        raise InvalidIdentifierError("national ID must be 17 digits and a digit or X")
    if check_digit(body) != check:
        raise InvalidIdentifierError("national ID check digit does not match")
    return value
