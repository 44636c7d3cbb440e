from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.ledger.idnumber import (
    IdProblem,
    NationalId,
    check_digit,
    corrupt_check_digit,
    make_national_id,
    parse_national_id,
)
from keys.idnumbers import normalise_national_id

# The worked example of GB 11643-1999 itself.
STANDARD_EXAMPLE = "11010519491231002X"


def test_standard_example_check_digit_is_x() -> None:
    assert check_digit(STANDARD_EXAMPLE[:17]) == "X"
    parsed = parse_national_id(STANDARD_EXAMPLE)
    assert isinstance(parsed, NationalId)
    assert parsed.birth_date == date(1949, 12, 31)
    assert parsed.is_female  # order code 002: even


def test_lower_case_x_and_full_width_digits_are_normalised() -> None:
    parsed = parse_national_id(" 11010519491231002x ")
    assert isinstance(parsed, NationalId) and parsed.value == STANDARD_EXAMPLE
    full_width = "１１０１０５１９４９１２３１００２Ｘ"
    assert parse_national_id(full_width) == parsed


def test_fifteen_digit_number_widens_to_the_eighteen_digit_one() -> None:
    parsed = parse_national_id("110105491231002")
    assert isinstance(parsed, NationalId) and parsed.value == STANDARD_EXAMPLE
    assert normalise_national_id("110105491231002") == STANDARD_EXAMPLE  # keys/ agrees


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("11010519491231002", IdProblem.FORMAT),
        ("1101051949123100XX", IdProblem.FORMAT),
        ("abc", IdProblem.FORMAT),
        ("99010519491231002X", IdProblem.REGION),
        ("110105194902300025", IdProblem.BIRTH_DATE),  # 30 February
        ("110105194913310025", IdProblem.BIRTH_DATE),
        ("110105184912310025", IdProblem.BIRTH_DATE),  # before 1900
        ("110105194912310021", IdProblem.CHECK_DIGIT),
    ],
)
def test_invalid_numbers_give_their_problem(text: str, problem: IdProblem) -> None:
    assert parse_national_id(text) is problem


def test_repr_hides_the_number() -> None:
    parsed = parse_national_id(STANDARD_EXAMPLE)
    assert STANDARD_EXAMPLE not in repr(parsed) and "19491231" not in str(parsed)


def test_constructor_refuses_invalid_numbers() -> None:
    with pytest.raises(ValueError):
        NationalId("110105194912310021")


@settings(max_examples=200, deadline=None)
@given(
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    sequence=st.integers(0, 499),
    female=st.booleans(),
)
def test_generated_numbers_validate_and_round_trip(born: date, sequence: int, female: bool) -> None:
    text = make_national_id(born, sequence, female=female)
    parsed = parse_national_id(text)
    assert isinstance(parsed, NationalId)
    assert parsed.value == text == normalise_national_id(text)
    assert parsed.birth_date == born and parsed.is_female is female
    assert parsed.area_code == "370214"
    assert parse_national_id(corrupt_check_digit(text)) is IdProblem.CHECK_DIGIT


@settings(max_examples=100, deadline=None)
@given(
    born=st.dates(min_value=date(1950, 1, 1), max_value=date(2020, 12, 31)),
    sequence=st.integers(0, 499),
    position=st.integers(0, 16),
    delta=st.integers(1, 9),
)
def test_every_single_digit_substitution_is_caught(
    born: date, sequence: int, position: int, delta: int
) -> None:
    text = make_national_id(born, sequence)
    digit = str((int(text[position]) + delta) % 10)
    changed = text[:position] + digit + text[position + 1 :]
    assert not isinstance(parse_national_id(changed), NationalId)
