"""Price books, prices and channel assignments through the API."""

from omniretail.pricing.models import ChannelPriceBook, Price, PriceBook
from tests.pricing.helpers import count, make_book, make_channel, make_product


def test_merchandiser_creates_a_price_book(client, make_key):
    headers = make_key("merchandiser")
    response = client.post(
        "/api/v1/price-books",
        json={"code": "base-eur", "name": "Base EUR", "currency": "eur"},
        headers=headers,
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["code"], body["currency"], body["kind"], body["intended_override"]) == (
        "base-eur",
        "EUR",
        "shared",
        False,
    )
    assert body["channels"] == []


def test_analyst_cannot_create_a_price_book_and_nothing_is_written(client, make_key, session):
    before = count(session, PriceBook)
    response = client.post(
        "/api/v1/price-books",
        json={"code": "base-eur", "name": "Base", "currency": "EUR"},
        headers=make_key("analyst"),
    )
    assert response.status_code == 403
    assert count(session, PriceBook) == before


def test_duplicate_price_book_code_is_409(client, admin, session):
    make_book(session, "base-eur")
    session.commit()
    response = client.post(
        "/api/v1/price-books",
        json={"code": "base-eur", "name": "Again", "currency": "EUR"},
        headers=admin,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "price_book_exists"


def test_bulk_prices_create_then_update_by_key(client, admin, session):
    make_product(session, "TEE-M")
    book = make_book(session, "base-eur")
    session.commit()
    first = client.post(
        f"/api/v1/price-books/{book}/prices",
        json={
            "prices": [
                {"sku": "TEE-M", "amount": 1299},
                {"sku": "TEE-M", "amount": 1099, "min_quantity": 3},
            ]
        },
        headers=admin,
    )
    assert first.status_code == 200
    assert (first.json()["created"], first.json()["updated"]) == (2, 0)
    second = client.post(
        "/api/v1/price-books/base-eur/prices",
        json={"prices": [{"sku": "TEE-M", "amount": 1199}]},
        headers=admin,
    )
    assert (second.json()["created"], second.json()["updated"]) == (0, 1)
    listed = client.get(f"/api/v1/price-books/{book}/prices", headers=admin).json()["items"]
    assert sorted((p["min_quantity"], p["amount"]) for p in listed) == [(1, 1199), (3, 1099)]


def test_prices_for_an_unknown_sku_write_nothing(client, admin, session):
    make_product(session, "TEE-M")
    book = make_book(session, "base-eur")
    session.commit()
    before = count(session, Price)
    response = client.post(
        f"/api/v1/price-books/{book}/prices",
        json={"prices": [{"sku": "TEE-M", "amount": 1299}, {"sku": "NOPE", "amount": 5}]},
        headers=admin,
    )
    assert response.status_code == 404
    assert response.json()["error"]["details"] == {"skus": ["NOPE"]}
    assert count(session, Price) == before


def test_duplicate_prices_in_one_request_are_422(client, admin, session):
    make_product(session, "TEE-M")
    book = make_book(session, "base-eur")
    session.commit()
    response = client.post(
        f"/api/v1/price-books/{book}/prices",
        json={"prices": [{"sku": "TEE-M", "amount": 1299}, {"sku": "TEE-M", "amount": 1300}]},
        headers=admin,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "duplicate_price"
    assert count(session, Price) == 0


def test_price_window_must_be_timezone_aware_and_ordered(client, admin, session):
    make_product(session, "TEE-M")
    book = make_book(session, "base-eur")
    session.commit()
    naive = client.post(
        f"/api/v1/price-books/{book}/prices",
        json={"prices": [{"sku": "TEE-M", "amount": 1, "starts_at": "2026-06-01T00:00:00"}]},
        headers=admin,
    )
    assert naive.status_code == 422
    reversed_window = client.post(
        f"/api/v1/price-books/{book}/prices",
        json={
            "prices": [
                {
                    "sku": "TEE-M",
                    "amount": 1,
                    "starts_at": "2026-07-01T00:00:00Z",
                    "ends_at": "2026-06-01T00:00:00Z",
                }
            ]
        },
        headers=admin,
    )
    assert reversed_window.json()["error"]["code"] == "invalid_window"
    assert count(session, Price) == 0


def test_assigning_a_book_to_a_channel_of_another_currency_is_422(client, admin, session):
    make_channel(session, "uk", currency="GBP")
    book = make_book(session, "base-eur")
    session.commit()
    response = client.post(
        f"/api/v1/price-books/{book}/channels", json={"channel": "uk"}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "currency_mismatch"
    assert count(session, ChannelPriceBook) == 0


def test_a_channel_book_belongs_to_one_channel(client, admin, session):
    make_channel(session, "web")
    make_channel(session, "app")
    book = make_book(session, "web-only", kind="channel")
    session.commit()
    assert (
        client.post(
            f"/api/v1/price-books/{book}/channels", json={"channel": "web"}, headers=admin
        ).status_code
        == 201
    )
    response = client.post(
        f"/api/v1/price-books/{book}/channels", json={"channel": "app"}, headers=admin
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "price_book_already_assigned"
    assert count(session, ChannelPriceBook) == 1


def test_a_shared_book_backs_several_channels(client, admin, session):
    web = make_channel(session, "web")
    app = make_channel(session, "app")
    book = make_book(session, "base-eur")
    session.commit()
    for channel, priority in (("web", 0), ("app", 5)):
        client.post(
            f"/api/v1/price-books/{book}/channels",
            json={"channel": channel, "priority": priority},
            headers=admin,
        )
    body = client.get(f"/api/v1/price-books/{book}", headers=admin).json()
    assert sorted((a["channel_id"], a["priority"]) for a in body["channels"]) == sorted(
        [(web, 0), (app, 5)]
    )
    listed = client.get("/api/v1/price-books?channel=app", headers=admin).json()["items"]
    assert [b["code"] for b in listed] == ["base-eur"]


def test_unassigning_a_book(client, admin, session):
    make_channel(session, "web")
    book = make_book(session, "base-eur")
    session.commit()
    client.post(f"/api/v1/price-books/{book}/channels", json={"channel": "web"}, headers=admin)
    response = client.delete(f"/api/v1/price-books/{book}/channels/web", headers=admin)
    assert response.status_code == 204
    assert count(session, ChannelPriceBook) == 0
    again = client.delete(f"/api/v1/price-books/{book}/channels/web", headers=admin)
    assert again.json()["error"]["code"] == "assignment_not_found"


def test_flagging_a_book_as_intended_override(client, admin, session):
    book = make_book(session, "outlet")
    session.commit()
    response = client.patch(
        f"/api/v1/price-books/{book}", json={"intended_override": True}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["intended_override"] is True
