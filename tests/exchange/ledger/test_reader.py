from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from exchange.ledger.errors import HeaderError, MalformedFile, UndecodableFile, UnsupportedFileType
from exchange.ledger.importer import read_header
from exchange.ledger.reader import CsvSource, XlsxSource, open_source
from exchange.ledger.synthetic import HEADER
from tests.exchange.ledger.helpers import BASE, person, to_csv


def _write(tmp_path: Path, text: str, encoding: str, name: str = "l.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8-sig"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"),
     ("gb18030", "gb18030")],
)  # fmt: skip
def test_encodings_are_detected_and_rows_read_alike(
    tmp_path: Path, encoding: str, detected: str
) -> None:
    path = _write(tmp_path, to_csv([person(0), person(1)]), encoding)
    source = open_source(path)
    assert isinstance(source, CsvSource) and source.encoding == detected
    number, header = source.header()
    assert number == 1 and header == HEADER  # the BOM is not part of the first header
    rows = list(source.rows())
    assert [r.number for r in rows] == [2, 3]
    assert rows[0].cells[0] == person(0)["姓名"]


def test_gbk_bytes_are_not_valid_utf8_so_the_cascade_matters(tmp_path: Path) -> None:
    raw = to_csv([person(0)]).encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_undecodable_file_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes("姓名,身份证号\n".encode() + b"\xff\xfe\x80\x80\xff\n")
    with pytest.raises(UndecodableFile, match="bad.csv: not valid UTF-8 or GB18030"):
        open_source(path)


def test_utf16_is_refused_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "\ufeff" + to_csv([person(0)]), "utf-16-le")
    with pytest.raises(UndecodableFile, match="UTF-16"):
        open_source(path)


def test_nul_bytes_are_malformed(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(b"a,b\x00\n")
    with pytest.raises(MalformedFile, match="NUL"):
        open_source(path)


def test_other_suffixes_are_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFileType, match=r"\.xls"):
        open_source(tmp_path / "old.xls")


def test_title_rows_above_the_header_are_skipped_and_row_numbers_kept(tmp_path: Path) -> None:
    text = "民城路社区孕产妇台账,,\n\n" + to_csv([person(0)])
    source = open_source(_write(tmp_path, text, "utf-8"))
    assert source.header()[0] == 3
    assert [r.number for r in source.rows()] == [4]


def test_a_file_without_a_header_row_is_refused(tmp_path: Path) -> None:
    text = to_csv([person(0)]).split("\n", 1)[1]  # data only
    source = open_source(_write(tmp_path, text, "utf-8"))
    with pytest.raises(HeaderError, match="no header row"):
        source.header()


def test_missing_required_header_is_named(tmp_path: Path) -> None:
    header = tuple(h for h in HEADER if h != "联系电话")
    source = open_source(_write(tmp_path, to_csv([person(0)], header), "utf-8"))
    with pytest.raises(HeaderError, match="required header\\(s\\) missing: 联系电话"):
        read_header(source)


def test_our_formula_neutralisation_is_undone_on_read(tmp_path: Path) -> None:
    text = to_csv([person(0) | {"户": "'-1"}])
    (raw,) = open_source(_write(tmp_path, text, "utf-8")).rows()
    assert raw.cells[HEADER.index("户")] == "-1"


def _workbook(tmp_path: Path, rows: list[list[object]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(HEADER))
    for r in rows:
        sheet.append(r)
    path = tmp_path / "l.xlsx"
    book.save(path)
    return path


def test_xlsx_rows_dates_and_numbers(tmp_path: Path) -> None:
    values: list[object] = [BASE[h] for h in HEADER]
    values[HEADER.index("预产期")] = date(2025, 9, 15)
    values[HEADER.index("孕次")] = 2
    path = _workbook(tmp_path, [values])
    source = open_source(path)
    assert isinstance(source, XlsxSource)
    (raw,) = source.rows()
    assert raw.number == 2
    assert raw.cells[HEADER.index("预产期")] == "2025-09-15"
    assert raw.cells[HEADER.index("孕次")] == "2"
    assert raw.cells[HEADER.index("身份证号")] == BASE["身份证号"]
    assert HEADER.index("孕次") in raw.numeric


def test_xlsx_id_stored_as_number_is_flagged_numeric(tmp_path: Path) -> None:
    values: list[object] = [BASE[h] for h in HEADER]
    values[1] = float(BASE["身份证号"])  # what Excel does to an 18-digit number
    (raw,) = open_source(_workbook(tmp_path, [values])).rows()
    assert 1 in raw.numeric


def test_not_a_workbook_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(MalformedFile, match="fake.xlsx: not a readable .xlsx"):
        open_source(path)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet=["'", "=", "+", "-", "@", "a", " ", "\0", "\t", "李"], max_size=5),
        max_size=6,
    )
)
def test_clean_strips_and_unneutralises_every_cell_exactly(cells: list[str]) -> None:
    from exchange.ledger.reader import _clean, unneutralise

    assert _clean(cells) == tuple(unneutralise(c.strip()) for c in cells)
