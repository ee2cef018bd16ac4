"""Coupon checks and the channel-consistency comparison (pure domain)."""

from datetime import UTC, datetime

from omniretail.pricing.domain import (
    ChannelOffer,
    CouponState,
    compare_offers,
    coupon_problem,
    normalize_coupon_code,
    valid_coupon_code,
)

NOW = datetime(2026, 6, 15, tzinfo=UTC)


def coupon(**kw) -> CouponState:
    values = {
        "code": "SAVE10",
        "promotion_id": "pro_1",
        "active": True,
        "usage_limit": 5,
        "per_customer_limit": 1,
        "used": 0,
        "expires_at": None,
    }
    values.update(kw)
    return CouponState(**values)


def test_usable_coupon_has_no_problem():
    assert coupon_problem(coupon(), NOW, customer_uses=0) is None


def test_expired_coupon():
    problem = coupon_problem(coupon(expires_at=datetime(2026, 6, 1, tzinfo=UTC)), NOW)
    assert problem == ("coupon_expired", "coupon 'SAVE10' expired at 2026-06-01T00:00:00+00:00")


def test_coupon_of_an_ended_promotion_is_expired():
    ended = coupon(promotion_ends_at=datetime(2026, 6, 10, tzinfo=UTC))
    assert coupon_problem(ended, NOW)[0] == "coupon_expired"


def test_exhausted_coupon():
    assert coupon_problem(coupon(used=5), NOW)[0] == "coupon_exhausted"


def test_unlimited_coupon_is_never_exhausted():
    assert coupon_problem(coupon(usage_limit=None, used=10_000), NOW) is None


def test_customer_limit_is_checked_only_for_a_known_customer():
    assert coupon_problem(coupon(), NOW, customer_uses=1)[0] == "coupon_customer_limit"
    assert coupon_problem(coupon(), NOW, customer_uses=None) is None


def test_inactive_coupon():
    assert coupon_problem(coupon(active=False), NOW)[0] == "coupon_inactive"


def test_codes_are_case_insensitive_and_checked():
    assert normalize_coupon_code("  save10 ") == "SAVE10"
    assert valid_coupon_code("SUMMER-2026_A")
    assert not valid_coupon_code("AB")
    assert not valid_coupon_code("HAS SPACE")


def offer(channel: str, amount: int | None, intended: bool = False, promos=()) -> ChannelOffer:
    return ChannelOffer(
        channel_id=f"chn_{channel}",
        channel_code=channel,
        amount=amount,
        price_book="book",
        intended=intended,
        promotion_ids=tuple(promos),
    )


def test_channels_that_agree_give_no_finding():
    assert compare_offers("TEE", "EUR", [offer("web", 1000), offer("app", 1000)]) == []


def test_different_prices_from_ordinary_books_are_unintended():
    findings = compare_offers("TEE", "EUR", [offer("web", 1000), offer("app", 1100)])
    assert [(f.sku, f.aspect, f.status) for f in findings] == [("TEE", "price", "unintended")]


def test_difference_owned_by_an_intended_override_book_is_intended():
    offers = [offer("web", 1000), offer("app", 1000), offer("outlet", 700, intended=True)]
    findings = compare_offers("TEE", "EUR", offers)
    assert [(f.aspect, f.status) for f in findings] == [("price", "intended")]


def test_override_does_not_hide_a_difference_between_ordinary_channels():
    offers = [offer("web", 1000), offer("app", 1100), offer("outlet", 700, intended=True)]
    assert compare_offers("TEE", "EUR", offers)[0].status == "unintended"


def test_channel_without_a_price_is_not_compared():
    assert compare_offers("TEE", "EUR", [offer("web", 1000), offer("app", None)]) == []


def test_different_item_promotions_are_a_finding():
    offers = [offer("web", 1000, promos=["pro_1"]), offer("app", 1000)]
    findings = compare_offers("TEE", "EUR", offers)
    assert [(f.aspect, f.status) for f in findings] == [("promotions", "unintended")]


def test_cart_wide_promotions_are_compared_without_a_sku():
    offers = [offer("web", None, promos=["pro_9"]), offer("app", None)]
    findings = compare_offers(None, "EUR", offers)
    assert [(f.sku, f.aspect, f.status) for f in findings] == [
        (None, "cart_promotions", "unintended")
    ]
