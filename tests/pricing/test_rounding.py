"""The engine's integer rounding helpers follow core.money's rule exactly (half-up
percentages, largest-remainder allocation with ties to the earlier part)."""

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from omniretail.core.money import allocate, percent_of, round_half_up
from omniretail.pricing.domain import allocate_int, div_half_up, percent_of_int


def test_half_a_minor_unit_rounds_up():
    assert percent_of_int(100, Fraction("12.5")) == 13
    assert percent_of_int(999, Fraction(10)) == 100


def test_largest_remainder_ties_go_to_the_earlier_part():
    assert allocate_int(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate_int(2, [1, 1, 1]) == [1, 1, 0]


def test_allocation_over_zero_weights_goes_to_the_first_part():
    assert allocate_int(5, [0, 0]) == [5, 0]


@settings(max_examples=500, deadline=None)
@given(
    amount=st.integers(min_value=-(10**9), max_value=10**9),
    percent=st.fractions(min_value=0, max_value=100, max_denominator=10_000),
)
def test_percent_of_int_agrees_with_core_money(amount, percent):
    assert percent_of_int(amount, percent) == percent_of(amount, percent)


@settings(max_examples=500, deadline=None)
@given(
    numerator=st.integers(min_value=-(10**12), max_value=10**12),
    denominator=st.integers(min_value=1, max_value=10**6),
)
def test_div_half_up_agrees_with_core_money(numerator, denominator):
    assert div_half_up(numerator, denominator) == round_half_up(Fraction(numerator, denominator))


@settings(max_examples=500, deadline=None)
@given(
    total=st.integers(min_value=-(10**9), max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30),
)
def test_allocate_int_agrees_with_core_money(total, weights):
    assert allocate_int(total, weights) == allocate(total, weights)
