"""Payments and the order lifecycle: split tender, capture at fulfilment, partial refunds,
cancellation (void, release, coupons back), fraud holds, edits before fulfilment, one history
per customer."""

from sqlalchemy import select

from omniretail.core.models import OutboxEvent
from omniretail.order import payments as pay
from omniretail.order.models import GatewayCharge
from omniretail.pricing import service as pricing
from omniretail.pricing.service import PromotionSpec
from tests.order.helpers import (
    ADDRESS,
    checkout,
    complete,
    gift_card,
    make_customer,
    start_cart,
    state,
    stock,
)

HOME = {
    "email": "ada@example.com",
    "shipping_address": ADDRESS,
    "delivery": [{"method": "standard"}],
}
BIG = [("TEE-M", 10), ("TEE-L", 10), ("MUG", 10)]  # 52000: over the 50000 first-order limit
PARIS = {
    "name": "Ada",
    "line1": "1 rue de Rivoli",
    "city": "Paris",
    "postal_code": "75001",
    "country": "FR",
}


def _order(client, shop, lines=(("TEE-M", 1),), tenders=None, details=HOME, key=None):
    cart_id, token = start_cart(client, shop, list(lines), key=key)
    assert checkout(client, shop, cart_id, token, details, key=key).status_code == 200
    response = complete(client, shop, cart_id, token, tenders, key=key)
    assert response.status_code == 201, response.text
    return response.json()


def _ship(client, shop, order_id):
    for status in ("fulfilling", "shipped"):
        response = client.post(
            f"/api/v1/orders/{order_id}/status", json={"status": status}, headers=shop.associate
        )
        assert response.status_code == 200, response.text
    return response.json()


def _balance(session, code):
    return pay.gift_card_by_code(session, code).balance


def test_split_tender_takes_the_gift_card_first_and_the_card_the_rest(client, shop, session):
    code = gift_card(session, 1000)
    order = _order(
        client,
        shop,
        tenders=[
            {"type": "gift_card", "token": code, "amount": 1000},
            {"type": "card", "token": "tok_visa"},
        ],
    )
    assert [(p["type"], p["amount"]) for p in order["payments"]] == [
        ("gift_card", 1000),
        ("card", 1495),
    ]
    assert _balance(session, code) == 0
    shipped = _ship(client, shop, order["id"])
    assert [(p["type"], p["captured"]) for p in shipped["payments"]] == [
        ("gift_card", 1000),
        ("card", 1495),
    ]


def test_partial_refund_goes_to_the_card_before_the_gift_card(client, shop, session):
    code = gift_card(session, 1000, "GC-REFUND-01")
    order = _order(
        client,
        shop,
        tenders=[
            {"type": "gift_card", "token": code, "amount": 1000},
            {"type": "card", "token": "tok_visa"},
        ],
    )
    _ship(client, shop, order["id"])
    response = client.post(
        f"/api/v1/orders/{order['id']}/refunds", json={"amount": 2000}, headers=shop.admin
    )
    assert response.status_code == 201
    assert [(r["amount"], r["destination"]) for r in response.json()["refunds"]] == [
        (1495, "original"),
        (505, "original"),
    ]
    assert _balance(session, code) == 505
    charge = session.scalar(select(GatewayCharge))
    assert (charge.captured, charge.refunded) == (1495, 1495)


def test_refund_beyond_what_was_captured_is_409_and_changes_nothing(client, shop, session):
    order = _order(client, shop)
    _ship(client, shop, order["id"])
    client.post(f"/api/v1/orders/{order['id']}/refunds", json={"amount": 2000}, headers=shop.admin)
    before = state(session)
    response = client.post(
        f"/api/v1/orders/{order['id']}/refunds", json={"amount": 500}, headers=shop.admin
    )
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "refund_exceeds_captured",
        "message": "a refund cannot exceed what was captured and not yet refunded",
        "details": {"requested": 500, "refundable": 495},
    }
    assert state(session) == before


def test_refund_before_capture_is_409(client, shop, session):
    order = _order(client, shop)
    before = state(session)
    response = client.post(
        f"/api/v1/orders/{order['id']}/refunds", json={"amount": 100}, headers=shop.admin
    )
    assert response.status_code == 409
    assert state(session) == before


def test_cancel_before_capture_voids_releases_and_gives_coupons_back(client, shop, session):
    # Given an order paid by gift card and card, with a coupon
    promotion = pricing.create_promotion(
        session,
        PromotionSpec(
            name="5 off", kind="amount_off", amount=500, currency="GBP", requires_coupon=True
        ),
    )
    pricing.create_coupons(session, promotion.id, ["FIVER"], usage_limit=1)
    code = gift_card(session, 1000, "GC-CANCEL-01")
    cart_id, token = start_cart(client, shop, [("TEE-M", 1)])
    client.put(
        f"/api/v1/carts/{cart_id}/coupons",
        json={"codes": ["FIVER"]},
        headers={**shop.web_key, "X-Cart-Token": token},
    )
    checkout(client, shop, cart_id, token, HOME)
    order = complete(
        client,
        shop,
        cart_id,
        token,
        [{"type": "gift_card", "token": code, "amount": 1000}, {"type": "card", "token": "tok_v"}],
    ).json()
    assert order["total"] == 1995
    assert pricing.get_coupon(session, "FIVER").used == 1

    # When it is cancelled
    response = client.post(
        f"/api/v1/orders/{order['id']}/cancel", json={"reason": "changed mind"}, headers=shop.admin
    )

    # Then everything is given back
    body = response.json()
    assert (response.status_code, body["status"]) == (200, "cancelled")
    assert body["payment_totals"] == {
        "authorized": 1995,
        "captured": 0,
        "voided": 1995,
        "refunded": 0,
    }
    assert _balance(session, code) == 1000
    assert stock(session, "TEE-M", shop.wh) == {
        "on_hand": 10,
        "allocated": 0,
        "held": 0,
        "available": 10,
    }
    assert pricing.get_coupon(session, "FIVER", lock=True).used == 0
    cancelled = session.scalar(
        select(OutboxEvent).where(OutboxEvent.topic == "order.cancelled")
    ).payload
    assert (cancelled["order_id"], cancelled["voided_minor"], cancelled["reason"]) == (
        order["id"],
        1995,
        "changed mind",
    )


def test_a_shipped_order_cannot_be_cancelled(client, shop, session):
    order = _order(client, shop)
    _ship(client, shop, order["id"])
    before = state(session)
    response = client.post(f"/api/v1/orders/{order['id']}/cancel", json={}, headers=shop.admin)
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {
        "from": "shipped",
        "to": "cancelled",
        "allowed": ["delivered"],
    }
    assert state(session) == before


def test_a_high_value_first_order_with_mismatched_addresses_is_held(client, shop, session):
    # Given a first order over 500.00 billed in France, shipped to the UK
    details = {**HOME, "billing_address": PARIS}
    order = _order(client, shop, lines=BIG, details=details)

    # Then it waits for review with the reasons
    assert order["status"] == "on_hold"
    assert order["fraud"] == {
        "score": 60,
        "reasons": ["high_value_first_order", "billing_shipping_mismatch"],
    }
    not_yet = client.post(
        f"/api/v1/orders/{order['id']}/status", json={"status": "fulfilling"}, headers=shop.admin
    )
    assert not_yet.status_code == 409
    # When a reviewer approves, it moves on to fulfilment
    approved = client.post(
        f"/api/v1/orders/{order['id']}/review", json={"decision": "approve"}, headers=shop.admin
    ).json()
    assert approved["status"] == "allocated"
    assert [h["status"] for h in approved["history"]] == [
        "placed",
        "on_hold",
        "authorized",
        "allocated",
    ]


def test_a_rejected_review_cancels_voids_and_releases(client, shop, session):
    order = _order(client, shop, lines=BIG, details={**HOME, "billing_address": PARIS})
    assert order["status"] == "on_hold"
    rejected = client.post(
        f"/api/v1/orders/{order['id']}/review", json={"decision": "reject"}, headers=shop.admin
    ).json()
    assert rejected["status"] == "cancelled"
    assert rejected["payment_totals"]["voided"] == 52000
    assert stock(session, "MUG", shop.wh)["allocated"] == 0


def test_a_high_value_first_order_alone_is_not_held(client, shop, session):
    order = _order(client, shop, lines=BIG)
    assert (order["status"], order["fraud"]) == (
        "allocated",
        {"score": 40, "reasons": ["high_value_first_order"]},
    )


def test_velocity_per_card_holds_the_fourth_order_in_an_hour(client, shop, session):
    statuses = [
        _order(client, shop, tenders=[{"type": "card", "token": "tok_same_card"}])["status"]
        for _ in range(4)
    ]
    assert statuses == ["allocated", "allocated", "allocated", "on_hold"]


def test_edit_before_fulfilment_lowers_the_total_and_voids_the_difference(client, shop, session):
    order = _order(client, shop, lines=[("TEE-M", 2), ("MUG", 1)])
    assert order["total"] == 5200
    response = client.patch(
        f"/api/v1/orders/{order['id']}",
        json={"lines": [{"sku": "TEE-M", "quantity": 1}]},
        headers=shop.admin,
    )
    body = response.json()
    assert response.status_code == 200, body
    assert [(li["sku"], li["quantity"]) for li in body["lines"]] == [("TEE-M", 1), ("MUG", 1)]
    assert (body["total"], body["shipping_total"]) == (3695, 495)
    assert body["payment_totals"] == {
        "authorized": 5200,
        "captured": 0,
        "voided": 1505,
        "refunded": 0,
    }
    assert stock(session, "TEE-M", shop.wh)["allocated"] == 1


def test_edit_that_costs_more_needs_a_tender_for_the_difference(client, shop, session):
    order = _order(client, shop)
    before = state(session)
    refused = client.patch(
        f"/api/v1/orders/{order['id']}",
        json={"lines": [{"sku": "MUG", "quantity": 1}]},
        headers=shop.admin,
    )
    assert refused.status_code == 402
    assert refused.json()["error"] == {
        "code": "payment_required",
        "message": "the edited order costs more: give tenders for the difference",
        "details": {"difference": 1200},
    }
    assert state(session) == before
    paid = client.patch(
        f"/api/v1/orders/{order['id']}",
        json={
            "lines": [{"sku": "MUG", "quantity": 1}],
            "tenders": [{"type": "card", "token": "tok_visa"}],
        },
        headers=shop.admin,
    )
    assert paid.status_code == 200
    assert [(p["type"], p["amount"]) for p in paid.json()["payments"]] == [
        ("card", 2495),
        ("card", 1200),
    ]


def test_a_shipped_order_cannot_be_edited(client, shop, session):
    order = _order(client, shop)
    _ship(client, shop, order["id"])
    response = client.patch(
        f"/api/v1/orders/{order['id']}",
        json={"lines": [{"sku": "TEE-M", "quantity": 2}]},
        headers=shop.admin,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "order_not_editable"


def test_one_order_history_per_customer_across_channels(client, shop, session, make_key):
    # Given a customer who orders in the app and on the web and buys at a register
    customer = make_customer(session, "history@example.com")
    ids = []
    for key in (shop.app_key, shop.web_key):
        created = client.post(
            "/api/v1/carts",
            json={"customer_id": customer, "lines": [{"sku": "MUG", "quantity": 1}]},
            headers=key,
        ).json()
        token = created["cart_token"]
        checkout(client, shop, created["id"], token, HOME, key=key)
        ids.append(complete(client, shop, created["id"], token, key=key).json()["id"])
    register = client.post(
        "/api/v1/pos/registers",
        json={"code": "soho-1", "location_id": shop.store, "channel": "shop-floor"},
        headers=shop.admin,
    ).json()
    sale = client.post(
        "/api/v1/pos/sales",
        json={
            "register_id": register["id"],
            "customer_id": customer,
            "lines": [{"sku": "TEE-M", "quantity": 1}],
            "tenders": [{"type": "cash", "tendered": 2000}],
        },
        headers=shop.associate,
    ).json()
    ids.append(sale["order_id"])

    # When support looks at the customer
    support = make_key("support_agent")
    history = client.get(f"/api/v1/customers/{customer}/orders", headers=support).json()

    # Then every order is there, newest first, whatever the channel
    assert [o["id"] for o in history["items"]] == list(reversed(ids))
    assert [o["channel_id"] for o in history["items"]] == [shop.floor, shop.web, shop.app]
    assert [o["source"] for o in history["items"]] == ["pos", "online", "online"]


def test_editing_an_order_keeps_its_coupon_at_the_usage_limit(client, shop, session):
    # Given an order that used the single use of a 10 % coupon
    promotion = pricing.create_promotion(
        session, PromotionSpec(name="Ten", kind="percent_off", percent="10", requires_coupon=True)
    )
    pricing.create_coupons(session, promotion.id, ["ONCE10"], usage_limit=1)
    session.commit()
    cart_id, token = start_cart(client, shop, [("TEE-M", 2)])
    client.put(
        f"/api/v1/carts/{cart_id}/coupons",
        json={"codes": ["ONCE10"]},
        headers={**shop.web_key, "X-Cart-Token": token},
    )
    checkout(client, shop, cart_id, token, HOME)
    order = complete(client, shop, cart_id, token).json()
    assert order["total"] == 3600 + 495

    # When one tee is taken off
    response = client.patch(
        f"/api/v1/orders/{order['id']}",
        json={"lines": [{"sku": "TEE-M", "quantity": 1}]},
        headers=shop.admin,
    )

    # Then the coupon still applies and is used once
    assert response.status_code == 200, response.text
    assert (response.json()["discount_total"], response.json()["total"]) == (200, 1800 + 495)
    assert pricing.get_coupon(session, "ONCE10", lock=True).used == 1


def test_store_credit_from_a_refund_pays_the_next_order(client, shop, session):
    # Given a customer with 500 of store credit from a goodwill refund
    customer = make_customer(session, "credit-pay@example.com")
    first = client.post(
        "/api/v1/carts",
        json={"customer_id": customer, "lines": [{"sku": "MUG", "quantity": 1}]},
        headers=shop.web_key,
    ).json()
    checkout(client, shop, first["id"], first["cart_token"], HOME)
    order = complete(client, shop, first["id"], first["cart_token"]).json()
    _ship(client, shop, order["id"])
    client.post(
        f"/api/v1/orders/{order['id']}/refunds",
        json={"amount": 500, "destination": "store_credit"},
        headers=shop.admin,
    )
    assert pay.store_credit_balance(session, customer, "GBP") == 500

    # When the next order is paid with the credit and a card
    second = client.post(
        "/api/v1/carts",
        json={"customer_id": customer, "lines": [{"sku": "MUG", "quantity": 1}]},
        headers=shop.web_key,
    ).json()
    checkout(client, shop, second["id"], second["cart_token"], HOME)
    placed = complete(
        client,
        shop,
        second["id"],
        second["cart_token"],
        [{"type": "store_credit", "amount": 500}, {"type": "card", "token": "tok_visa"}],
    ).json()

    # Then the credit is used up
    assert [(p["type"], p["amount"]) for p in placed["payments"]] == [
        ("store_credit", 500),
        ("card", 1195),
    ]
    assert pay.store_credit_balance(session, customer, "GBP") == 0


def test_a_storefront_sees_a_customers_history_only_with_their_cart_token(client, shop, session):
    customer = make_customer(session, "mine@example.com")
    mine = client.post("/api/v1/carts", json={"customer_id": customer}, headers=shop.web_key).json()
    _, stranger_token = start_cart(client, shop, [("MUG", 1)])
    url = f"/api/v1/customers/{customer}/orders"
    allowed = client.get(url, headers={**shop.web_key, "X-Cart-Token": mine["cart_token"]})
    refused = client.get(url, headers={**shop.web_key, "X-Cart-Token": stranger_token})
    assert (allowed.status_code, allowed.json()["items"]) == (200, [])
    assert refused.status_code == 404


def test_gift_card_balance_lookups_are_rate_limited_per_caller(client, shop, session):
    # Given a gift card and a storefront that has looked up codes ten times this minute
    code = gift_card(session, 2500, code="GC-RATE-0001")
    for _ in range(10):
        ok = client.post("/api/v1/gift-cards/balance", json={"code": code}, headers=shop.web_key)
        assert ok.status_code == 200, ok.text

    # When it tries an eleventh code
    response = client.post(
        "/api/v1/gift-cards/balance", json={"code": "GC-GUESS-0002"}, headers=shop.web_key
    )

    # Then it is told to wait, and another caller is not affected
    assert response.status_code == 429
    body = response.json()["error"]
    assert (body["code"], body["details"]["limit"]) == ("rate_limited", "10/minute")
    assert int(response.headers["Retry-After"]) == body["details"]["retry_after"] >= 1
    other = client.post("/api/v1/gift-cards/balance", json={"code": code}, headers=shop.app_key)
    assert (other.status_code, other.json()["balance"]) == (200, 2500)
