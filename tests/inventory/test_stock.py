"""Stock movements, the ledger, safety stock and stock-level events (service layer)."""

import pytest
from sqlalchemy import select

from omniretail.core.errors import AppError
from omniretail.core.models import OutboxEvent
from omniretail.inventory import service
from omniretail.inventory.models import LedgerEntry
from tests.inventory.factories import (
    T0,
    balance,
    make_location,
    make_skus,
    receive,
    snapshot,
)


def _topics(session):
    rows = session.execute(
        select(OutboxEvent.topic, OutboxEvent.payload).where(OutboxEvent.topic.like("inventory.%"))
    ).all()
    return sorted((topic, payload["available"]) for topic, payload in rows)


def test_receipt_adds_on_hand_and_writes_one_ledger_entry(session):
    make_skus(session, "TEE-M")
    wh = make_location(session, "wh")
    receive(session, "TEE-M", wh.id, 12)
    assert balance(session, "TEE-M", wh.id) == {
        "on_hand": 12,
        "allocated": 0,
        "held": 0,
        "safety_stock": 0,
        "incoming": 0,
        "available": 12,
    }
    entries = session.scalars(select(LedgerEntry).where(LedgerEntry.sku == "TEE-M")).all()
    assert [(e.reason, e.on_hand_delta, e.location_id) for e in entries] == [("receipt", 12, wh.id)]


def test_direct_sale_takes_available_units(session):
    make_skus(session, "TEE-M")
    store = make_location(session, "store", type="store")
    receive(session, "TEE-M", store.id, 5)
    service.record_movement(
        session, location_id=store.id, reason="sale", lines=[("TEE-M", 2)], now=T0
    )
    assert balance(session, "TEE-M", store.id)["on_hand"] == 3


def test_sale_above_available_is_409_with_available_and_changes_nothing(session):
    make_skus(session, "TEE-M")
    store = make_location(session, "store", type="store")
    receive(session, "TEE-M", store.id, 5)
    service.set_stock_settings(session, location_id=store.id, sku="TEE-M", safety_stock=2, now=T0)
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.record_movement(
            session, location_id=store.id, reason="sale", lines=[("TEE-M", 4)], now=T0
        )
    assert exc.value.status == 409
    assert exc.value.code == "insufficient_stock"
    assert exc.value.details == {"sku": "TEE-M", "requested": 4, "available": 3}
    assert snapshot(session) == before


@pytest.mark.parametrize("quantity", [0, -3])
def test_zero_or_negative_quantity_is_422_and_changes_nothing(session, quantity):
    make_skus(session, "TEE-M")
    wh = make_location(session, "wh")
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.record_movement(
            session, location_id=wh.id, reason="receipt", lines=[("TEE-M", quantity)]
        )
    assert (exc.value.status, exc.value.code) == (422, "invalid_quantity")
    assert snapshot(session) == before


def test_unknown_sku_is_404_and_changes_nothing(session):
    make_skus(session, "TEE-M")
    wh = make_location(session, "wh")
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.record_movement(
            session,
            location_id=wh.id,
            reason="receipt",
            lines=[("TEE-M", 1), ("NOPE", 1)],
        )
    assert (exc.value.status, exc.value.code) == (404, "sku_not_found")
    assert exc.value.details == {"skus": ["NOPE"]}
    assert snapshot(session) == before


def test_unknown_location_is_404_and_changes_nothing(session):
    make_skus(session, "TEE-M")
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.record_movement(
            session, location_id="loc_missing", reason="receipt", lines=[("TEE-M", 1)]
        )
    assert (exc.value.status, exc.value.code) == (404, "location_not_found")
    assert snapshot(session) == before


def test_damage_may_take_reserved_units_but_never_below_zero(session):
    make_skus(session, "TEE-M")
    wh = make_location(session, "wh")
    receive(session, "TEE-M", wh.id, 3)
    service.reserve(session, [("TEE-M", 3)], locations=[wh.id], now=T0)
    service.record_movement(
        session, location_id=wh.id, reason="damage", lines=[("TEE-M", 1)], now=T0
    )
    assert balance(session, "TEE-M", wh.id)["on_hand"] == 2
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.record_movement(
            session, location_id=wh.id, reason="damage", lines=[("TEE-M", 3)], now=T0
        )
    assert exc.value.details == {"sku": "TEE-M", "requested": 3, "available": 2}
    assert snapshot(session) == before


def test_adjustment_is_signed_and_recorded(session):
    make_skus(session, "TEE-M")
    wh = make_location(session, "wh")
    receive(session, "TEE-M", wh.id, 10)
    result = service.adjust_stock(
        session, location_id=wh.id, sku="TEE-M", delta=-4, note="found broken", now=T0
    )
    assert result.on_hand == 6
    entry = session.scalars(select(LedgerEntry).where(LedgerEntry.reason == "adjustment")).one()
    assert (entry.on_hand_delta, entry.note) == (-4, "found broken")


def test_safety_stock_is_a_ledger_entry_and_lowers_available(session):
    make_skus(session, "TEE-M")
    wh = make_location(session, "wh")
    receive(session, "TEE-M", wh.id, 10)
    service.set_stock_settings(session, location_id=wh.id, sku="TEE-M", safety_stock=3, now=T0)
    assert balance(session, "TEE-M", wh.id)["available"] == 7
    entry = session.scalars(select(LedgerEntry).where(LedgerEntry.reason == "safety_stock")).one()
    assert entry.safety_delta == 3


def test_low_out_and_back_in_stock_events_go_to_the_outbox(session):
    make_skus(session, "TEE-M")
    store = make_location(session, "store", type="store")
    service.set_stock_settings(
        session, location_id=store.id, sku="TEE-M", low_stock_threshold=3, now=T0
    )
    receive(session, "TEE-M", store.id, 5)
    assert _topics(session) == [("inventory.back_in_stock", 5)]
    service.record_movement(
        session, location_id=store.id, reason="sale", lines=[("TEE-M", 2)], now=T0
    )
    assert _topics(session) == [("inventory.back_in_stock", 5), ("inventory.low_stock", 3)]
    service.record_movement(
        session, location_id=store.id, reason="sale", lines=[("TEE-M", 3)], now=T0
    )
    assert _topics(session) == [
        ("inventory.back_in_stock", 5),
        ("inventory.low_stock", 3),
        ("inventory.out_of_stock", 0),
    ]


def test_stock_level_event_payload_names_sku_location_and_threshold(session):
    make_skus(session, "TEE-M")
    store = make_location(session, "store", type="store")
    service.set_stock_settings(
        session, location_id=store.id, sku="TEE-M", low_stock_threshold=3, now=T0
    )
    receive(session, "TEE-M", store.id, 2)
    events = session.scalars(
        select(OutboxEvent).where(OutboxEvent.topic == "inventory.low_stock")
    ).all()
    assert len(events) == 1
    payload = events[0].payload
    assert {k: payload[k] for k in ("sku", "location_id", "available", "low_stock_threshold")} == {
        "sku": "TEE-M",
        "location_id": store.id,
        "available": 2,
        "low_stock_threshold": 3,
    }
    assert events[0].aggregate_id == "TEE-M"


def test_cart_holds_do_not_flap_stock_level_events(session):
    make_skus(session, "TEE-M")
    wh = make_location(session, "wh")
    receive(session, "TEE-M", wh.id, 1)
    before = len(_topics(session))
    service.reserve(session, [("TEE-M", 1)], locations=[wh.id], now=T0)
    assert len(_topics(session)) == before
