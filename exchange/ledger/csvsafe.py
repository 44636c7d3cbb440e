"""Formula-injection neutralisation for every CSV or workbook the broker writes.

A spreadsheet treats a cell beginning with = + - @ (and tab / carriage return, which Excel
strips before looking) as a formula. Such cells get a leading apostrophe, the OWASP advice;
`reader.unneutralise` strips it again on import.
"""

from __future__ import annotations

from collections.abc import Iterable

_LEADS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(_LEADS) else cell


def neutralise_row(cells: Iterable[str]) -> list[str]:
    return [neutralise(c) for c in cells]
