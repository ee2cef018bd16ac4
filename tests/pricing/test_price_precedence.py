"""Price precedence (pure domain): each rule wins where it should, and every loser says why."""

from datetime import UTC, datetime

from omniretail.pricing.domain import PriceCandidate, resolve_price

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def day(d: int, month: int = 6) -> datetime:
    return datetime(2026, month, d, tzinfo=UTC)


def price(
    price_id: str,
    amount: int,
    book: str = "base",
    kind: str = "shared",
    priority: int = 0,
    group: str | None = None,
    min_quantity: int = 1,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> PriceCandidate:
    return PriceCandidate(
        price_id=price_id,
        sku="TEE",
        amount=amount,
        currency="EUR",
        book_id=f"pbk_{book}",
        book_code=book,
        book_kind=kind,
        book_priority=priority,
        customer_group=group,
        min_quantity=min_quantity,
        starts_at=starts_at,
        ends_at=ends_at,
    )


def resolve(*candidates: PriceCandidate, quantity: int = 1, group: str | None = None, at=NOW):
    return resolve_price("TEE", candidates, quantity, group, at)


def verdicts(resolution):
    return [(v.candidate.price_id, v.status) for v in resolution.explanation]


def test_channel_book_wins_over_shared_book_even_with_lower_priority():
    # given a shared book with a high priority and a channel book with none
    shared = price("p1", 1000, book="base", kind="shared", priority=100)
    channel = price("p2", 1200, book="web", kind="channel", priority=0)
    # when resolving
    r = resolve(shared, channel)
    # then the channel book's price wins and the shared one explains why it lost
    assert (r.winner.price_id, r.winner.amount, r.rule) == ("p2", 1200, "public")
    assert r.explanation[1].status == "lost"
    assert r.explanation[1].reason == (
        "price book 'base' (shared, priority 100) ranks below 'web' (channel, priority 0): "
        "a channel book comes before a shared book"
    )


def test_higher_priority_wins_among_shared_books():
    base = price("p1", 1000, book="base", priority=0)
    sale = price("p2", 900, book="sale", priority=10)
    r = resolve(base, sale)
    assert r.winner.price_id == "p2"
    assert r.explanation[1].reason.endswith("higher priority wins")


def test_equal_books_tie_break_on_book_code():
    r = resolve(price("p1", 1000, book="zeta"), price("p2", 1100, book="alpha"))
    assert r.winner.price_id == "p2"
    assert r.explanation[1].reason.endswith("equal kind and priority: book code order")


def test_customer_group_price_wins_over_public_price():
    r = resolve(price("p1", 1000), price("p2", 950, group="vip"), group="vip")
    assert (r.winner.amount, r.rule) == (950, "customer_group")
    assert r.explanation[1].reason == ("public price; the customer group 'vip' price comes first")


def test_customer_group_price_does_not_apply_to_other_shoppers():
    r = resolve(price("p1", 1000), price("p2", 950, group="vip"), group=None)
    assert r.winner.amount == 1000
    assert verdicts(r) == [("p1", "won"), ("p2", "not_applicable")]
    assert r.explanation[1].reason == "only for customer group 'vip'"


def test_highest_applicable_quantity_tier_wins():
    tiers = [
        price("t1", 1000),
        price("t10", 900, min_quantity=10),
        price("t50", 800, min_quantity=50),
    ]
    r = resolve(*tiers, quantity=12)
    assert (r.winner.price_id, r.winner.amount, r.rule) == ("t10", 900, "public_tier")
    assert verdicts(r) == [("t10", "won"), ("t1", "lost"), ("t50", "not_applicable")]
    assert r.explanation[1].reason == "quantity tier 1+ is below the applicable tier 10+"
    assert r.explanation[2].reason == "quantity tier needs at least 50 (asked 12)"


def test_customer_group_comes_before_a_higher_public_tier():
    # given a VIP price without tier and a cheaper public tier for 10+
    r = resolve(
        price("vip", 950, group="vip"), price("t10", 800, min_quantity=10), quantity=10, group="vip"
    )
    # then the group rule ranks first (documented precedence), even though it costs more
    assert (r.winner.price_id, r.rule) == ("vip", "customer_group")


def test_customer_group_tier_combines_both_rules():
    r = resolve(
        price("vip", 950, group="vip"),
        price("vip10", 850, group="vip", min_quantity=10),
        quantity=10,
        group="vip",
    )
    assert (r.winner.price_id, r.rule) == ("vip10", "customer_group_tier")


def test_book_precedence_comes_before_customer_group():
    channel_public = price("p1", 1200, book="web", kind="channel")
    shared_vip = price("p2", 900, book="base", group="vip")
    r = resolve(channel_public, shared_vip, group="vip")
    assert r.winner.price_id == "p1"


def test_bounded_window_wins_over_open_ended_price():
    r = resolve(price("open", 1000), price("june", 900, starts_at=day(1), ends_at=day(30)))
    assert (r.winner.price_id, r.rule) == ("june", "public_scheduled")
    assert r.explanation[1].reason == (
        "its validity window is wider than the winner's (narrower windows come first)"
    )


def test_shorter_bounded_window_wins_over_longer_one():
    month = price("month", 900, starts_at=day(1), ends_at=day(30))
    weekend = price("weekend", 800, starts_at=day(14), ends_at=day(16))
    assert resolve(month, weekend).winner.price_id == "weekend"


def test_half_open_window_wins_over_open_ended_one():
    r = resolve(price("open", 1000), price("from-june", 950, starts_at=day(1)))
    assert r.winner.price_id == "from-june"


def test_window_start_is_inclusive_and_end_is_exclusive():
    p = price("june", 900, starts_at=day(1), ends_at=day(30))
    assert resolve(p, at=day(1)).winner.price_id == "june"
    r = resolve(p, at=day(30))
    assert r.winner is None
    assert r.explanation[0].reason == "no longer valid: ended at 2026-06-30T00:00:00+00:00"


def test_future_price_is_not_applicable_yet():
    r = resolve(price("open", 1000), price("july", 800, starts_at=day(1, 7)))
    assert r.winner.price_id == "open"
    assert r.explanation[1].reason == "not valid yet: starts at 2026-07-01T00:00:00+00:00"


def test_tie_break_prefers_the_most_recent_start():
    older = price("a", 900, starts_at=day(1))
    newer = price("b", 950, starts_at=day(10))
    r = resolve(older, newer)
    assert r.winner.price_id == "b"
    assert r.explanation[1].reason == "tie-break: the price that started most recently wins"


def test_tie_break_prefers_the_lower_amount_then_the_lower_id():
    assert resolve(price("b", 900), price("a", 950)).winner.price_id == "b"
    r = resolve(price("b", 900), price("a", 900))
    assert r.winner.price_id == "a"
    assert r.explanation[1].reason == "tie-break: the lower price id wins"


def test_no_applicable_price_gives_no_winner_and_explains_each():
    r = resolve(price("vip", 900, group="vip"), price("t5", 800, min_quantity=5))
    assert (r.winner, r.rule) == (None, None)
    assert [v.status for v in r.explanation] == ["not_applicable", "not_applicable"]


def test_resolution_is_independent_of_candidate_order():
    candidates = [
        price("a", 1000),
        price("b", 900, min_quantity=5),
        price("c", 950, group="vip"),
        price("d", 990, book="web", kind="channel", priority=1),
        price("e", 980, starts_at=day(1), ends_at=day(20)),
    ]
    first = resolve(*candidates, quantity=5, group="vip")
    second = resolve(*reversed(candidates), quantity=5, group="vip")
    assert first == second
    assert first.winner.price_id == "d"
