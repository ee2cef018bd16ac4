"""Available to promise: channel sourcing rules, buffer, safety stock, pickup near a point."""

from datetime import timedelta

import pytest

from omniretail.catalog import service as catalog
from omniretail.core.errors import AppError
from omniretail.inventory import service
from tests.inventory.factories import T0, make_location, make_skus, receive

PARIS = (48.8566, 2.3522)


def _web(session):
    return catalog.create_channel(
        session, code="web", name="Web", type="web", currency="EUR", country="FR", locale="fr-FR"
    )


def _network(session):
    """A warehouse, a ship-from-store store, a pickup-only store, each with stock of SHOE."""
    make_skus(session, "SHOE", "SOCK")
    wh = make_location(session, "wh-lyon", latitude=45.7640, longitude=4.8357)
    sfs = make_location(
        session,
        "store-louvre",
        type="store",
        capabilities=("pickup", "ship_from_store"),
        latitude=48.8606,
        longitude=2.3376,
        opening_hours={"thu": [["09:00", "20:00"]]},
    )
    pickup = make_location(
        session,
        "store-defense",
        type="store",
        capabilities=("pickup",),
        latitude=48.8920,
        longitude=2.2380,
    )
    receive(session, "SHOE", wh.id, 10)
    receive(session, "SHOE", sfs.id, 4)
    receive(session, "SHOE", pickup.id, 6)
    return wh, sfs, pickup


def _by_location(item):
    return item.locations


def test_web_sees_warehouses_and_ship_from_store_stores_only(session):
    wh, sfs, _pickup = _network(session)
    _web(session)
    service.set_channel_sourcing(
        session,
        "web",
        rules=[{"location_type": "warehouse"}, {"capability": "ship_from_store"}],
    )
    result = service.availability(session, ["SHOE"], channel="web", now=T0)
    assert result.items[0].available == 14
    assert _by_location(result.items[0]) == {wh.id: 10, sfs.id: 4}


def test_a_register_channel_sees_only_its_own_store(session):
    _, _, pickup = _network(session)
    catalog.create_channel(
        session,
        code="pos-defense",
        name="Register",
        type="store",
        currency="EUR",
        country="FR",
        locale="fr-FR",
    )
    service.set_channel_sourcing(session, "pos-defense", rules=[{"location_id": pickup.id}])
    result = service.availability(session, ["SHOE"], channel="pos-defense", now=T0)
    assert (result.items[0].available, _by_location(result.items[0])) == (6, {pickup.id: 6})


def test_channel_buffer_is_held_back_per_location(session):
    wh, sfs, _ = _network(session)
    _web(session)
    service.set_channel_sourcing(
        session,
        "web",
        rules=[{"location_type": "warehouse"}, {"capability": "ship_from_store"}],
        buffer=2,
    )
    result = service.availability(session, ["SHOE"], channel="web", now=T0)
    assert result.buffer == 2
    assert (result.items[0].available, _by_location(result.items[0])) == (
        10,
        {wh.id: 8, sfs.id: 2},
    )


def test_safety_stock_and_reservations_lower_atp_never_below_zero(session):
    wh, _, _ = _network(session)
    service.set_stock_settings(session, location_id=wh.id, sku="SHOE", safety_stock=3, now=T0)
    service.reserve(session, [("SHOE", 7)], locations=[wh.id], now=T0)
    result = service.availability(session, ["SHOE"], now=T0)
    assert wh.id not in _by_location(result.items[0])  # 10 - 7 - 3 = 0
    service.adjust_stock(session, location_id=wh.id, sku="SHOE", delta=-2, now=T0)
    balance = service.stock_balance(session, "SHOE", wh.id, T0)
    assert (balance.on_hand, balance.reserved, balance.available) == (8, 7, 0)


def test_sku_without_stock_reads_zero(session):
    _network(session)
    result = service.availability(session, ["SOCK"], now=T0)
    assert (result.items[0].sku, result.items[0].available, result.items[0].locations) == (
        "SOCK",
        0,
        {},
    )


def test_pickup_stores_within_radius_come_nearest_first_with_distance(session):
    _, _sfs, _pickup = _network(session)
    thursday_10_paris = T0.replace(hour=9)  # 2026-11-26 is a Thursday; 10:00 in Paris
    result = service.availability(
        session, ["SHOE"], lat=PARIS[0], lon=PARIS[1], radius_km=15, now=thursday_10_paris
    )
    assert [(p.code, p.distance_km, p.open_now, p.available) for p in result.pickup] == [
        ("store-louvre", 1.157, True, {"SHOE": 4}),
        ("store-defense", 9.233, False, {"SHOE": 6}),
    ]


def test_radius_excludes_stores_further_away(session):
    _network(session)
    result = service.availability(session, ["SHOE"], lat=PARIS[0], lon=PARIS[1], radius_km=5)
    assert [p.code for p in result.pickup] == ["store-louvre"]


def test_pickup_availability_counts_only_live_holds(session):
    _, sfs, _ = _network(session)
    service.reserve(session, [("SHOE", 4)], locations=[sfs.id], ttl_seconds=60, now=T0)
    during = service.availability(session, ["SHOE"], lat=PARIS[0], lon=PARIS[1], now=T0)
    after = service.availability(
        session, ["SHOE"], lat=PARIS[0], lon=PARIS[1], now=T0 + timedelta(minutes=1)
    )
    assert during.pickup[0].available == {"SHOE": 0}
    assert after.pickup[0].available == {"SHOE": 4}


def test_up_to_100_skus_in_one_call(session):
    skus = [f"S{i:03d}" for i in range(100)]
    make_skus(session, *skus)
    assert len(service.availability(session, skus, now=T0).items) == 100


def test_101_skus_is_422_too_many_skus(session):
    with pytest.raises(AppError) as exc:
        service.availability(session, [f"S{i:03d}" for i in range(101)])
    assert (exc.value.status, exc.value.code) == (422, "too_many_skus")
    assert exc.value.details == {"limit": 100, "given": 101}


def test_unknown_sku_in_availability_is_404(session):
    _network(session)
    with pytest.raises(AppError) as exc:
        service.availability(session, ["SHOE", "GHOST"])
    assert (exc.value.status, exc.value.details) == (404, {"skus": ["GHOST"]})


def test_bad_coordinates_in_availability_are_422(session):
    _network(session)
    with pytest.raises(AppError) as exc:
        service.availability(session, ["SHOE"], lat=95.0, lon=2.0)
    assert (exc.value.status, exc.value.code) == (422, "invalid_coordinates")


def test_location_changes_reach_sourcing_and_pickup_at_once(session):
    # Given the web channel fed by ship-from-store stores, read once (the locations are cached)
    _wh, sfs, pickup = _network(session)
    _web(session)
    service.set_channel_sourcing(session, "web", rules=[{"capability": "ship_from_store"}])
    assert service.channel_context(session, "web").location_ids == (sfs.id,)
    # When a store starts shipping, another is closed and a new one opens
    service.update_location(session, pickup.id, {"capabilities": ["pickup", "ship_from_store"]})
    service.update_location(session, sfs.id, {"active": False})
    new = make_location(
        session,
        "store-opera",
        type="store",
        capabilities=("pickup", "ship_from_store"),
        latitude=48.8720,
        longitude=2.3316,
    )
    receive(session, "SHOE", new.id, 2)
    # Then the next reads see all of it: sourcing, availability and the pickup search
    assert service.channel_context(session, "web").location_ids == (pickup.id, new.id)
    result = service.availability(session, ["SHOE"], channel="web", lat=48.86, lon=2.34, now=T0)
    assert result.items[0].locations == {pickup.id: 6, new.id: 2}
    assert [p.location_id for p in result.pickup or []] == [new.id, pickup.id]
    # And opening hours changed on a store apply at once too
    service.update_location(session, new.id, {"opening_hours": {"thu": [["09:00", "20:00"]]}})
    thursday_noon = T0  # 26 Nov 2026 12:00 UTC is a Thursday, 13:00 in Paris
    result = service.availability(
        session, ["SHOE"], channel="web", lat=48.86, lon=2.34, now=thursday_noon
    )
    assert [(p.location_id, p.open_now) for p in result.pickup or []] == [
        (new.id, True),
        (pickup.id, False),
    ]


def test_expired_holds_on_many_rows_stop_counting_at_once(session):
    # Given SHOE at three locations, each fully held by a hold that expires at T0 + 60 s, and
    # one live hold at the warehouse
    wh, sfs, pickup = _network(session)
    for loc, units in ((wh, 9), (sfs, 4), (pickup, 6)):
        service.reserve(session, [("SHOE", units)], locations=[loc.id], ttl_seconds=60, now=T0)
    service.reserve(session, [("SHOE", 1)], locations=[wh.id], ttl_seconds=600, now=T0)
    before = service.availability(session, ["SHOE", "SOCK"], now=T0 + timedelta(seconds=59))
    after = service.availability(session, ["SHOE", "SOCK"], now=T0 + timedelta(seconds=60))
    # Then nothing is available before the deadline and all but the live hold after it
    assert [(i.sku, i.available, i.locations) for i in before.items] == [
        ("SHOE", 0, {}),
        ("SOCK", 0, {}),
    ]
    assert after.items[0].locations == {wh.id: 9, sfs.id: 4, pickup.id: 6}
    assert after.items[0].available == 19
