"""One raw ledger row -> a `LedgerRow` (valid once constructed) or the list of its `RowError`s.

Pure: the clock (`today`) and the set of known communities are handed in. Error messages are
fixed texts per reason code: they say what is expected, never what was found, so a report can
be shown, logged or mailed without leaking a personal value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from exchange.ledger.headers import CANONICAL_HEADERS, Column, HeaderMap
from exchange.ledger.idnumber import IdProblem, NationalId, parse_national_id
from exchange.ledger.reader import RawRow
from exchange.ledger.vocabulary import DISTRICT, RISK_FLAGS, SEXES, STAGES, STREET

MIN_RESIDENT_AGE = 14
MAX_RESIDENT_AGE = 60
MAX_PARITY = 20
PROGRAMME_SPAN = timedelta(days=3 * 366)  # pregnancy to age two, and some slack
DUE_DATE_PAST = timedelta(days=90)
DUE_DATE_FUTURE = timedelta(days=300)
MAX_TEXT = 50

MESSAGES: dict[str, str] = {
    "required": "is required",
    "id_format": "must be 18 characters (17 digits and a digit or X) or 15 digits",
    "id_region": "does not start with a valid province code",
    "id_birth_date": "contains an impossible birth date",
    "id_check_digit": "check digit is wrong (GB 11643 / ISO 7064 MOD 11-2)",
    "id_stored_as_number": "was stored as a number by Excel and lost digits; format the "
    "column as text and re-enter it",
    "resident_age": f"gives an age outside {MIN_RESIDENT_AGE}-{MAX_RESIDENT_AGE} years",
    "duplicate_in_file": "repeats the ID number of an earlier row in this file",
    "phone_format": "must be a mainland mobile number: 11 digits starting 13-19",
    "name_format": f"must be 1-{MAX_TEXT} characters of a name (no digits or symbols)",
    "community_unknown": "is not a known community of this street office",
    "community_out_of_scope": "is outside the communities this import may write",
    "district_mismatch": f"must be {DISTRICT}",
    "street_mismatch": f"must be {STREET}",
    "text_format": f"must be at most {MAX_TEXT} printable characters",
    "stage_unknown": "must be one of 备孕, 孕期, 产后",
    "date_format": "must be a real calendar date (YYYY-MM-DD)",
    "date_future": "cannot be in the future",
    "date_range": "is outside the plausible range for this programme",
    "due_date_missing": "is required when 孕产状态 is 孕期",
    "delivery_missing": "分娩日期 or 婴儿出生日期 is required when 孕产状态 is 产后",
    "dates_inconsistent": "does not match 分娩日期",
    "parity_format": f"must be a whole number from 1 to {MAX_PARITY}",
    "risk_flag_unknown": "names a risk factor not in the documented list",
    "sex_unknown": "must be 男 or 女",
}


@dataclass(frozen=True, slots=True)
class RowError:
    """A problem with one field of one row. `message` never contains the value."""

    row: int
    field: str  # catalogue name, e.g. "resident.phone"
    reason: str  # reason code, a key of MESSAGES
    header: str  # the header as the cadre knows it, e.g. "联系电话"

    @property
    def message(self) -> str:
        return f"{self.header} {MESSAGES[self.reason]}"


@dataclass(frozen=True, slots=True, repr=False)
class LedgerRow:
    """A validated row. repr shows the row number only."""

    row: int
    name: str
    national_id: NationalId
    phone: str
    community: str
    compound: str | None
    building: str | None
    unit: str | None
    room: str | None
    stage: str
    due_date: date | None
    delivery_date: date | None
    parity: int | None
    risk_flags: tuple[str, ...]
    child_birth_date: date | None
    child_sex: str | None

    @property
    def birth_date(self) -> date:
        return self.national_id.birth_date

    def __repr__(self) -> str:
        return f"LedgerRow(row={self.row}, <redacted>)"


@dataclass(frozen=True, slots=True)
class Rules:
    """What a row is checked against: the clock and the communities that exist (and may be
    written by this import)."""

    today: date
    communities: frozenset[str]
    allowed_communities: frozenset[str] | None = None  # a cadre's scope; None = all


_PHONE = re.compile(r"1[3-9]\d{9}")
_PHONE_NOISE = re.compile(r"[\s\-()]")
_NAME_BAD = re.compile(r"[\d\W_]", re.UNICODE)
_NAME_JOINERS = "·•・ "
_DATE_PATTERNS = (
    re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"),
    re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
    re.compile(r"(\d{4})\.(\d{1,2})\.(\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
_FLAG_SEPARATORS = re.compile(r"[、,，;；/\s]+")
_NONE_WORDS = frozenset({"无", "否", "none", "-", "/"})


def parse_date(text: str) -> date | None:
    """A calendar date in the formats spreadsheets produce; None when not a real date."""
    folded = unicodedata.normalize("NFKC", text).strip()
    if "T" in folded:  # an ISO datetime from a workbook cell
        folded = folded.split("T", 1)[0]
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(folded)
        if match:
            year, month, day = (int(g) for g in match.groups())
            try:
                return date(year, month, day)
            except ValueError:
                return None
    return None


_positions_of: tuple[HeaderMap | None, dict[str, int]] = (None, {})


def _positions(headers: HeaderMap) -> dict[str, int]:
    """The header map keyed by column *name*: Enum members hash in Python, str in C, and a
    row looks columns up ~25 times. Cached for the last header map (one per import)."""
    global _positions_of
    cached, positions = _positions_of
    if cached is not headers:
        positions = {column.name: index for column, index in headers.columns.items()}
        _positions_of = (headers, positions)
    return positions


class _Checker:
    """Collects the errors of one row while parsing its fields."""

    def __init__(self, raw: RawRow, headers: HeaderMap, rules: Rules) -> None:
        self.raw = raw
        self.cells = raw.cells
        self.positions = _positions(headers)
        self.rules = rules
        self.errors: list[RowError] = []

    def cell(self, column: Column) -> str:
        index = self.positions.get(column._name_)
        cells = self.cells
        if index is None or index >= len(cells):
            return ""
        return cells[index]

    def was_number(self, column: Column) -> bool:
        index = self.positions.get(column._name_)
        return index is not None and index in self.raw.numeric

    def fail(self, column: Column, reason: str) -> None:
        self.errors.append(
            RowError(self.raw.number, column.value, reason, CANONICAL_HEADERS[column])
        )

    def text(self, column: Column, *, required: bool = False) -> str | None:
        value = unicodedata.normalize("NFKC", self.cell(column)).strip()
        if not value:
            if required:
                self.fail(column, "required")
            return None
        if len(value) > MAX_TEXT or not value.isprintable():
            self.fail(column, "text_format")
            return None
        return value

    def date(self, column: Column, earliest: date, latest: date) -> date | None:
        raw = self.cell(column)
        if not raw.strip():
            return None
        parsed = parse_date(raw)
        if parsed is None:
            self.fail(column, "date_format")
        elif parsed > self.rules.today and latest <= self.rules.today:
            self.fail(column, "date_future")
        elif not earliest <= parsed <= latest:
            self.fail(column, "date_range")
        else:
            return parsed
        return None


def _national_id(c: _Checker) -> NationalId | None:
    raw = c.cell(Column.NATIONAL_ID)
    if not raw.strip():
        c.fail(Column.NATIONAL_ID, "required")
        return None
    if c.was_number(Column.NATIONAL_ID) and len(raw) >= 16:
        c.fail(Column.NATIONAL_ID, "id_stored_as_number")
        return None
    parsed = parse_national_id(raw)
    if isinstance(parsed, IdProblem):
        c.fail(Column.NATIONAL_ID, parsed.value)
        return None
    born, today = parsed.birth_date, c.rules.today
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if not MIN_RESIDENT_AGE <= age <= MAX_RESIDENT_AGE:
        c.fail(Column.NATIONAL_ID, "resident_age")
        return None
    return parsed


def _name(c: _Checker) -> str | None:
    value = unicodedata.normalize("NFKC", c.cell(Column.NAME)).strip()
    if not value:
        c.fail(Column.NAME, "required")
        return None
    letters = value.translate({ord(j): None for j in _NAME_JOINERS})
    if len(value) > MAX_TEXT or not letters or _NAME_BAD.search(letters):
        c.fail(Column.NAME, "name_format")
        return None
    return value


def _phone(c: _Checker) -> str | None:
    raw = unicodedata.normalize("NFKC", c.cell(Column.PHONE))
    if not raw.strip():
        c.fail(Column.PHONE, "required")
        return None
    digits = _PHONE_NOISE.sub("", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _PHONE.fullmatch(digits):
        c.fail(Column.PHONE, "phone_format")
        return None
    return digits


def _community(c: _Checker) -> str | None:
    value = c.text(Column.COMMUNITY, required=True)
    if value is None:
        return None
    known = c.rules.communities
    name = value if value in known or f"{value}社区" not in known else f"{value}社区"
    if name not in known:
        c.fail(Column.COMMUNITY, "community_unknown")
        return None
    allowed = c.rules.allowed_communities
    if allowed is not None and name not in allowed:
        c.fail(Column.COMMUNITY, "community_out_of_scope")
        return None
    return name


def _fixed(c: _Checker, column: Column, expected: str, reason: str) -> None:
    value = c.text(column)
    if value is not None and value != expected:
        c.fail(column, reason)


def _numbered(c: _Checker, column: Column, suffix: str) -> str | None:
    value = c.text(column)
    if value is not None and value.isdigit():
        return f"{int(value)}{suffix}"  # "3" -> "3号楼", as the ledger writes it elsewhere
    return value


def _stage(c: _Checker) -> str | None:
    value = c.text(Column.STAGE, required=True)
    if value is None:
        return None
    stage = STAGES.get(value) or STAGES.get(value.lower())
    if stage is None:
        c.fail(Column.STAGE, "stage_unknown")
    return stage


def _parity(c: _Checker) -> int | None:
    value = unicodedata.normalize("NFKC", c.cell(Column.PARITY)).strip()
    if not value:
        return None
    if value.endswith(".0"):  # a number cell of a workbook
        value = value[:-2]
    if not value.isdigit() or not 1 <= int(value) <= MAX_PARITY:
        c.fail(Column.PARITY, "parity_format")
        return None
    return int(value)


def _risk_flags(c: _Checker) -> tuple[str, ...]:
    value = unicodedata.normalize("NFKC", c.cell(Column.RISK_FLAGS)).strip()
    if not value or value.lower() in _NONE_WORDS:
        return ()
    codes: set[str] = set()
    for term in _FLAG_SEPARATORS.split(value):
        if not term:
            continue
        code = RISK_FLAGS.get(term) or (term if term in RISK_FLAGS.values() else None)
        if code is None:
            c.fail(Column.RISK_FLAGS, "risk_flag_unknown")
            return ()
        codes.add(code)
    return tuple(sorted(codes))


def _sex(c: _Checker) -> str | None:
    value = unicodedata.normalize("NFKC", c.cell(Column.CHILD_SEX)).strip()
    if not value:
        return None
    sex = SEXES.get(value.removesuffix("性").removesuffix("孩"))
    if sex is None:
        c.fail(Column.CHILD_SEX, "sex_unknown")
    return sex


def validate_row(raw: RawRow, headers: HeaderMap, rules: Rules) -> LedgerRow | list[RowError]:
    """Every field is checked (not just the first bad one) so a report lists all problems."""
    c = _Checker(raw, headers, rules)
    today = rules.today
    name = _name(c)
    national_id = _national_id(c)
    phone = _phone(c)
    _fixed(c, Column.DISTRICT, DISTRICT, "district_mismatch")
    _fixed(c, Column.STREET, STREET, "street_mismatch")
    community = _community(c)
    compound = c.text(Column.COMPOUND)
    building = _numbered(c, Column.BUILDING, "号楼")
    unit = _numbered(c, Column.UNIT, "单元")
    room = c.text(Column.ROOM)
    stage = _stage(c)
    due = c.date(Column.DUE_DATE, today - DUE_DATE_PAST, today + DUE_DATE_FUTURE)
    delivered = c.date(Column.DELIVERY_DATE, today - PROGRAMME_SPAN, today)
    parity = _parity(c)
    flags = _risk_flags(c)
    child_born = c.date(Column.CHILD_BIRTH_DATE, today - PROGRAMME_SPAN, today)
    child_sex = _sex(c)

    if stage == "pregnant" and due is None and not c.cell(Column.DUE_DATE).strip():
        c.fail(Column.DUE_DATE, "due_date_missing")
    if (
        stage == "postpartum"
        and not c.cell(Column.DELIVERY_DATE).strip()
        and not c.cell(Column.CHILD_BIRTH_DATE).strip()
    ):
        c.fail(Column.DELIVERY_DATE, "delivery_missing")
    if delivered and child_born and abs((delivered - child_born).days) > 1:
        c.fail(Column.CHILD_BIRTH_DATE, "dates_inconsistent")

    if c.errors:
        return c.errors
    assert name and national_id and phone and community and stage  # no errors => all parsed
    return LedgerRow(
        row=raw.number,
        name=name,
        national_id=national_id,
        phone=phone,
        community=community,
        compound=compound,
        building=building,
        unit=unit,
        room=room,
        stage=stage,
        due_date=due,
        delivery_date=delivered,
        parity=parity,
        risk_flags=flags,
        child_birth_date=child_born,
        child_sex=child_sex,
    )
