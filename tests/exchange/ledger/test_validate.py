from datetime import date

import pytest

from exchange.ledger.headers import HeaderMap, RefusalReason, map_headers
from exchange.ledger.idnumber import corrupt_check_digit, make_national_id
from exchange.ledger.reader import RawRow
from exchange.ledger.report import ImportReport
from exchange.ledger.synthetic import HEADER
from exchange.ledger.validate import LedgerRow, RowError, Rules, parse_date, validate_row
from exchange.ledger.vocabulary import CHENGYANG_COMMUNITIES
from tests.exchange.ledger.helpers import BASE, TODAY, row

RULES = Rules(TODAY, frozenset(CHENGYANG_COMMUNITIES))


def _headers(header: tuple[str, ...] = HEADER) -> HeaderMap:
    mapped = map_headers(header)
    assert isinstance(mapped, HeaderMap)
    return mapped


def _check(values: dict[str, str], rules: Rules = RULES) -> LedgerRow | list[RowError]:
    raw = RawRow(7, tuple(values.get(h, "") for h in HEADER))
    return validate_row(raw, _headers(), rules)


def test_a_good_row_parses_into_typed_values() -> None:
    result = _check(row(高危因素="高龄、妊娠期糖尿病", 楼栋="3", 单元="2"))
    assert isinstance(result, LedgerRow)
    assert result.stage == "pregnant" and result.due_date == date(2025, 9, 15)
    assert result.birth_date == date(1994, 3, 8) and result.parity == 1
    assert result.risk_flags == ("advanced_maternal_age", "gestational_diabetes")
    assert (result.building, result.unit) == ("3号楼", "2单元")
    assert "李秀英" not in repr(result)


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"姓名": ""}, "resident.name", "required"),
        ({"姓名": "李秀英3"}, "resident.name", "name_format"),
        ({"身份证号": ""}, "resident.national_id", "required"),
        ({"身份证号": corrupt_check_digit(BASE["身份证号"])}, "resident.national_id",
         "id_check_digit"),
        ({"身份证号": "37021419940230123X"}, "resident.national_id", "id_birth_date"),
        ({"身份证号": "3702141994030812"}, "resident.national_id", "id_format"),
        ({"身份证号": make_national_id(date(2015, 1, 1), 5)}, "resident.national_id",
         "resident_age"),
        ({"联系电话": "12912345678"}, "resident.phone", "phone_format"),
        ({"联系电话": "1391234567"}, "resident.phone", "phone_format"),
        ({"联系电话": ""}, "resident.phone", "required"),
        ({"社区": "东方红社区"}, "address.community", "community_unknown"),
        ({"孕产状态": "待定"}, "episode.stage", "stage_unknown"),
        ({"预产期": "2025-02-30"}, "episode.due_date", "date_format"),
        ({"预产期": "2027-01-01"}, "episode.due_date", "date_range"),
        ({"预产期": ""}, "episode.due_date", "due_date_missing"),
        ({"孕产状态": "产后", "预产期": "", "分娩日期": "2025-07-01"}, "episode.delivery_date",
         "date_future"),
        ({"孕产状态": "产后", "预产期": "", "分娩日期": "2019-07-01"}, "episode.delivery_date",
         "date_range"),
        ({"孕产状态": "产后", "预产期": ""}, "episode.delivery_date", "delivery_missing"),
        ({"孕产状态": "产后", "分娩日期": "2025-01-01", "婴儿出生日期": "2025-03-01"},
         "child.birth_date", "dates_inconsistent"),
        ({"孕次": "0"}, "episode.parity", "parity_format"),
        ({"孕次": "两"}, "episode.parity", "parity_format"),
        ({"高危因素": "心脏病史"}, "episode.risk_flags", "risk_flag_unknown"),
        ({"婴儿性别": "未知"}, "child.sex", "sex_unknown"),
        ({"小区": "春" * 60}, "address.compound", "text_format"),
    ],
)  # fmt: skip
def test_each_rule_names_row_field_and_reason_without_the_value(
    changes: dict[str, str], field: str, reason: str
) -> None:
    values = row(**changes)
    result = _check(values)
    assert isinstance(result, list)
    assert (7, field, reason) in [(e.row, e.field, e.reason) for e in result]
    report = ImportReport(source="t.csv", partial=False)
    report.add_errors(result)
    rendered = report.to_text() + report.to_json() + report.errors_csv()
    personal = {"姓名", "身份证号", "联系电话", "社区", "小区", "预产期", "分娩日期",
                "婴儿出生日期", "高危因素", "孕次"}
    for header in personal:
        value = values[header]
        if len(value) >= 2:
            assert value not in rendered, header
    assert "row 7" in report.to_text()


def test_all_problems_of_a_row_are_reported_not_just_the_first() -> None:
    result = _check(row(联系电话="123", 社区="无名社区", 孕次="x"))
    assert isinstance(result, list)
    assert {e.reason for e in result} == {"phone_format", "community_unknown", "parity_format"}


def test_community_without_the_suffix_and_cadre_scope() -> None:
    result = _check(row(社区="民城路"))
    assert isinstance(result, LedgerRow) and result.community == "民城路社区"
    scoped = Rules(TODAY, RULES.communities, frozenset({"后田社区"}))
    errors = _check(row(), scoped)
    assert isinstance(errors, list) and errors[0].reason == "community_out_of_scope"


def test_phone_separators_and_country_code_are_accepted() -> None:
    for text in ("139 1234 5678", "139-1234-5678", "+86 13912345678"):
        result = _check(row(联系电话=text))
        assert isinstance(result, LedgerRow) and result.phone == "13912345678"


def test_xlsx_numeric_id_cell_is_explained() -> None:
    cells = tuple(row().get(h, "") for h in HEADER)
    raw = RawRow(3, cells, numeric=frozenset({1}))
    result = validate_row(raw, _headers(), RULES)
    assert isinstance(result, list) and result[0].reason == "id_stored_as_number"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2025-09-15", date(2025, 9, 15)), ("2025/9/5", date(2025, 9, 5)),
     ("2025年9月5日", date(2025, 9, 5)), ("20250905", date(2025, 9, 5)),
     ("2025.09.05", date(2025, 9, 5)), ("2025-09-15T00:00:00", date(2025, 9, 15)),
     ("2025-02-29", None), ("next week", None)],
)  # fmt: skip
def test_date_formats(text: str, expected: date | None) -> None:
    assert parse_date(text) == expected


def test_refused_headers_are_listed_with_reason() -> None:
    header = (*HEADER, "工作单位", "丈夫工作单位", "孕产状态（备孕/孕期/产后）")
    mapped = map_headers(header)
    assert isinstance(mapped, tuple)  # 孕产状态 twice
    assert "appears twice" in mapped[0]
    mapped = map_headers((*HEADER, "工作单位", "丈夫工作单位"))
    assert isinstance(mapped, HeaderMap)
    refused = {r.header: (r.reason, r.catalogue_field) for r in mapped.refused}
    assert refused == {
        "婚姻状况": (RefusalReason.NEVER_IMPORTED, "ledger.marriage"),
        "丈夫姓名": (RefusalReason.NEVER_IMPORTED, "ledger.husband"),
        "丈夫身份证号": (RefusalReason.NEVER_IMPORTED, "ledger.husband"),
        "避孕措施": (RefusalReason.NEVER_IMPORTED, "ledger.contraception"),
        "流产史": (RefusalReason.NEVER_IMPORTED, "ledger.terminations"),
        "备注": (RefusalReason.NEVER_IMPORTED, "ledger.cadre_notes"),
        "工作单位": (RefusalReason.UNKNOWN, None),
        "丈夫工作单位": (RefusalReason.NEVER_IMPORTED, "ledger.husband"),
    }


def test_header_hints_and_full_width_brackets_are_ignored() -> None:
    header = tuple("孕产状态（备孕/孕期/产后）" if h == "孕产状态" else h for h in HEADER)
    assert isinstance(map_headers(header), HeaderMap)
