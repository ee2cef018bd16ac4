from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omniretail.core.money import Money, allocate, percent_of, round_half_up


def test_percent_rounds_half_up():
    # given 12.5% of 1.00 = 12.5 minor units, when rounded, then .5 goes up
    assert percent_of(100, "12.5") == 13


def test_percent_rounds_down_below_half():
    assert percent_of(999, 10) == 100  # 99.9 -> 100
    assert percent_of(994, "0.5") == 5  # 4.97 -> 5
    assert percent_of(1001, 1) == 10  # 10.01 -> 10


def test_round_half_up_is_symmetric_for_negatives():
    assert round_half_up(Fraction(-5, 2)) == -3
    assert round_half_up(Fraction(5, 2)) == 3


def test_allocate_spreads_remainder_to_largest_fractions_first():
    # 100 over weights 1,1,1 -> 33.33 each; the one extra unit goes to the first
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]


def test_allocate_proportional():
    assert allocate(1000, [2500, 7500]) == [250, 750]


@given(
    total=st.integers(min_value=-(10**9), max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30),
)
def test_allocate_always_sums_to_total(total, weights):
    assert sum(allocate(total, weights)) == total


def test_money_refuses_mixed_currencies():
    with pytest.raises(ValueError, match="currency mismatch"):
        Money(100, "EUR") + Money(100, "GBP")


def test_money_refuses_floats():
    with pytest.raises(TypeError):
        Money(1.5, "EUR")  # type: ignore[arg-type]


def test_money_format_uses_currency_exponent():
    assert Money(123456, "EUR").format() == "1234.56 EUR"
    assert Money(500, "JPY").format() == "500 JPY"
    assert Money(-5, "GBP").format() == "-0.05 GBP"


def test_allocate_ties_go_to_the_earlier_part():
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]


def test_allocate_over_zero_weights_goes_to_the_first_part():
    assert allocate(5, [0, 0]) == [5, 0]


def _exact_half_up(value: Fraction) -> int:
    """Reference: floor(|x| + 1/2) with the sign put back, computed on exact fractions."""
    magnitude = abs(value) + Fraction(1, 2)
    whole = magnitude.numerator // magnitude.denominator
    return whole if value >= 0 else -whole


@given(
    amount=st.integers(min_value=-(10**9), max_value=10**9),
    percent=st.fractions(min_value=0, max_value=100, max_denominator=10_000),
)
def test_percent_of_matches_exact_rational_rounding(amount, percent):
    assert percent_of(amount, percent) == _exact_half_up(Fraction(amount) * percent / 100)


@given(
    total=st.integers(min_value=0, max_value=10**9),
    weights=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=30),
)
def test_allocate_parts_are_within_one_unit_of_exact_share(total, weights):
    parts = allocate(total, weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total * weight, sum(weights))
        assert exact - 1 < part < exact + 1
