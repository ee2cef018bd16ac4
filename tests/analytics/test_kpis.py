"""KPIs on the hand-made first quarter of ``factories.handmade`` (values worked by hand)."""

from datetime import date

import pytest

from omniretail.analytics import service
from omniretail.core.errors import AppError
from tests.analytics.factories import Q1, handmade, sale


@pytest.fixture()
def shop(session):
    handmade(session)
    session.commit()
    return session


def test_revenue_counts_merchandise_of_orders_net_of_the_cancelled_one(shop):
    # when
    report = service.kpis(shop, **Q1)
    # then o1..o8: 2000 + 500 + 1000 + 2000 + 500 + 1000 + 250 + 1000; postage is not revenue
    assert (report.revenue_minor, report.orders, report.cancelled_orders) == (8250, 8, 1)


def test_aov_is_revenue_over_orders_rounded_half_up(shop):
    # when 8250 / 8 = 1031.25
    report = service.kpis(shop, **Q1)
    # then
    assert report.aov_minor == 1031


def test_units_per_order(shop):
    # when 15 units over 8 orders
    report = service.kpis(shop, **Q1)
    # then
    assert (report.units, report.units_per_order) == (15, 1.875)


def test_repeat_purchase_rate_counts_identified_customers_with_two_orders(shop):
    # when A (3 orders) and C (2) repeat; B (1, its second order cancelled) and D (1) do not
    report = service.kpis(shop, **Q1)
    # then
    assert (report.customers, report.repeat_customers, report.repeat_purchase_rate) == (4, 2, 0.5)
    assert report.guest_orders == 1


def test_conversion_is_sessions_with_an_order_over_sessions(shop):
    # when s1 and s3 converted (o1, o4), s2 and s4 did not
    report = service.kpis(shop, **Q1)
    # then
    assert (report.sessions, report.converted_sessions, report.conversion_rate) == (4, 2, 0.5)


def test_conversion_is_none_without_tracked_sessions(shop):
    # when March has orders but no sessions
    report = service.kpis(shop, start=date(2024, 3, 1), end=date(2024, 4, 1))
    # then
    assert (report.sessions, report.conversion_rate) == (0, None)


def test_session_recorded_after_its_order_counts_as_converted(session):
    # given an order carrying a session key that is tracked only later
    sale(session, "o1", "A", date(2024, 1, 5), [("SKU1", 1, 500)], session_key="late")
    # when
    service.record_session_fact(
        session, session_key="late", channel="web", started_at=date_time(2024, 1, 5)
    )
    report = service.kpis(session, **Q1)
    # then
    assert (report.sessions, report.converted_sessions) == (1, 1)


def date_time(y: int, m: int, d: int):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(y, m, d, 9, tzinfo=UTC)


def test_churn_is_previous_window_customers_who_did_not_order_again(shop):
    # when February (29 days) is compared with 3 Jan – 1 Feb: A and B ordered then,
    # only A orders in February
    report = service.kpis(shop, start=date(2024, 2, 1), end=date(2024, 3, 1))
    # then
    assert (report.previous_customers, report.churned_customers, report.churn_rate) == (2, 1, 0.5)


def test_churn_is_none_without_a_previous_window(shop):
    # when
    report = service.kpis(shop, **Q1)
    # then
    assert (report.previous_customers, report.churn_rate) == (0, None)


def test_returns_are_reported_apart_from_revenue(shop):
    # when r1 returns one SKU1 at 500 in March
    report = service.kpis(shop, **Q1)
    # then return rate = 500 / 8250
    assert (report.return_count, report.returned_minor, report.returned_units) == (1, 500, 1)
    assert report.return_rate == 0.060606
    assert report.net_revenue_minor == 7750


def test_channel_filter_keeps_only_that_channels_orders(shop):
    # when o2 and o6 were sold in store
    report = service.kpis(shop, channel="store", **Q1)
    # then
    assert (report.orders, report.revenue_minor, report.aov_minor) == (2, 1500, 750)


def test_guest_segment(shop):
    # when
    report = service.kpis(shop, segment="guest", **Q1)
    # then o5 only
    assert (report.orders, report.revenue_minor, report.customers) == (1, 500, 0)


def test_rfm_segment_filter_keeps_that_segments_customers(shop):
    # when A is "at_risk" (see test_rfm)
    report = service.kpis(shop, segment="at_risk", **Q1)
    # then A's three orders
    assert (report.orders, report.revenue_minor, report.customers) == (3, 4000, 1)


def test_unknown_segment_is_refused_with_the_allowed_names(shop):
    # when
    with pytest.raises(AppError) as caught:
        service.kpis(shop, segment="vips", **Q1)
    # then
    assert caught.value.code == "unknown_segment"
    assert "champions" in caught.value.details["allowed"]


def test_window_must_end_after_it_starts(shop):
    with pytest.raises(AppError) as caught:
        service.kpis(shop, start=date(2024, 2, 1), end=date(2024, 2, 1))
    assert caught.value.code == "invalid_window"
