"""Reservations: holds with a deadline, splits across locations, expiry, allocation."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from omniretail.catalog import service as catalog
from omniretail.core.errors import AppError
from omniretail.inventory import service
from omniretail.inventory.models import LedgerEntry, Reservation
from tests.inventory.factories import (
    T0,
    balance,
    make_location,
    make_skus,
    receive,
    snapshot,
)


def _setup(session, stock=(3, 2)):
    make_skus(session, "MUG")
    locations = [make_location(session, f"wh-{i}") for i in range(len(stock))]
    for loc, qty in zip(locations, stock, strict=True):
        receive(session, "MUG", loc.id, qty)
    return [loc.id for loc in locations]


def _lines(view):
    return [(line.location_id, line.quantity) for line in view.lines]


def test_reservation_splits_across_preferred_locations_in_order(session):
    a, b = _setup(session, (3, 2))
    view = service.reserve(session, [("MUG", 4)], locations=[a, b], now=T0)
    assert _lines(view) == [(a, 3), (b, 1)]
    assert balance(session, "MUG", a)["held"] == 3
    assert balance(session, "MUG", b)["available"] == 1


def test_any_of_these_prefers_one_location_that_holds_it_all(session):
    a, b = _setup(session, (3, 5))
    view = service.reserve(session, [("MUG", 4)], locations=[a, b], strategy="any", now=T0)
    assert _lines(view) == [(b, 4)]


def test_any_of_these_splits_over_the_fewest_locations_when_none_holds_it_all(session):
    a, b, c = _setup(session, (2, 4, 3))
    view = service.reserve(session, [("MUG", 6)], locations=[a, b, c], strategy="any", now=T0)
    assert _lines(view) == [(b, 4), (c, 2)]


def test_hold_expires_after_the_default_15_minutes(session):
    a, _ = _setup(session)
    view = service.reserve(session, [("MUG", 1)], locations=[a], now=T0)
    assert view.expires_at == T0 + timedelta(minutes=15)
    assert view.status == "active"


def test_expired_hold_stops_counting_at_once_without_a_sweeper(session):
    a, b = _setup(session, (3, 2))
    service.reserve(session, [("MUG", 5)], locations=[a, b], ttl_seconds=60, now=T0)
    at_59s = T0 + timedelta(seconds=59)
    at_60s = T0 + timedelta(seconds=60)
    assert service.availability(session, ["MUG"], now=at_59s).items[0].available == 0
    assert service.availability(session, ["MUG"], now=at_60s).items[0].available == 5
    again = service.reserve(session, [("MUG", 5)], locations=[a, b], now=at_60s)
    assert _lines(again) == [(a, 3), (b, 2)]
    assert service.verify(session).drift == []


def test_insufficient_stock_is_409_with_available_and_nothing_changes(session):
    a, b = _setup(session, (3, 2))
    service.reserve(session, [("MUG", 2)], locations=[a], now=T0)
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.reserve(session, [("MUG", 4)], locations=[a, b], now=T0)
    assert exc.value.status == 409
    assert exc.value.code == "insufficient_stock"
    assert exc.value.details == {"sku": "MUG", "requested": 4, "available": 3}
    assert snapshot(session) == before


def test_a_multi_item_reservation_is_all_or_nothing(session):
    a, _ = _setup(session, (3, 2))
    make_skus(session, "CUP")
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.reserve(session, [("MUG", 1), ("CUP", 1)], locations=[a], now=T0)
    assert exc.value.details == {"sku": "CUP", "requested": 1, "available": 0}
    assert snapshot(session) == before


def test_unknown_sku_in_a_reservation_is_404_and_nothing_changes(session):
    a, _ = _setup(session)
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.reserve(session, [("GHOST", 1)], locations=[a], now=T0)
    assert (exc.value.status, exc.value.code) == (404, "sku_not_found")
    assert snapshot(session) == before


def test_unknown_location_in_a_reservation_is_404(session):
    _setup(session)
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.reserve(session, [("MUG", 1)], locations=["loc_nope"], now=T0)
    assert (exc.value.status, exc.value.code) == (404, "location_not_found")
    assert snapshot(session) == before


def test_zero_quantity_reservation_is_422(session):
    a, _ = _setup(session)
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.reserve(session, [("MUG", 0)], locations=[a], now=T0)
    assert (exc.value.status, exc.value.code) == (422, "invalid_quantity")
    assert snapshot(session) == before


def test_extend_moves_the_deadline_of_a_live_hold(session):
    a, _ = _setup(session)
    view = service.reserve(session, [("MUG", 1)], locations=[a], now=T0)
    later = T0 + timedelta(minutes=10)
    extended = service.extend_reservation(session, view.id, ttl_seconds=600, now=later)
    assert extended.expires_at == later + timedelta(minutes=10)
    at_16 = T0 + timedelta(minutes=16)
    assert balance(session, "MUG", a, at_16)["held"] == 1
    assert balance(session, "MUG", a, later + timedelta(minutes=10))["held"] == 0


def test_expired_hold_cannot_be_extended_or_allocated(session):
    a, _ = _setup(session)
    view = service.reserve(session, [("MUG", 1)], locations=[a], now=T0)
    late = T0 + timedelta(minutes=15)
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.extend_reservation(session, view.id, now=late)
    assert (exc.value.status, exc.value.code) == (409, "reservation_expired")
    with pytest.raises(AppError) as exc:
        service.allocate_reservation(session, view.id, now=late)
    assert (exc.value.status, exc.value.code) == (409, "reservation_expired")
    assert snapshot(session) == before


def test_release_gives_the_units_back_at_once(session):
    a, _ = _setup(session)
    view = service.reserve(session, [("MUG", 3)], locations=[a], now=T0)
    released = service.release_reservation(session, view.id, now=T0)
    assert released.status == "released"
    assert balance(session, "MUG", a) == {
        "on_hand": 3,
        "allocated": 0,
        "held": 0,
        "safety_stock": 0,
        "incoming": 0,
        "available": 3,
    }


def test_allocation_survives_the_deadline_and_fulfilment_is_a_sale(session):
    a, _ = _setup(session)
    view = service.reserve(session, [("MUG", 2)], locations=[a], now=T0)
    allocated = service.allocate_reservation(session, view.id, order_reference="ord_1", now=T0)
    assert (allocated.status, allocated.expires_at, allocated.order_reference) == (
        "allocated",
        None,
        "ord_1",
    )
    next_day = T0 + timedelta(days=1)
    assert balance(session, "MUG", a, next_day)["allocated"] == 2
    assert balance(session, "MUG", a, next_day)["available"] == 1
    service.fulfill_reservation(session, view.id, now=next_day)
    assert balance(session, "MUG", a, next_day) == {
        "on_hand": 1,
        "allocated": 0,
        "held": 0,
        "safety_stock": 0,
        "incoming": 0,
        "available": 1,
    }
    reasons = session.scalars(
        select(LedgerEntry.reason).where(LedgerEntry.reference == view.id).order_by(LedgerEntry.id)
    ).all()
    assert reasons == ["reservation", "allocation", "sale"]


def test_cleanup_marks_expired_holds_and_writes_expiry_entries(session):
    a, b = _setup(session, (3, 2))
    view = service.reserve(session, [("MUG", 4)], locations=[a, b], now=T0)
    assert service.expire_reservations(session, now=T0 + timedelta(minutes=14)) == 0
    assert service.expire_reservations(session, now=T0 + timedelta(minutes=15)) == 2
    assert session.get(Reservation, view.id).status == "expired"
    assert balance(session, "MUG", a)["held"] == 0
    expiry = session.scalars(
        select(LedgerEntry.held_delta).where(LedgerEntry.reason == "expiry")
    ).all()
    assert sorted(expiry) == [-3, -1]
    assert service.verify(session).drift == []


def test_channel_ttl_and_buffer_apply_to_reservations(session):
    a, _ = _setup(session, (3, 2))
    web = catalog.create_channel(
        session, code="web", name="Web", type="web", currency="EUR", country="FR", locale="fr-FR"
    )
    service.set_channel_sourcing(
        session, "web", rules=[{"location_id": a}], buffer=1, reservation_ttl_seconds=300
    )
    view = service.reserve(session, [("MUG", 2)], channel="web", now=T0)
    assert view.channel_id == web.id
    assert view.expires_at == T0 + timedelta(minutes=5)
    assert _lines(view) == [(a, 2)]
    with pytest.raises(AppError) as exc:
        service.reserve(session, [("MUG", 1)], channel="web", now=T0)
    assert exc.value.details == {"sku": "MUG", "requested": 1, "available": 0}


def test_an_inactive_candidate_location_is_409_and_nothing_changes(session):
    # Given stock at a and an inactive candidate b (a single-line hold: the one-statement path
    # on PostgreSQL checks the candidates inside its conditional update)
    a, b = _setup(session, (3, 2))
    service.update_location(session, b, {"active": False})
    before = snapshot(session)
    # When one unit is reserved from "any of a, b"
    with pytest.raises(AppError) as exc:
        service.reserve(session, [("MUG", 1)], locations=[a, b], strategy="any", now=T0)
    # Then it is refused and nothing was written
    assert (exc.value.status, exc.value.code) == (409, "location_inactive")
    assert snapshot(session) == before


def test_a_single_line_hold_writes_its_line_and_one_ledger_row(session):
    # Given 3 units at a
    a, _ = _setup(session, (3, 2))
    # When one line of 2 units is held
    view = service.reserve(session, [("MUG", 2)], locations=[a], kind="order", now=T0)
    # Then the header, the line and the ledger agree, and the balances audit clean
    stored = service.get_reservation(session, view.id, now=T0)
    assert (stored.status, stored.kind, stored.expires_at) == ("active", "order", view.expires_at)
    assert [(x.location_id, x.quantity, x.status) for x in stored.lines] == [(a, 2, "held")]
    ledger = session.execute(
        select(LedgerEntry.reason, LedgerEntry.held_delta).where(LedgerEntry.reference == view.id)
    ).all()
    assert [tuple(r) for r in ledger] == [("reservation", 2)]
    assert balance(session, "MUG", a)["available"] == 1
    assert service.verify(session).drift == []
