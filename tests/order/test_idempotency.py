"""Completing twice never makes two orders or two charges."""

from omniretail.order.models import GatewayCharge, Order, Payment
from tests.order.helpers import ADDRESS, checkout, complete, count, start_cart

HOME = {
    "email": "ada@example.com",
    "shipping_address": ADDRESS,
    "delivery": [{"method": "standard"}],
}


def _ready(client, shop):
    cart_id, token = start_cart(client, shop, [("TEE-M", 1)])
    checkout(client, shop, cart_id, token, HOME)
    return cart_id, token


def test_double_submit_with_the_same_key_is_one_order_and_one_charge(client, shop, session):
    cart_id, token = _ready(client, shop)

    first = complete(client, shop, cart_id, token, idem="checkout-1")
    second = complete(client, shop, cart_id, token, idem="checkout-1")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert (count(session, Order), count(session, Payment), count(session, GatewayCharge)) == (
        1,
        1,
        1,
    )


def test_a_second_complete_without_a_key_returns_the_same_order(client, shop, session):
    cart_id, token = _ready(client, shop)
    first = complete(client, shop, cart_id, token)
    second = complete(client, shop, cart_id, token)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["order_token"] is None  # the token is shown once
    assert (count(session, Order), count(session, GatewayCharge)) == (1, 1)


def test_the_same_key_with_another_body_is_409(client, shop, session):
    cart_id, token = _ready(client, shop)
    complete(client, shop, cart_id, token, idem="checkout-2")
    other = complete(
        client, shop, cart_id, token, [{"type": "card", "token": "tok_mc"}], idem="checkout-2"
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert count(session, GatewayCharge) == 1


def test_a_declined_attempt_does_not_block_a_retry_with_the_same_key(client, shop, session):
    cart_id, token = _ready(client, shop)
    declined = complete(
        client, shop, cart_id, token, [{"type": "card", "token": "tok_declined"}], idem="k-3"
    )
    retry = complete(
        client, shop, cart_id, token, [{"type": "card", "token": "tok_declined"}], idem="k-3"
    )
    assert (declined.status_code, retry.status_code) == (402, 402)
    assert (count(session, Order), count(session, GatewayCharge)) == (0, 0)
