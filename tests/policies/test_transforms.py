import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import transforms as t
from policies.catalogue import Kind

FULL = ("城阳区", "城阳街道", "民城路社区", "春阳花园", "3号楼", "2单元", "501")


def test_case_pseudonym_passes_a_well_formed_reference_and_refuses_others():
    assert t.case_pseudonym("c1_Zk3vQ9xTbA") == "c1_Zk3vQ9xTbA"
    assert t.case_pseudonym("short") is None
    assert t.case_pseudonym("has space in it") is None
    assert t.case_pseudonym(None) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("李秀英", "李女士"),
        ("欧阳娜娜", "欧阳女士"),
        ("司马静", "司马女士"),
        ("王芳", "王女士"),
        ("欧阳", "欧女士"),
        (" 张敏 ", "张女士"),
        ("", None),
        ("Anna Li", None),
        (None, None),
    ],
)
def test_surname_title(name, expected):
    assert t.surname_title(name) == expected


@pytest.mark.parametrize(
    ("phone", "masked", "full"),
    [
        ("13812345678", "138****5678", "13812345678"),
        ("+86 159-6600-1234", "159****1234", "15966001234"),
        ("12812345678", None, None),  # second digit must be 3-9
        ("1381234567", None, None),
        (13812345678, None, None),
    ],
)
def test_phones(phone, masked, full):
    assert t.phone_masked(phone) == masked
    assert t.phone_full(phone) == full


def test_address_levels():
    assert t.address_community(FULL) == "民城路社区"
    assert t.address_compound(FULL) == "民城路社区春阳花园"
    assert t.address_building(FULL) == "民城路社区春阳花园3号楼"
    assert t.address_full(FULL) == "民城路社区春阳花园3号楼2单元501"


def test_address_missing_part_withholds_rather_than_guessing():
    no_building = FULL[:4] + (None, "2单元", "501")
    assert t.address_compound(no_building) == "民城路社区春阳花园"
    assert t.address_building(no_building) is None
    assert t.address_full(no_building) is None
    assert t.address_building("民城路社区") is None


def test_month_and_week():
    assert t.month(dt.date(2025, 3, 14)) == "2025-03"
    assert t.month("2024-11") == "2024-11"
    assert t.month("2024-13") is None
    assert t.month(dt.datetime(2025, 3, 14, 1, 0)) is None
    assert t.week(dt.date(2025, 3, 14)) == "2025-W11"
    assert t.week(dt.date(2024, 12, 30)) == "2025-W01"  # ISO year differs


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (0, "<20"),
        (19, "<20"),
        (20, "20-24"),
        (34, "30-34"),
        (35, "35-39"),
        (44, "40-44"),
        (45, "45+"),
        (-1, None),
        (True, None),
        ("30", None),
    ],
)
def test_age_band(age, band):
    assert t.age_band(age) == band


@pytest.mark.parametrize(
    ("months", "band"),
    [
        (0, "0-2m"),
        (2, "0-2m"),
        (3, "3-5m"),
        (6, "6-11m"),
        (11, "6-11m"),
        (12, "12-17m"),
        (23, "18-23m"),
        (24, "24m+"),
        (-2, None),
    ],
)
def test_infant_age_band(months, band):
    assert t.infant_age_band(months) == band


def test_service_codes_in_programme_order_and_refusing_unknown_codes():
    assert t.service_codes(("parenting", "mid_pregnancy")) == ("mid_pregnancy", "parenting")
    assert t.service_codes(("parenting", "massage")) is None
    assert t.service_codes(()) is None


def test_as_is_and_drop():
    assert t.as_is("pregnant") == "pregnant"
    assert t.as_is(26) == 26
    assert t.as_is(("b", "a")) == ("a", "b")
    assert t.as_is(True) is None
    assert t.drop("13812345678") is None


def test_no_transform_reads_never_share_or_bare_address_parts():
    for transform in t.TRANSFORMS.values():
        assert Kind.FORBIDDEN not in transform.kinds
        assert Kind.ADDRESS_PART not in transform.kinds


def test_exact_ages_leave_only_as_bands():
    readers = {n for n, tr in t.TRANSFORMS.items() if Kind.AGE_YEARS in tr.kinds}
    assert readers == {"age_band", "drop"}
    readers = {n for n, tr in t.TRANSFORMS.items() if Kind.AGE_MONTHS in tr.kinds}
    assert readers == {"infant_age_band", "drop"}


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(),
    st.dates(),
    st.datetimes(),
    st.tuples(st.text()),
    st.tuples(st.integers()),
    st.lists(st.text()).map(tuple),
    st.tuples(*[st.one_of(st.none(), st.text())] * 7),
)


@settings(max_examples=200, deadline=None)
@given(anything)
def test_every_transform_is_total(value):
    for transform in t.TRANSFORMS.values():
        result = transform.fn(value)
        assert result is None or isinstance(result, str | int | tuple)
