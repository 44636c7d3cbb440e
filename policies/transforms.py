"""Transforms: pure, total functions from a source value to what the contractor receives.

Each returns None when the value is missing or unusable (the engine then withholds the field
with reason `no_value`); none raises. Which transform may read which source is decided by the
source's `Kind` (see catalogue): exact ages only leave as bands, dates only as month or week,
and contact details in full only when the field is sealed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from policies.catalogue import SERVICE_ORDER, Kind
from policies.results import DisclosedValue

TransformFn = Callable[[object], DisclosedValue | None]

_CASE_REF = re.compile(r"[A-Za-z0-9_.:-]{8,128}")
_PHONE = re.compile(r"1[3-9]\d{9}")
_SEPARATORS = re.compile(r"[\s-]")  # what a written phone number may carry
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
# Two-character surnames in use today; anything else takes the first character.
_COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "令狐",
        "端木",
        "西门",
        "南宫",
        "独孤",
        "呼延",
        "轩辕",
        "钟离",
        "闻人",
        "万俟",
        "澹台",
        "公冶",
        "太史",
        "申屠",
        "濮阳",
        "赫连",
        "百里",
    ]
)
TITLE = "女士"  # the programme's residents are expectant and new mothers


def case_pseudonym(value: object) -> str | None:
    """The case reference computed by keys/, passed through after a shape check.

    >>> case_pseudonym("c1_Zk3vQ9xTbA")
    'c1_Zk3vQ9xTbA'
    """
    if isinstance(value, str) and _CASE_REF.fullmatch(value):
        return value
    return None


def surname_title(value: object) -> str | None:
    """Surname plus the courtesy title, handling two-character surnames.

    >>> surname_title("李秀英"), surname_title("欧阳娜娜")
    ('李女士', '欧阳女士')
    """
    if not isinstance(value, str):
        return None
    name = value.strip()
    if not name or not ("\u3400" <= name[0] <= "\u9fff"):
        return None
    surname = name[:2] if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else name[0]
    return surname + TITLE


def _normalise_phone(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    digits = _SEPARATORS.sub("", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    return digits if _PHONE.fullmatch(digits) else None


def phone_masked(value: object) -> str | None:
    """A mobile number with the middle four digits masked, for lists.

    >>> phone_masked("13812345678")
    '138****5678'
    """
    phone = _normalise_phone(value)
    return None if phone is None else f"{phone[:3]}****{phone[7:]}"


def phone_full(value: object) -> str | None:
    """The full mobile number, normalised; only allowed on sealed fields.

    >>> phone_full("+86 138-1234-5678")
    '13812345678'
    """
    return _normalise_phone(value)


# The composite `address` source is the tuple of catalogue.ADDRESS_PARTS, in order:
# district, street, community, compound, building, unit, room.
def _address_upto(last: int) -> TransformFn:
    def generalise(value: object) -> str | None:
        if not isinstance(value, tuple) or len(value) != 7:
            return None
        parts = value[2 : last + 1]
        if not all(isinstance(p, str) and p.strip() for p in parts):
            return None
        return "".join(p.strip() for p in parts)

    return generalise


address_community = _address_upto(2)
address_community.__doc__ = """The community only. ('民城路社区')"""
address_compound = _address_upto(3)
address_compound.__doc__ = """Community and compound. ('民城路社区春阳花园')"""
address_building = _address_upto(4)
address_building.__doc__ = """Down to the building. ('民城路社区春阳花园3号楼')"""
address_full = _address_upto(6)
address_full.__doc__ = """Down to the room; sealed only. ('民城路社区春阳花园3号楼2单元501')"""


def month(value: object) -> str | None:
    """The month of a date.

    >>> month(dt.date(2025, 3, 14))
    '2025-03'
    """
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return f"{value.year:04d}-{value.month:02d}"
    if isinstance(value, str) and _MONTH.fullmatch(value):
        return value
    return None


def week(value: object) -> str | None:
    """The ISO week of a date.

    >>> week(dt.date(2025, 3, 14))
    '2025-W11'
    """
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        year, number, _ = value.isocalendar()
        return f"{year:04d}-W{number:02d}"
    return None


def _count(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def age_band(value: object) -> str | None:
    """Five-year band of an age in completed years; open-ended below 20 and from 45.

    >>> age_band(31), age_band(17), age_band(46)
    ('30-34', '<20', '45+')
    """
    age = _count(value)
    if age is None:
        return None
    if age < 20:
        return "<20"
    if age >= 45:
        return "45+"
    low = age - age % 5
    return f"{low}-{low + 4}"


_INFANT_BANDS = ((3, "0-2m"), (6, "3-5m"), (12, "6-11m"), (18, "12-17m"), (24, "18-23m"))


def infant_age_band(value: object) -> str | None:
    """Band of an infant's age in completed months.

    >>> infant_age_band(0), infant_age_band(7), infant_age_band(30)
    ('0-2m', '6-11m', '24m+')
    """
    months = _count(value)
    if months is None:
        return None
    for upper, label in _INFANT_BANDS:
        if months < upper:
            return label
    return "24m+"


def service_codes(value: object) -> tuple[str, ...] | None:
    """The assigned service codes, in programme order.

    >>> service_codes(("parenting", "mid_pregnancy"))
    ('mid_pregnancy', 'parenting')
    """
    if not isinstance(value, tuple) or not value:
        return None
    codes = [str(v) for v in value]
    if not all(c in SERVICE_ORDER for c in codes):
        return None
    return tuple(sorted(set(codes), key=SERVICE_ORDER.__getitem__))


def as_is(value: object) -> DisclosedValue | None:
    """The value unchanged; only for kinds coarse enough already (stage, sex, weeks, ...).

    >>> as_is("pregnant"), as_is(("advanced_maternal_age",))
    ('pregnant', ('advanced_maternal_age',))
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return tuple(sorted(str(v) for v in value))
    return None


def drop(value: object) -> None:
    """Never discloses: records in the policy that a field is deliberately withheld.

    >>> drop("anything") is None
    True
    """
    return None


@dataclass(frozen=True, slots=True)
class Transform:
    name: str
    fn: TransformFn
    kinds: frozenset[Kind]
    must_seal: bool = False
    precision: int = 1  # within a kind, higher reveals more; used by `diff`


_ALL_SHAREABLE = frozenset(k for k in Kind if k not in (Kind.FORBIDDEN, Kind.ADDRESS_PART))

TRANSFORMS: Mapping[str, Transform] = MappingProxyType(
    {
        t.name: t
        for t in (
            Transform("case_pseudonym", case_pseudonym, frozenset({Kind.CASE_REF})),
            Transform("surname_title", surname_title, frozenset({Kind.NAME})),
            Transform("phone_masked", phone_masked, frozenset({Kind.PHONE})),
            Transform("phone_full", phone_full, frozenset({Kind.PHONE}), True, 2),
            Transform("address_community", address_community, frozenset({Kind.ADDRESS}), False, 1),
            Transform("address_compound", address_compound, frozenset({Kind.ADDRESS}), False, 2),
            Transform("address_building", address_building, frozenset({Kind.ADDRESS}), False, 3),
            Transform("address_full", address_full, frozenset({Kind.ADDRESS}), True, 4),
            Transform("month", month, frozenset({Kind.DATE, Kind.MONTH}), False, 1),
            Transform("week", week, frozenset({Kind.DATE}), False, 2),
            Transform("age_band", age_band, frozenset({Kind.AGE_YEARS})),
            Transform("infant_age_band", infant_age_band, frozenset({Kind.AGE_MONTHS})),
            Transform("service_codes", service_codes, frozenset({Kind.SERVICES})),
            Transform(
                "as_is",
                as_is,
                frozenset({Kind.STAGE, Kind.SEX, Kind.COUNT, Kind.FLAGS, Kind.WEEKS, Kind.MONTH}),
            ),
            Transform("drop", drop, _ALL_SHAREABLE, False, 0),
        )
    }
)
