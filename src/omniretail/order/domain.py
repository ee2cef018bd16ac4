"""Order rules with no I/O: the lifecycle state machine, taxes, tender allocation, refund
limits and fraud scoring."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from omniretail.core.errors import AppError
from omniretail.core.money import allocate, round_half_up


class OrderStatus(StrEnum):
    PLACED = "placed"
    AUTHORIZED = "authorized"
    ALLOCATED = "allocated"
    FULFILLING = "fulfilling"
    READY_FOR_PICKUP = "ready_for_pickup"
    SHIPPED = "shipped"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ON_HOLD = "on_hold"  # fraud review


S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PLACED: frozenset({S.AUTHORIZED, S.ON_HOLD, S.CANCELLED}),
    S.ON_HOLD: frozenset({S.AUTHORIZED, S.CANCELLED}),
    S.AUTHORIZED: frozenset({S.ALLOCATED, S.CANCELLED}),
    S.ALLOCATED: frozenset({S.FULFILLING, S.CANCELLED}),
    S.FULFILLING: frozenset({S.READY_FOR_PICKUP, S.SHIPPED}),
    S.READY_FOR_PICKUP: frozenset({S.PICKED_UP, S.CANCELLED}),
    S.SHIPPED: frozenset({S.DELIVERED}),
    S.PICKED_UP: frozenset({S.COMPLETED}),
    S.DELIVERED: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}
EDITABLE = frozenset({S.PLACED, S.ON_HOLD, S.AUTHORIZED, S.ALLOCATED})


def check_transition(current: str, target: str) -> OrderStatus:
    """Return the target status if the lifecycle allows it; otherwise a 409."""
    try:
        src, dst = OrderStatus(current), OrderStatus(target)
    except ValueError:
        raise AppError("invalid_status", f"unknown order status {target!r}", 422) from None
    if dst not in TRANSITIONS[src]:
        raise AppError(
            "invalid_transition",
            f"an order that is {src.value} cannot become {dst.value}",
            409,
            {
                "from": src.value,
                "to": dst.value,
                "allowed": sorted(t.value for t in TRANSITIONS[src]),
            },
        )
    return dst


class DeliveryMethod(StrEnum):
    STANDARD = "standard"
    EXPRESS = "express"
    SAME_DAY = "same_day"
    BOPIS = "bopis"  # buy online, pick up in store (click & collect)
    CURBSIDE = "curbside"
    LOCKER = "locker"
    SHIP_FROM_STORE = "ship_from_store"


PICKUP_METHODS = frozenset({DeliveryMethod.BOPIS, DeliveryMethod.CURBSIDE, DeliveryMethod.LOCKER})
HOME_METHODS = frozenset(
    {
        DeliveryMethod.STANDARD,
        DeliveryMethod.EXPRESS,
        DeliveryMethod.SAME_DAY,
        DeliveryMethod.SHIP_FROM_STORE,
    }
)


# --- taxes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaxRule:
    country: str
    region: str | None
    rate_bp: int  # basis points: 2000 = 20 %
    inclusive: bool  # prices already include the tax (EU/UK retail) or not (US)


def pick_tax_rule(rules: list[TaxRule], country: str, region: str | None) -> TaxRule | None:
    """The most specific rule: country+region before country-wide."""
    regional = [r for r in rules if r.country == country and r.region and r.region == region]
    if regional:
        return regional[0]
    national = [r for r in rules if r.country == country and not r.region]
    return national[0] if national else None


def tax_for(amount: int, rule: TaxRule | None) -> int:
    """Tax contained in (inclusive) or added to (exclusive) ``amount`` minor units, half-up."""
    if rule is None or rule.rate_bp == 0 or amount == 0:
        return 0
    rate = Fraction(rule.rate_bp, 10_000)
    if rule.inclusive:
        return round_half_up(Fraction(amount) * rate / (1 + rate))
    return round_half_up(Fraction(amount) * rate)


# --- tenders and refunds --------------------------------------------------------------------


@dataclass(frozen=True)
class TenderRequest:
    type: str  # card | gift_card | store_credit | cash | card_terminal
    amount: int | None = None  # None = "the rest"
    token: str | None = None  # card token, gift-card code, store-credit account id


def allocate_tenders(total: int, tenders: list[TenderRequest]) -> list[tuple[TenderRequest, int]]:
    """Assign the order total to tenders: fixed amounts first in the given order, then the one
    tender without an amount takes the rest. The sum must equal the total exactly."""
    if not tenders:
        raise AppError("payment_required", "at least one tender is needed", 422)
    open_ended = [t for t in tenders if t.amount is None]
    if len(open_ended) > 1:
        raise AppError("ambiguous_tenders", "only one tender may omit its amount", 422)
    out: list[tuple[TenderRequest, int]] = []
    remaining = total
    for t in tenders:
        if t.amount is None:
            continue
        if t.amount <= 0:
            raise AppError("invalid_amount", "tender amounts must be positive", 422)
        out.append((t, t.amount))
        remaining -= t.amount
    if remaining < 0:
        raise AppError(
            "tenders_exceed_total",
            "tenders add up to more than the order total",
            422,
            {"total": total, "tendered": total - remaining},
        )
    if open_ended:
        if remaining > 0:
            out.append((open_ended[0], remaining))
        remaining = 0
    if remaining != 0:
        raise AppError(
            "tenders_short",
            "tenders do not cover the order total",
            422,
            {"total": total, "missing": remaining},
        )
    return out


@dataclass
class TenderState:
    """What one tender has seen: authorised, captured and refunded amounts."""

    id: str
    authorized: int
    captured: int = 0
    refunded: int = 0

    @property
    def refundable(self) -> int:
        return self.captured - self.refunded


def plan_refund(amount: int, tenders: list[TenderState]) -> list[tuple[str, int]]:
    """Spread a refund over captured tenders, last tender first (so a card is refunded before
    the gift card that was applied first), never more than each tender's refundable amount."""
    if amount <= 0:
        raise AppError("invalid_amount", "a refund must be positive", 422)
    refundable = sum(t.refundable for t in tenders)
    if amount > refundable:
        raise AppError(
            "refund_exceeds_captured",
            "a refund cannot exceed what was captured and not yet refunded",
            409,
            {"requested": amount, "refundable": refundable},
        )
    plan: list[tuple[str, int]] = []
    left = amount
    for t in reversed(tenders):
        take = min(left, t.refundable)
        if take > 0:
            plan.append((t.id, take))
            left -= take
        if left == 0:
            break
    return plan


def split_discount(total_discount: int, line_totals: list[int]) -> list[int]:
    return allocate(total_discount, line_totals)


# --- fraud ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FraudSignals:
    order_total: int
    first_order: bool
    orders_last_hour_customer: int
    orders_last_hour_card: int
    orders_last_hour_ip: int
    billing_country: str | None
    shipping_country: str | None


@dataclass(frozen=True)
class FraudPolicy:
    high_value_first_order: int = 50_000  # minor units
    velocity_limit: int = 3  # orders per hour per customer / card / IP
    hold_score: int = 50


@dataclass(frozen=True)
class FraudAssessment:
    score: int
    reasons: tuple[str, ...] = field(default_factory=tuple)
    hold: bool = False


def assess_fraud(signals: FraudSignals, policy: FraudPolicy = FraudPolicy()) -> FraudAssessment:
    score, reasons = 0, []
    if signals.first_order and signals.order_total >= policy.high_value_first_order:
        score += 40
        reasons.append("high_value_first_order")
    for name, count in (
        ("customer", signals.orders_last_hour_customer),
        ("card", signals.orders_last_hour_card),
        ("ip", signals.orders_last_hour_ip),
    ):
        if count >= policy.velocity_limit:
            score += 30
            reasons.append(f"velocity_{name}")
    if (
        signals.billing_country
        and signals.shipping_country
        and signals.billing_country != signals.shipping_country
    ):
        score += 20
        reasons.append("billing_shipping_mismatch")
    score = min(score, 100)
    return FraudAssessment(score, tuple(reasons), score >= policy.hold_score)
