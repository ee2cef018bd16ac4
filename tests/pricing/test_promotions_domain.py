"""The promotions engine (pure domain): each promotion type, scope, thresholds, stacking and
exclusivity, and the rounding rule."""

from datetime import UTC, datetime
from fractions import Fraction

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
    promotion_problem,
)

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
PCT = PromotionKind.PERCENT_OFF
AMT = PromotionKind.AMOUNT_OFF
BXGY = PromotionKind.BUY_X_GET_Y
SHIP = PromotionKind.FREE_SHIPPING


def promo(pid: str, kind: PromotionKind = PCT, **kw) -> Promotion:
    if "percent" in kw:
        kw["percent"] = Fraction(kw["percent"])
    for key in ("skus", "product_ids", "category_ids", "channel_ids", "customer_groups"):
        if key in kw:
            kw[key] = frozenset(kw[key])
    if kind is AMT:
        kw.setdefault("currency", "EUR")
    return Promotion(id=pid, name=pid, kind=kind, **kw)


def line(sku: str, quantity: int, unit_price: int, product: str | None = None, cats=()) -> CartLine:
    return CartLine(sku, quantity, unit_price, product or f"prd_{sku}", frozenset(cats))


def cart(*lines: CartLine, channel="chn_web", group=None, coupons=(), shipping=0, currency="EUR"):
    return Cart(tuple(lines), currency, channel, group, tuple(coupons), shipping)


def run(c: Cart, *promotions: Promotion, strategy=ExclusiveStrategy.BEST_WINS):
    return evaluate(c, PromotionIndex(promotions), NOW, strategy)


def statuses(result) -> dict[str, str]:
    return {n.promotion_id: n.status for n in result.notes}


# --- types ----------------------------------------------------------------------------------


def test_percent_off_a_sku_discounts_only_that_line():
    result = run(
        cart(line("TEE", 2, 1000), line("MUG", 1, 500)), promo("p", percent=10, skus=["TEE"])
    )
    assert [(ln.discount_total, ln.total) for ln in result.lines] == [(200, 1800), (0, 500)]
    assert (result.subtotal, result.discount_total, result.total) == (2500, 200, 2300)


def test_percent_is_taken_of_the_line_total_and_rounded_half_up():
    # given 3 x 3.33 = 9.99 with 10% off: 99.9 minor units
    result = run(cart(line("A", 3, 333)), promo("p", percent=10, skus=["A"]))
    # then the discount is 1.00 (half-up on the line total), not 3 x 0.33
    assert (result.lines[0].discount_total, result.total) == (100, 899)


def test_an_exact_half_minor_unit_rounds_up():
    result = run(cart(line("A", 1, 100)), promo("p", percent="12.5", skus=["A"]))
    assert result.lines[0].discount_total == 13


def test_amount_off_a_product_is_per_unit():
    lines = [line("TEE-S", 2, 500, product="prd_tee"), line("TEE-M", 1, 300, product="prd_tee")]
    result = run(cart(*lines), promo("p", AMT, amount=100, product_ids=["prd_tee"]))
    assert [ln.discount_total for ln in result.lines] == [200, 100]


def test_amount_off_never_takes_a_line_below_zero():
    result = run(cart(line("A", 1, 50)), promo("p", AMT, amount=100, skus=["A"]))
    assert (result.lines[0].discount_total, result.lines[0].total) == (50, 0)


def test_category_promotion_matches_through_ancestor_categories():
    shoe = line("SHOE", 1, 8000, cats=["cat_running", "cat_footwear"])
    result = run(
        cart(shoe, line("MUG", 1, 500)), promo("p", percent=25, category_ids=["cat_footwear"])
    )
    assert [ln.discount_total for ln in result.lines] == [2000, 0]


def test_cart_percent_is_an_order_discount_allocated_over_lines():
    lines = [line("A", 1, 1000), line("B", 1, 500), line("C", 1, 250)]
    result = run(cart(*lines), promo("p", percent=10))
    assert [(d.amount, d.allocation) for d in result.order_discounts] == [(175, (100, 50, 25))]
    assert [ln.discounts[0].level for ln in result.lines] == ["order", "order", "order"]


def test_fixed_cart_discount_allocation_sums_exactly_by_largest_remainder():
    # given 10.00 off a cart of three equal lines: 3.333... each
    lines = [line("A", 1, 1000), line("B", 1, 1000), line("C", 1, 1000)]
    result = run(cart(*lines), promo("p", AMT, amount=1000))
    # then the extra minor unit goes to the first line and the parts add up to 10.00
    assert result.order_discounts[0].allocation == (334, 333, 333)
    assert sum(result.order_discounts[0].allocation) == 1000
    assert result.total == 2000


def test_fixed_cart_discount_is_capped_at_the_cart_subtotal():
    result = run(cart(line("A", 1, 300), line("B", 1, 200)), promo("p", AMT, amount=1000))
    assert (result.order_discounts[0].amount, result.total) == (500, 0)
    assert [ln.total for ln in result.lines] == [0, 0]


def test_buy_two_get_one_free_discounts_the_cheapest_unit():
    lines = [
        line("A", 1, 1000, cats=["cat_x"]),
        line("B", 1, 600, cats=["cat_x"]),
        line("C", 1, 800, cats=["cat_x"]),
    ]
    p = promo("p", BXGY, buy_quantity=2, get_quantity=1, percent=100, category_ids=["cat_x"])
    result = run(cart(*lines), p)
    assert [ln.discount_total for ln in result.lines] == [0, 600, 0]


def test_buy_x_get_y_counts_whole_groups_only():
    # 7 units of buy-2-get-1: two complete groups, so two units free
    p = promo("p", BXGY, buy_quantity=2, get_quantity=1, percent=100, skus=["A"])
    result = run(cart(line("A", 7, 300)), p)
    assert result.lines[0].discount_total == 600


def test_buy_one_get_one_half_price():
    p = promo("p", BXGY, buy_quantity=1, get_quantity=1, percent=50, skus=["A"])
    result = run(cart(line("A", 2, 1000)), p)
    assert result.lines[0].discount_total == 500


def test_buy_x_get_y_with_too_few_units_has_no_effect():
    p = promo("p", BXGY, buy_quantity=2, get_quantity=1, percent=100, skus=["A"])
    result = run(cart(line("A", 2, 1000)), p)
    assert result.discount_total == 0
    assert statuses(result) == {"p": "no_effect"}


def test_free_shipping_above_a_spend_threshold():
    p = promo("ship", SHIP, min_subtotal=5000, currency="EUR")
    result = run(cart(line("A", 1, 6000), shipping=495), p)
    assert (result.shipping_discount, result.free_shipping, result.total) == (495, True, 6000)


def test_free_shipping_below_the_threshold_explains_the_gap():
    p = promo("ship", SHIP, min_subtotal=5000, currency="EUR")
    result = run(cart(line("A", 1, 4000), shipping=495), p)
    assert (result.shipping_discount, result.total) == (0, 4495)
    assert result.notes[0].status == "not_applicable"
    assert result.notes[0].reason == "needs a subtotal of 5000 on the cart (has 4000)"


def test_min_quantity_counts_targeted_units_only():
    p = promo("p", percent=10, skus=["A"], min_quantity=3)
    result = run(cart(line("A", 2, 1000), line("B", 5, 100)), p)
    assert result.discount_total == 0
    assert result.notes[0].reason == "needs 3 units of targeted items (has 2)"


# --- scope ----------------------------------------------------------------------------------


def test_promotion_for_another_channel_is_not_even_a_candidate():
    result = run(
        cart(line("A", 1, 1000), channel="chn_web"), promo("p", percent=10, channel_ids=["chn_app"])
    )
    assert (result.discount_total, result.notes) == (0, ())


def test_promotion_for_listed_channel_applies_there():
    result = run(
        cart(line("A", 1, 1000), channel="chn_app"), promo("p", percent=10, channel_ids=["chn_app"])
    )
    assert result.discount_total == 100


def test_customer_group_promotion_needs_that_group():
    p = promo("p", percent=10, customer_groups=["vip"])
    assert run(cart(line("A", 1, 1000), group="vip"), p).discount_total == 100
    result = run(cart(line("A", 1, 1000), group=None), p)
    assert result.discount_total == 0
    assert result.notes[0].reason == "only for customer groups: vip"


def test_ended_and_future_promotions_do_not_apply():
    ended = promo("old", percent=10, ends_at=datetime(2026, 6, 1, tzinfo=UTC))
    future = promo("new", percent=10, starts_at=datetime(2026, 7, 1, tzinfo=UTC))
    result = run(cart(line("A", 1, 1000)), ended, future)
    assert result.discount_total == 0
    assert {n.promotion_id: n.reason for n in result.notes} == {
        "old": "ended at 2026-06-01T00:00:00+00:00",
        "new": "not started: starts at 2026-07-01T00:00:00+00:00",
    }


def test_coupon_promotion_applies_only_with_its_coupon():
    p = promo("p", percent=10, requires_coupon=True)
    assert run(cart(line("A", 1, 1000)), p).discount_total == 0
    result = run(cart(line("A", 1, 1000), coupons=[AppliedCoupon("SAVE10", "p")]), p)
    assert result.discount_total == 100
    assert result.notes[0].coupon_code == "SAVE10"


def test_amount_in_another_currency_is_not_a_candidate():
    p = promo("p", AMT, amount=100, currency="GBP")
    assert run(cart(line("A", 1, 1000), currency="EUR"), p).discount_total == 0


# --- stacking and exclusivity ---------------------------------------------------------------


def test_stackable_promotions_compound_in_priority_order():
    first = promo("a", percent=10, priority=5)
    second = promo("b", percent=10, priority=1)
    result = run(cart(line("A", 1, 1000)), second, first)
    assert [(d.promotion_id, d.amount) for d in result.lines[0].discounts] == [
        ("a", 100),
        ("b", 90),
    ]
    assert result.applied == ("a", "b")


def test_best_wins_picks_an_exclusive_that_saves_more_than_the_stack():
    stack = [promo("s1", percent=10), promo("s2", percent=5)]  # 100 + 45 = 145
    exclusive = promo("x", percent=20, stacking=Stacking.EXCLUSIVE)  # 200
    result = run(cart(line("A", 1, 1000)), *stack, exclusive)
    assert (result.applied, result.discount_total) == (("x",), 200)
    assert statuses(result) == {"x": "applied", "s1": "lost", "s2": "lost"}


def test_best_wins_keeps_the_stack_when_it_saves_more():
    stack = [promo("s1", percent=10), promo("s2", percent=15)]  # 100 + 135 = 235
    exclusive = promo("x", percent=20, stacking=Stacking.EXCLUSIVE)
    result = run(cart(line("A", 1, 1000)), *stack, exclusive)
    assert (result.applied, result.discount_total) == (("s1", "s2"), 235)
    assert statuses(result)["x"] == "lost"


def test_best_wins_between_two_exclusives_takes_the_bigger_saving():
    small = promo("x1", percent=10, stacking=Stacking.EXCLUSIVE, priority=9)
    big = promo("x2", AMT, amount=300, stacking=Stacking.EXCLUSIVE)
    result = run(cart(line("A", 1, 1000)), small, big)
    assert (result.applied, result.discount_total) == (("x2",), 300)


def test_best_wins_tie_goes_to_the_higher_priority_option():
    low = promo("x1", percent=10, stacking=Stacking.EXCLUSIVE, priority=1)
    high = promo("x2", AMT, amount=100, stacking=Stacking.EXCLUSIVE, priority=2)
    assert run(cart(line("A", 1, 1000)), low, high).applied == ("x2",)


def test_priority_wins_lets_a_higher_priority_exclusive_apply_alone():
    exclusive = promo("x", percent=5, stacking=Stacking.EXCLUSIVE, priority=10)
    stackable = promo("s", percent=20, priority=5)
    result = run(
        cart(line("A", 1, 1000)), exclusive, stackable, strategy=ExclusiveStrategy.PRIORITY_WINS
    )
    assert (result.applied, result.discount_total) == (("x",), 50)
    assert statuses(result)["s"] == "lost"


def test_priority_wins_drops_exclusives_below_a_stackable_priority():
    exclusive = promo("x", percent=50, stacking=Stacking.EXCLUSIVE, priority=1)
    stackable = promo("s", percent=10, priority=5)
    result = run(
        cart(line("A", 1, 1000)), exclusive, stackable, strategy=ExclusiveStrategy.PRIORITY_WINS
    )
    assert (result.applied, result.discount_total) == (("s",), 100)
    assert statuses(result)["x"] == "lost"


def test_stacked_discounts_never_take_a_line_below_zero():
    result = run(
        cart(line("A", 1, 1000)),
        promo("a", AMT, amount=800, skus=["A"], priority=2),
        promo("b", AMT, amount=800, skus=["A"], priority=1),
        promo("c", AMT, amount=500),
    )
    assert (result.lines[0].total, result.total) == (0, 0)
    assert statuses(result) == {"a": "applied", "b": "applied", "c": "no_effect"}


def test_notes_and_results_are_in_a_stable_order():
    promotions = [promo(f"p{i}", percent=1 + i, priority=i % 3) for i in range(6)]
    first = run(cart(line("A", 1, 10_000)), *promotions)
    second = run(cart(line("A", 1, 10_000)), *reversed(promotions))
    assert first == second
    assert [n.promotion_id for n in first.notes] == ["p2", "p5", "p1", "p4", "p0", "p3"]


def test_index_and_naive_baseline_give_the_same_result():
    promotions = [
        promo("sku", percent=10, skus=["A"]),
        promo("prod", AMT, amount=50, product_ids=["prd_B"]),
        promo("cat", percent=5, category_ids=["cat_x"]),
        promo("cart", AMT, amount=100, min_subtotal=1000),
        promo("other", percent=50, skus=["Z"]),
        promo("app", percent=50, channel_ids=["chn_app"]),
    ]
    c = cart(line("A", 2, 700), line("B", 1, 300), line("C", 1, 400, cats=["cat_x"]))
    indexed = evaluate(c, PromotionIndex(promotions), NOW)
    assert indexed == evaluate_naive(c, promotions, NOW)
    assert indexed.applied == ("cart", "cat", "prod", "sku")


# --- validation -----------------------------------------------------------------------------


def test_promotion_parameters_are_validated():
    assert promotion_problem(promo("p", percent=0))[0] == "invalid_percent"
    assert promotion_problem(promo("p", percent=101))[0] == "invalid_percent"
    assert promotion_problem(Promotion("p", "p", AMT, amount=100))[0] == "currency_required"
    assert promotion_problem(promo("p", BXGY, percent=100, buy_quantity=0, get_quantity=1))[0] == (
        "invalid_quantities"
    )
    assert promotion_problem(promo("p", SHIP, skus=["A"]))[0] == "invalid_target"
    assert promotion_problem(promo("p", percent=10)) is None
