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


class FormattedSheet:
    """A one-sheet workbook for a report people read (a title, a table, notes), appended row by
    row through `safe_row`, with the little formatting a report needs: bold rows, a comment on a
    cell, right-aligned figures, column widths. Not streamed: for tables of hundreds of rows."""

    def __init__(self, title: str) -> None:
        from openpyxl import Workbook  # imported on use, as in write_xlsx

        self._book = Workbook()
        sheet = self._book.active
        assert sheet is not None  # a new workbook has its one sheet
        sheet.title = title[:31]  # the format's limit
        self._sheet = sheet

    def append(self, row: Row) -> int:
        """Add a row; returns its 1-based row number."""
        self._sheet.append(safe_row(row))
        return int(self._sheet.max_row)

    def bold(self, row: int) -> None:
        from openpyxl.styles import Font

        for cell in self._sheet[row]:
            cell.font = Font(bold=True)

    def comment(self, row: int, column: int, text: str) -> None:
        from openpyxl.comments import Comment

        self._sheet.cell(row=row, column=column).comment = Comment(text, "exchange")

    def align_right(self, column: int, first_row: int) -> None:
        from openpyxl.styles import Alignment

        for (cell,) in self._sheet.iter_rows(min_row=first_row, min_col=column, max_col=column):
            cell.alignment = Alignment(horizontal="right")

    def widths(self, widths: Sequence[int]) -> None:
        from openpyxl.utils import get_column_letter

        for index, width in enumerate(widths, start=1):
            self._sheet.column_dimensions[get_column_letter(index)].width = width

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self._book.save(buffer)
        return buffer.getvalue()
