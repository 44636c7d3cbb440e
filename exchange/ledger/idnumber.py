"""Resident identity card numbers (GB 11643-1999): check digit, parsing, generation.

The check digit is ISO 7064 MOD 11-2 over the first 17 digits. Old 15-digit numbers (issued
before 1999, year without century, no check digit) are accepted and normalised to 18 digits
the way the public-security system upgraded them: insert "19" before the year, then append the
check digit. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import Enum
from operator import mul

# Weights 2^(17-i) mod 11 for positions 1..17 (ISO 7064 MOD 11-2).
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK_CHARS = "10X98765432"  # indexed by (sum of weighted digits) mod 11
_ZERO_SUM = ord("0") * sum(_WEIGHTS)

# GB/T 2260 province-level codes, plus 81/82/83 (Hong Kong, Macao, Taiwan residence permits).
_PROVINCES = frozenset(
    {
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
        "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
        "63", "64", "65", "71", "81", "82", "83",
    }
)  # fmt: skip

_SHAPE_18 = re.compile(r"\d{17}[\dX]")
_SHAPE_15 = re.compile(r"\d{15}")

CHENGYANG_AREA_CODE = "370214"


class IdProblem(Enum):
    """Why a string is not a valid ID number; the value is never part of the reason."""

    FORMAT = "id_format"
    REGION = "id_region"
    BIRTH_DATE = "id_birth_date"
    CHECK_DIGIT = "id_check_digit"


@dataclass(frozen=True, slots=True, repr=False)
class NationalId:
    """A valid 18-digit ID number. repr never shows the number."""

    value: str

    def __post_init__(self) -> None:
        if parse_national_id(self.value) != self:
            raise ValueError("not a valid normalised 18-digit ID number")

    def __repr__(self) -> str:
        return "NationalId(<redacted>)"

    __str__ = __repr__

    @property
    def area_code(self) -> str:
        return self.value[:6]

    @property
    def birth_date(self) -> date:
        v = self.value
        return date(int(v[6:10]), int(v[10:12]), int(v[12:14]))

    @property
    def is_female(self) -> bool:
        """GB 11643: the 17th digit (sequence code) is odd for men, even for women."""
        return int(self.value[16]) % 2 == 0


def check_digit(first17: str) -> str:
    """The MOD 11-2 check character for 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("need exactly 17 ASCII digits")
    return _CHECK_CHARS[_weighted_sum(first17) % 11]


def _weighted_sum(first17: str) -> int:
    # over the ASCII codes, in C (map/mul/sum), minus what the code of "0" added: once per row
    # of an import, where a generator of int() calls cost several times as much
    total: int = sum(map(mul, first17.encode("ascii"), _WEIGHTS))
    return total - _ZERO_SUM


def canonical_text(text: str) -> str:
    """Strip blanks and full-width forms a spreadsheet may carry; upper-case a trailing x."""
    cleaned = text.strip().replace(" ", "").replace("\u3000", "")
    if not cleaned.isascii():  # the translation only maps non-ASCII characters
        cleaned = cleaned.translate(_FULLWIDTH_DIGITS)
    return cleaned.upper()


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789XX")


def parse_national_id(text: str) -> NationalId | IdProblem:
    """Parse an 18- or 15-digit ID number; a normalised NationalId or the first problem."""
    raw = canonical_text(text)
    if not raw.isascii():  # \d also matches other scripts' digits, which keys would refuse
        return IdProblem.FORMAT
    if _SHAPE_15.fullmatch(raw):
        body = raw[:6] + "19" + raw[6:]
        raw = body + check_digit(body)
    elif not _SHAPE_18.fullmatch(raw):
        return IdProblem.FORMAT
    if raw[:2] not in _PROVINCES:
        return IdProblem.REGION
    try:
        born = date(int(raw[6:10]), int(raw[10:12]), int(raw[12:14]))
    except ValueError:
        return IdProblem.BIRTH_DATE
    if born.year < 1900:
        return IdProblem.BIRTH_DATE
    if _CHECK_CHARS[_weighted_sum(raw[:17]) % 11] != raw[17]:  # the shape was checked above
        return IdProblem.CHECK_DIGIT
    result = object.__new__(NationalId)
    object.__setattr__(result, "value", raw)
    return result


def make_national_id(
    birth_date: date, sequence: int, *, female: bool = True, area: str = CHENGYANG_AREA_CODE
) -> str:
    """Build a valid 18-digit number. `sequence` (0..499) picks the 3-digit order code,
    whose last digit is forced even for women and odd for men."""
    if not (0 <= sequence < 500):
        raise ValueError("sequence must be in 0..499")
    if len(area) != 6 or not area.isdigit():
        raise ValueError("area code must be 6 digits")
    order = sequence * 2 + (0 if female else 1)
    body = f"{area}{birth_date:%Y%m%d}{order:03d}"
    return body + check_digit(body)


def corrupt_check_digit(national_id: str) -> str:
    """The same number with a wrong check character (for synthetic bad rows and tests)."""
    right = national_id[17]
    wrong = _CHECK_CHARS[(_CHECK_CHARS.index(right) + 1) % 11]
    return national_id[:17] + wrong
