"""A streamed one-sheet `.xlsx` report: a few preamble lines (who exported what, when), a
header, the rows, a closing line. openpyxl's write-only mode keeps each appended row in a
temporary file, so memory stays flat in the row count; every cell goes through `safe_row`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

from exchange.exports.cells import CellValue, safe_row


class StreamingSheet:
    def __init__(self, title: str, preamble: Sequence[Sequence[CellValue]],
                 header: Sequence[CellValue]) -> None:  # fmt: skip
        from openpyxl import Workbook  # imported on use: most requests never write a workbook

        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(title)
        for line in preamble:
            self._sheet.append(safe_row(line))
        self._sheet.append([])
        self._sheet.append(safe_row(header))
        self.rows = 0

    def append(self, row: Sequence[CellValue]) -> None:
        # safe_row leaves no text beginning with "=", the only thing openpyxl makes a formula of
        self._sheet.append(safe_row(row))
        self.rows += 1

    def close(self, target: Path | IO[bytes], footer: Sequence[CellValue] = ()) -> None:
        if footer:
            self._sheet.append([])
            self._sheet.append(safe_row(footer))
        self._book.save(target)
