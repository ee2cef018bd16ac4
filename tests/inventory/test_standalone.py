"""A hold that is a unit of work of its own (``reserve_standalone``, used by
``POST /reservations`` without an Idempotency-Key): one autocommit statement on PostgreSQL,
the transactional path otherwise. Same results and the same refusals as ``reserve``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from omniretail.api import create_app
from omniretail.catalog import service as catalog
from omniretail.core import auth
from omniretail.core.errors import AppError
from omniretail.inventory import service
from omniretail.inventory.models import LedgerEntry
from tests.inventory.factories import T0, balance, make_location, make_skus, receive, snapshot


@pytest.fixture(params=["rolled_back", "committed"])
def database(request):
    """Each test runs on the rolled-back test database (any backend) and on PostgreSQL with
    committed data, where the hold really runs on the autocommit pool."""
    return request.getfixturevalue("db" if request.param == "rolled_back" else "pg_db")


def _stock(database, units=(3, 2)):
    with database.unit_of_work() as s:
        make_skus(s, "MUG")
        locs = [make_location(s, f"site-{i}").id for i in range(len(units))]
        for loc, qty in zip(locs, units, strict=True):
            receive(s, "MUG", loc, qty)
    return locs


@pytest.mark.parametrize("strategy", ["preferred", "any"])
def test_a_standalone_hold_writes_the_reservation_its_line_and_one_ledger_row(database, strategy):
    # Given 3 units at a and 2 at b
    a, b = _stock(database)
    # When 2 units are held from [a] alone, as a unit of work of its own
    view = service.reserve_standalone(
        database, [("MUG", 2)], locations=[a], strategy=strategy, kind="order", now=T0
    )
    # Then the reservation, its line, the balance and the ledger agree, and verify is clean
    with database.unit_of_work(write=False) as s:
        stored = service.get_reservation(s, view.id, now=T0)
        assert (stored.status, stored.kind, stored.expires_at) == (
            "active",
            "order",
            view.expires_at,
        )
        assert [(x.location_id, x.quantity, x.status) for x in stored.lines] == [(a, 2, "held")]
        ledger = s.execute(
            select(LedgerEntry.reason, LedgerEntry.held_delta).where(
                LedgerEntry.reference == view.id
            )
        ).all()
        assert [tuple(r) for r in ledger] == [("reservation", 2)]
        assert balance(s, "MUG", a)["available"] == 1
        assert balance(s, "MUG", b)["available"] == 2
        assert service.verify(s).drift == []


def test_a_standalone_hold_from_any_location_takes_one_that_can_fill_it(database):
    # Given 1 unit at a and 4 at b
    a, b = _stock(database, (1, 4))
    # When 3 units are held from any of a, b
    view = service.reserve_standalone(
        database, [("MUG", 3)], locations=[a, b], strategy="any", now=T0
    )
    # Then b alone holds them (a cannot fill the line)
    assert [(x.location_id, x.quantity) for x in view.lines] == [(b, 3)]
    with database.unit_of_work(write=False) as s:
        assert (balance(s, "MUG", a)["held"], balance(s, "MUG", b)["held"]) == (0, 3)


def test_a_short_standalone_hold_is_409_with_the_available_quantity_and_changes_nothing(database):
    # Given 3 units at a and 2 at b
    a, b = _stock(database)
    with database.unit_of_work(write=False) as s:
        before = snapshot(s)
    # When 6 units are asked for from any of them
    with pytest.raises(AppError) as exc:
        service.reserve_standalone(database, [("MUG", 6)], locations=[a, b], strategy="any", now=T0)
    # Then 409 says 5 are available, and nothing was written
    assert (exc.value.status, exc.value.code) == (409, "insufficient_stock")
    assert exc.value.details == {"sku": "MUG", "requested": 6, "available": 5}
    with database.unit_of_work(write=False) as s:
        assert snapshot(s) == before


def test_a_standalone_hold_at_an_unknown_location_is_404_and_changes_nothing(database):
    # Given stock at a
    a, _ = _stock(database)
    with database.unit_of_work(write=False) as s:
        before = snapshot(s)
    # When a hold names a location that does not exist beside a
    with pytest.raises(AppError) as exc:
        service.reserve_standalone(database, [("MUG", 1)], locations=[a, "loc_nope"], now=T0)
    # Then 404, nothing written
    assert exc.value.status == 404
    assert exc.value.details == {"locations": ["loc_nope"]}
    with database.unit_of_work(write=False) as s:
        assert snapshot(s) == before


def test_a_standalone_hold_for_a_channel_uses_its_locations_buffer_and_ttl(database):
    # Given a web channel fed by a only, with a buffer of 1 and 5-minute holds
    a, _ = _stock(database)
    with database.unit_of_work() as s:
        web = catalog.create_channel(
            s, code="web", name="Web", type="web", currency="EUR", country="FR", locale="fr-FR"
        )
        service.set_channel_sourcing(
            s, "web", rules=[{"location_id": a}], buffer=1, reservation_ttl_seconds=300
        )
    # When 2 units are held for the channel, then one more
    view = service.reserve_standalone(database, [("MUG", 2)], channel="web", now=T0)
    with pytest.raises(AppError) as exc:
        service.reserve_standalone(database, [("MUG", 1)], channel="web", now=T0)
    # Then the first comes from a with the channel's deadline; the second is refused (buffer)
    assert (view.channel_id, [x.location_id for x in view.lines]) == (web.id, [a])
    assert view.expires_at.timestamp() - T0.timestamp() == 300
    assert exc.value.details == {"sku": "MUG", "requested": 1, "available": 0}


def test_standalone_holds_of_several_lines_take_the_transactional_path(database):
    # Given two SKUs at a
    with database.unit_of_work() as s:
        make_skus(s, "CUP", "PLATE")
        a = make_location(s, "site-a").id
        receive(s, "CUP", a, 2)
        receive(s, "PLATE", a, 1)
    # When both are held in one call
    view = service.reserve_standalone(database, [("CUP", 2), ("PLATE", 1)], locations=[a], now=T0)
    # Then both lines are held and the balances audit clean
    assert sorted((x.sku, x.quantity) for x in view.lines) == [("CUP", 2), ("PLATE", 1)]
    with database.unit_of_work(write=False) as s:
        assert service.verify(s).drift == []


def test_post_reservations_without_a_key_holds_once_and_a_short_one_changes_nothing(pg_db):
    # Given 3 units at a and 2 at b, committed, and the API served on that database
    a, b = _stock(pg_db)
    with pg_db.unit_of_work() as s:
        key, _ = auth.create_api_key(s, "test admin", "admin")
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(pg_db)) as client:
        # When 4 units are reserved from any location, then 2 more (only 1 is left)
        body = {"items": [{"sku": "MUG", "quantity": 4}], "locations": [a, b]}
        first = client.post("/api/v1/reservations", json=body, headers=headers)
        with pg_db.unit_of_work(write=False) as s:
            before = snapshot(s)
        body["items"][0]["quantity"] = 2
        second = client.post("/api/v1/reservations", json=body, headers=headers)
    # Then the first holds 4 units (a preferred hold splits: 3 at a, 1 at b), the second is
    # 409 with 1 available and wrote nothing
    assert first.status_code == 201, first.text
    lines = sorted((x["location_id"], x["quantity"]) for x in first.json()["lines"])
    assert lines == sorted([(a, 3), (b, 1)])
    assert second.status_code == 409
    assert second.json()["error"]["details"] == {"sku": "MUG", "requested": 2, "available": 1}
    with pg_db.unit_of_work(write=False) as s:
        assert snapshot(s) == before
        assert service.verify(s).drift == []
