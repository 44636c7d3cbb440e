"""Streaming reads of a ledger file: header row, then (row number, cells) one at a time.

CSV encodings are found by a strict cascade, not by guessing: UTF-8 (a BOM is allowed and
dropped), then GB18030 (a superset of GBK and GB2312, what Excel writes on a Chinese Windows).
Every byte must decode; a file that decodes under neither is refused whole. The cascade is a
streaming pre-pass over the bytes, so memory stays bounded whatever the file size.

Row numbers are the ones a spreadsheet shows: the first record is row 1. Fully blank rows are
skipped. Up to `HEADER_SEARCH_ROWS` title rows above the header (a sheet caption such as
"民城路社区孕产妇台账") are tolerated.

Formula neutralisation (`exchange.exports`) prefixes a cell beginning with = + - @ (or a tab or
carriage return) with an apostrophe; a reader strips that apostrophe again so our own exports
import unchanged (the validation then refuses free text that begins with a formula lead).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from exchange.exports import FORMULA_LEADS, unneutralise
from exchange.ledger.errors import (
    HeaderError,
    MalformedFile,
    UndecodableFile,
    UnsupportedFileType,
)
from exchange.ledger.headers import looks_like_header

ENCODINGS = ("utf-8-sig", "gb18030")
HEADER_SEARCH_ROWS = 10
MAX_CELL_CHARS = 1000
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row. `numeric` holds the indexes of cells that were numbers in a workbook."""

    number: int
    cells: tuple[str, ...]
    numeric: frozenset[int] = frozenset()


class LedgerSource(Protocol):
    """Something that can be read twice, row by row (the importer validates, then writes)."""

    @property
    def description(self) -> str: ...

    def header(self) -> tuple[int, tuple[str, ...]]: ...

    def rows(self) -> Iterator[RawRow]: ...


def open_source(path: Path) -> LedgerSource:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return CsvSource(path)
    if suffix == ".xlsx":
        return XlsxSource(path)
    raise UnsupportedFileType(
        f"{path.name}: unsupported file type {suffix or '(none)'!r}; use .csv or .xlsx"
    )


def detect_encoding(path: Path) -> str:
    """The first encoding of the cascade under which every byte of the file decodes."""
    try:
        with path.open("rb") as probe:
            head = probe.read(4)
    except OSError as exc:
        raise MalformedFile(f"{path.name}: cannot be read ({exc.strerror})") from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UndecodableFile(
            f"{path.name}: UTF-16 text is not supported; save as 'CSV UTF-8' or plain CSV"
        )
    for encoding in ENCODINGS:
        if _decodes(path, encoding):
            return encoding
    raise UndecodableFile(
        f"{path.name}: not valid UTF-8 or GB18030/GBK text; save the sheet as 'CSV UTF-8'"
    )


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with path.open("rb") as stream:
        try:
            while chunk := stream.read(_CHUNK):
                if b"\x00" in chunk:
                    raise MalformedFile(f"{path.name}: contains NUL bytes; not a text CSV file")
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _clean(cells: list[str]) -> tuple[str, ...]:
    stripped = tuple(map(str.strip, cells))
    # a cell starting with an apostrophe is rare: only then look at each cell. One join finds
    # it (a NUL before every cell; a NUL inside a cell can only make the check look closer)
    joined = "\0" + "\0".join(stripped)
    if "\0'" not in joined:
        return stripped
    if joined.count("\0") != len(stripped):  # a NUL inside a cell: look at each cell
        return tuple(map(unneutralise, stripped))
    # every NUL starts a cell, so "\0'=" is exactly a neutralised cell's start (a quarter of
    # the rows of a ledger we exported: a per-cell call each costs more than four replaces)
    for lead in FORMULA_LEADS:
        joined = joined.replace("\0'" + lead, "\0" + lead)
    return tuple(joined[1:].split("\0"))


def _find_header(rows: Iterator[RawRow], name: str) -> RawRow:
    for row in rows:
        if looks_like_header(row.cells):
            return row
        if row.number >= HEADER_SEARCH_ROWS:
            break
    raise HeaderError(
        f"{name}: no header row naming 姓名 and 身份证号 in the first {HEADER_SEARCH_ROWS} rows"
    )


class CsvSource:
    def __init__(self, path: Path) -> None:
        self._path = path
        self.encoding = detect_encoding(path)

    @property
    def description(self) -> str:
        return f"{self._path.name} (CSV, {self.encoding})"

    def _records(self) -> Iterator[RawRow]:
        name = self._path.name
        with self._path.open("r", encoding=self.encoding, newline="") as text:
            reader = csv.reader(text)
            number = 0
            try:
                for number, record in enumerate(reader, start=1):  # noqa: B007
                    if record and max(map(len, record)) > MAX_CELL_CHARS:
                        raise MalformedFile(
                            f"{name}: row {number} has a cell over {MAX_CELL_CHARS} characters"
                        )
                    cells = _clean(record)
                    if any(cells):
                        yield RawRow(number, cells)
            except csv.Error as exc:
                raise MalformedFile(f"{name}: row {number + 1} is not valid CSV ({exc})") from None

    def header(self) -> tuple[int, tuple[str, ...]]:
        found = _find_header(self._records(), self._path.name)
        return found.number, found.cells

    def rows(self) -> Iterator[RawRow]:
        records = self._records()
        header = _find_header(records, self._path.name)
        width = len(header.cells)
        for row in records:
            if len(row.cells) > width and any(row.cells[width:]):
                raise MalformedFile(
                    f"{self._path.name}: row {row.number} has more cells than the header"
                )
            yield row


def _cell_text(value: object) -> tuple[str, bool]:
    """A workbook cell as text; True when it was a number (IDs stored as numbers lose digits)."""
    if value is None:
        return "", False
    if isinstance(value, dt.datetime):
        return (value.date().isoformat() if value.time() == dt.time() else value.isoformat()), False
    if isinstance(value, dt.date):
        return value.isoformat(), False
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        return (str(int(value)) if value.is_integer() else repr(value)), True
    return unneutralise(str(value).strip()), False


class XlsxSource:
    """The first worksheet of a workbook, read with openpyxl's streaming read-only mode."""

    def __init__(self, path: Path) -> None:
        self._path = path
        with self._open():
            pass  # fail early, and clearly, on a file that is not a workbook

    @property
    def description(self) -> str:
        return f"{self._path.name} (xlsx)"

    def _open(self) -> _Workbook:
        return _Workbook(self._path)

    def _records(self) -> Iterator[RawRow]:
        with self._open() as sheet:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                texts = [_cell_text(v) for v in values]
                while texts and not texts[-1][0]:
                    texts.pop()
                if not texts:
                    continue
                if any(len(t) > MAX_CELL_CHARS for t, _ in texts):
                    raise MalformedFile(
                        f"{self._path.name}: row {number} has a cell over {MAX_CELL_CHARS} "
                        "characters"
                    )
                numeric = frozenset(i for i, (_, was_number) in enumerate(texts) if was_number)
                yield RawRow(number, tuple(t for t, _ in texts), numeric)

    def header(self) -> tuple[int, tuple[str, ...]]:
        found = _find_header(self._records(), self._path.name)
        return found.number, found.cells

    def rows(self) -> Iterator[RawRow]:
        records = self._records()
        _find_header(records, self._path.name)
        yield from records


class _Workbook:
    """Context manager over openpyxl's read-only workbook; converts its errors once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._book: object = None

    def __enter__(self) -> _Sheet:
        from zipfile import BadZipFile

        import openpyxl

        try:
            book = openpyxl.load_workbook(self._path, read_only=True, data_only=True)
        except (BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
            raise MalformedFile(
                f"{self._path.name}: not a readable .xlsx workbook ({type(exc).__name__})"
            ) from None
        self._book = book
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise MalformedFile(f"{self._path.name}: the workbook has no worksheet")
        return _Sheet(sheet)

    def __exit__(self, *exc: object) -> None:
        close = getattr(self._book, "close", None)
        if close is not None:
            close()


class _Sheet:
    def __init__(self, sheet: object) -> None:
        self._sheet = sheet

    def iter_rows(self, *, values_only: bool) -> Iterator[tuple[object, ...]]:
        yield from self._sheet.iter_rows(values_only=values_only)  # type: ignore[attr-defined]


class MemorySource:
    """Rows produced on demand (the synthetic generator feeds `load_demo` through this)."""

    def __init__(
        self,
        header: tuple[str, ...],
        produce: Callable[[], Iterator[tuple[str, ...]]],
        description: str = "in-memory ledger",
    ) -> None:
        self._header = header
        self._produce = produce
        self._description = description

    @property
    def description(self) -> str:
        return self._description

    def header(self) -> tuple[int, tuple[str, ...]]:
        return 1, self._header

    def rows(self) -> Iterator[RawRow]:
        for number, cells in enumerate(self._produce(), start=2):
            yield RawRow(number, _clean(list(cells)))


def text_source(text: str, name: str = "ledger.csv") -> LedgerSource:
    """A CSV given as a string (tests, the API's upload after decoding)."""
    header_and_rows = list(csv.reader(io.StringIO(text)))
    if not header_and_rows:
        raise HeaderError(f"{name}: empty file")
    head = tuple(header_and_rows[0])
    body = [tuple(r) for r in header_and_rows[1:]]
    return MemorySource(head, lambda: iter(body), name)
