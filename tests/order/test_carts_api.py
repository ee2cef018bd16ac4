"""Carts over HTTP: tokens, stock holds, re-pricing, continuing on another channel, merging
on login."""

from omniretail.core.models import OutboxEvent
from omniretail.inventory import service as inventory
from omniretail.order.models import Cart
from omniretail.pricing import service as pricing
from omniretail.pricing.service import PromotionSpec
from tests.order.helpers import (
    count,
    make_customer,
    start_cart,
    state,
    stock,
    with_token,
)


def test_anonymous_cart_holds_stock_and_is_priced(client, shop, session):
    # Given a warehouse with 10 TEE-M, when a shopper adds 2 to a new cart
    cart_id, token = start_cart(client, shop, [("TEE-M", 2)])

    # Then the cart shows the price and the warehouse holds 2 units for it
    cart = client.get(f"/api/v1/carts/{cart_id}", headers=with_token(shop.web_key, token)).json()
    assert [(li["sku"], li["quantity"], li["unit_price"], li["total"]) for li in cart["lines"]] == [
        ("TEE-M", 2, 2000, 4000)
    ]
    assert cart["totals"] == {
        "subtotal": 4000,
        "discount_total": 0,
        "shipping_total": 0,
        "tax_total": 667,
        "total": 4000,
    }
    assert len(cart["holds"]) == 1
    assert stock(session, "TEE-M", shop.wh) == {
        "on_hand": 10,
        "allocated": 0,
        "held": 2,
        "available": 8,
    }


def test_cart_without_its_token_is_not_found(client, shop):
    cart_id, _ = start_cart(client, shop, [("MUG", 1)])
    response = client.get(f"/api/v1/carts/{cart_id}", headers=with_token(shop.web_key, "ctk_wrong"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "cart_not_found"


def test_unknown_cart_is_404_with_error_shape(client, shop):
    response = client.post(
        "/api/v1/carts/cart_nope/lines",
        json={"lines": [{"sku": "MUG", "quantity": 1}]},
        headers=with_token(shop.web_key, "ctk_x"),
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "cart_not_found",
            "message": "cart 'cart_nope' not found",
            "details": {"cart": "cart_nope"},
        }
    }


def test_adding_the_same_sku_sums_quantities_and_re_holds(client, shop, session):
    cart_id, token = start_cart(client, shop, [("TEE-M", 1)])
    response = client.post(
        f"/api/v1/carts/{cart_id}/lines",
        json={"lines": [{"sku": "TEE-M", "quantity": 2}]},
        headers=with_token(shop.web_key, token),
    )
    assert response.status_code == 200
    assert [li["quantity"] for li in response.json()["lines"]] == [3]
    assert stock(session, "TEE-M", shop.wh)["held"] == 3


def test_removing_a_line_releases_its_units(client, shop, session):
    cart_id, token = start_cart(client, shop, [("TEE-M", 2), ("MUG", 1)])
    response = client.delete(
        f"/api/v1/carts/{cart_id}/lines/TEE-M", headers=with_token(shop.web_key, token)
    )
    assert response.status_code == 200
    assert [li["sku"] for li in response.json()["lines"]] == ["MUG"]
    assert stock(session, "TEE-M", shop.wh)["held"] == 0
    assert stock(session, "MUG", shop.wh)["held"] == 1


def test_more_than_available_is_409_and_the_cart_is_unchanged(client, shop, session):
    cart_id, token = start_cart(client, shop, [("TEE-M", 1)])
    before = state(session)
    response = client.put(
        f"/api/v1/carts/{cart_id}/lines/TEE-M",
        json={"quantity": 11},
        headers=with_token(shop.web_key, token),
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_stock"
    assert response.json()["error"]["details"]["available"] == 10
    assert state(session) == before
    cart = client.get(f"/api/v1/carts/{cart_id}", headers=with_token(shop.web_key, token)).json()
    assert [li["quantity"] for li in cart["lines"]] == [1]


def test_unknown_sku_is_404_and_nothing_is_held(client, shop, session):
    cart_id, token = start_cart(client, shop, [("MUG", 1)])
    before = state(session)
    response = client.post(
        f"/api/v1/carts/{cart_id}/lines",
        json={"lines": [{"sku": "NOPE", "quantity": 1}]},
        headers=with_token(shop.web_key, token),
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "sku_not_found"
    assert state(session) == before


def test_a_coupon_is_applied_on_every_change(client, shop, session):
    # Given a coupon promotion: 10 % off the cart with WELCOME10
    promotion = pricing.create_promotion(
        session,
        PromotionSpec(name="Welcome", kind="percent_off", percent="10", requires_coupon=True),
    )
    pricing.create_coupons(session, promotion.id, ["WELCOME10"])
    session.commit()
    cart_id, token = start_cart(client, shop, [("TEE-M", 1)])

    # When the coupon is entered and a line is added
    headers = with_token(shop.web_key, token)
    client.put(f"/api/v1/carts/{cart_id}/coupons", json={"codes": ["welcome10"]}, headers=headers)
    cart = client.post(
        f"/api/v1/carts/{cart_id}/lines",
        json={"lines": [{"sku": "MUG", "quantity": 1}]},
        headers=headers,
    ).json()

    # Then 10 % of 3200 comes off
    assert cart["coupon_codes"] == ["WELCOME10"]
    assert (cart["totals"]["discount_total"], cart["totals"]["total"]) == (320, 2880)


def test_a_customer_cart_is_continued_on_another_channel(client, shop, session):
    # Given a customer who started a cart in the app
    customer = make_customer(session, "ada@example.com")
    created = client.post(
        "/api/v1/carts",
        json={"customer_id": customer, "lines": [{"sku": "TEE-M", "quantity": 1}]},
        headers=shop.app_key,
    ).json()

    # When they sign in on the website
    response = client.post(
        "/api/v1/carts/login", json={"customer_id": customer}, headers=shop.web_key
    )

    # Then the website gets the same cart, now on the web channel, with a token of its own
    assert response.status_code == 200
    cart = response.json()
    assert (cart["id"], cart["channel_id"], cart["customer_id"]) == (
        created["id"],
        shop.web,
        customer,
    )
    assert [(li["sku"], li["quantity"]) for li in cart["lines"]] == [("TEE-M", 1)]
    assert cart["cart_token"] != created["cart_token"]
    # and a change on the web is what the app sees
    client.post(
        f"/api/v1/carts/{cart['id']}/lines",
        json={"lines": [{"sku": "MUG", "quantity": 1}]},
        headers=with_token(shop.web_key, cart["cart_token"]),
    )
    seen = client.get(
        f"/api/v1/carts/{cart['id']}", headers=with_token(shop.app_key, created["cart_token"])
    ).json()
    assert [(li["sku"], li["quantity"]) for li in seen["lines"]] == [("TEE-M", 1), ("MUG", 1)]


def test_login_merges_the_anonymous_cart_into_the_customers_cart(client, shop, session):
    # Given a customer with 2 TEE-M in their app cart and an anonymous web cart with 1 TEE-M
    # and 1 MUG
    customer = make_customer(session, "grace@example.com")
    theirs = client.post(
        "/api/v1/carts",
        json={"customer_id": customer, "lines": [{"sku": "TEE-M", "quantity": 2}]},
        headers=shop.app_key,
    ).json()
    anon_id, anon_token = start_cart(client, shop, [("TEE-M", 1), ("MUG", 1)])

    # When they sign in on the web with the anonymous cart
    response = client.post(
        "/api/v1/carts/login",
        json={"customer_id": customer, "cart_id": anon_id},
        headers=with_token(shop.web_key, anon_token),
    )

    # Then quantities are summed into the customer's cart, the anonymous one is merged
    cart = response.json()
    assert response.status_code == 200
    assert cart["id"] == theirs["id"]
    assert [(li["sku"], li["quantity"]) for li in cart["lines"]] == [("TEE-M", 3), ("MUG", 1)]
    merged = session.get(Cart, anon_id)
    session.refresh(merged)
    assert (merged.status, merged.merged_into, merged.holds) == ("merged", theirs["id"], [])
    # and exactly the merged quantities are held, once
    assert stock(session, "TEE-M", shop.wh)["held"] == 3
    assert stock(session, "MUG", shop.wh)["held"] == 1
    assert session.query(OutboxEvent).filter(OutboxEvent.topic == "cart.merged").count() == 1
    # and the anonymous token now opens the customer's cart
    via_old_token = client.get(
        f"/api/v1/carts/{theirs['id']}", headers=with_token(shop.web_key, anon_token)
    )
    assert via_old_token.status_code == 200


def test_merge_keeps_quantities_within_stock_and_says_so(client, shop, session):
    # Given 6 TEE-M in the customer's cart and 4 in an anonymous one (all 10 held), and then 2
    # units found damaged in the warehouse
    customer = make_customer(session, "linus@example.com")
    client.post(
        "/api/v1/carts",
        json={"customer_id": customer, "lines": [{"sku": "TEE-M", "quantity": 6}]},
        headers=shop.app_key,
    )
    anon_id, anon_token = start_cart(client, shop, [("TEE-M", 4)])
    inventory.record_movement(session, location_id=shop.wh, reason="damage", lines=[("TEE-M", 2)])
    session.commit()

    # When the customer signs in with the anonymous cart
    response = client.post(
        "/api/v1/carts/login",
        json={"customer_id": customer, "cart_id": anon_id},
        headers=with_token(shop.web_key, anon_token),
    )

    # Then the merged line keeps the 8 that can be held and says it was cut
    assert response.status_code == 200
    cart = response.json()
    assert [(li["sku"], li["quantity"]) for li in cart["lines"]] == [("TEE-M", 8)]
    assert cart["notices"] == [{"sku": "TEE-M", "requested": 10, "kept": 8}]
    assert stock(session, "TEE-M", shop.wh) == {
        "on_hand": 8,
        "allocated": 0,
        "held": 8,
        "available": 0,
    }


def test_login_for_an_unknown_customer_is_404(client, shop, session):
    before = count(session, Cart)
    response = client.post(
        "/api/v1/carts/login", json={"customer_id": "cus_nobody"}, headers=shop.web_key
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"
    assert count(session, Cart) == before
