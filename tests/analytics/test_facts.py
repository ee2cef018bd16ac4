"""Facts from other contexts: idempotent recording, returns, cancellations, sessions, events."""

from collections import defaultdict
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from omniretail.analytics import service, subscribers
from omniretail.analytics.models import OrderFact, SalesLine, TrackedSession
from omniretail.core import events
from omniretail.core.errors import AppError
from tests.analytics.factories import counts, sale

T = datetime(2024, 5, 2, 14, 30, tzinfo=UTC)


def test_sale_fact_stores_the_order_and_its_lines(session):
    # when
    recorded = service.record_sale_fact(
        session,
        order_ref="ord_1",
        occurred_at=T,
        channel="store",
        location="paris-1",
        customer_key="cus_1",
        lines=[
            {"sku": "TEE", "quantity": 2, "unit_price_minor": 1500},
            {"sku": "SHIP", "quantity": 1, "unit_price_minor": 499, "line_type": "service"},
        ],
    )
    # then
    order = session.scalar(select(OrderFact).where(OrderFact.order_ref == "ord_1"))
    assert recorded is True
    assert (order.revenue_minor, order.service_minor, order.units, order.product_lines) == (
        3000,
        499,
        2,
        1,
    )
    assert (order.channel, order.location, order.customer_key, order.kind) == (
        "store",
        "paris-1",
        "cus_1",
        "sale",
    )
    lines = session.execute(
        select(SalesLine.line_no, SalesLine.sku, SalesLine.amount_minor).order_by(SalesLine.line_no)
    ).all()
    assert [tuple(r) for r in lines] == [(1, "TEE", 3000), (2, "SHIP", 499)]


def test_recording_the_same_sale_twice_changes_nothing(session):
    # given
    sale(session, "ord_1", "cus_1", date(2024, 5, 2), [("TEE", 2, 1500)])
    before = counts(session)
    # when the event is delivered again
    again = service.record_sale_fact(
        session,
        order_ref="ord_1",
        occurred_at=T,
        channel="web",
        lines=[{"sku": "TEE", "quantity": 9, "unit_price_minor": 1}],
    )
    # then
    assert again is False
    assert counts(session) == before


def test_return_fact_is_stored_negative(session):
    # when
    service.record_return_fact(
        session,
        return_ref="ret_1",
        occurred_at=T,
        channel="store",
        customer_key="cus_1",
        lines=[{"sku": "TEE", "quantity": 1, "unit_price_minor": 1500}],
        original_order_ref="ord_1",
    )
    # then
    order = session.scalar(select(OrderFact).where(OrderFact.order_ref == "ret_1"))
    assert (order.kind, order.revenue_minor, order.units, order.original_order_ref) == (
        "return",
        -1500,
        -1,
        "ord_1",
    )


def test_cancellation_marks_the_order_once(session):
    # given
    sale(session, "ord_1", "cus_1", date(2024, 5, 2), [("TEE", 2, 1500)])
    # when
    first = service.record_cancellation_fact(session, order_ref="ord_1")
    second = service.record_cancellation_fact(session, order_ref="ord_1")
    # then
    assert (first, second) == (True, False)
    assert session.scalar(select(OrderFact.cancelled)) is True


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"sku": "TEE", "quantity": 0, "unit_price_minor": 100}, "quantity must be positive"),
        ({"sku": "TEE", "quantity": 1, "unit_price_minor": -1}, "unit price cannot be negative"),
        ({"sku": "TEE", "quantity": 1.5, "unit_price_minor": 1}, "quantity must be an integer"),
        ({"sku": "TEE", "quantity": 1}, "lacks 'unit_price_minor'"),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_written(session, line, message):
    with pytest.raises(AppError) as caught:
        service.record_sale_fact(
            session, order_ref="ord_1", occurred_at=T, channel="web", lines=[line]
        )
    assert message in caught.value.message
    assert counts(session)["orders"] == 0


def test_naive_times_are_refused(session):
    with pytest.raises(AppError) as caught:
        service.record_sale_fact(
            session,
            order_ref="ord_1",
            occurred_at=datetime(2024, 5, 2, 14, 30),
            channel="web",
            lines=[{"sku": "TEE", "quantity": 1, "unit_price_minor": 100}],
        )
    assert caught.value.code == "invalid_fact"


def _only_analytics_subscribers(monkeypatch):
    monkeypatch.setattr(events, "_subscribers", defaultdict(list))
    subscribers.register()


PLACED = {
    "id": "ord_9",
    "order_id": "ord_9",
    "customer_id": "cus_9",
    "channel": "app",
    "channel_id": "chn_1",
    "currency": "EUR",
    "shipping_minor": 450,
    "tax_minor": 480,
    "total_minor": 2830,
    "lines": [
        {"sku": "MUG", "quantity": 3, "unit_price_minor": 800, "discount_minor": 200,
         "tax_minor": 480, "location_id": "loc_A"},
    ],
    "occurred_at": "2024-05-02T16:30:00+02:00",
    "session_id": "sess_9",
}  # fmt: skip


def test_an_order_placed_event_becomes_a_sale_fact(session, monkeypatch):
    # given the payload the order context emits (discount on the line, shipping, tax)
    _only_analytics_subscribers(monkeypatch)
    events.emit(session, "order.placed", PLACED)
    service.record_session_fact(session, session_key="sess_9", channel="app", started_at=T)
    # when
    events.dispatch_pending(session)
    # then revenue is 3 × 800 − 200 without tax, shipping is a service line, time in UTC
    order = session.scalar(select(OrderFact).where(OrderFact.order_ref == "ord_9"))
    assert (order.source, order.currency, order.revenue_minor, order.service_minor) == (
        "order",
        "EUR",
        2200,
        450,
    )
    assert order.occurred_at == datetime(2024, 5, 2, 14, 30, tzinfo=UTC)
    line = session.scalar(select(SalesLine).where(SalesLine.sku == "MUG"))
    assert (line.location, line.amount_minor) == ("loc_A", 2200)
    assert session.scalar(select(TrackedSession.order_ref)) == "ord_9"


def test_a_pos_sale_of_the_same_order_is_not_counted_twice(session, monkeypatch):
    _only_analytics_subscribers(monkeypatch)
    events.emit(session, "order.placed", PLACED)
    events.emit(session, "pos.sale", PLACED)
    events.dispatch_pending(session)
    assert counts(session)["orders"] == 1


def test_a_received_return_takes_its_prices_from_the_original_order(session, monkeypatch):
    # given the order was recorded, and the return event has lines without prices
    _only_analytics_subscribers(monkeypatch)
    events.emit(session, "order.placed", PLACED)
    events.emit(
        session,
        "return.received",
        {
            "return_id": "rma_1",
            "order_id": "ord_9",
            "customer_id": "cus_9",
            "channel_id": "chn_unknown",
            "location_id": "loc_B",
            "lines": [{"sku": "MUG", "quantity": 1, "condition": "sellable"}],
            "amount_minor": 733,
            "currency": "EUR",
            "occurred_at": "2024-05-10T10:00:00+00:00",
        },
    )
    # when
    events.dispatch_pending(session)
    # then
    ret = session.scalar(select(OrderFact).where(OrderFact.order_ref == "rma_1"))
    assert (ret.kind, ret.revenue_minor, ret.location, ret.original_order_ref) == (
        "return",
        -800,
        "loc_B",
        "ord_9",
    )


def test_an_event_without_lines_is_skipped_and_delivered(session, monkeypatch):
    # given an order event of another shape (the customer timeline's)
    _only_analytics_subscribers(monkeypatch)
    event = events.emit(session, "order.placed", {"id": "ord-1", "total_minor": 4999})
    # when
    delivered = events.dispatch_pending(session)
    # then
    assert delivered == 1
    assert event.last_error is None
    assert counts(session)["orders"] == 0


def test_an_order_cancelled_event_cancels_the_fact(session, monkeypatch):
    _only_analytics_subscribers(monkeypatch)
    events.emit(session, "order.placed", PLACED)
    events.emit(session, "order.cancelled", {"order_id": "ord_9", "reason": "customer"})
    events.dispatch_pending(session)
    assert session.scalar(select(OrderFact.cancelled)) is True
