"""One raw ledger row -> a `LedgerRow` (valid once constructed) or the list of its `RowError`s.

Pure: the clock (`today`) and the set of known communities are handed in. Error messages are
fixed texts per reason code: they say what is expected, never what was found, so a report can
be shown, logged or mailed without leaking a personal value.

Free text that begins with a formula lead (= + - @, after Unicode folding, so a full-width
＝ counts) is refused in every text column (`formula_lead`), as the name column always refused
it: a spreadsheet would run it, and no ledger value legitimately starts that way
(exchange.exports.cells explains the rule). A cell of dashes alone ("-", "—") is the ledger's
way of writing "none" and reads as empty.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from operator import itemgetter
from typing import cast

from exchange.exports import starts_like_formula
from exchange.ledger.headers import CANONICAL_HEADERS, Column, HeaderMap
from exchange.ledger.idnumber import IdProblem, NationalId, parse_national_id
from exchange.ledger.reader import RawRow
from exchange.ledger.vocabulary import DISTRICT, RISK_FLAGS, SEXES, STAGES, STREET
from keys.errors import InvalidIdentifierError
from keys.phones import normalise_mobile

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
    "already_registered": "is already registered; ask the street office to check the ledger",
    "phone_format": "must be a mainland mobile number: 11 digits starting 13-19",
    "name_format": f"must be 1-{MAX_TEXT} characters of a name (no digits or symbols)",
    "community_unknown": "is not a known community of this street office",
    "community_out_of_scope": "is outside the communities this import may write",
    "district_mismatch": f"must be {DISTRICT}",
    "street_mismatch": f"must be {STREET}",
    "text_format": f"must be at most {MAX_TEXT} printable characters",
    "formula_lead": "must not begin with = + - or @ (a spreadsheet would run it as a formula)",
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
_DASHES = frozenset("-—–－")  # a cell of these alone means "none"


def parse_date(text: str) -> date | None:
    """A calendar date in the formats spreadsheets produce; None when not a real date."""
    folded = unicodedata.normalize("NFKC", text).strip()
    if len(folded) == 10 and folded.isascii() and folded[4] == "-" == folded[7]:
        # the usual YYYY-MM-DD, without the regular expressions (ASCII: isdigit is [0-9])
        y, m, d = folded[:4], folded[5:7], folded[8:]
        if y.isdigit() and m.isdigit() and d.isdigit():
            try:
                return date(int(y), int(m), int(d))
            except ValueError:
                return None
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


# The order in which `_Layout.values` hands a row's cells to `validate_row`.
_ORDER = (
    Column.NAME, Column.NATIONAL_ID, Column.PHONE, Column.DISTRICT, Column.STREET,
    Column.COMMUNITY, Column.COMPOUND, Column.BUILDING, Column.UNIT, Column.ROOM, Column.STAGE,
    Column.DUE_DATE, Column.DELIVERY_DATE, Column.PARITY, Column.RISK_FLAGS,
    Column.CHILD_BIRTH_DATE, Column.CHILD_SEX,
)  # fmt: skip


class _Layout:
    """Where each column of `_ORDER` sits in a row, and the date bounds of `rules`: worked
    out once per import, so a row's 17 cells come out of one C call (`itemgetter`)."""

    def __init__(self, headers: HeaderMap, rules: Rules) -> None:
        self.headers, self.rules = headers, rules
        self.need = max(headers.columns.values(), default=-1) + 1
        # a missing column reads index -1: the "" that `values` always appends
        self._get = itemgetter(*(headers.columns.get(c, -1) for c in _ORDER))
        self.national_id_at = headers.columns.get(Column.NATIONAL_ID)
        today = rules.today
        self.due_range = (today - DUE_DATE_PAST, today + DUE_DATE_FUTURE)
        self.past_range = (today - PROGRAMME_SPAN, today)

    def values(self, cells: tuple[str, ...]) -> tuple[str, ...]:
        # short rows are padded (a cell past the end reads ""), and one "" always follows
        missing = self.need - len(cells)
        pad = ("",) * (missing + 1) if missing > 0 else ("",)
        return cast(tuple[str, ...], self._get(cells + pad))


_layout_of: _Layout | None = None


def _layout(headers: HeaderMap, rules: Rules) -> _Layout:
    """Cached for the last (header map, rules) pair: one per import."""
    global _layout_of
    cached = _layout_of
    if cached is None or cached.headers is not headers or cached.rules is not rules:
        cached = _layout_of = _Layout(headers, rules)
    return cached


class _Checker:
    """Collects the errors of one row while parsing its fields."""

    __slots__ = ("number", "today", "errors")

    def __init__(self, number: int, today: date) -> None:
        self.number = number
        self.today = today
        self.errors: list[RowError] = []

    def fail(self, column: Column, reason: str) -> None:
        self.errors.append(RowError(self.number, column.value, reason, CANONICAL_HEADERS[column]))

    def text(self, column: Column, cell: str, *, required: bool = False) -> str | None:
        value = unicodedata.normalize("NFKC", cell).strip()
        if not value or _DASHES.issuperset(value):
            if required:
                self.fail(column, "required")
            return None
        if len(value) > MAX_TEXT or not value.isprintable():
            self.fail(column, "text_format")
            return None
        if starts_like_formula(value):
            self.fail(column, "formula_lead")
            return None
        return value

    def date(self, column: Column, cell: str, bounds: tuple[date, date]) -> date | None:
        if not cell or cell.isspace():
            return None
        parsed = parse_date(cell)
        earliest, latest = bounds
        if parsed is None:
            self.fail(column, "date_format")
        elif parsed > self.today and latest <= self.today:
            self.fail(column, "date_future")
        elif not earliest <= parsed <= latest:
            self.fail(column, "date_range")
        else:
            return parsed
        return None


def _national_id(c: _Checker, raw: str, was_number: bool) -> NationalId | None:
    if not raw or raw.isspace():
        c.fail(Column.NATIONAL_ID, "required")
        return None
    if was_number and len(raw) >= 16:
        c.fail(Column.NATIONAL_ID, "id_stored_as_number")
        return None
    parsed = parse_national_id(raw)
    if isinstance(parsed, IdProblem):
        c.fail(Column.NATIONAL_ID, parsed.value)
        return None
    born, today = parsed.birth_date, c.today
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if not MIN_RESIDENT_AGE <= age <= MAX_RESIDENT_AGE:
        c.fail(Column.NATIONAL_ID, "resident_age")
        return None
    return parsed


_NAME_JOINERS_TABLE = {ord(j): None for j in _NAME_JOINERS}


def _name(c: _Checker, cell: str) -> str | None:
    value = unicodedata.normalize("NFKC", cell).strip()
    if not value:
        c.fail(Column.NAME, "required")
        return None
    if starts_like_formula(value):
        c.fail(Column.NAME, "formula_lead")
        return None
    letters = value.translate(_NAME_JOINERS_TABLE)
    if len(value) > MAX_TEXT or not letters or _NAME_BAD.search(letters):
        c.fail(Column.NAME, "name_format")
        return None
    return value


def _phone(c: _Checker, cell: str) -> str | None:
    raw = unicodedata.normalize("NFKC", cell)
    if not raw or raw.isspace():
        c.fail(Column.PHONE, "required")
        return None
    try:  # the one normalisation the phone's blind index and the ledger lookup use too
        return normalise_mobile(raw)
    except InvalidIdentifierError:
        c.fail(Column.PHONE, "phone_format")
        return None


def _community(c: _Checker, cell: str, rules: Rules) -> str | None:
    value = c.text(Column.COMMUNITY, cell, required=True)
    if value is None:
        return None
    known = rules.communities
    name = value if value in known or f"{value}社区" not in known else f"{value}社区"
    if name not in known:
        c.fail(Column.COMMUNITY, "community_unknown")
        return None
    allowed = rules.allowed_communities
    if allowed is not None and name not in allowed:
        c.fail(Column.COMMUNITY, "community_out_of_scope")
        return None
    return name


def _fixed(c: _Checker, column: Column, cell: str, expected: str, reason: str) -> None:
    if cell == expected:  # the usual case: already exactly the expected text
        return
    value = c.text(column, cell)
    if value is not None and value != expected:
        c.fail(column, reason)


def _numbered(c: _Checker, column: Column, cell: str, suffix: str) -> str | None:
    value = c.text(column, cell)
    if value is not None and value.isdigit():
        return f"{int(value)}{suffix}"  # "3" -> "3号楼", as the ledger writes it elsewhere
    return value


def _stage(c: _Checker, cell: str) -> str | None:
    value = c.text(Column.STAGE, cell, required=True)
    if value is None:
        return None
    stage = STAGES.get(value) or STAGES.get(value.lower())
    if stage is None:
        c.fail(Column.STAGE, "stage_unknown")
    return stage


def _parity(c: _Checker, cell: str) -> int | None:
    value = unicodedata.normalize("NFKC", cell).strip()
    if not value:
        return None
    if value.endswith(".0"):  # a number cell of a workbook
        value = value[:-2]
    if not value.isdigit() or not 1 <= int(value) <= MAX_PARITY:
        c.fail(Column.PARITY, "parity_format")
        return None
    return int(value)


def _risk_flags(c: _Checker, cell: str) -> tuple[str, ...]:
    value = unicodedata.normalize("NFKC", cell).strip()
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


def _sex(c: _Checker, cell: str) -> str | None:
    value = unicodedata.normalize("NFKC", cell).strip()
    if not value:
        return None
    sex = SEXES.get(value.removesuffix("性").removesuffix("孩"))
    if sex is None:
        c.fail(Column.CHILD_SEX, "sex_unknown")
    return sex


def _blank(cell: str) -> bool:
    return not cell or cell.isspace()


def validate_row(raw: RawRow, headers: HeaderMap, rules: Rules) -> LedgerRow | list[RowError]:
    """Every field is checked (not just the first bad one) so a report lists all problems."""
    layout = _layout(headers, rules)
    (name_cell, id_cell, phone_cell, district_cell, street_cell, community_cell, compound_cell,
     building_cell, unit_cell, room_cell, stage_cell, due_cell, delivered_cell, parity_cell,
     flags_cell, child_born_cell, child_sex_cell) = layout.values(raw.cells)  # fmt: skip
    c = _Checker(raw.number, rules.today)
    name = _name(c, name_cell)
    id_at = layout.national_id_at
    national_id = _national_id(c, id_cell, id_at is not None and id_at in raw.numeric)
    phone = _phone(c, phone_cell)
    _fixed(c, Column.DISTRICT, district_cell, DISTRICT, "district_mismatch")
    _fixed(c, Column.STREET, street_cell, STREET, "street_mismatch")
    community = _community(c, community_cell, rules)
    compound = c.text(Column.COMPOUND, compound_cell)
    building = _numbered(c, Column.BUILDING, building_cell, "号楼")
    unit = _numbered(c, Column.UNIT, unit_cell, "单元")
    room = c.text(Column.ROOM, room_cell)
    stage = _stage(c, stage_cell)
    due = c.date(Column.DUE_DATE, due_cell, layout.due_range)
    delivered = c.date(Column.DELIVERY_DATE, delivered_cell, layout.past_range)
    parity = _parity(c, parity_cell)
    flags = _risk_flags(c, flags_cell)
    child_born = c.date(Column.CHILD_BIRTH_DATE, child_born_cell, layout.past_range)
    child_sex = _sex(c, child_sex_cell)

    if stage == "pregnant" and due is None and _blank(due_cell):
        c.fail(Column.DUE_DATE, "due_date_missing")
    if stage == "postpartum" and _blank(delivered_cell) and _blank(child_born_cell):
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
