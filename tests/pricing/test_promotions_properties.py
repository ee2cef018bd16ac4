"""Properties of the promotions engine over random carts and promotions."""

import random
from datetime import UTC, datetime
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from omniretail.pricing.domain import (
    AppliedCoupon,
    Cart,
    CartLine,
    ExclusiveStrategy,
    Promotion,
    PromotionIndex,
    PromotionKind,
    Stacking,
    evaluate,
    evaluate_naive,
)

NOW = datetime(2026, 6, 15, tzinfo=UTC)
SKUS = ["A", "B", "C", "D", "E"]
CATEGORIES = ["cat_1", "cat_2", "cat_3"]
CHANNELS = ["chn_web", "chn_app"]


@st.composite
def lines(draw):
    sku = draw(st.sampled_from(SKUS))
    return CartLine(
        sku=sku,
        quantity=draw(st.integers(1, 6)),
        unit_price=draw(st.integers(0, 20_000)),
        product_id=f"prd_{sku.lower()}",
        category_ids=frozenset(draw(st.sets(st.sampled_from(CATEGORIES), max_size=2))),
    )


@st.composite
def promotions(draw, index: int):
    kind = draw(st.sampled_from(list(PromotionKind)))
    target = draw(st.sampled_from(["sku", "product", "category", "cart"]))
    kw: dict = {}
    if kind is not PromotionKind.FREE_SHIPPING:
        if target == "sku":
            kw["skus"] = frozenset(draw(st.sets(st.sampled_from(SKUS), min_size=1, max_size=2)))
        elif target == "product":
            kw["product_ids"] = frozenset({f"prd_{draw(st.sampled_from(SKUS)).lower()}"})
        elif target == "category":
            kw["category_ids"] = frozenset({draw(st.sampled_from(CATEGORIES))})
    percent = Fraction(draw(st.integers(1, 1000)), 10)  # 0.1 .. 100.0
    return Promotion(
        id=f"pro_{index:03d}",
        name=f"promotion {index}",
        kind=kind,
        priority=draw(st.integers(0, 3)),
        stacking=draw(st.sampled_from(list(Stacking))),
        percent=percent,
        amount=draw(st.integers(1, 5000)),
        currency="EUR",
        buy_quantity=draw(st.integers(1, 3)),
        get_quantity=draw(st.integers(1, 2)),
        channel_ids=frozenset(draw(st.sets(st.sampled_from(CHANNELS), max_size=1))),
        customer_groups=frozenset(draw(st.sets(st.just("vip"), max_size=1))),
        requires_coupon=draw(st.booleans()) and index % 4 == 0,
        min_subtotal=draw(st.sampled_from([0, 0, 1000, 10_000])),
        min_quantity=draw(st.sampled_from([0, 0, 2, 5])),
        **kw,
    )


@st.composite
def scenarios(draw):
    cart = Cart(
        lines=tuple(draw(st.lists(lines(), min_size=1, max_size=8))),
        currency="EUR",
        channel_id=draw(st.sampled_from(CHANNELS)),
        customer_group=draw(st.sampled_from([None, "vip"])),
        coupons=(AppliedCoupon("CODE0", "pro_000"), AppliedCoupon("CODE4", "pro_004")),
        shipping_amount=draw(st.integers(0, 1000)),
    )
    count = draw(st.integers(0, 12))
    promos = [draw(promotions(i)) for i in range(count)]
    strategy = draw(st.sampled_from(list(ExclusiveStrategy)))
    return cart, promos, strategy


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_discounts_never_exceed_line_totals(scenario):
    cart, promos, strategy = scenario
    result = evaluate(cart, PromotionIndex(promos), NOW, strategy)
    for line in result.lines:
        assert 0 <= line.discount_total <= line.subtotal
        assert line.total == line.subtotal - line.discount_total
        assert sum(d.amount for d in line.discounts) == line.discount_total


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_totals_are_never_negative_and_add_up(scenario):
    cart, promos, strategy = scenario
    result = evaluate(cart, PromotionIndex(promos), NOW, strategy)
    assert result.total >= 0
    assert 0 <= result.shipping_discount <= result.shipping_amount
    assert result.item_discount_total == sum(line.discount_total for line in result.lines)
    assert result.total == (
        result.subtotal
        + result.shipping_amount
        - result.item_discount_total
        - result.shipping_discount
    )
    for order_discount in result.order_discounts:
        assert sum(order_discount.allocation) == order_discount.amount


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_result_is_deterministic_whatever_the_promotion_order(scenario, rnd: random.Random):
    cart, promos, strategy = scenario
    shuffled = list(promos)
    rnd.shuffle(shuffled)
    first = evaluate(cart, PromotionIndex(promos), NOW, strategy)
    assert evaluate(cart, PromotionIndex(shuffled), NOW, strategy) == first
    assert evaluate(cart, PromotionIndex(promos), NOW, strategy) == first


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_index_matches_the_naive_baseline(scenario):
    cart, promos, strategy = scenario
    indexed = evaluate(cart, PromotionIndex(promos), NOW, strategy)
    assert indexed == evaluate_naive(cart, promos, NOW, strategy)
