"""Pricing rules with no I/O: price precedence, the promotions engine, coupon checks and the
channel-consistency comparison. Amounts are integers in minor units; the only rounding is
``core.money`` (half-up, largest-remainder allocation). See docs/pricing.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple

from omniretail.core.money import allocate, div_half_up, percent_of

# --- price resolution -----------------------------------------------------------------------


class BookKind(StrEnum):
    CHANNEL = "channel"  # belongs to one channel; ranks before shared books
    SHARED = "shared"  # may back several channels of the same currency


@dataclass(frozen=True, slots=True)
class PriceCandidate:
    """A stored price seen from one channel (with the rank of its book on that channel)."""

    price_id: str
    sku: str
    amount: int
    currency: str
    book_id: str
    book_code: str
    book_kind: str = BookKind.SHARED.value
    book_priority: int = 0
    intended_override: bool = False
    customer_group: str | None = None
    min_quantity: int = 1
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a candidate won, lost or did not apply."""

    candidate: PriceCandidate
    status: str  # "won" | "lost" | "not_applicable"
    reason: str


@dataclass(frozen=True, slots=True)
class PriceResolution:
    sku: str
    quantity: int
    customer_group: str | None
    at: datetime
    winner: PriceCandidate | None
    rule: str | None
    explanation: tuple[Verdict, ...]


def price_not_applicable(
    c: PriceCandidate, quantity: int, customer_group: str | None, at: datetime
) -> str | None:
    """The reason a price cannot be used for this request, or ``None`` if it can."""
    if c.starts_at is not None and at < c.starts_at:
        return f"not valid yet: starts at {c.starts_at.isoformat()}"
    if c.ends_at is not None and at >= c.ends_at:
        return f"no longer valid: ended at {c.ends_at.isoformat()}"
    if c.customer_group is not None and c.customer_group != customer_group:
        return f"only for customer group {c.customer_group!r}"
    if quantity < c.min_quantity:
        return f"quantity tier needs at least {c.min_quantity} (asked {quantity})"
    return None


def _window_rank(c: PriceCandidate) -> tuple[int, timedelta]:
    """Narrower windows first: bounded (shortest first), then half-open, then open-ended."""
    if c.starts_at is not None and c.ends_at is not None:
        return (0, c.ends_at - c.starts_at)
    open_ends = (c.starts_at is None) + (c.ends_at is None)
    return (open_ends, timedelta(0))


def _price_stages(
    c: PriceCandidate,
) -> tuple[
    tuple[int, int, str],
    int,
    int,
    tuple[int, timedelta],
    tuple[int, float, int, str],
]:
    """The precedence key, one stage per rule (smaller wins)."""
    return (
        (0 if c.book_kind == BookKind.CHANNEL else 1, -c.book_priority, c.book_code),
        0 if c.customer_group is not None else 1,
        -c.min_quantity,
        _window_rank(c),
        (
            0 if c.starts_at is not None else 1,
            -c.starts_at.timestamp() if c.starts_at is not None else 0.0,
            c.amount,
            c.price_id,
        ),
    )


def price_rule(c: PriceCandidate) -> str:
    """A short name of the rule a price represents, e.g. ``customer_group_tier``."""
    parts = ["customer_group" if c.customer_group is not None else "public"]
    if c.min_quantity > 1:
        parts.append("tier")
    if c.starts_at is not None or c.ends_at is not None:
        parts.append("scheduled")
    return "_".join(parts)


def _book_label(c: PriceCandidate) -> str:
    return f"{c.book_code!r} ({c.book_kind}, priority {c.book_priority})"


def _loss_reason(loser: PriceCandidate, winner: PriceCandidate) -> str:
    lost, won = _price_stages(loser), _price_stages(winner)
    if lost[0] != won[0]:
        if loser.book_kind != winner.book_kind:
            why = "a channel book comes before a shared book"
        elif loser.book_priority != winner.book_priority:
            why = "higher priority wins"
        else:
            why = "equal kind and priority: book code order"
        return f"price book {_book_label(loser)} ranks below {_book_label(winner)}: {why}"
    if lost[1] != won[1]:
        return f"public price; the customer group {winner.customer_group!r} price comes first"
    if lost[2] != won[2]:
        return (
            f"quantity tier {loser.min_quantity}+ is below the applicable tier "
            f"{winner.min_quantity}+"
        )
    if lost[3] != won[3]:
        return "its validity window is wider than the winner's (narrower windows come first)"
    if loser.starts_at != winner.starts_at:
        return "tie-break: the price that started most recently wins"
    if loser.amount != winner.amount:
        return "tie-break: the lower amount wins"
    return "tie-break: the lower price id wins"


def resolve_price(
    sku: str,
    candidates: Iterable[PriceCandidate],
    quantity: int,
    customer_group: str | None,
    at: datetime,
) -> PriceResolution:
    """Pick the price that applies, with a verdict for every candidate.

    Precedence (first difference decides): channel book before shared book, then the higher
    assignment priority, then book code; a customer-group price before a public one; the
    highest applicable quantity tier; a narrower validity window before a wider or open one;
    then the most recent start, the lower amount and the lower price id.
    """
    usable: list[PriceCandidate] = []
    skipped: list[Verdict] = []
    for c in candidates:
        reason = price_not_applicable(c, quantity, customer_group, at)
        if reason is None:
            usable.append(c)
        else:
            skipped.append(Verdict(c, "not_applicable", reason))
    usable.sort(key=_price_stages)
    skipped.sort(key=lambda v: (_price_stages(v.candidate)[0], v.candidate.price_id))
    if not usable:
        return PriceResolution(sku, quantity, customer_group, at, None, None, tuple(skipped))
    winner = usable[0]
    rule = price_rule(winner)
    verdicts = [Verdict(winner, "won", f"applies ({rule}) and has the highest precedence")]
    verdicts += [Verdict(c, "lost", _loss_reason(c, winner)) for c in usable[1:]]
    return PriceResolution(
        sku, quantity, customer_group, at, winner, rule, tuple(verdicts + skipped)
    )


# --- promotions -----------------------------------------------------------------------------


class PromotionKind(StrEnum):
    PERCENT_OFF = "percent_off"  # percent of targeted line amounts (or of the cart)
    AMOUNT_OFF = "amount_off"  # per targeted unit, or once per cart when cart-wide
    BUY_X_GET_Y = "buy_x_get_y"  # for every X+Y eligible units the Y cheapest get percent off
    FREE_SHIPPING = "free_shipping"


class Stacking(StrEnum):
    STACKABLE = "stackable"
    EXCLUSIVE = "exclusive"


class ExclusiveStrategy(StrEnum):
    BEST_WINS = "best_wins"  # the option (one exclusive or all stackables) saving most wins
    PRIORITY_WINS = "priority_wins"  # the highest-priority eligible promotion decides


@dataclass(frozen=True, slots=True)
class Promotion:
    id: str
    name: str
    kind: PromotionKind
    priority: int = 0
    stacking: Stacking = Stacking.STACKABLE
    percent: Fraction | None = None
    amount: int = 0
    currency: str | None = None
    buy_quantity: int = 0
    get_quantity: int = 0
    skus: frozenset[str] = frozenset()
    product_ids: frozenset[str] = frozenset()
    category_ids: frozenset[str] = frozenset()
    channel_ids: frozenset[str] = frozenset()  # empty: every channel
    customer_groups: frozenset[str] = frozenset()  # empty: everybody
    requires_coupon: bool = False
    min_subtotal: int = 0
    min_quantity: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    # derived: no SKU, product or category target (applies to the whole cart)
    cart_wide: bool = field(init=False, default=False, compare=False, repr=False)
    exclusive: bool = field(init=False, default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # accept plain strings for the enums; the engine compares members by identity
        object.__setattr__(self, "kind", PromotionKind(self.kind))
        object.__setattr__(self, "stacking", Stacking(self.stacking))
        object.__setattr__(
            self, "cart_wide", not (self.skus or self.product_ids or self.category_ids)
        )
        object.__setattr__(self, "exclusive", self.stacking is Stacking.EXCLUSIVE)

    def targets(self, line: CartLine) -> bool:
        """Does this promotion's target include the line (cart-wide includes every line)?"""
        if self.cart_wide:
            return True
        return (
            line.sku in self.skus
            or (line.product_id is not None and line.product_id in self.product_ids)
            or not self.category_ids.isdisjoint(line.category_ids)
        )

    def in_channel(self, channel_id: str | None) -> bool:
        return not self.channel_ids or channel_id in self.channel_ids


def promotion_problem(p: Promotion) -> tuple[str, str] | None:
    """``(code, message)`` if the promotion's parameters do not make sense, else ``None``."""
    if p.kind is PromotionKind.PERCENT_OFF and (p.percent is None or not 0 < p.percent <= 100):
        return ("invalid_percent", "percent_off needs a percent greater than 0 and at most 100")
    if p.kind is PromotionKind.AMOUNT_OFF:
        if p.amount <= 0:
            return ("invalid_amount", "amount_off needs an amount greater than 0 (minor units)")
        if p.currency is None:
            return ("currency_required", "amount_off needs the currency of its amount")
    if p.kind is PromotionKind.BUY_X_GET_Y:
        if p.buy_quantity < 1 or p.get_quantity < 1:
            return ("invalid_quantities", "buy_x_get_y needs buy_quantity and get_quantity >= 1")
        if p.percent is None or not 0 < p.percent <= 100:
            return ("invalid_percent", "buy_x_get_y needs a percent greater than 0, at most 100")
    if p.kind is PromotionKind.FREE_SHIPPING and not p.cart_wide:
        return ("invalid_target", "free_shipping applies to the cart, not to items")
    if p.min_subtotal < 0 or p.min_quantity < 0:
        return ("invalid_threshold", "thresholds cannot be negative")
    if p.min_subtotal > 0 and p.currency is None:
        return ("currency_required", "a min_subtotal needs the currency of its amount")
    if p.starts_at is not None and p.ends_at is not None and p.starts_at >= p.ends_at:
        return ("invalid_window", "starts_at must be before ends_at")
    return None


@dataclass(frozen=True, slots=True)
class CartLine:
    sku: str
    quantity: int
    unit_price: int
    product_id: str | None = None
    category_ids: frozenset[str] = frozenset()  # the product's categories and their ancestors

    @property
    def subtotal(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class AppliedCoupon:
    """A coupon code the caller entered, already checked, and the promotion it unlocks."""

    code: str
    promotion_id: str


@dataclass(frozen=True, slots=True)
class Cart:
    lines: tuple[CartLine, ...]
    currency: str
    channel_id: str | None = None
    customer_group: str | None = None
    coupons: tuple[AppliedCoupon, ...] = ()
    shipping_amount: int = 0


class LineDiscount(NamedTuple):
    """A discount on one line (a named tuple: carts create hundreds of these)."""

    promotion_id: str
    name: str
    level: str  # "line" (item promotion) or "order" (share of a cart-wide discount)
    amount: int


@dataclass(frozen=True, slots=True)
class LineResult:
    sku: str
    quantity: int
    unit_price: int
    subtotal: int
    discounts: tuple[LineDiscount, ...]
    discount_total: int
    total: int


@dataclass(frozen=True, slots=True)
class OrderDiscount:
    promotion_id: str
    name: str
    amount: int
    allocation: tuple[int, ...]  # per cart line, summing exactly to ``amount``


@dataclass(frozen=True, slots=True)
class PromotionNote:
    promotion_id: str
    name: str
    status: str  # "applied" | "not_applicable" | "no_effect" | "lost"
    reason: str
    amount: int = 0
    coupon_code: str | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    currency: str
    lines: tuple[LineResult, ...]
    order_discounts: tuple[OrderDiscount, ...]
    subtotal: int
    item_discount_total: int
    shipping_amount: int
    shipping_discount: int
    free_shipping: bool
    discount_total: int
    total: int
    applied: tuple[str, ...]
    notes: tuple[PromotionNote, ...]


_LAST = (2**62, 2, "")


def _order_key(p: Promotion) -> tuple[int, int, str]:
    """Evaluation order: priority (higher first), exclusive before stackable, then id."""
    return (-p.priority, 0 if p.exclusive else 1, p.id)


def _admissible(p: Promotion, cart: Cart, coupon_ids: frozenset[str]) -> bool:
    if p.currency is not None and p.currency != cart.currency:
        return False
    return not p.requires_coupon or p.id in coupon_ids


def is_candidate(p: Promotion, cart: Cart) -> bool:
    """Could ``p`` touch this cart at all: channel, currency, coupon given, a targeted line."""
    coupon_ids = frozenset(c.promotion_id for c in cart.coupons)
    return (
        p.in_channel(cart.channel_id)
        and _admissible(p, cart, coupon_ids)
        and (p.cart_wide or any(p.targets(line) for line in cart.lines))
    )


@dataclass
class _Bucket:
    by_sku: dict[str, list[Promotion]] = field(default_factory=dict)
    by_product: dict[str, list[Promotion]] = field(default_factory=dict)
    by_category: dict[str, list[Promotion]] = field(default_factory=dict)
    cart_wide: list[Promotion] = field(default_factory=list)

    def add(self, p: Promotion) -> None:
        if p.cart_wide:
            self.cart_wide.append(p)
            return
        for sku in p.skus:
            self.by_sku.setdefault(sku, []).append(p)
        for pid in p.product_ids:
            self.by_product.setdefault(pid, []).append(p)
        for cid in p.category_ids:
            self.by_category.setdefault(cid, []).append(p)

    def targeting(
        self, found: dict[str, Promotion], sku: str, product_id: str | None, cats: Iterable[str]
    ) -> None:
        for p in self.by_sku.get(sku, ()):
            found[p.id] = p
        if product_id is not None:
            for p in self.by_product.get(product_id, ()):
                found[p.id] = p
        for cid in cats:
            for p in self.by_category.get(cid, ()):
                found[p.id] = p

    def lines_targeted(
        self, found: dict[str, Promotion], lines: dict[str, list[int]], i: int, line: CartLine
    ) -> None:
        """Record that line ``i`` is targeted by each of its promotions in this bucket."""
        hits: list[Promotion] = list(self.by_sku.get(line.sku, ()))
        if line.product_id is not None:
            hits += self.by_product.get(line.product_id, ())
        for cid in line.category_ids:
            hits += self.by_category.get(cid, ())
        for p in hits:
            found[p.id] = p
            seen = lines.setdefault(p.id, [])
            if not seen or seen[-1] != i:
                seen.append(i)


class PromotionIndex:
    """Promotions bucketed by channel (or all channels) and by target: SKU, product,
    category, or cart-wide. A cart looks up only the buckets of its channel and its lines, so
    the cost follows the cart and the promotions that touch it, not the number of promotions."""

    def __init__(self, promotions: Iterable[Promotion]) -> None:
        self._buckets: dict[str | None, _Bucket] = {}
        self.size = 0
        for p in promotions:
            self.size += 1
            for channel in sorted(p.channel_ids) if p.channel_ids else [None]:
                self._buckets.setdefault(channel, _Bucket()).add(p)

    def _channel_buckets(self, channel_id: str | None) -> list[_Bucket]:
        keys: list[str | None] = [None] if channel_id is None else [None, channel_id]
        return [self._buckets[k] for k in keys if k in self._buckets]

    def candidates(self, cart: Cart) -> list[Promotion]:
        return self.candidates_with_lines(cart)[0]

    def candidates_with_lines(
        self, cart: Cart
    ) -> tuple[list[Promotion], dict[str, tuple[int, ...]]]:
        """The candidate promotions of a cart, in evaluation order, and for each the indexes
        of the lines it targets (found through the buckets, never by testing promotions)."""
        found: dict[str, Promotion] = {}
        lines: dict[str, list[int]] = {}
        for bucket in self._channel_buckets(cart.channel_id):
            for p in bucket.cart_wide:
                found[p.id] = p
            for i, line in enumerate(cart.lines):
                bucket.lines_targeted(found, lines, i, line)
        coupon_ids = frozenset(c.promotion_id for c in cart.coupons)
        every_line = tuple(range(len(cart.lines)))
        candidates = sorted(
            (p for p in found.values() if _admissible(p, cart, coupon_ids)), key=_order_key
        )
        targeted = {p.id: every_line if p.cart_wide else tuple(lines[p.id]) for p in candidates}
        return candidates, targeted

    def targeting_item(
        self, channel_id: str | None, sku: str, product_id: str | None, cats: Iterable[str]
    ) -> list[Promotion]:
        """Item promotions (not cart-wide) of a channel whose target includes this item."""
        found: dict[str, Promotion] = {}
        cats = tuple(cats)
        for bucket in self._channel_buckets(channel_id):
            bucket.targeting(found, sku, product_id, cats)
        return sorted(found.values(), key=_order_key)

    def cart_wide(self, channel_id: str | None) -> list[Promotion]:
        found = {p.id: p for b in self._channel_buckets(channel_id) for p in b.cart_wide}
        return sorted(found.values(), key=_order_key)


def _window_problem(p: Promotion, now: datetime) -> str | None:
    if p.starts_at is not None and now < p.starts_at:
        return f"not started: starts at {p.starts_at.isoformat()}"
    if p.ends_at is not None and now >= p.ends_at:
        return f"ended at {p.ends_at.isoformat()}"
    return None


# Rounding. The rule is core.money's: percentages round half-up, spread amounts use the
# largest-remainder method with ties to the earlier part. core.money computes with Fraction,
# which costs tens of microseconds per call; the engine runs hundreds of these per cart, so it
# uses these integer forms of the same functions (tests check they agree with core.money).


def _targeted(p: Promotion, lines: Sequence[CartLine]) -> tuple[int, ...]:
    if p.cart_wide:
        return tuple(range(len(lines)))
    return tuple(i for i, line in enumerate(lines) if p.targets(line))


def _ineligible(p: Promotion, cart: Cart, now: datetime, idx: Sequence[int]) -> str | None:
    """Why a candidate cannot apply to this cart (scope, window, thresholds), or ``None``.
    ``idx``: the lines the promotion targets."""
    problem = _window_problem(p, now)
    if problem:
        return problem
    if p.customer_groups and cart.customer_group not in p.customer_groups:
        return f"only for customer groups: {', '.join(sorted(p.customer_groups))}"
    if p.min_subtotal or p.min_quantity:
        lines = cart.lines
        subtotal = sum(lines[i].subtotal for i in idx)
        quantity = sum(lines[i].quantity for i in idx)
        scope = "the cart" if p.cart_wide else "targeted items"
        if subtotal < p.min_subtotal:
            return f"needs a subtotal of {p.min_subtotal} on {scope} (has {subtotal})"
        if quantity < p.min_quantity:
            return f"needs {p.min_quantity} units of {scope} (has {quantity})"
    return None


@dataclass
class _Outcome:
    remaining: list[int]
    line_discounts: list[list[tuple[Promotion, str, int]]]  # (promotion, level, amount)
    order_discounts: list[OrderDiscount] = field(default_factory=list)
    shipping_discount: int = 0
    free_shipping: bool = False
    applied: list[tuple[Promotion, int]] = field(default_factory=list)
    no_effect: list[Promotion] = field(default_factory=list)
    total: int = 0


def _apply(
    cart: Cart, promotions: Sequence[Promotion], targeted: Mapping[str, tuple[int, ...]]
) -> _Outcome:
    """Apply ``promotions`` in order, each to what is left of every line after the previous
    ones (so two 10% promotions give 19%); no line ever goes below zero."""
    lines = cart.lines
    out = _Outcome([line.subtotal for line in lines], [[] for _ in lines])
    remaining = out.remaining
    for p in promotions:
        idx = targeted[p.id]
        effect = 0
        applied_free_shipping = False
        if p.kind is PromotionKind.FREE_SHIPPING:
            if not out.free_shipping:
                effect = cart.shipping_amount - out.shipping_discount
                out.shipping_discount += effect
                out.free_shipping = applied_free_shipping = True
        elif p.cart_wide and p.kind is not PromotionKind.BUY_X_GET_Y:
            weights = [remaining[i] for i in idx]
            base = sum(weights)
            if p.kind is PromotionKind.PERCENT_OFF:
                assert p.percent is not None
                effect = min(percent_of(base, p.percent), base)
            else:
                effect = min(p.amount, base)
            if effect > 0:
                allocation = [0] * len(lines)
                for i, part in zip(idx, allocate(effect, weights), strict=True):
                    allocation[i] = part
                    if part:
                        remaining[i] -= part
                        out.line_discounts[i].append((p, "order", part))
                out.order_discounts.append(OrderDiscount(p.id, p.name, effect, tuple(allocation)))
        else:
            for i, off in _item_discounts(p, lines, idx, remaining):
                off = min(off, remaining[i])
                if off > 0:
                    remaining[i] -= off
                    effect += off
                    out.line_discounts[i].append((p, "line", off))
        if effect > 0 or applied_free_shipping:
            out.applied.append((p, effect))
            out.total += effect
        else:
            out.no_effect.append(p)
    return out


def _item_discounts(
    p: Promotion, lines: Sequence[CartLine], idx: Sequence[int], remaining: list[int]
) -> list[tuple[int, int]]:
    """``(line index, discount before capping)`` for item-level promotions."""
    if p.kind is PromotionKind.PERCENT_OFF:
        assert p.percent is not None
        percent = p.percent
        return [(i, percent_of(remaining[i], percent)) for i in idx]
    if p.kind is PromotionKind.AMOUNT_OFF:
        return [(i, p.amount * lines[i].quantity) for i in idx]
    # buy X get Y: for every X+Y eligible units, the Y cheapest units (over the whole
    # eligible set, by unit price then line order) get ``percent`` off.
    assert p.percent is not None
    units = sum(lines[i].quantity for i in idx)
    free = units // (p.buy_quantity + p.get_quantity) * p.get_quantity
    out: list[tuple[int, int]] = []
    for i in sorted(idx, key=lambda i: (lines[i].unit_price, i)):
        if free <= 0:
            break
        taken = min(free, lines[i].quantity)
        free -= taken
        # percent of the taken units' share of what is left of the line, rounded half-up
        numerator = remaining[i] * taken * p.percent.numerator
        out.append((i, div_half_up(numerator, lines[i].quantity * 100 * p.percent.denominator)))
    return out


def evaluate(
    cart: Cart,
    promotions: PromotionIndex,
    now: datetime,
    strategy: ExclusiveStrategy = ExclusiveStrategy.BEST_WINS,
) -> Evaluation:
    """Evaluate ``cart`` against the indexed promotions."""
    candidates, targeted = promotions.candidates_with_lines(cart)
    return evaluate_candidates(cart, candidates, now, strategy, targeted)


def evaluate_naive(
    cart: Cart,
    promotions: Iterable[Promotion],
    now: datetime,
    strategy: ExclusiveStrategy = ExclusiveStrategy.BEST_WINS,
) -> Evaluation:
    """The baseline: test every promotion against the cart (same result, no index)."""
    candidates = sorted((p for p in promotions if is_candidate(p, cart)), key=_order_key)
    return evaluate_candidates(cart, candidates, now, strategy)


def evaluate_candidates(
    cart: Cart,
    candidates: Sequence[Promotion],
    now: datetime,
    strategy: ExclusiveStrategy = ExclusiveStrategy.BEST_WINS,
    targeted: Mapping[str, tuple[int, ...]] | None = None,
) -> Evaluation:
    """Evaluate the candidates (already filtered by channel, currency, coupon and target).
    ``targeted`` (optional) gives the lines each candidate targets.

    Stacking: every eligible stackable promotion applies, in order of priority (higher
    first), then id. Exclusive promotions never combine with anything. ``best_wins`` compares
    each eligible exclusive promotion alone with all stackable ones together and keeps the
    option that saves the most (ties: the option whose first promotion comes first in
    evaluation order, the stackable set last). ``priority_wins`` lets the highest-priority
    eligible promotion decide: if it is exclusive it applies alone, otherwise the stackable
    ones apply and every exclusive one loses.
    """
    ordered = sorted(candidates, key=_order_key)
    coupon_of = {c.promotion_id: c.code for c in cart.coupons}
    notes: dict[str, PromotionNote] = {}

    def note(p: Promotion, status: str, reason: str, amount: int = 0) -> None:
        notes[p.id] = PromotionNote(p.id, p.name, status, reason, amount, coupon_of.get(p.id))

    if targeted is None:
        targeted = {p.id: _targeted(p, cart.lines) for p in ordered}
    eligible: list[Promotion] = []
    for p in ordered:
        reason = _ineligible(p, cart, now, targeted[p.id])
        if reason is None:
            eligible.append(p)
        else:
            note(p, "not_applicable", reason)
    stackable = [p for p in eligible if not p.exclusive]
    exclusive = [p for p in eligible if p.exclusive]
    stacked = _apply(cart, stackable, targeted)
    chosen = stacked
    winner: Promotion | None = None  # the exclusive promotion that applies alone, if any
    if exclusive and strategy is ExclusiveStrategy.PRIORITY_WINS:
        effective: dict[str, _Outcome] = {}
        for p in exclusive:
            outcome = _apply(cart, [p], targeted)
            if outcome.applied:
                effective[p.id] = outcome
            else:
                note(p, "no_effect", "eligible but nothing to discount")
        stacked_ids = {p.id for p, _ in stacked.applied}
        contenders = [p for p in eligible if p.id in effective or p.id in stacked_ids]
        if contenders and contenders[0].exclusive:
            top = contenders[0]
            winner, chosen = top, effective[top.id]
            for p in eligible:
                if p is not top and p.id not in notes:
                    note(p, "lost", f"exclusive {top.name!r} has the highest priority")
        elif contenders:
            for p in exclusive:
                if p.id in effective:
                    note(
                        p,
                        "lost",
                        f"exclusive, and stackable {contenders[0].name!r} has a higher priority",
                    )
    elif exclusive:
        options: list[tuple[Promotion | None, _Outcome]] = []
        for p in exclusive:
            outcome = _apply(cart, [p], targeted)
            if outcome.applied:
                options.append((p, outcome))
            else:
                note(p, "no_effect", "eligible but nothing to discount")
        options.append((None, stacked))

        def rank(option: tuple[Promotion | None, _Outcome]) -> tuple[int, tuple[int, int, str]]:
            promo, outcome = option
            lead = promo or (stacked.applied[0][0] if stacked.applied else None)
            return (-outcome.total, _order_key(lead) if lead is not None else _LAST)

        best_p, best = min(options, key=rank)
        winner, chosen = best_p, best
        for other, outcome in options:
            if other is None or other is best_p:
                continue
            why = (
                f"{best_p.name!r} saves more or comes first"
                if best_p is not None
                else "the stackable promotions together save more or come first"
            )
            note(other, "lost", f"exclusive; {why} ({best.total} vs {outcome.total})")
        if best_p is not None:
            for p in stackable:
                note(p, "lost", f"does not combine with exclusive {best_p.name!r}")
    for p, amount in chosen.applied:
        how = "exclusive, applies alone" if p is winner else "stackable"
        note(p, "applied", how, amount)
    for p in chosen.no_effect:
        note(p, "no_effect", "eligible but nothing left to discount or too few units")
    return _result(cart, chosen, tuple(notes[p.id] for p in ordered if p.id in notes))


def _result(cart: Cart, outcome: _Outcome, notes: tuple[PromotionNote, ...]) -> Evaluation:
    lines = []
    for line, discounts, left in zip(
        cart.lines, outcome.line_discounts, outcome.remaining, strict=True
    ):
        lines.append(
            LineResult(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=line.unit_price,
                subtotal=line.subtotal,
                discounts=tuple(LineDiscount(p.id, p.name, level, n) for p, level, n in discounts),
                discount_total=line.subtotal - left,
                total=left,
            )
        )
    subtotal = sum(line.subtotal for line in cart.lines)
    item_discount = subtotal - sum(outcome.remaining)
    discount_total = item_discount + outcome.shipping_discount
    return Evaluation(
        currency=cart.currency,
        lines=tuple(lines),
        order_discounts=tuple(outcome.order_discounts),
        subtotal=subtotal,
        item_discount_total=item_discount,
        shipping_amount=cart.shipping_amount,
        shipping_discount=outcome.shipping_discount,
        free_shipping=outcome.free_shipping,
        discount_total=discount_total,
        total=subtotal + cart.shipping_amount - discount_total,
        applied=tuple(p.id for p, _ in outcome.applied),
        notes=notes,
    )


# --- coupons --------------------------------------------------------------------------------

COUPON_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_\-]{2,63}$")


def normalize_coupon_code(code: str) -> str:
    """Codes are case-insensitive: stored and compared upper-case without surrounding space."""
    return code.strip().upper()


def valid_coupon_code(code: str) -> bool:
    return bool(COUPON_CODE_RE.match(code))


@dataclass(frozen=True, slots=True)
class CouponState:
    code: str
    promotion_id: str
    active: bool
    usage_limit: int | None
    per_customer_limit: int | None
    used: int
    expires_at: datetime | None
    promotion_active: bool = True
    promotion_starts_at: datetime | None = None
    promotion_ends_at: datetime | None = None


COUPON_STATUS = {
    "coupon_inactive": 422,
    "coupon_expired": 422,
    "coupon_not_yet_valid": 422,
    "coupon_exhausted": 409,
    "coupon_customer_limit": 409,
}


def coupon_problem(
    c: CouponState, now: datetime, customer_uses: int | None = None
) -> tuple[str, str] | None:
    """``(code, message)`` if the coupon cannot be used now, else ``None``.

    ``customer_uses`` is the customer's active redemptions (``None``: no customer known, the
    per-customer limit is not checked).
    """
    if not c.active or not c.promotion_active:
        return ("coupon_inactive", f"coupon {c.code!r} is not active")
    if c.expires_at is not None and now >= c.expires_at:
        return ("coupon_expired", f"coupon {c.code!r} expired at {c.expires_at.isoformat()}")
    if c.promotion_ends_at is not None and now >= c.promotion_ends_at:
        return ("coupon_expired", f"the promotion of coupon {c.code!r} has ended")
    if c.promotion_starts_at is not None and now < c.promotion_starts_at:
        return ("coupon_not_yet_valid", f"the promotion of coupon {c.code!r} has not started")
    if c.usage_limit is not None and c.used >= c.usage_limit:
        return ("coupon_exhausted", f"coupon {c.code!r} has been used {c.used} times, its limit")
    if (
        c.per_customer_limit is not None
        and customer_uses is not None
        and customer_uses >= c.per_customer_limit
    ):
        return (
            "coupon_customer_limit",
            f"this customer has used coupon {c.code!r} {customer_uses} times, its limit",
        )
    return None


# --- channel consistency --------------------------------------------------------------------


class Aspect(StrEnum):
    PRICE = "price"
    PROMOTIONS = "promotions"  # item promotions targeting the SKU
    CART_PROMOTIONS = "cart_promotions"  # cart-wide promotions (no SKU)


@dataclass(frozen=True, slots=True)
class ChannelOffer:
    """What a channel offers for a SKU: its effective public price and promotions."""

    channel_id: str
    channel_code: str
    amount: int | None
    price_book: str | None
    intended: bool  # the channel's difference is deliberate (an intended-override book)
    promotion_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    sku: str | None
    currency: str
    aspect: str
    status: str  # "unintended" | "intended"
    offers: tuple[ChannelOffer, ...]


def _compare(values: Mapping[str, tuple[object, bool]]) -> str | None:
    """``channel -> (value, intended)``: ``None`` if all agree, else the finding's status."""
    if len({v for v, _ in values.values()}) <= 1:
        return None
    plain = {v for v, intended in values.values() if not intended}
    return "unintended" if len(plain) > 1 else "intended"


def compare_offers(sku: str | None, currency: str, offers: Sequence[ChannelOffer]) -> list[Finding]:
    """Differences between channels of one currency for one SKU (or, with ``sku=None``, for
    cart-wide promotions). Channels without a price for the SKU are not compared. A
    difference is *intended* when the channels that disagree with the rest all take their
    value from an intended-override book; otherwise it is *unintended*."""
    ordered = tuple(sorted(offers, key=lambda o: o.channel_code))
    if sku is None:
        status = _compare({o.channel_id: (o.promotion_ids, o.intended) for o in ordered})
        if status is None:
            return []
        return [Finding(None, currency, Aspect.CART_PROMOTIONS.value, status, ordered)]
    priced = tuple(o for o in ordered if o.amount is not None)
    findings = []
    for aspect, values in (
        (Aspect.PRICE, {o.channel_id: (o.amount, o.intended) for o in priced}),
        (Aspect.PROMOTIONS, {o.channel_id: (o.promotion_ids, o.intended) for o in priced}),
    ):
        status = _compare(values)
        if status is not None:
            findings.append(Finding(sku, currency, aspect.value, status, priced))
    return findings
