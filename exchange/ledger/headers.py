"""The ledger's column headers: which we read, which we refuse, and how a header is matched.

A cadre's spreadsheet names columns in Chinese with small variations (full-width brackets, a
hint such as "孕产状态(备孕/孕期/产后)", "身份证号码" for "身份证号"). Headers are compared
after NFKC normalisation, with blanks and any bracketed hint removed.

Columns that carry data no policy may ever use (marriage, husband, contraception, terminations,
cadre notes) are refused by name; any header we do not know is refused too. Refused columns are
never read past the header row and never stored; the import report lists them by header.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum


class Column(Enum):
    """Columns the broker reads. Values are the source-field names of policies/catalogue."""

    NAME = "resident.name"
    NATIONAL_ID = "resident.national_id"
    PHONE = "resident.phone"
    DISTRICT = "address.district"
    STREET = "address.street"
    COMMUNITY = "address.community"
    COMPOUND = "address.compound"
    BUILDING = "address.building"
    UNIT = "address.unit"
    ROOM = "address.room"
    STAGE = "episode.stage"
    DUE_DATE = "episode.due_date"
    DELIVERY_DATE = "episode.delivery_date"
    PARITY = "episode.parity"
    RISK_FLAGS = "episode.risk_flags"
    CHILD_BIRTH_DATE = "child.birth_date"
    CHILD_SEX = "child.sex"


# The header written by the synthetic generator and documented in docs/import.md.
CANONICAL_HEADERS: dict[Column, str] = {
    Column.NAME: "姓名",
    Column.NATIONAL_ID: "身份证号",
    Column.PHONE: "联系电话",
    Column.DISTRICT: "区",
    Column.STREET: "街道",
    Column.COMMUNITY: "社区",
    Column.COMPOUND: "小区",
    Column.BUILDING: "楼栋",
    Column.UNIT: "单元",
    Column.ROOM: "户",
    Column.STAGE: "孕产状态",
    Column.DUE_DATE: "预产期",
    Column.DELIVERY_DATE: "分娩日期",
    Column.PARITY: "孕次",
    Column.RISK_FLAGS: "高危因素",
    Column.CHILD_BIRTH_DATE: "婴儿出生日期",
    Column.CHILD_SEX: "婴儿性别",
}

_ALIASES: dict[str, Column] = {
    "身份证号码": Column.NATIONAL_ID,
    "身份证": Column.NATIONAL_ID,
    "公民身份号码": Column.NATIONAL_ID,
    "手机号": Column.PHONE,
    "手机号码": Column.PHONE,
    "联系方式": Column.PHONE,
    "电话": Column.PHONE,
    "所属社区": Column.COMMUNITY,
    "小区名称": Column.COMPOUND,
    "楼号": Column.BUILDING,
    "单元号": Column.UNIT,
    "门牌号": Column.ROOM,
    "户号": Column.ROOM,
    "室": Column.ROOM,
    "孕产期状态": Column.STAGE,
    "状态": Column.STAGE,
    "末次分娩日期": Column.DELIVERY_DATE,
    "孕产次": Column.PARITY,
    "高危": Column.RISK_FLAGS,
    "高危因素标记": Column.RISK_FLAGS,
    "新生儿出生日期": Column.CHILD_BIRTH_DATE,
    "婴儿生日": Column.CHILD_BIRTH_DATE,
    "新生儿性别": Column.CHILD_SEX,
    "所属区": Column.DISTRICT,
    "区县": Column.DISTRICT,
    "所属街道": Column.STREET,
}

REQUIRED: frozenset[Column] = frozenset(
    {Column.NAME, Column.NATIONAL_ID, Column.PHONE, Column.COMMUNITY, Column.STAGE}
)


class RefusalReason(Enum):
    NEVER_IMPORTED = "never_imported"  # a known sensitive column no policy may use
    UNKNOWN = "unknown"  # a header the broker does not know


# Sensitive columns, by the catalogue name of what they hold (policies/catalogue "ledger.*").
_SENSITIVE: dict[str, str] = {
    "婚姻状况": "ledger.marriage",
    "婚姻": "ledger.marriage",
    "婚否": "ledger.marriage",
    "结婚日期": "ledger.marriage",
    "丈夫姓名": "ledger.husband",
    "丈夫身份证号": "ledger.husband",
    "丈夫身份证号码": "ledger.husband",
    "丈夫电话": "ledger.husband",
    "配偶姓名": "ledger.husband",
    "配偶身份证号": "ledger.husband",
    "避孕措施": "ledger.contraception",
    "避孕方式": "ledger.contraception",
    "节育措施": "ledger.contraception",
    "流产史": "ledger.terminations",
    "流产史/引产": "ledger.terminations",
    "引产": "ledger.terminations",
    "人流次数": "ledger.terminations",
    "备注": "ledger.cadre_notes",
    "随访备注": "ledger.cadre_notes",
    "随访记录": "ledger.cadre_notes",
}

_HINT = re.compile(r"\(.*?\)$")
_BLANKS = re.compile(r"\s+")
_MAX_SHOWN = 40


def normalise_header(text: str) -> str:
    """NFKC, no blanks, no trailing bracketed hint: "孕产状态（备孕/孕期/产后）" -> "孕产状态"."""
    folded = _BLANKS.sub("", unicodedata.normalize("NFKC", text))
    return _HINT.sub("", folded) or folded


def _lookup() -> dict[str, Column]:
    table = {normalise_header(h): c for c, h in CANONICAL_HEADERS.items()}
    table.update({normalise_header(h): c for h, c in _ALIASES.items()})
    return table


_KNOWN = _lookup()
_SENSITIVE_NORMALISED = {normalise_header(h): field for h, field in _SENSITIVE.items()}


def _is_sensitive(key: str) -> str | None:
    if key in _SENSITIVE_NORMALISED:
        return _SENSITIVE_NORMALISED[key]
    # Variants such as "丈夫工作单位" or "避孕措施及时间" are refused as sensitive too.
    for stem, field in (
        ("丈夫", "ledger.husband"),
        ("配偶", "ledger.husband"),
        ("避孕", "ledger.contraception"),
        ("节育", "ledger.contraception"),
        ("流产", "ledger.terminations"),
        ("引产", "ledger.terminations"),
        ("婚", "ledger.marriage"),
        ("备注", "ledger.cadre_notes"),
    ):
        if stem in key:
            return field
    return None


def shown(header: str) -> str:
    """A header as it may appear in a report: printable and short."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in header.strip())
    return printable if len(printable) <= _MAX_SHOWN else printable[: _MAX_SHOWN - 1] + "…"


@dataclass(frozen=True, slots=True)
class RefusedColumn:
    position: int  # 1-based column number, as a spreadsheet shows it (A = 1)
    header: str  # as shown in reports (see `shown`)
    reason: RefusalReason
    catalogue_field: str | None  # "ledger.contraception" etc. for known sensitive columns


@dataclass(frozen=True, slots=True)
class HeaderMap:
    """Which 0-based cell index holds each accepted column; what was refused."""

    columns: dict[Column, int]
    refused: tuple[RefusedColumn, ...]
    width: int


def map_headers(cells: tuple[str, ...]) -> HeaderMap | tuple[str, ...]:
    """Map a header row. Returns the map, or the problems (missing/duplicated headers)."""
    columns: dict[Column, int] = {}
    refused: list[RefusedColumn] = []
    problems: list[str] = []
    for index, cell in enumerate(cells):
        key = normalise_header(cell)
        if not key:
            continue
        column = _KNOWN.get(key)
        if column is not None and _is_sensitive(key) is None:
            if column in columns:
                problems.append(
                    f"header {CANONICAL_HEADERS[column]!r} appears twice "
                    f"(columns {columns[column] + 1} and {index + 1})"
                )
            else:
                columns[column] = index
            continue
        field = _is_sensitive(key)
        refused.append(
            RefusedColumn(
                position=index + 1,
                header=shown(cell),
                reason=RefusalReason.UNKNOWN if field is None else RefusalReason.NEVER_IMPORTED,
                catalogue_field=field,
            )
        )
    missing = sorted(REQUIRED - columns.keys(), key=lambda c: list(Column).index(c))
    if missing:
        problems.append(
            "required header(s) missing: " + ", ".join(CANONICAL_HEADERS[c] for c in missing)
        )
    if problems:
        return tuple(problems)
    return HeaderMap(columns=columns, refused=tuple(refused), width=len(cells))


def looks_like_header(cells: tuple[str, ...]) -> bool:
    """A row is the header row if it names both 姓名 and an ID-number column."""
    keys = {_KNOWN.get(normalise_header(c)) for c in cells}
    return Column.NAME in keys and Column.NATIONAL_ID in keys
