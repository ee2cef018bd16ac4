"""Price resolution through the service and the API: the winning price, its rule and why
every other candidate lost; bulk resolution in a constant number of queries."""

import pytest

from omniretail.core.errors import AppError
from omniretail.pricing import service
from tests.conftest import auth_header
from tests.pricing.helpers import (
    at,
    counting_statements,
    make_book,
    make_channel,
    make_product,
    set_price,
)


def given_web_shop(session):
    """Channel 'web' (EUR) using a shared 'base' book (priority 0) and a channel book
    'web-eur' (priority 0); products TEE-M and MUG."""
    web = make_channel(session, "web")
    make_product(session, "TEE-M")
    make_product(session, "MUG")
    base = make_book(session, "base")
    web_book = make_book(session, "web-eur", kind="channel")
    service.assign_price_book(session, base, "web", 0)
    service.assign_price_book(session, web_book, "web", 0)
    return web, base, web_book


def test_channel_book_price_wins_and_the_response_explains_it(client, admin, session):
    _, base, web_book = given_web_shop(session)
    base_price = set_price(session, base, "TEE-M", 1500)
    web_price = set_price(session, web_book, "TEE-M", 1299)
    session.commit()
    response = client.get(
        "/api/v1/prices/resolve",
        params={"sku": "TEE-M", "channel": "web", "at": "2026-06-01T12:00:00Z"},
        headers=admin,
    )
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("amount", "currency", "price_id", "price_book", "rule")} == {
        "amount": 1299,
        "currency": "EUR",
        "price_id": web_price,
        "price_book": "web-eur",
        "rule": "public",
    }
    assert [(e["price_id"], e["status"]) for e in body["explanation"]] == [
        (web_price, "won"),
        (base_price, "lost"),
    ]
    assert body["explanation"][1]["reason"] == (
        "price book 'base' (shared, priority 0) ranks below 'web-eur' (channel, priority 0): "
        "a channel book comes before a shared book"
    )


def test_customer_group_tier_wins_for_that_group_and_quantity(client, admin, session):
    _, base, _ = given_web_shop(session)
    set_price(session, base, "TEE-M", 1500)
    set_price(session, base, "TEE-M", 1400, min_quantity=10)
    set_price(session, base, "TEE-M", 1300, customer_group="vip")
    vip_tier = set_price(session, base, "TEE-M", 1200, customer_group="vip", min_quantity=10)
    session.commit()
    body = client.get(
        "/api/v1/prices/resolve",
        params={"sku": "TEE-M", "channel": "web", "quantity": 12, "customer_group": "vip"},
        headers=admin,
    ).json()
    assert (body["amount"], body["price_id"], body["rule"]) == (
        1200,
        vip_tier,
        "customer_group_tier",
    )
    assert [e["status"] for e in body["explanation"]] == ["won", "lost", "lost", "lost"]


def test_scheduled_price_wins_only_inside_its_window(client, admin, session):
    _, base, _ = given_web_shop(session)
    set_price(session, base, "TEE-M", 1500)
    set_price(session, base, "TEE-M", 999, starts_at=at(10), ends_at=at(20))
    session.commit()

    def amount(when: str) -> int:
        return client.get(
            "/api/v1/prices/resolve",
            params={"sku": "TEE-M", "channel": "web", "at": when},
            headers=admin,
        ).json()["amount"]

    assert amount("2026-06-15T00:00:00Z") == 999
    assert amount("2026-06-20T00:00:00Z") == 1500


def test_no_applicable_price_is_404_with_the_reasons(client, admin, session):
    _, base, _ = given_web_shop(session)
    set_price(session, base, "TEE-M", 1300, customer_group="vip")
    session.commit()
    response = client.get(
        "/api/v1/prices/resolve", params={"sku": "TEE-M", "channel": "web"}, headers=admin
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "price_not_found"
    assert [e["reason"] for e in error["details"]["explanation"]] == [
        "only for customer group 'vip'"
    ]


def test_storefront_key_resolves_on_its_own_channel_only(client, make_key, session):
    web, base, _ = given_web_shop(session)
    make_channel(session, "app")
    set_price(session, base, "TEE-M", 1500)
    session.commit()
    headers = make_key("channel", channel_id=web)
    own = client.get("/api/v1/prices/resolve", params={"sku": "TEE-M"}, headers=headers)
    assert (own.status_code, own.json()["channel"], own.json()["amount"]) == (200, "web", 1500)
    other = client.get(
        "/api/v1/prices/resolve", params={"sku": "TEE-M", "channel": "app"}, headers=headers
    )
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "channel_forbidden"


def test_staff_must_name_the_channel(client, admin):
    response = client.get("/api/v1/prices/resolve", params={"sku": "TEE-M"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "channel_required"


def test_resolve_without_credentials_is_401(client):
    response = client.get("/api/v1/prices/resolve", params={"sku": "TEE-M", "channel": "web"})
    assert response.status_code == 401


def test_bulk_resolve_sums_quantities_per_sku_and_lists_unpriced(client, admin, session):
    _, base, _ = given_web_shop(session)
    set_price(session, base, "TEE-M", 1500)
    set_price(session, base, "TEE-M", 1400, min_quantity=5)
    session.commit()
    body = client.post(
        "/api/v1/prices/resolve",
        json={
            "channel": "web",
            "items": [
                {"sku": "TEE-M", "quantity": 3},
                {"sku": "MUG", "quantity": 1},
                {"sku": "TEE-M", "quantity": 2},
            ],
        },
        headers=admin,
    ).json()
    assert [(i["sku"], i["quantity"], i["amount"]) for i in body["items"]] == [("TEE-M", 5, 1400)]
    assert body["unpriced"] == ["MUG"]


def test_bulk_resolution_uses_the_same_queries_for_one_or_forty_skus(session):
    web, base, web_book = given_web_shop(session)
    skus = [f"SKU-{i:02d}" for i in range(40)]
    for sku in skus:
        make_product(session, sku)
    service.upsert_prices(
        session, base, [service.PriceInput(sku=s, amount=100 + i) for i, s in enumerate(skus)]
    )
    service.upsert_prices(session, web_book, [service.PriceInput(sku=skus[0], amount=50)])
    session.flush()
    channel = service.catalog.get_channel(session, web)
    with counting_statements(session) as one:
        service.resolve_prices(session, channel, {skus[0]: 1})
    with counting_statements(session) as forty:
        resolved = service.resolve_prices(session, channel, {s: 1 for s in skus})
    assert len(one) == len(forty) == 2
    assert resolved[skus[0]].winner.amount == 50
    assert resolved[skus[39]].winner.amount == 139


def test_service_resolve_price_of_a_sku_without_prices_is_404(session):
    given_web_shop(session)
    with pytest.raises(AppError) as raised:
        service.resolve_price(session, "web", "MUG")
    error = raised.value
    assert (error.code, error.status, error.details["explanation"]) == ("price_not_found", 404, [])


def test_unknown_channel_is_404(client, admin):
    response = client.get(
        "/api/v1/prices/resolve", params={"sku": "TEE-M", "channel": "nope"}, headers=admin
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "channel_not_found"


def test_invalid_key_is_401(client):
    response = client.get(
        "/api/v1/prices/resolve",
        params={"sku": "TEE-M", "channel": "web"},
        headers=auth_header("pk_bad_key"),
    )
    assert response.status_code == 401
