"""The import template a cadre fills in (`exchange import template`, written by `make run`).

An `.xlsx` workbook: a 台账 sheet with the importable columns only (the never-imported ones
are left out on purpose), each header carrying its hint, the ID, phone and date columns
formatted as text so Excel keeps all 18 digits, and drop-down lists for the closed
vocabularies; and a 填写说明 sheet with each column's rule and three example rows. The
examples are dated relative to the day the template is written, so they are valid that day;
they are synthetic and never on the sheet that is imported. A `.csv` template is the header
line alone (UTF-8 with BOM, as Excel opens it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from exchange.exports import FormattedSheet, csv_text
from exchange.ledger.headers import CANONICAL_HEADERS, Column
from exchange.ledger.idnumber import make_national_id
from exchange.ledger.vocabulary import CHENGYANG_COMMUNITIES

SHEET = "台账"
NOTES_SHEET = "填写说明"
PREFORMATTED_ROWS = 1000  # rows whose text-only columns are formatted as text in advance

# (column, hint shown in the header, rule shown on the notes sheet)
_COLUMNS: tuple[tuple[Column, str, str], ...] = (
    (Column.NAME, "必填", "必填；1-50 个字，不含数字或符号（可用 ·）"),
    (Column.NATIONAL_ID, "必填，18位",
     "必填；18 位身份证号（或 15 位旧号），校验位正确，年龄 14-60 岁"),
    (Column.PHONE, "必填，手机号", "必填；11 位手机号，1 开头，第二位 3-9"),
    (Column.COMMUNITY, "必填", "必填；本街道已登记的社区（可省略“社区”二字）"),
    (Column.COMPOUND, "", "选填；不超过 50 字"),
    (Column.BUILDING, "", "选填；填 3 即为 3号楼"),
    (Column.UNIT, "", "选填；填 2 即为 2单元"),
    (Column.ROOM, "", "选填；门牌号"),
    (Column.STAGE, "备孕/孕期/产后", "必填；备孕、孕期或产后"),
    (Column.DUE_DATE, "YYYY-MM-DD", "孕期必填；90 天前至 300 天后之间的日期"),
    (Column.DELIVERY_DATE, "YYYY-MM-DD",
     "产后填写（或填婴儿出生日期）；不晚于今天，3 年以内"),
    (Column.PARITY, "1-20", "选填；整数 1-20"),
    (Column.RISK_FLAGS, "用、分隔",
     "选填；高龄、妊娠期高血压、妊娠期糖尿病、瘢痕子宫、多胎、前置胎盘、贫血、甲状腺疾病、"
     "产后抑郁，或 无"),
    (Column.CHILD_BIRTH_DATE, "YYYY-MM-DD", "选填；与分娩日期相差不超过 1 天"),
    (Column.CHILD_SEX, "男/女", "选填；男 或 女"),
)  # fmt: skip
_TEXT_COLUMNS = frozenset({Column.NATIONAL_ID, Column.PHONE, Column.ROOM, Column.DUE_DATE,
                           Column.DELIVERY_DATE, Column.CHILD_BIRTH_DATE})  # fmt: skip
_CHOICES = {Column.STAGE: ("备孕", "孕期", "产后"), Column.CHILD_SEX: ("男", "女")}
NEVER_IMPORTED_NOTE = (
    "不要加入婚姻状况、丈夫/配偶信息、避孕措施、流产史、随访记录或备注等列："
    "这些信息不会被导入，也不应离开社区。"
)


def template_header() -> tuple[str, ...]:
    """The header row: each importable column with its hint in brackets (the import ignores
    a trailing bracketed hint when it matches headers)."""
    return tuple(
        f"{CANONICAL_HEADERS[column]}（{hint}）" if hint else CANONICAL_HEADERS[column]
        for column, hint, _ in _COLUMNS
    )


def example_rows(today: date) -> list[tuple[str, ...]]:
    """Three synthetic rows, valid on `today`: pregnant (week 20), postpartum (six weeks), and
    preparing. Same order of columns as `template_header()`."""
    def born(age: int) -> date:
        return date(today.year - age, 6, 15)  # within a year of `age`, never a 29 February

    due = today + timedelta(days=140)
    delivered = today - timedelta(days=42)
    return [
        ("李秀英", make_national_id(born(29), 101), "13912345678", "民城路社区", "春阳花园",
         "3", "2", "501", "孕期", due.isoformat(), "", "1", "", "", ""),
        ("王静", make_national_id(born(34), 202), "15866661234", "瑞阳路社区", "和悦家园",
         "12号楼", "1单元", "1203", "产后", "", delivered.isoformat(), "2", "高龄",
         delivered.isoformat(), "女"),
        ("张丽", make_national_id(born(26), 303), "18765432109", "向阳社区", "", "", "", "",
         "备孕", "", "", "", "", "", ""),
    ]  # fmt: skip


def write_template(
    path: Path, today: date, communities: Sequence[str] = CHENGYANG_COMMUNITIES
) -> None:
    """Write the template as .xlsx (with notes and examples) or .csv (the header alone)."""
    file_format = "csv" if path.suffix.lower() == ".csv" else "xlsx"
    path.write_bytes(template_bytes(file_format, today, communities))


def template_bytes(
    file_format: str, today: date, communities: Sequence[str] = CHENGYANG_COMMUNITIES
) -> bytes:
    """The template as a file's bytes (`file_format` "xlsx" or "csv"): what `exchange import
    template` writes and the console serves. `communities` fill the community drop-down."""
    if file_format == "csv":
        return ("\ufeff" + csv_text(template_header(), [])).encode("utf-8")
    return _xlsx(today, communities).to_bytes()


def _xlsx(today: date, communities: Sequence[str]) -> FormattedSheet:
    sheet = FormattedSheet(SHEET)
    sheet.append(template_header())
    sheet.freeze_header()
    rows = range(2, PREFORMATTED_ROWS + 2)
    choices = {**_CHOICES, Column.COMMUNITY: tuple(communities)}
    sheet.widths([max(10, 2 * len(CANONICAL_HEADERS[column]) + 2 * len(hint) + 2)
                  for column, hint, _ in _COLUMNS])  # fmt: skip
    for i, (column, _, _) in enumerate(_COLUMNS, start=1):
        if column in _TEXT_COLUMNS:
            sheet.text_column(i, rows)  # Excel keeps all 18 digits and the zeros
        if column in choices:
            sheet.choices(i, rows, choices[column], "请从下拉列表中选择")

    notes = sheet.add_sheet(NOTES_SHEET)
    notes.append(["列", "填写要求"])
    for (_column, _, rule_text), header in zip(_COLUMNS, template_header(), strict=True):
        notes.append([header, rule_text])
    notes.append([])
    notes.append(["注意", NEVER_IMPORTED_NOTE])
    notes.append(["日期", "可写作 2025-09-15、2025/9/15、2025.09.15、20250915 或 2025年9月15日"])
    notes.append([])
    notes.append([f"示例（虚构人员，{today.isoformat()} 生成；请勿导入）"])
    notes.append(template_header())
    for row in example_rows(today):
        notes.append(row)
    notes.widths([24, 80])
    return sheet
