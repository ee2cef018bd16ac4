"""Checkout end to end over HTTP, one test per delivery method: cart, checkout details,
complete, then the lifecycle until the goods are handed over (payment captured, stock
fulfilled)."""

from sqlalchemy import select

from omniretail.core.models import OutboxEvent
from omniretail.order import rates
from omniretail.order.models import GatewayCharge, Order
from tests.order.helpers import (
    ADDRESS,
    checkout,
    complete,
    start_cart,
    stock,
    with_token,
)


def _events(session, topic):
    return [
        e.payload
        for e in session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id)
        )
    ]


def _status(client, shop, order_id, status):
    response = client.post(
        f"/api/v1/orders/{order_id}/status", json={"status": status}, headers=shop.associate
    )
    assert response.status_code == 200, response.text
    return response.json()


def _place(client, shop, lines, details, tenders=None):
    cart_id, token = start_cart(client, shop, lines)
    response = checkout(client, shop, cart_id, token, {"email": "ada@example.com", **details})
    assert response.status_code == 200, response.text
    placed = complete(client, shop, cart_id, token, tenders)
    assert placed.status_code == 201, placed.text
    return response.json(), placed.json()


def test_standard_delivery_from_the_warehouse_ships_and_captures(client, shop, session):
    # Given a 1-line cart under the free-shipping threshold, delivered to an address
    cart, order = _place(
        client,
        shop,
        [("TEE-M", 1)],
        {"shipping_address": ADDRESS, "delivery": [{"method": "standard"}]},
    )

    # Then shipping (495) is charged, VAT is included, and the units are allocated
    assert cart["totals"] == {
        "subtotal": 2000,
        "discount_total": 0,
        "shipping_total": 495,
        "tax_total": 333 + 83,
        "total": 2495,
    }
    assert (order["status"], order["total"], order["payment_totals"]["authorized"]) == (
        "allocated",
        2495,
        2495,
    )
    assert order["lines"][0]["allocations"] == [{"location_id": shop.wh, "quantity": 1}]
    assert stock(session, "TEE-M", shop.wh) == {
        "on_hand": 10,
        "allocated": 1,
        "held": 0,
        "available": 9,
    }
    placed = _events(session, "order.placed")[-1]
    assert (placed["order_id"], placed["channel"], placed["total_minor"]) == (
        order["id"],
        "web",
        2495,
    )
    assert placed["lines"] == [
        {
            "sku": "TEE-M",
            "quantity": 1,
            "unit_price_minor": 2000,
            "discount_minor": 0,
            "tax_minor": 333,
            "total_minor": 2000,
            "group_id": "g1",
            "location_id": shop.wh,
            "allocations": [{"location_id": shop.wh, "quantity": 1}],
        }
    ]

    # When it is fulfilled and shipped
    _status(client, shop, order["id"], "fulfilling")
    shipped = _status(client, shop, order["id"], "shipped")

    # Then the payment is captured and the unit leaves the warehouse
    assert shipped["payment_totals"]["captured"] == 2495
    assert stock(session, "TEE-M", shop.wh) == {
        "on_hand": 9,
        "allocated": 0,
        "held": 0,
        "available": 9,
    }
    assert [e["amount_minor"] for e in _events(session, "payment.captured")] == [2495]
    charge = session.scalar(select(GatewayCharge))
    assert (charge.amount, charge.captured) == (2495, 2495)


def test_express_delivery_charges_the_express_rate(client, shop):
    _, order = _place(
        client,
        shop,
        [("TEE-M", 3)],
        {"shipping_address": ADDRESS, "delivery": [{"method": "express"}]},
    )
    assert (order["shipping_total"], order["total"]) == (995, 6995)
    assert order["delivery"][0]["method"] == "express"


def test_same_day_from_a_store_takes_the_stores_stock(client, shop, session):
    _, order = _place(
        client,
        shop,
        [("MUG", 2)],
        {
            "shipping_address": ADDRESS,
            "delivery": [{"method": "same_day", "location_id": shop.store}],
        },
    )
    assert (order["shipping_total"], order["total"]) == (1495, 3895)
    assert order["lines"][0]["allocations"] == [{"location_id": shop.store, "quantity": 2}]
    assert stock(session, "MUG", shop.store)["allocated"] == 2
    assert stock(session, "MUG", shop.wh)["allocated"] == 0


def test_click_and_collect_is_ready_then_picked_up(client, shop, session):
    # Given a click & collect order at the Soho store
    _, order = _place(
        client,
        shop,
        [("TEE-L", 1)],
        {"delivery": [{"method": "bopis", "location_id": shop.store}]},
    )
    assert (order["shipping_total"], order["total"]) == (0, 2000)
    assert order["lines"][0]["allocations"] == [{"location_id": shop.store, "quantity": 1}]

    # When the store prepares it
    _status(client, shop, order["id"], "fulfilling")
    _status(client, shop, order["id"], "ready_for_pickup")

    # Then the customer is told where to collect it
    ready = _events(session, "order.ready_for_pickup")
    assert ready[-1]["groups"] == [
        {"group_id": "g1", "method": "bopis", "location_id": shop.store, "location_name": "Soho"}
    ]
    # and when they collect it, the payment is captured and the unit leaves the store
    collected = _status(client, shop, order["id"], "picked_up")
    assert collected["payment_totals"]["captured"] == 2000
    assert stock(session, "TEE-L", shop.store)["on_hand"] == 4


def test_curbside_needs_a_vehicle_and_takes_the_im_here_check_in(client, shop, session):
    cart_id, token = start_cart(client, shop, [("MUG", 1)])
    no_car = checkout(
        client,
        shop,
        cart_id,
        token,
        {
            "email": "ada@example.com",
            "delivery": [{"method": "curbside", "location_id": shop.store}],
        },
    )
    assert no_car.status_code == 422
    assert no_car.json()["error"]["code"] == "invalid_vehicle"

    response = checkout(
        client,
        shop,
        cart_id,
        token,
        {
            "email": "ada@example.com",
            "delivery": [
                {
                    "method": "curbside",
                    "location_id": shop.store,
                    "vehicle": {"plate": "AB12 CDE", "color": "blue"},
                }
            ],
        },
    )
    assert response.status_code == 200
    order = complete(client, shop, cart_id, token).json()
    _status(client, shop, order["id"], "fulfilling")
    _status(client, shop, order["id"], "ready_for_pickup")

    # When the customer says "I'm here" with the order token
    arrived = client.post(
        f"/api/v1/orders/{order['id']}/check-in",
        json={"bay": "3"},
        headers=with_token(shop.web_key, order["order_token"], "X-Order-Token"),
    )

    # Then the store is told who is waiting where
    assert arrived.status_code == 200
    assert arrived.json()["delivery"][0]["bay"] == "3"
    event = _events(session, "order.customer_arrived")[-1]
    assert (event["order_id"], event["location_id"], event["bay"], event["vehicle"]) == (
        order["id"],
        shop.store,
        "3",
        {"plate": "AB12 CDE", "color": "blue"},
    )


def test_parcel_locker_delivery_ships_from_the_warehouse_to_the_locker(client, shop, session):
    _, order = _place(
        client,
        shop,
        [("MUG", 1)],
        {"delivery": [{"method": "locker", "location_id": shop.locker}]},
    )
    assert (order["shipping_total"], order["total"]) == (295, 1495)
    assert order["delivery"][0]["location"]["id"] == shop.locker
    assert order["lines"][0]["allocations"] == [{"location_id": shop.wh, "quantity": 1}]


def test_a_store_is_not_a_parcel_locker(client, shop, session):
    cart_id, token = start_cart(client, shop, [("MUG", 1)])
    response = checkout(
        client,
        shop,
        cart_id,
        token,
        {"delivery": [{"method": "locker", "location_id": shop.store}]},
    )
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "location_not_eligible",
        "message": "this location cannot serve locker",
        "details": {"method": "locker", "type": "locker", "capability": None},
    }


def test_ship_from_store_allocates_at_the_store(client, shop, session):
    _, order = _place(
        client,
        shop,
        [("TEE-M", 2)],
        {
            "shipping_address": ADDRESS,
            "delivery": [{"method": "ship_from_store", "location_id": shop.store}],
        },
    )
    assert (order["shipping_total"], order["total"]) == (495, 4495)
    assert stock(session, "TEE-M", shop.store) == {
        "on_hand": 5,
        "allocated": 2,
        "held": 0,
        "available": 3,
    }


def test_two_delivery_groups_in_one_order(client, shop, session):
    # Given a cart whose tee is collected in store and whose mug is delivered home
    _, order = _place(
        client,
        shop,
        [("TEE-M", 1), ("MUG", 1)],
        {
            "shipping_address": ADDRESS,
            "delivery": [
                {"method": "bopis", "location_id": shop.store, "skus": ["TEE-M"]},
                {"method": "standard", "skus": ["MUG"]},
            ],
        },
    )
    # Then each group holds its own stock and only the home group pays shipping
    assert [(g["method"], g["skus"], g["shipping"]) for g in order["delivery"]] == [
        ("bopis", ["TEE-M"], 0),
        ("standard", ["MUG"], 495),
    ]
    assert {li["sku"]: li["allocations"] for li in order["lines"]} == {
        "TEE-M": [{"location_id": shop.store, "quantity": 1}],
        "MUG": [{"location_id": shop.wh, "quantity": 1}],
    }
    assert order["total"] == 3695


def test_us_sales_tax_is_added_on_top(client, shop, session):
    # Given 8.875 % New York sales tax, excluded from prices
    rates.set_tax_rate(session, country="US", region="NY", rate_bp=888, inclusive=False)
    rates.set_shipping_rate(session, method="standard", amount=1000, country="US")
    session.commit()
    _, order = _place(
        client,
        shop,
        [("TEE-M", 1)],
        {
            "shipping_address": {
                "name": "Grace Hopper",
                "line1": "1 Broadway",
                "city": "New York",
                "region": "NY",
                "postal_code": "10004",
                "country": "US",
            },
            "delivery": [{"method": "standard"}],
        },
    )
    # Then tax on 2000 (177.6 -> 178) and on shipping 1000 (88.8 -> 89) is added
    assert (order["tax_total"], order["shipping_total"], order["total"]) == (267, 1000, 3267)


def test_the_order_is_one_of_the_cart_and_the_cart_is_ordered(client, shop, session):
    cart_id, token = start_cart(client, shop, [("MUG", 1)])
    checkout(
        client,
        shop,
        cart_id,
        token,
        {"email": "a@example.com", "delivery": [{"method": "bopis", "location_id": shop.store}]},
    )
    order = complete(client, shop, cart_id, token).json()
    cart = client.get(f"/api/v1/carts/{cart_id}", headers=with_token(shop.web_key, token)).json()
    assert (cart["status"], cart["order_id"]) == ("ordered", order["id"])
    add = client.post(
        f"/api/v1/carts/{cart_id}/lines",
        json={"lines": [{"sku": "MUG", "quantity": 1}]},
        headers=with_token(shop.web_key, token),
    )
    assert add.status_code == 409
    assert add.json()["error"]["code"] == "cart_not_active"
    # The shopper sees the order with its token; without it, it does not exist for them
    mine = client.get(
        f"/api/v1/orders/{order['id']}",
        headers=with_token(shop.web_key, order["order_token"], "X-Order-Token"),
    )
    assert mine.status_code == 200
    assert client.get(f"/api/v1/orders/{order['id']}", headers=shop.web_key).status_code == 404
    assert session.get(Order, order["id"]).cart_id == cart_id


def test_a_home_delivery_is_not_ready_for_pickup_and_a_collection_is_not_shipped(
    client, shop, session
):
    _, home = _place(
        client,
        shop,
        [("MUG", 1)],
        {"shipping_address": ADDRESS, "delivery": [{"method": "standard"}]},
    )
    _, collect = _place(
        client, shop, [("MUG", 1)], {"delivery": [{"method": "bopis", "location_id": shop.store}]}
    )
    for order_id in (home["id"], collect["id"]):
        _status(client, shop, order_id, "fulfilling")
    wrong = [
        client.post(
            f"/api/v1/orders/{order_id}/status", json={"status": status}, headers=shop.associate
        )
        for order_id, status in ((home["id"], "ready_for_pickup"), (collect["id"], "shipped"))
    ]
    assert [r.status_code for r in wrong] == [409, 409]
    assert [r.json()["error"]["message"] for r in wrong] == [
        "nothing in this order is collected by the customer",
        "this order is collected in store, not shipped",
    ]


def test_cart_changes_of_a_known_shopper_are_announced_for_reminders(client, shop, session):
    cart_id, token = start_cart(client, shop, [("MUG", 1)])
    checkout(client, shop, cart_id, token, {"email": "remind@example.com"})
    client.put(
        f"/api/v1/carts/{cart_id}/lines/MUG",
        json={"quantity": 2},
        headers=with_token(shop.web_key, token),
    )
    updates = [e for e in _events(session, "cart.updated") if e["cart_id"] == cart_id]
    assert [(u["lines"], u["total_minor"]) for u in updates] == [
        ([{"sku": "MUG", "quantity": 1}], 1200),
        ([{"sku": "MUG", "quantity": 2}], 2400),
    ]
