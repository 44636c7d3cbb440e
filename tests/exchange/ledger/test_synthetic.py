import csv
import re
from pathlib import Path

from openpyxl import load_workbook

from exchange.ledger.idnumber import NationalId, parse_national_id
from exchange.ledger.synthetic import HEADER, generate_rows, write_ledger
from exchange.ledger.vocabulary import CHENGYANG_COMMUNITIES
from tests.exchange.ledger.helpers import TODAY


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a = list(generate_rows(50, 9, bad_rows=5, as_of=TODAY))
    assert a == list(generate_rows(50, 9, bad_rows=5, as_of=TODAY))
    assert a != list(generate_rows(50, 10, bad_rows=5, as_of=TODAY))


def test_clean_rows_are_realistic_and_valid() -> None:
    rows = list(generate_rows(300, 1, as_of=TODAY))
    ids = [r[1] for r in rows]
    assert len(set(ids)) == 300
    for r in rows:
        parsed = parse_national_id(r[1])
        assert isinstance(parsed, NationalId) and parsed.area_code == "370214"
        assert parsed.is_female
        assert re.fullmatch(r"1[3-9]\d{9}", r[2])
        assert r[3] in CHENGYANG_COMMUNITIES
        assert 2 <= len(r[0]) <= 4 and not any(ch.isdigit() for ch in r[0])
        assert r[HEADER.index("婚姻状况")] and r[HEADER.index("避孕措施")]  # sensitive filled


def test_csv_output_neutralises_formulas(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    assert write_ledger(path, 200, 2, as_of=TODAY) == 200
    with path.open(encoding="utf-8-sig", newline="") as f:
        cells = [c for r in csv.reader(f) for c in r]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert "'=待核实" in cells or "'-已建档-" in cells


def test_xlsx_output_is_text_not_formulas(tmp_path: Path) -> None:
    path = tmp_path / "l.xlsx"
    write_ledger(path, 40, 2, bad_rows=3, as_of=TODAY)
    book = load_workbook(path, read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    assert rows[0] == HEADER and len(rows) == 41
    assert all(isinstance(r[1], str) and len(r[1]) == 18 for r in rows[1:])
    assert not any(isinstance(v, str) and v.startswith("=") for r in rows for v in r)
