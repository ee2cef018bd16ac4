"""Bad input at checkout gives a clear 4xx and writes nothing: no order without payment, no
payment without order, no stock moved, no gift-card balance touched."""

from datetime import timedelta

from omniretail.core.timeutil import utcnow
from omniretail.inventory import service as inventory
from omniretail.order.models import Cart
from tests.order.helpers import (
    ADDRESS,
    checkout,
    complete,
    gift_card,
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


def _ready_cart(client, shop, lines=(("TEE-M", 1),)):
    cart_id, token = start_cart(client, shop, list(lines))
    assert checkout(client, shop, cart_id, token, HOME).status_code == 200
    return cart_id, token


def test_unknown_cart_is_404_and_nothing_is_written(client, shop, session):
    before = state(session)
    response = complete(client, shop, "cart_unknown", "ctk_x")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "cart_not_found"
    assert state(session) == before


def test_declined_card_is_402_and_nothing_is_written(client, shop, session):
    cart_id, token = _ready_cart(client, shop)
    before = state(session)
    response = complete(client, shop, cart_id, token, [{"type": "card", "token": "tok_declined"}])
    assert response.status_code == 402
    assert response.json()["error"] == {
        "code": "payment_declined",
        "message": "the card was declined",
        "details": {"decline_code": "card_declined", "tender": "card"},
    }
    assert state(session) == before
    # the cart is still active and still holds its unit, so the shopper can pay another way
    assert session.get(Cart, cart_id).status == "active"
    assert stock(session, "TEE-M", shop.wh)["held"] == 1
    assert complete(client, shop, cart_id, token).status_code == 201


def test_insufficient_funds_is_402(client, shop, session):
    cart_id, token = _ready_cart(client, shop)
    before = state(session)
    response = complete(
        client, shop, cart_id, token, [{"type": "card", "token": "tok_insufficient_funds"}]
    )
    assert response.status_code == 402
    assert response.json()["error"]["details"]["decline_code"] == "insufficient_funds"
    assert state(session) == before


def test_split_tender_with_a_declined_card_gives_the_gift_card_back(client, shop, session):
    # Given a gift card with 1000 and a cart of 2495
    code = gift_card(session, 1000)
    cart_id, token = _ready_cart(client, shop)
    before = state(session)

    # When the card part is declined
    response = complete(
        client,
        shop,
        cart_id,
        token,
        [
            {"type": "gift_card", "token": code, "amount": 1000},
            {"type": "card", "token": "tok_declined"},
        ],
    )

    # Then nothing was taken from the gift card and nothing was written
    assert response.status_code == 402
    assert state(session) == before


def test_gift_card_without_enough_balance_is_402_and_unchanged(client, shop, session):
    code = gift_card(session, 500)
    cart_id, token = _ready_cart(client, shop)
    before = state(session)
    response = complete(client, shop, cart_id, token, [{"type": "gift_card", "token": code}])
    assert response.status_code == 402
    assert response.json()["error"]["details"] == {
        "decline_code": "insufficient_balance",
        "tender": "gift_card",
        "balance": 500,
        "requested": 2495,
    }
    assert state(session) == before


def test_tenders_that_do_not_cover_the_total_are_422(client, shop, session):
    cart_id, token = _ready_cart(client, shop)
    before = state(session)
    response = complete(
        client, shop, cart_id, token, [{"type": "card", "token": "tok_visa", "amount": 1000}]
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"total": 2495, "missing": 1495}
    assert state(session) == before


def test_invalid_address_is_422_naming_each_field(client, shop, session):
    cart_id, token = start_cart(client, shop, [("TEE-M", 1)])
    before = state(session)
    response = checkout(
        client,
        shop,
        cart_id,
        token,
        {
            "shipping_address": {
                "name": "Ada",
                "line1": "1 Road",
                "country": "GB",
                "postal_code": "123",
            }
        },
    )
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "invalid_address",
        "message": "the shipping address is not valid",
        "details": {
            "address": "shipping address",
            "fields": {"city": "required", "postal_code": "not a valid postal code for GB"},
        },
    }
    assert state(session) == before


def test_home_delivery_without_an_address_cannot_complete(client, shop, session):
    cart_id, token = start_cart(client, shop, [("TEE-M", 1)])
    response = checkout(client, shop, cart_id, token, {"delivery": [{"method": "standard"}]})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "shipping_address_required"


def test_complete_without_a_delivery_method_is_422(client, shop, session):
    cart_id, token = start_cart(client, shop, [("TEE-M", 1)])
    client.put(
        f"/api/v1/carts/{cart_id}/checkout",
        json={"email": "ada@example.com"},
        headers=with_token(shop.web_key, token),
    )
    before = state(session)
    response = complete(client, shop, cart_id, token)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "delivery_method_required"
    assert state(session) == before
    assert session.get(Cart, cart_id).status == "active"


def _expire_holds(session, cart_id):
    """Move the cart's holds into the past (as if the shopper left for an hour)."""
    from sqlalchemy import update

    from omniretail.inventory.models import Reservation, ReservationLine

    cart = session.get(Cart, cart_id)
    session.refresh(cart)
    past = utcnow() - timedelta(minutes=1)
    ids = [h["reservation_id"] for h in cart.holds]
    session.execute(
        update(ReservationLine)
        .where(ReservationLine.reservation_id.in_(ids))
        .values(expires_at=past)
    )
    session.execute(update(Reservation).where(Reservation.id.in_(ids)).values(expires_at=past))
    session.commit()


def test_expired_hold_whose_stock_is_gone_is_409_and_nothing_is_written(client, shop, session):
    # Given a cart whose hold on 1 TEE-M expired, and another shopper who then took all 10
    cart_id, token = _ready_cart(client, shop)
    _expire_holds(session, cart_id)
    start_cart(client, shop, [("TEE-M", 10)], key=shop.app_key)
    before = state(session)

    # When the first shopper completes
    response = complete(client, shop, cart_id, token)

    # Then it is a clear 409 and nothing changed
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["details"]["sku"], error["details"]["available"]) == (
        "reservation_expired",
        "TEE-M",
        0,
    )
    assert state(session) == before


def test_expired_hold_is_taken_again_when_the_stock_is_still_there(client, shop, session):
    cart_id, token = _ready_cart(client, shop)
    _expire_holds(session, cart_id)
    response = complete(client, shop, cart_id, token)
    assert response.status_code == 201
    assert stock(session, "TEE-M", shop.wh) == {
        "on_hand": 10,
        "allocated": 1,
        "held": 0,
        "available": 9,
    }
    assert inventory.verify(session).drift == []


def test_guest_checkout_needs_an_email(client, shop, session):
    cart_id, token = start_cart(client, shop, [("TEE-M", 1)])
    checkout(
        client,
        shop,
        cart_id,
        token,
        {"shipping_address": ADDRESS, "delivery": [{"method": "express"}]},
    )
    before = state(session)
    response = complete(client, shop, cart_id, token)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "email_required"
    assert state(session) == before


def test_a_channel_key_cannot_pay_at_the_till(client, shop, session):
    cart_id, token = _ready_cart(client, shop)
    before = state(session)
    response = complete(client, shop, cart_id, token, [{"type": "cash"}])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_tender_type"
    assert state(session) == before
