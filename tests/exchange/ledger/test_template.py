"""The import template and the sample ledger stay valid whatever today's date is.

Both are written relative to the day they are made; these tests make them on today's date and
on awkward ones (leap day, year end, year start, far ahead) and import them on that same day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from exchange.ledger.headers import map_headers
from exchange.ledger.importer import ensure_communities, import_ledger
from exchange.ledger.reader import open_source
from exchange.ledger.report import ImportReport
from exchange.ledger.synthetic import write_ledger
from exchange.ledger.template import (
    NOTES_SHEET,
    SHEET,
    example_rows,
    template_header,
    write_template,
)
from policies import office_date
from tests.exchange import factories as f

TODAY = office_date(datetime.now(UTC))
DAYS = [TODAY, date(2028, 2, 29), date(2026, 12, 31), date(2027, 1, 1), date(2041, 7, 15)]


def _import(session: Session, path: Path, today: date) -> ImportReport:
    ensure_communities(session)
    return import_ledger(session, f.keyring(), open_source(path), today=today, workers=0)


def test_the_header_maps_every_importable_column_and_refuses_none() -> None:
    mapped = map_headers(list(template_header()))
    assert not isinstance(mapped, tuple), mapped
    assert mapped.refused == ()


@pytest.mark.parametrize("today", DAYS, ids=str)
def test_template_examples_import_on_the_day_it_was_made(
    session_factory: sessionmaker[Session], tmp_path: Path, today: date
) -> None:
    path = tmp_path / "template.xlsx"
    write_template(path, today)
    book = load_workbook(path)
    notes = [r for r in book[NOTES_SHEET].iter_rows(values_only=True) if any(r)]
    examples = [tuple(c or "" for c in r) for r in notes[-3:]]
    assert examples == example_rows(today)  # the notes show exactly the tested rows
    sheet = book[SHEET]
    for row in examples:  # the cadre copies them into the sheet that is imported
        sheet.append(list(row))
    book.save(path)
    with session_factory() as session:
        report = _import(session, path, today)
    assert report.ok and report.rows_valid == 3 and report.inserted == 3, report.to_text()
    assert report.refused_columns == ()


def test_empty_template_reads_as_no_rows(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    for name in ("template.xlsx", "template.csv"):
        write_template(tmp_path / name, TODAY)
        with session_factory() as session:
            report = _import(session, tmp_path / name, TODAY)
        assert report.ok and report.rows_read == 0 and not report.applied, name


def test_template_keeps_ids_as_text(tmp_path: Path) -> None:
    write_template(tmp_path / "t.xlsx", TODAY)
    sheet = load_workbook(tmp_path / "t.xlsx")[SHEET]
    id_column = next(c for c in sheet[1] if str(c.value).startswith("身份证号"))
    assert sheet.cell(row=2, column=id_column.column).number_format == "@"
    assert sheet.data_validations.dataValidation, "drop-down lists for closed vocabularies"


@pytest.mark.parametrize("today", DAYS, ids=str)
def test_sample_ledger_imports_cleanly_on_the_day_it_was_made(
    session_factory: sessionmaker[Session], tmp_path: Path, today: date
) -> None:
    path = tmp_path / "ledger-sample.csv"
    write_ledger(path, 12, 2025, as_of=today)
    with session_factory() as session:
        report = _import(session, path, today)
    assert report.ok and report.rows_valid == 12, report.to_text()
