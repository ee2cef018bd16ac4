"""Returns anywhere: an online order returned in a store (sellable back on that store's
shelf, damaged written off), refunds to the original tenders or store credit, exchanges
with the difference settled, return windows per channel."""

from datetime import timedelta

from sqlalchemy import select, update

from omniretail.core.models import OutboxEvent
from omniretail.core.timeutil import utcnow
from omniretail.inventory import service as inventory
from omniretail.order import payments as pay
from omniretail.order.models import Order
from tests.order.helpers import (
    ADDRESS,
    checkout,
    complete,
    make_customer,
    start_cart,
    state,
    stock,
    with_token,
)

HOME = {
    "email": "ada@example.com",
    "shipping_address": ADDRESS,
    "delivery": [{"method": "standard"}],
}


def _delivered_order(client, shop, lines=(("TEE-M", 2),), key=None, customer=None):
    if customer:
        created = client.post(
            "/api/v1/carts",
            json={"customer_id": customer, "lines": [{"sku": s, "quantity": q} for s, q in lines]},
            headers=key or shop.web_key,
        ).json()
        cart_id, token = created["id"], created["cart_token"]
    else:
        cart_id, token = start_cart(client, shop, list(lines), key=key)
    checkout(client, shop, cart_id, token, HOME, key=key)
    order = complete(client, shop, cart_id, token, key=key).json()
    for status in ("fulfilling", "shipped", "delivered"):
        response = client.post(
            f"/api/v1/orders/{order['id']}/status", json={"status": status}, headers=shop.admin
        )
        assert response.status_code == 200, response.text
    return order


def _open_return(client, shop, order_id, body, headers=None):
    response = client.post(
        f"/api/v1/orders/{order_id}/returns", json=body, headers=headers or shop.associate
    )
    assert response.status_code == 201, response.text
    return response.json()


def _receive(client, shop, return_id, body):
    return client.post(f"/api/v1/returns/{return_id}/receive", json=body, headers=shop.associate)


def test_online_order_returned_in_store_goes_back_on_that_stores_shelf(client, shop, session):
    # Given a delivered web order of 2 tees (2495 with shipping under 5000? 4000 + 495)
    order = _delivered_order(client, shop)
    assert order["total"] == 4495

    # When one tee is returned at the Soho store, sellable
    rma = _open_return(
        client, shop, order["id"], {"lines": [{"sku": "TEE-M", "quantity": 1, "reason": "small"}]}
    )
    received = _receive(
        client,
        shop,
        rma["id"],
        {"location_id": shop.store, "lines": [{"sku": "TEE-M", "quantity": 1}]},
    )

    # Then the store's stock grows, the warehouse's does not, and half the line is refunded
    body = received.json()
    assert received.status_code == 200, body
    assert (body["return"]["status"], body["refund_amount"]) == ("received", 2000)
    assert stock(session, "TEE-M", shop.store)["on_hand"] == 6
    assert stock(session, "TEE-M", shop.wh)["on_hand"] == 8
    assert [(r["amount"], r["destination"]) for r in body["refunds"]] == [(2000, "original")]
    event = session.scalar(
        select(OutboxEvent).where(OutboxEvent.topic == "return.received")
    ).payload
    assert (event["order_id"], event["location_id"], event["amount_minor"], event["lines"]) == (
        order["id"],
        shop.store,
        2000,
        [{"sku": "TEE-M", "quantity": 1, "condition": "sellable"}],
    )


def test_a_damaged_return_is_written_off_at_the_receiving_store(client, shop, session):
    order = _delivered_order(client, shop)
    rma = _open_return(client, shop, order["id"], {"lines": [{"sku": "TEE-M", "quantity": 2}]})
    received = _receive(
        client,
        shop,
        rma["id"],
        {
            "location_id": shop.store,
            "lines": [
                {"sku": "TEE-M", "quantity": 1, "condition": "sellable"},
                {"sku": "TEE-M", "quantity": 1, "condition": "damaged"},
            ],
        },
    )
    assert received.status_code == 200
    assert received.json()["refund_amount"] == 4000
    assert stock(session, "TEE-M", shop.store)["on_hand"] == 6
    ledger = [
        (e.reason, e.on_hand_delta)
        for e in session.scalars(
            inventory.ledger_query(session, sku="TEE-M", location_id=shop.store)
        )
    ]
    assert ledger[-2:] == [("return", 2), ("damage", -1)]
    assert inventory.verify(session).drift == []


def test_refund_as_store_credit_for_a_known_customer(client, shop, session):
    customer = make_customer(session, "credit@example.com")
    order = _delivered_order(client, shop, customer=customer)
    rma = _open_return(
        client,
        shop,
        order["id"],
        {"lines": [{"sku": "TEE-M", "quantity": 1}], "refund_method": "store_credit"},
    )
    received = _receive(client, shop, rma["id"], {"location_id": shop.store})
    assert received.status_code == 200
    assert [r["destination"] for r in received.json()["refunds"]] == ["store_credit"]
    assert pay.store_credit_balance(session, customer, "GBP") == 2000
    credit = client.get(f"/api/v1/customers/{customer}/store-credit", headers=shop.admin).json()
    assert credit == {"customer_id": customer, "currency": "GBP", "balance": 2000}


def test_store_credit_for_a_guest_is_a_new_gift_card(client, shop, session):
    order = _delivered_order(client, shop)
    rma = _open_return(
        client,
        shop,
        order["id"],
        {"lines": [{"sku": "TEE-M", "quantity": 1}], "refund_method": "store_credit"},
    )
    body = _receive(client, shop, rma["id"], {"location_id": shop.store}).json()
    assert body["gift_card_code"].startswith("GC-")
    assert pay.gift_card_by_code(session, body["gift_card_code"]).balance == 2000


def test_a_return_can_be_opened_on_another_channel_with_the_order_token(client, shop, session):
    # Given an app order, when the shopper opens the return on the website with the order token
    order = _delivered_order(client, shop, key=shop.app_key)
    response = client.post(
        f"/api/v1/orders/{order['id']}/returns",
        json={"lines": [{"sku": "TEE-M", "quantity": 1}]},
        headers=with_token(shop.web_key, order["order_token"], "X-Order-Token"),
    )
    # Then the return belongs to the app order and records that it was opened on the web
    assert response.status_code == 201
    assert (response.json()["order_id"], response.json()["channel_id"]) == (order["id"], shop.web)


def test_exchange_on_the_spot_for_a_dearer_item_charges_the_difference(client, shop, session):
    # Given a delivered order of 1 MUG (1200), exchanged in store for a TEE-L (2000)
    order = _delivered_order(client, shop, lines=[("MUG", 1)])
    rma = _open_return(
        client,
        shop,
        order["id"],
        {
            "lines": [{"sku": "MUG", "quantity": 1}],
            "exchanges": [{"sku": "MUG", "new_sku": "TEE-L", "quantity": 1}],
        },
    )
    # When received without a tender for the 800 difference, it is refused and nothing changes
    before = state(session)
    refused = _receive(client, shop, rma["id"], {"location_id": shop.store})
    assert refused.status_code == 402
    assert refused.json()["error"]["details"] == {"difference": 800}
    assert state(session) == before

    # When the difference is paid in cash
    body = _receive(
        client,
        shop,
        rma["id"],
        {"location_id": shop.store, "tenders": [{"type": "cash"}]},
    ).json()

    # Then the customer leaves with the tee: a completed exchange order paid by the returned
    # mug (1200) and 800 in cash; no refund; the store sold a tee and took a mug back
    exchange = body["exchange_order"]
    assert (body["refund_amount"], body["charged"]) == (0, 800)
    assert (exchange["status"], exchange["total"], exchange["parent_return_id"]) == (
        "completed",
        2000,
        rma["id"],
    )
    assert [(p["type"], p["amount"], p["captured"]) for p in exchange["payments"]] == [
        ("exchange_credit", 1200, 1200),
        ("cash", 800, 800),
    ]
    assert stock(session, "TEE-L", shop.store)["on_hand"] == 4
    assert stock(session, "MUG", shop.store)["on_hand"] == 6


def test_exchange_for_a_cheaper_item_refunds_the_difference(client, shop, session):
    order = _delivered_order(client, shop, lines=[("TEE-M", 1)])
    rma = _open_return(
        client,
        shop,
        order["id"],
        {
            "lines": [{"sku": "TEE-M", "quantity": 1}],
            "exchanges": [{"sku": "TEE-M", "new_sku": "MUG", "quantity": 1}],
        },
    )
    body = _receive(client, shop, rma["id"], {"location_id": shop.store}).json()
    assert (body["refund_amount"], body["charged"]) == (800, 0)
    assert body["exchange_order"]["total"] == 1200


def test_a_return_past_the_window_is_422_and_writes_nothing(client, shop, session):
    # Given a web order delivered 31 days ago (the web window is 30 days)
    order = _delivered_order(client, shop)
    session.execute(
        update(Order)
        .where(Order.id == order["id"])
        .values(delivered_at=utcnow() - timedelta(days=31))
    )
    session.commit()
    before = state(session)
    response = client.post(
        f"/api/v1/orders/{order['id']}/returns",
        json={"lines": [{"sku": "TEE-M", "quantity": 1}]},
        headers=shop.associate,
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["details"]["window_days"]) == ("return_window_closed", 30)
    assert state(session) == before


def test_marketplace_orders_have_a_14_day_window(client, shop, session):
    order = _delivered_order(client, shop, key=shop.market_key)
    session.execute(
        update(Order)
        .where(Order.id == order["id"])
        .values(delivered_at=utcnow() - timedelta(days=15))
    )
    session.commit()
    response = client.post(
        f"/api/v1/orders/{order['id']}/returns",
        json={"lines": [{"sku": "TEE-M", "quantity": 1}]},
        headers=shop.associate,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["window_days"] == 14


def test_a_configured_window_replaces_the_default(client, shop, session):
    client.put("/api/v1/return-policies/web", json={"window_days": 60}, headers=shop.admin)
    order = _delivered_order(client, shop)
    session.execute(
        update(Order)
        .where(Order.id == order["id"])
        .values(delivered_at=utcnow() - timedelta(days=45))
    )
    session.commit()
    response = client.post(
        f"/api/v1/orders/{order['id']}/returns",
        json={"lines": [{"sku": "TEE-M", "quantity": 1}]},
        headers=shop.associate,
    )
    assert response.status_code == 201


def test_more_units_than_bought_cannot_come_back(client, shop, session):
    order = _delivered_order(client, shop)
    _open_return(client, shop, order["id"], {"lines": [{"sku": "TEE-M", "quantity": 2}]})
    before = state(session)
    response = client.post(
        f"/api/v1/orders/{order['id']}/returns",
        json={"lines": [{"sku": "TEE-M", "quantity": 1}]},
        headers=shop.associate,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {
        "sku": "TEE-M",
        "requested": 1,
        "returnable": 0,
    }
    assert state(session) == before


def test_an_order_not_yet_shipped_cannot_be_returned(client, shop, session):
    cart_id, token = start_cart(client, shop, [("MUG", 1)])
    checkout(client, shop, cart_id, token, HOME)
    order = complete(client, shop, cart_id, token).json()
    response = client.post(
        f"/api/v1/orders/{order['id']}/returns",
        json={"lines": [{"sku": "MUG", "quantity": 1}]},
        headers=shop.associate,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "order_not_returnable"


def test_an_associate_receives_only_at_their_own_store(client, shop, session):
    order = _delivered_order(client, shop)
    rma = _open_return(client, shop, order["id"], {"lines": [{"sku": "TEE-M", "quantity": 1}]})
    before = state(session)
    response = _receive(client, shop, rma["id"], {"location_id": shop.wh})
    assert response.status_code == 403
    assert state(session) == before


def test_a_return_is_received_once(client, shop, session):
    order = _delivered_order(client, shop)
    rma = _open_return(client, shop, order["id"], {"lines": [{"sku": "TEE-M", "quantity": 1}]})
    assert _receive(client, shop, rma["id"], {"location_id": shop.store}).status_code == 200
    before = state(session)
    again = _receive(client, shop, rma["id"], {"location_id": shop.store})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "return_not_open"
    assert state(session) == before


def test_erasing_a_customer_removes_their_personal_data_from_orders(client, shop, session):
    from omniretail.core.events import dispatch_pending
    from omniretail.customer import service as customers

    # Given a delivered order of a customer
    customer = make_customer(session, "forget@example.com")
    order = _delivered_order(client, shop, customer=customer)

    # When the customer is erased and the event is delivered
    customers.erase_customer(session, customer, actor="test", reason="GDPR request")
    dispatch_pending(session)
    session.commit()

    # Then the order keeps its money and lines but no address or email
    kept = session.get(Order, order["id"])
    session.refresh(kept)
    assert (kept.email, kept.shipping_address, kept.billing_address) == (None, None, None)
    assert (kept.total, kept.customer_id) == (order["total"], customer)
    assert all("address" not in g for g in kept.delivery)
