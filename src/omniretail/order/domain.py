"""Order rules with no I/O: the lifecycle state machine, delivery methods and addresses,
taxes and shipping rates, tender allocation, refund limits, returns and fraud scoring."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any

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
    IN_STORE = "in_store"  # a register sale: the customer walks out with the goods


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


# --- delivery groups ------------------------------------------------------------------------

# Methods whose stock comes from the chosen store (the others use the channel's sourcing).
STORE_STOCK_METHODS = frozenset(
    {DeliveryMethod.BOPIS, DeliveryMethod.CURBSIDE, DeliveryMethod.SHIP_FROM_STORE}
)
# Methods that need a shipping address (delivered to the customer's door).
ADDRESS_METHODS = HOME_METHODS
# Methods that need a location, and what that location must be: (type or None, capability).
LOCATION_RULES: dict[DeliveryMethod, tuple[str | None, str | None]] = {
    DeliveryMethod.BOPIS: ("store", "pickup"),
    DeliveryMethod.CURBSIDE: ("store", "curbside"),
    DeliveryMethod.LOCKER: ("locker", None),
    DeliveryMethod.SHIP_FROM_STORE: (None, "ship_from_store"),
}
CHECKOUT_METHODS = frozenset(DeliveryMethod) - {DeliveryMethod.IN_STORE}


def parse_method(value: str) -> DeliveryMethod:
    try:
        method = DeliveryMethod(value)
    except ValueError:
        method = None
    if method is None or method not in CHECKOUT_METHODS:
        raise AppError(
            "invalid_delivery_method",
            f"unknown delivery method {value!r}",
            422,
            {"allowed": sorted(m.value for m in CHECKOUT_METHODS)},
        )
    return method


def check_location_for(method: DeliveryMethod, loc_type: str, capabilities: Sequence[str]) -> None:
    """A pickup, curbside, locker or ship-from-store group needs a fitting location."""
    wanted_type, capability = LOCATION_RULES[method]
    if (wanted_type is not None and loc_type != wanted_type) or (
        capability is not None and capability not in capabilities
    ):
        raise AppError(
            "location_not_eligible",
            f"this location cannot serve {method.value}",
            422,
            {"method": method.value, "type": wanted_type, "capability": capability},
        )


def assign_groups(groups: Sequence[Mapping[str, Any]], skus: Sequence[str]) -> list[dict[str, Any]]:
    """Delivery groups after the cart's lines changed: SKUs no longer in the cart leave their
    group, new SKUs join the first group, empty groups disappear. Without groups, one group
    without a method holds every SKU."""
    present = list(dict.fromkeys(skus))
    out: list[dict[str, Any]] = []
    placed: set[str] = set()
    for g in groups:
        kept = [s for s in g.get("skus", []) if s in present and s not in placed]
        placed.update(kept)
        out.append({**g, "skus": kept})
    rest = [s for s in present if s not in placed]
    if rest:
        if out:
            out[0]["skus"] = [*out[0]["skus"], *rest]
        else:
            out.append({"id": "g1", "method": None, "skus": rest})
    return [g for g in out if g["skus"]]


def check_group_cover(groups: Sequence[Mapping[str, Any]], skus: Sequence[str]) -> None:
    """Every cart SKU is in exactly one delivery group, and groups name only cart SKUs."""
    seen: dict[str, int] = {}
    for i, g in enumerate(groups):
        for s in g.get("skus", []):
            if s in seen:
                raise AppError(
                    "sku_in_two_groups", f"{s!r} is in two delivery groups", 422, {"sku": s}
                )
            seen[s] = i
    unknown = sorted(set(seen) - set(skus))
    missing = sorted(set(skus) - set(seen))
    if unknown or missing:
        raise AppError(
            "delivery_groups_mismatch",
            "delivery groups must hold exactly the cart's SKUs",
            422,
            {"not_in_cart": unknown, "without_group": missing},
        )


# --- addresses ------------------------------------------------------------------------------

ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country", "phone")
REQUIRED_ADDRESS_FIELDS = ("name", "line1", "city", "postal_code", "country")
POSTAL_CODES = {
    "US": re.compile(r"^\d{5}(-\d{4})?$"),
    "GB": re.compile(r"^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$"),
    "FR": re.compile(r"^\d{5}$"),
    "DE": re.compile(r"^\d{5}$"),
    "ES": re.compile(r"^\d{5}$"),
    "IT": re.compile(r"^\d{5}$"),
    "NL": re.compile(r"^\d{4} ?[A-Z]{2}$"),
    "BE": re.compile(r"^\d{4}$"),
    "CA": re.compile(r"^[A-Z]\d[A-Z] ?\d[A-Z]\d$"),
}
# Countries whose addresses need a region (state, province).
REGION_REQUIRED = frozenset({"US", "CA"})


def validate_address(raw: Mapping[str, Any] | None, what: str = "address") -> dict[str, str]:
    """A clean address (trimmed; country and postal code upper-case) or a 422
    ``invalid_address`` naming every bad field."""
    if raw is None:
        raise AppError("invalid_address", f"the {what} is missing", 422, {"address": what})
    problems: dict[str, str] = {}
    unknown = sorted(set(raw) - set(ADDRESS_FIELDS))
    for key in unknown:
        problems[key] = "unknown field"
    clean: dict[str, str] = {}
    for key in ADDRESS_FIELDS:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            problems[key] = "must be text"
            continue
        value = " ".join(value.split())
        if len(value) > 200:
            problems[key] = "at most 200 characters"
        if value:
            clean[key] = value
    for key in REQUIRED_ADDRESS_FIELDS:
        if key not in clean and key not in problems:
            problems[key] = "required"
    country = clean.get("country", "").upper()
    if country:
        if len(country) != 2 or not country.isalpha() or not country.isascii():
            problems["country"] = "an ISO 3166 alpha-2 code such as 'GB'"
        clean["country"] = country
    postal = clean.get("postal_code", "").upper()
    if postal:
        clean["postal_code"] = postal
        pattern = POSTAL_CODES.get(country)
        if pattern is not None and not pattern.match(postal):
            problems["postal_code"] = f"not a valid postal code for {country}"
    if country in REGION_REQUIRED and "region" not in clean:
        problems["region"] = f"required for {country}"
    if "region" in clean:
        clean["region"] = clean["region"].upper() if len(clean["region"]) <= 3 else clean["region"]
    if problems:
        raise AppError(
            "invalid_address",
            f"the {what} is not valid",
            422,
            {"address": what, "fields": dict(sorted(problems.items()))},
        )
    return clean


def validate_vehicle(raw: Mapping[str, Any] | None) -> dict[str, str]:
    """Curbside pickup: how staff recognise the car (a plate, or a colour and model)."""
    raw = raw or {}
    clean = {
        k: " ".join(str(raw[k]).split())[:60]
        for k in ("plate", "color", "model", "make")
        if raw.get(k)
    }
    if not clean.get("plate") and not (clean.get("color") and clean.get("model")):
        raise AppError(
            "invalid_vehicle",
            "curbside pickup needs the vehicle's plate, or its colour and model",
            422,
            {"vehicle": dict(raw)},
        )
    return clean


# --- shipping rates and tax lines ------------------------------------------------------------


@dataclass(frozen=True)
class ShippingRate:
    method: str
    amount: int
    channel_id: str | None = None
    country: str | None = None
    free_over: int | None = None  # goods total (after discounts) from which shipping is free


def pick_shipping_rate(
    rates: Sequence[ShippingRate], method: str, channel_id: str | None, country: str | None
) -> ShippingRate | None:
    """The most specific rate for a method: channel and country, then channel, then country,
    then the general rate."""

    def rank(r: ShippingRate) -> int:
        return (2 if r.channel_id else 0) + (1 if r.country else 0)

    fitting = [
        r
        for r in rates
        if r.method == method
        and r.channel_id in (None, channel_id)
        and r.country in (None, country)
    ]
    return max(fitting, key=rank) if fitting else None


def shipping_for(method: DeliveryMethod, rate: ShippingRate | None, goods_total: int) -> int | None:
    """The shipping charge of one group; ``None`` when a home method has no rate (so it is not
    offered). Pickup methods without a rate are free."""
    if rate is None:
        return None if method in ADDRESS_METHODS else 0
    if rate.free_over is not None and goods_total >= rate.free_over:
        return 0
    return rate.amount


@dataclass(frozen=True)
class TaxedAmount:
    net: int  # what the line or shipping costs after discounts (as priced)
    tax: int  # tax contained in ``net`` (inclusive) or to be added to it (exclusive)
    inclusive: bool

    @property
    def gross(self) -> int:
        """What the customer pays."""
        return self.net if self.inclusive else self.net + self.tax


def taxed(amount: int, rule: TaxRule | None) -> TaxedAmount:
    """Without a rule there is no tax (and nothing to add)."""
    return TaxedAmount(amount, tax_for(amount, rule), rule.inclusive if rule else True)


# --- refunds for returned units ---------------------------------------------------------------


def refund_share(line_total: int, quantity: int, already: int, count: int) -> int:
    """What ``count`` more returned units of a line are worth when ``already`` units were
    returned before. Cumulative half-up rounding: all units together are worth exactly the
    line total."""
    if quantity <= 0 or count <= 0:
        return 0

    def cumulative(units: int) -> int:
        return round_half_up(Fraction(line_total * units, quantity))

    return cumulative(already + count) - cumulative(already)


# Return windows (days) per channel type when a channel has no policy of its own.
DEFAULT_RETURN_WINDOW_DAYS = {"web": 30, "app": 30, "store": 30, "social": 30, "marketplace": 14}
RETURNABLE_STATUSES = frozenset({S.SHIPPED, S.DELIVERED, S.PICKED_UP, S.COMPLETED})


def return_window_days(channel_type: str, configured: int | None) -> int:
    if configured is not None:
        return configured
    return DEFAULT_RETURN_WINDOW_DAYS.get(channel_type, 30)


def check_return_window(start: datetime, now: datetime, days: int) -> datetime:
    """The moment the window closes; 422 ``return_window_closed`` when it has passed."""
    closes = start + timedelta(days=days)
    if now > closes:
        raise AppError(
            "return_window_closed",
            f"the {days}-day return window closed on {closes.date().isoformat()}",
            422,
            {"window_days": days, "closed_at": closes.isoformat()},
        )
    return closes


class Condition(StrEnum):
    SELLABLE = "sellable"  # back on the shelf of the receiving location
    DAMAGED = "damaged"  # written off at the receiving location


# --- register (POS) rules ----------------------------------------------------------------------


def cash_change(due: int, tendered: int) -> int:
    """Change to hand back for a cash tender covering ``due``."""
    if tendered < due:
        raise AppError(
            "insufficient_cash",
            "the cash tendered does not cover the amount due",
            422,
            {"due": due, "tendered": tendered},
        )
    return tendered - due


def missing_sequences(contiguous_through: int, seen_after: Sequence[int]) -> list[int]:
    """Sequence numbers a register has not sent yet: the gaps after the last contiguous one."""
    present = set(seen_after)
    top = max(present, default=contiguous_through)
    return [n for n in range(contiguous_through + 1, top + 1) if n not in present]


def advance_contiguous(contiguous_through: int, seen_after: Sequence[int]) -> int:
    present = set(seen_after)
    n = contiguous_through
    while n + 1 in present:
        n += 1
    return n
