"""Conversion = tracked sessions with an order / tracked sessions.

Sessions come from the tracking API (``tracking.session.started``); an order that names no
session converts its customer's latest session within the attribution window; a tracked
``Order Completed`` converts the session it was tracked in."""

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from omniretail.analytics import facts, subscribers
from omniretail.analytics.facts import FactLine
from omniretail.analytics.models import OrderFact, TrackedSession
from omniretail.core import events
from omniretail.customer import service as customers
from omniretail.customer import tracking
from tests.customer.conftest import basic  # also sets the test PII keys


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


def _session(session, key, customer, started):
    facts.record_session_fact(
        session, session_key=key, channel="web", started_at=started, customer_key=customer
    )


def _order(session, ref, customer, at, **extra):
    facts.record_sale_fact(
        session,
        order_ref=ref,
        occurred_at=at,
        channel="web",
        customer_key=customer,
        lines=[FactLine("TEE", 1, 1500)],
        **extra,
    )


def _conversions(session):
    rows = session.execute(select(TrackedSession.session_key, TrackedSession.order_ref)).all()
    return dict(sorted((key, ref) for key, ref in rows))


@pytest.fixture()
def window_settings(monkeypatch):
    settings = facts.get_attribution_settings()
    monkeypatch.setattr(settings, "attribution_window_h", settings.attribution_window_h)
    return settings


# --- orders without a session ---------------------------------------------------------------


def test_an_order_without_session_converts_the_customers_latest_session(session):
    # given two sessions of A and one of B, the same day
    _session(session, "s1", "A", t(2, 10))
    _session(session, "s2", "A", t(2, 15))
    _session(session, "s3", "B", t(2, 16))
    # when A orders at 18:00 without a session key
    _order(session, "o1", "A", t(2, 18))
    # then
    assert _conversions(session) == {"s1": None, "s2": "o1", "s3": None}


def test_an_order_more_than_24_hours_after_the_session_converts_nothing(session):
    _session(session, "s1", "A", t(1, 10))
    _order(session, "o1", "A", t(2, 10, 1))
    assert _conversions(session) == {"s1": None}


def test_a_session_started_after_the_order_is_not_converted_by_it(session):
    _session(session, "s1", "A", t(2, 11))
    _order(session, "o1", "A", t(2, 10))
    assert _conversions(session) == {"s1": None}


def test_the_attribution_window_is_configurable(session, window_settings):
    # given a one-hour window (OMNI_ANALYTICS_ATTRIBUTION_WINDOW_H=1)
    window_settings.attribution_window_h = 1.0
    _session(session, "s1", "A", t(2, 10))
    # when the order comes two hours after the session started
    _order(session, "o1", "A", t(2, 12))
    # then
    assert _conversions(session) == {"s1": None}


def test_a_second_order_does_not_convert_an_earlier_session(session):
    # given a morning visit without an order and an afternoon visit with one
    _session(session, "s1", "A", t(2, 9))
    _session(session, "s2", "A", t(2, 14))
    _order(session, "o1", "A", t(2, 14, 30))
    # when A orders again in the same afternoon visit
    _order(session, "o2", "A", t(2, 15))
    # then the morning visit stays unconverted
    assert _conversions(session) == {"s1": None, "s2": "o1"}


def test_a_guest_order_converts_nothing(session):
    _session(session, "s1", "A", t(2, 9))
    _order(session, "o1", None, t(2, 10))
    assert _conversions(session) == {"s1": None}


def test_a_guest_order_converts_its_tracked_visitors_session_and_stays_a_guests(session):
    # given visitor V's session at 09:00
    _session(session, "s1", "V", t(2, 9))
    # when a guest order names V as its tracked visitor at 10:00
    _order(session, "o1", None, t(2, 10), visitor_key="V")
    # then V's session converted, and the order fact has no customer
    assert _conversions(session) == {"s1": "o1"}
    fact = session.scalar(select(OrderFact).where(OrderFact.order_ref == "o1"))
    assert fact.customer_key is None


def test_a_session_recorded_after_its_order_is_converted(session):
    # given the order is recorded first (the session's announcement came late)
    _order(session, "o1", "A", t(2, 10, 30))
    # when
    _session(session, "s1", "A", t(2, 10))
    # then
    assert _conversions(session) == {"s1": "o1"}


def test_a_late_session_takes_the_order_from_an_older_session(session):
    # given the order converted the morning session, the only one known then
    _session(session, "s0", "A", t(2, 8))
    _order(session, "o1", "A", t(2, 10, 30))
    # when the 10:00 session (the order's latest) is recorded
    _session(session, "s1", "A", t(2, 10))
    # then
    assert _conversions(session) == {"s0": None, "s1": "o1"}


def test_an_order_converts_the_session_of_a_profile_merged_into_its_customer(session):
    # given a session tracked for an anonymous profile, later merged into the known customer
    known = customers.create_customer(session, customers.NewCustomer(email="ada@example.org"), "t")
    anonymous = customers.create_customer(session, customers.NewCustomer(user_id="anon-1"), "t")
    _session(session, "s1", anonymous, t(2, 10))
    merge = customers.merge_customers(session, known, anonymous, actor="t", reason="login")
    # when the order names the surviving customer
    _order(session, "o1", merge.survivor_id, t(2, 10, 30))
    # then
    assert _conversions(session) == {"s1": "o1"}


# --- tracked Order Completed --------------------------------------------------------------


def test_a_tracked_order_converts_the_session_it_was_tracked_in(session):
    # given
    _session(session, "s1", "A", t(2, 10))
    _session(session, "s2", "A", t(2, 11))
    # when the storefront tracked Order Completed in s1
    converted = facts.record_tracked_order(
        session,
        order_ref="web-1",
        occurred_at=t(2, 11, 30),
        channel="web",
        customer_key="A",
        session_key="s1",
    )
    # then s1 converted; the tracked order is no sale (the order context announces sales)
    assert converted == "s1"
    assert _conversions(session) == {"s1": "web-1", "s2": None}
    assert session.scalars(select(OrderFact.order_ref)).all() == []


def test_a_tracked_order_announced_before_its_session_keeps_the_conversion(session):
    # given the tracked order is dispatched before its session's announcement
    facts.record_tracked_order(
        session,
        order_ref="web-1",
        occurred_at=t(2, 10, 12),
        channel="web",
        customer_key="A",
        session_key="s1",
    )
    # when
    created = facts.record_session_fact(
        session, session_key="s1", channel="web", started_at=t(2, 10), customer_key="A"
    )
    # then the session keeps its conversion and takes its real start
    row = session.execute(select(TrackedSession.started_at, TrackedSession.order_ref)).one()
    assert (created, tuple(row)) == (False, (t(2, 10), "web-1"))


def test_an_order_also_tracked_as_order_completed_converts_one_session(session):
    # given an earlier visit without an order, then the visit with the purchase
    _session(session, "s0", "A", t(2, 9))
    _session(session, "s1", "A", t(2, 10))
    # when the purchase is both tracked (no session known) and placed
    facts.record_tracked_order(
        session, order_ref="web-1", occurred_at=t(2, 10, 12), channel="web", customer_key="A"
    )
    _order(session, "ord-1", "A", t(2, 10, 12))
    # then
    assert _conversions(session) == {"s0": None, "s1": "web-1"}


# --- end to end: tracking API -> outbox -> analytics -> KPI ---------------------------------


def _only_analytics_subscribers(monkeypatch):
    monkeypatch.setattr(events, "_subscribers", defaultdict(list))
    subscribers.register()


def _call(kind, timestamp, **fields):
    return {"type": kind, "timestamp": timestamp, "messageId": f"{kind}-{timestamp}", **fields}


def test_conversion_kpi_from_tracked_events_and_orders(client, session, make_key, monkeypatch):
    # given a web source and the analytics subscribers
    _only_analytics_subscribers(monkeypatch)
    key, _ = tracking.create_source(session, "Web storefront", "web")
    session.commit()
    rudder = {"sessionId": 1714640400000}
    # Ada: sessions at 09:00 and 10:00 (50 minutes without events in between)
    # Bob: a session at 09:30, no order
    # Cleo (RudderStack session id): a session at 11:00 with a tracked Order Completed
    calls = [
        _call("identify", "2024-05-02T09:00:00Z", userId="ada", anonymousId="ada-phone"),
        _call("page", "2024-05-02T09:10:00Z", userId="ada", anonymousId="ada-phone"),
        _call("page", "2024-05-02T09:30:00Z", anonymousId="bob-laptop"),
        _call("page", "2024-05-02T10:00:00Z", userId="ada", anonymousId="ada-phone"),
        _call(
            "page",
            "2024-05-02T11:00:00Z",
            anonymousId="cleo-tablet",
            context={**rudder, "sessionStart": True},
        ),
        _call(
            "track",
            "2024-05-02T11:05:00Z",
            anonymousId="cleo-tablet",
            event="Order Completed",
            properties={"order_id": "web-77", "total": 30, "currency": "GBP"},
            context=rudder,
        ),
    ]
    response = client.post("/v1/batch", json={"batch": calls}, headers=basic(key))
    assert response.status_code == 200
    ada = customers.find_customer_id(session, "user_id", "ada")
    cleo = customers.find_customer_id(session, "anonymous_id", "cleo-tablet")
    # and the order context places Ada's order at 10:20 and Cleo's (the tracked one) at 11:05
    for order_id, customer, placed in [
        ("ord-1", ada, "2024-05-02T10:20:00+00:00"),
        ("ord-2", cleo, "2024-05-02T11:05:00+00:00"),
    ]:
        events.emit(
            session,
            "order.placed",
            {
                "order_id": order_id,
                "customer_id": customer,
                "channel": "web",
                "currency": "GBP",
                "occurred_at": placed,
                "lines": [{"sku": "TEE", "quantity": 2, "unit_price_minor": 1500}],
            },
        )
    # when the outbox is dispatched and the analyst reads the day's KPIs
    events.dispatch_pending(session)
    session.commit()
    body = client.get(
        "/api/v1/analytics/kpis?start=2024-05-02&end=2024-05-03", headers=make_key("analyst")
    ).json()
    # then 4 sessions (Ada 2, Bob 1, Cleo 1); Ada's 10:00 session and Cleo's converted
    assert (body["sessions"], body["converted_sessions"], body["conversion_rate"]) == (4, 2, 0.5)
    assert body["orders"] == 2
    assert sorted(r for r in _conversions(session).values() if r) == ["ord-1", "web-77"]
