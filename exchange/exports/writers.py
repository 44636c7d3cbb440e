"""CSV and .xlsx writers; every cell, the header too, goes through `safe_cell`.

CSV: UTF-8 (with a BOM for files, as Excel on a Chinese Windows needs to read UTF-8), RFC 4180
quoting. xlsx: openpyxl's streaming write-only mode, one worksheet; strings are written as text
cells, numbers and dates as themselves, and no cell is ever a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from exchange.exports.cells import CellValue, safe_row

Row = Sequence[CellValue]


def csv_text(header: Row, rows: Iterable[Row], *, lineterminator: str = "\r\n") -> str:
    """The whole CSV as text (small exports: an error report, a re-mapping file)."""
    out = io.StringIO()
    _write_rows(out, header, rows, lineterminator)
    return out.getvalue()


def write_csv(path: Path, header: Row, rows: Iterable[Row], *, encoding: str = "utf-8-sig",
              lineterminator: str = "\r\n") -> int:  # fmt: skip
    """Stream rows to a new or replaced file; returns how many data rows were written."""
    with path.open("w", encoding=encoding, newline="") as out:
        return _write_rows(out, header, rows, lineterminator)


def _write_rows(out: io.TextIOBase | io.StringIO, header: Row, rows: Iterable[Row],
                lineterminator: str) -> int:  # fmt: skip
    writer = csv.writer(out, lineterminator=lineterminator)
    writer.writerow(safe_row(header))
    count = 0
    for row in rows:
        writer.writerow(safe_row(row))
        count += 1
    return count


def write_xlsx(path: Path, header: Row, rows: Iterable[Row], *, sheet: str = "Sheet1") -> int:
    """Stream rows into a one-sheet workbook; returns how many data rows were written."""
    from openpyxl import Workbook  # imported on use: most commands never write a workbook

    book = Workbook(write_only=True)
    worksheet = book.create_sheet(sheet)
    worksheet.append(safe_row(header))
    count = 0
    for row in rows:
        # safe_row leaves no text beginning with "=", the only thing openpyxl makes a formula of
        worksheet.append(safe_row(row))
        count += 1
    book.save(path)
    return count
