"""Errors of the ledger import, one tree.

    LedgerError                      base; never carries a personal value
    ├── LedgerFileError              the file as a whole cannot be imported (nothing changes)
    │   ├── UnsupportedFileType      not .csv / .xlsx
    │   ├── UndecodableFile          neither UTF-8 (with or without BOM) nor GB18030/GBK
    │   ├── MalformedFile            not a readable CSV / xlsx (binary data, NUL bytes, bad zip)
    │   └── HeaderError              header row missing, a required header absent, or duplicated
    └── FileChangedDuringImport      the second streaming pass disagrees with the first

Row-level problems are not exceptions: they are `validate.RowError` values collected in the
`report.ImportReport`.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every ledger import error. Messages name files, rows and headers, never values."""


class LedgerFileError(LedgerError):
    """The file as a whole cannot be imported."""


class UnsupportedFileType(LedgerFileError):
    pass


class UndecodableFile(LedgerFileError):
    pass


class MalformedFile(LedgerFileError):
    pass


class HeaderError(LedgerFileError):
    pass


class FileChangedDuringImport(LedgerError):
    pass
