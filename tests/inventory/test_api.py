"""The inventory API over HTTP: error shape, roles, idempotent replays, availability."""

from datetime import timedelta

from sqlalchemy import func, select, text
from typer.testing import CliRunner

from omniretail.catalog import service as catalog
from omniretail.cli import app as cli
from omniretail.core.timeutil import utcnow
from omniretail.inventory import service
from omniretail.inventory.models import Reservation
from tests.inventory.factories import make_location, make_skus, receive, snapshot


def _stocked(session, quantity=5):
    make_skus(session, "BAG")
    wh = make_location(session, "wh")
    receive(session, "BAG", wh.id, quantity)
    session.commit()
    return wh.id


def _reservations(session):
    return session.scalar(select(func.count()).select_from(Reservation))


def test_admin_creates_a_location(client, admin):
    response = client.post(
        "/api/v1/locations",
        json={
            "code": "paris-rivoli",
            "name": "Paris Rivoli",
            "type": "store",
            "timezone": "Europe/Paris",
            "latitude": 48.8606,
            "longitude": 2.3376,
            "capabilities": ["pickup", "returns"],
            "opening_hours": {"mon": [["09:00", "19:00"]]},
            "daily_pick_capacity": 300,
        },
        headers=admin,
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["code"], body["timezone"], body["capabilities"]) == (
        "paris-rivoli",
        "Europe/Paris",
        ["pickup", "returns"],
    )


def test_location_with_a_bad_time_zone_is_422_with_error_shape(client, admin):
    response = client.post(
        "/api/v1/locations",
        json={"code": "x", "name": "X", "type": "store", "timezone": "Mars/Olympus"},
        headers=admin,
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_timezone",
            "message": "'Mars/Olympus' is not an IANA time zone",
            "details": {"timezone": "Mars/Olympus"},
        }
    }


def test_reservation_replay_with_the_same_key_returns_the_same_result_once(client, admin, session):
    wh = _stocked(session)
    headers = {**admin, "Idempotency-Key": "cart-42-reserve"}
    body = {"items": [{"sku": "BAG", "quantity": 2}], "locations": [wh]}
    first = client.post("/api/v1/reservations", json=body, headers=headers)
    second = client.post("/api/v1/reservations", json=body, headers=headers)
    assert first.status_code == 201 and second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _reservations(session) == 1
    stock = client.get("/api/v1/stock", params={"sku": "BAG"}, headers=admin).json()
    assert (stock[0]["held"], stock[0]["available"]) == (2, 3)


def test_not_enough_stock_over_http_is_409_with_available_and_nothing_changes(
    client, admin, session
):
    wh = _stocked(session, quantity=1)
    before = snapshot(session)
    response = client.post(
        "/api/v1/reservations",
        json={"items": [{"sku": "BAG", "quantity": 2}], "locations": [wh]},
        headers=admin,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_stock"
    assert response.json()["error"]["details"] == {"sku": "BAG", "requested": 2, "available": 1}
    assert snapshot(session) == before


def test_negative_quantity_over_http_is_422_and_nothing_changes(client, admin, session):
    wh = _stocked(session)
    before = snapshot(session)
    response = client.post(
        "/api/v1/stock/movements",
        json={"location_id": wh, "reason": "receipt", "lines": [{"sku": "BAG", "quantity": -1}]},
        headers=admin,
    )
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_quantity")
    assert snapshot(session) == before


def test_movement_replay_has_no_second_effect(client, admin, session):
    wh = _stocked(session)
    headers = {**admin, "Idempotency-Key": "grn-7"}
    body = {"location_id": wh, "reason": "receipt", "lines": [{"sku": "BAG", "quantity": 4}]}
    client.post("/api/v1/stock/movements", json=body, headers=headers)
    client.post("/api/v1/stock/movements", json=body, headers=headers)
    stock = client.get("/api/v1/stock", params={"sku": "BAG"}, headers=admin).json()
    assert stock[0]["on_hand"] == 9


def test_store_associate_moves_stock_only_at_their_own_store(client, make_key, session):
    wh = _stocked(session)
    store = make_location(session, "store", type="store")
    session.commit()
    associate = make_key("store_associate", location_ids=[store.id])
    before = snapshot(session)
    denied = client.post(
        "/api/v1/stock/movements",
        json={"location_id": wh, "reason": "damage", "lines": [{"sku": "BAG", "quantity": 1}]},
        headers=associate,
    )
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "forbidden_location")
    assert snapshot(session) == before
    allowed = client.post(
        "/api/v1/stock/movements",
        json={
            "location_id": store.id,
            "reason": "return",
            "lines": [{"sku": "BAG", "quantity": 1}],
        },
        headers=associate,
    )
    assert allowed.status_code == 200


def test_analyst_cannot_move_stock(client, make_key, session):
    wh = _stocked(session)
    response = client.post(
        "/api/v1/stock/movements",
        json={"location_id": wh, "reason": "receipt", "lines": [{"sku": "BAG", "quantity": 1}]},
        headers=make_key("analyst"),
    )
    assert response.status_code == 403


def test_channel_key_reads_availability_of_its_channel(client, make_key, session):
    wh = _stocked(session)
    web = catalog.create_channel(
        session, code="web", name="Web", type="web", currency="EUR", country="FR", locale="fr-FR"
    )
    session.commit()
    key = make_key("channel", channel_id=web.id)
    response = client.get("/api/v1/availability", params={"skus": "BAG"}, headers=key)
    assert response.status_code == 200
    assert response.json()["channel"] == "web"
    assert response.json()["items"] == [{"sku": "BAG", "available": 5, "locations": {wh: 5}}]


def test_availability_of_101_skus_is_422(client, admin, session):
    skus = ",".join(f"S{i}" for i in range(101))
    response = client.get("/api/v1/availability", params={"skus": skus}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "too_many_skus"


def test_cart_flow_reserve_extend_allocate_fulfil_over_http(client, admin, session):
    wh = _stocked(session)
    created = client.post(
        "/api/v1/reservations",
        json={"items": [{"sku": "BAG", "quantity": 1}], "reference": "crt_1"},
        headers=admin,
    ).json()
    rid = created["id"]
    assert (
        client.post(f"/api/v1/reservations/{rid}/extend", json={}, headers=admin).json()["status"]
        == "active"
    )
    allocated = client.post(
        f"/api/v1/reservations/{rid}/allocate", json={"order_reference": "ord_9"}, headers=admin
    ).json()
    assert (allocated["status"], allocated["expires_at"]) == ("allocated", None)
    fulfilled = client.post(f"/api/v1/reservations/{rid}/fulfill", headers=admin).json()
    assert fulfilled["status"] == "fulfilled"
    stock = client.get("/api/v1/stock", params={"location_id": wh}, headers=admin).json()
    assert (stock[0]["on_hand"], stock[0]["reserved"]) == (4, 0)


def test_verify_endpoint_and_command_report_drift(client, admin, session, db):
    _stocked(session)
    assert client.get("/api/v1/stock/verify", headers=admin).json()["ok"] is True
    assert CliRunner().invoke(cli, ["inventory", "verify"]).exit_code == 0
    session.execute(text("UPDATE stock_levels SET on_hand = 1 WHERE sku = 'BAG'"))
    session.commit()
    body = client.get("/api/v1/stock/verify", headers=admin).json()
    assert body["drift"] == [
        {
            "sku": "BAG",
            "location_id": body["drift"][0]["location_id"],
            "field": "on_hand",
            "balance": 1,
            "expected": 5,
        }
    ]
    result = CliRunner().invoke(cli, ["inventory", "verify"])
    assert result.exit_code == 1
    assert "on_hand is 1, ledger says 5" in result.output


def test_channel_key_reserves_for_its_own_channel_only(client, make_key, session):
    wh = _stocked(session)
    web = catalog.create_channel(
        session, code="web", name="Web", type="web", currency="EUR", country="FR", locale="fr-FR"
    )
    app = catalog.create_channel(
        session, code="app", name="App", type="app", currency="EUR", country="FR", locale="fr-FR"
    )
    session.commit()
    web_key = make_key("channel", channel_id=web.id)
    created = client.post(
        "/api/v1/reservations",
        json={"items": [{"sku": "BAG", "quantity": 1}], "locations": [wh]},
        headers=web_key,
    )
    assert (created.status_code, created.json()["channel_id"]) == (201, web.id)
    other = client.get(
        f"/api/v1/reservations/{created.json()['id']}",
        headers=make_key("channel", channel_id=app.id),
    )
    assert (other.status_code, other.json()["error"]["code"]) == (404, "reservation_not_found")


def test_expire_reservations_command_cleans_up_expired_holds(session, db):
    wh = _stocked(session)
    service.reserve(session, [("BAG", 2)], locations=[wh], now=utcnow() - timedelta(minutes=20))
    session.commit()
    result = CliRunner().invoke(cli, ["inventory", "expire-reservations"])
    assert result.exit_code == 0
    assert "expired 1 reservation lines" in result.output
    assert session.scalar(select(Reservation.status)) == "expired"
