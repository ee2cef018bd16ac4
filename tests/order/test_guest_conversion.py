"""A guest's order converts the visit it was tracked in: the cart carries the storefront's
tracking anonymousId to the order (``order.placed``), and analytics converts that visitor's
latest session while the order stays a guest's."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlalchemy import select

from omniretail.analytics import subscribers as analytics_subscribers
from omniretail.analytics.models import OrderFact, TrackedSession
from omniretail.core import events
from omniretail.core.timeutil import utcnow
from omniretail.customer import tracking
from omniretail.order.models import Cart, Order
from tests.customer.conftest import basic
from tests.order.helpers import ADDRESS, checkout, complete

DELIVERY = {"email": "dana@example.com", "shipping_address": ADDRESS}


def _visit(client, session, anonymous_id, minutes_ago):
    key, _ = tracking.create_source(session, f"Web {anonymous_id}", "web")
    session.commit()
    at = (utcnow() - timedelta(minutes=minutes_ago)).isoformat()
    call = {"type": "page", "timestamp": at, "messageId": f"p-{anonymous_id}"}
    response = client.post(
        "/v1/batch", json={"batch": [{**call, "anonymousId": anonymous_id}]}, headers=basic(key)
    )
    assert response.status_code == 200, response.text


def _guest_order(client, shop, anonymous_id):
    body = {"lines": [{"sku": "MUG", "quantity": 1}], "anonymous_id": anonymous_id}
    response = client.post("/api/v1/carts", json=body, headers=shop.web_key)
    assert response.status_code == 201, response.text
    cart_id, token = response.json()["id"], response.json()["cart_token"]
    details = {**DELIVERY, "delivery": [{"method": "standard"}]}
    assert checkout(client, shop, cart_id, token, details).status_code == 200
    placed = complete(client, shop, cart_id, token)
    assert placed.status_code == 201, placed.text
    return cart_id, placed.json()["id"]


def test_a_guest_order_converts_the_visit_its_cart_was_tracked_in(
    client, session, shop, monkeypatch
):
    # Given only the analytics subscribers, and Dana's phone tracked 10 minutes ago
    monkeypatch.setattr(events, "_subscribers", defaultdict(list))
    analytics_subscribers.register()
    _visit(client, session, "dana-phone", 10)
    # When Dana places a guest order from a cart that carries that anonymous id
    cart_id, order_id = _guest_order(client, shop, "dana-phone")
    events.dispatch_pending(session)
    session.commit()
    # Then the order and cart keep the id, the order fact is a guest's, and the visit converted
    assert session.get(Cart, cart_id).anonymous_id == "dana-phone"
    assert session.get(Order, order_id).anonymous_id == "dana-phone"
    fact = session.scalar(select(OrderFact).where(OrderFact.order_ref == order_id))
    assert fact is not None and fact.customer_key is None
    converted = session.scalars(
        select(TrackedSession.order_ref).where(TrackedSession.order_ref.is_not(None))
    ).all()
    assert converted == [order_id]


def test_a_guest_order_without_a_tracked_anonymous_id_converts_nothing(
    client, session, shop, monkeypatch
):
    # Given Eve's laptop was tracked, but the guest cart names another (untracked) id
    monkeypatch.setattr(events, "_subscribers", defaultdict(list))
    analytics_subscribers.register()
    _visit(client, session, "eve-laptop", 10)
    # When the order is placed
    _guest_order(client, shop, "someone-else")
    events.dispatch_pending(session)
    session.commit()
    # Then no session converted
    converted = session.scalars(
        select(TrackedSession.order_ref).where(TrackedSession.order_ref.is_not(None))
    ).all()
    assert converted == []


def test_an_over_long_anonymous_id_is_a_422_and_creates_no_cart(client, session, shop):
    # Given no cart yet
    before = len(session.scalars(select(Cart.id)).all())
    # When a cart is created with a 201-character anonymous id
    body = {"lines": [{"sku": "MUG", "quantity": 1}], "anonymous_id": "x" * 201}
    response = client.post("/api/v1/carts", json=body, headers=shop.web_key)
    # Then 422 with the error shape, and no cart
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert len(session.scalars(select(Cart.id)).all()) == before
