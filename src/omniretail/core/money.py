"""Money in integer minor units with an ISO 4217 currency; the only place rounding happens.

Rounding rule (documented in docs/pricing.md): fractional minor units from percentages and
ratios are rounded half-up (away from zero for .5); amounts that must be spread over parts
(an order discount over lines) are allocated by the largest-remainder method so the parts
always add up exactly to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

# Minor-unit exponent per currency; anything not listed uses 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "JOD": 3, "TND": 3}


def currency_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def div_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half-up (.5 away from zero); ``denominator > 0``."""
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return q if numerator >= 0 else -q


def round_half_up(value: Fraction) -> int:
    """Round an exact fraction to the nearest integer, .5 away from zero."""
    return div_half_up(value.numerator, value.denominator)


def percent_of(amount: int, percent: Fraction | int | str) -> int:
    """``percent`` % of ``amount`` minor units, rounded half-up. ``percent`` may be '12.5'.

    Integer arithmetic only (hot path of the promotions engine)."""
    p = percent if isinstance(percent, Fraction) else Fraction(percent)
    return div_half_up(amount * p.numerator, 100 * p.denominator)


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` over non-negative ``weights`` proportionally; parts sum exactly to
    ``total``.

    Largest remainder method; ties go to the earlier part, so the result is deterministic.
    With all weights zero the first part takes everything.
    """
    if not weights:
        return []
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [total] + [0] * (len(weights) - 1)
    floors: list[int] = []
    remainders: list[int] = []
    for w in weights:
        q, r = divmod(total * w, weight_sum)
        floors.append(q)
        remainders.append(r)
    left = total - sum(floors)
    if left:
        # the sort is stable, so equal remainders keep the earlier part first
        order = sorted(range(len(weights)), key=remainders.__getitem__, reverse=True)
        for i in order[:left]:
            floors[i] += 1
    return floors


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an int in minor units")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"invalid ISO 4217 currency code: {self.currency!r}")

    def _check(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def percent(self, percent: Fraction | int | str) -> Money:
        return Money(percent_of(self.amount, percent), self.currency)

    def allocate(self, weights: list[int]) -> list[Money]:
        return [Money(a, self.currency) for a in allocate(self.amount, weights)]

    def format(self) -> str:
        exp = currency_exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exp)
        return (
            f"{sign}{units}.{minor:0{exp}d} {self.currency}"
            if exp
            else f"{sign}{units} {self.currency}"
        )

    @staticmethod
    def zero(currency: str) -> Money:
        return Money(0, currency)
