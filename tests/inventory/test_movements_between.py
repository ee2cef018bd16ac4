"""Transfers between locations, purchase-order receipts, cycle counts and the ledger audit."""

import pytest
from sqlalchemy import text

from omniretail.core.errors import AppError
from omniretail.inventory import service
from tests.inventory.factories import T0, balance, make_location, make_skus, receive, snapshot


def _two_sites(session):
    make_skus(session, "LAMP", "BULB")
    wh = make_location(session, "wh")
    store = make_location(session, "store", type="store")
    receive(session, "LAMP", wh.id, 10)
    receive(session, "BULB", wh.id, 20)
    return wh.id, store.id


def test_transfer_in_transit_leaves_source_and_shows_incoming_at_destination(session):
    wh, store = _two_sites(session)
    transfer = service.create_transfer(
        session, from_location_id=wh, to_location_id=store, lines=[("LAMP", 4)], now=T0
    )
    assert transfer.status == "in_transit"
    assert balance(session, "LAMP", wh)["on_hand"] == 6
    assert balance(session, "LAMP", store)["incoming"] == 4
    assert balance(session, "LAMP", store)["on_hand"] == 0


def test_transfer_received_with_discrepancy(session):
    wh, store = _two_sites(session)
    transfer = service.create_transfer(
        session,
        from_location_id=wh,
        to_location_id=store,
        lines=[("LAMP", 4), ("BULB", 10)],
        now=T0,
    )
    received = service.receive_transfer(session, transfer.id, received={"LAMP": 3}, now=T0)
    assert received.status == "received_with_discrepancy"
    assert [
        (ln.sku, ln.quantity_shipped, ln.quantity_received, ln.discrepancy) for ln in received.lines
    ] == [
        ("LAMP", 4, 3, 1),
        ("BULB", 10, 10, 0),
    ]
    assert balance(session, "LAMP", store)["on_hand"] == 3
    assert balance(session, "LAMP", store)["incoming"] == 0
    assert balance(session, "BULB", store)["on_hand"] == 10
    assert service.verify(session).ok


def test_transfer_received_in_full_is_received(session):
    wh, store = _two_sites(session)
    transfer = service.create_transfer(
        session, from_location_id=wh, to_location_id=store, lines=[("LAMP", 4)], now=T0
    )
    assert service.receive_transfer(session, transfer.id, now=T0).status == "received"


def test_transfer_cannot_take_reserved_units_and_changes_nothing(session):
    wh, store = _two_sites(session)
    service.reserve(session, [("LAMP", 8)], locations=[wh], now=T0)
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.create_transfer(
            session, from_location_id=wh, to_location_id=store, lines=[("LAMP", 3)], now=T0
        )
    assert exc.value.status == 409
    assert exc.value.details == {"sku": "LAMP", "requested": 3, "available": 2}
    assert snapshot(session) == before


def test_a_transfer_is_received_once(session):
    wh, store = _two_sites(session)
    transfer = service.create_transfer(
        session, from_location_id=wh, to_location_id=store, lines=[("LAMP", 1)], now=T0
    )
    service.receive_transfer(session, transfer.id, now=T0)
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.receive_transfer(session, transfer.id, now=T0)
    assert (exc.value.status, exc.value.code) == (409, "transfer_not_in_transit")
    assert snapshot(session) == before


def test_purchase_order_shows_incoming_and_receipts_move_it_to_on_hand(session):
    wh, _ = _two_sites(session)
    po = service.create_purchase_order(
        session, location_id=wh, supplier="Acme", lines=[("LAMP", 5), ("BULB", 2)], now=T0
    )
    assert (po.status, balance(session, "LAMP", wh)["incoming"]) == ("open", 5)
    partial = service.receive_purchase_order(session, po.id, lines=[("LAMP", 3)], now=T0)
    assert partial.status == "partially_received"
    assert balance(session, "LAMP", wh)["on_hand"] == 13
    assert balance(session, "LAMP", wh)["incoming"] == 2
    done = service.receive_purchase_order(session, po.id, lines=[("LAMP", 2), ("BULB", 2)], now=T0)
    assert done.status == "received"
    assert [(ln.sku, ln.quantity_received, ln.outstanding) for ln in done.lines] == [
        ("LAMP", 5, 0),
        ("BULB", 2, 0),
    ]
    assert balance(session, "LAMP", wh)["incoming"] == 0


def test_receiving_a_sku_that_is_not_on_the_order_is_422_and_changes_nothing(session):
    wh, _ = _two_sites(session)
    po = service.create_purchase_order(
        session, location_id=wh, supplier="Acme", lines=[("LAMP", 5)], now=T0
    )
    before = snapshot(session)
    with pytest.raises(AppError) as exc:
        service.receive_purchase_order(session, po.id, lines=[("BULB", 1)], now=T0)
    assert (exc.value.status, exc.value.code) == (422, "sku_not_on_order")
    assert snapshot(session) == before


def test_cycle_count_sets_on_hand_and_reports_variance(session):
    wh, _ = _two_sites(session)
    report = service.submit_cycle_count(
        session, location_id=wh, counts=[("LAMP", 8), ("BULB", 21)], note="aisle 4", now=T0
    )
    assert [(ln.sku, ln.expected, ln.counted, ln.variance) for ln in report.lines] == [
        ("BULB", 20, 21, 1),
        ("LAMP", 10, 8, -2),
    ]
    assert (report.lines_with_variance, report.net_variance, report.absolute_variance) == (
        2,
        -1,
        3,
    )
    assert balance(session, "LAMP", wh)["on_hand"] == 8
    assert service.get_cycle_count(session, report.id) == report


def test_verify_matches_a_busy_ledger(session):
    wh, store = _two_sites(session)
    view = service.reserve(session, [("LAMP", 2)], locations=[wh], now=T0)
    service.allocate_reservation(session, view.id, now=T0)
    service.create_transfer(
        session, from_location_id=wh, to_location_id=store, lines=[("BULB", 5)], now=T0
    )
    report = service.verify(session)
    assert (report.ok, report.rows_checked) == (True, 3)


def test_verify_reports_a_balance_changed_behind_the_ledger(session):
    wh, _ = _two_sites(session)
    session.execute(
        text(
            "UPDATE stock_levels SET on_hand = on_hand + 7"
            " WHERE sku = 'LAMP' AND location_id = :loc"
        ),
        {"loc": wh},
    )
    report = service.verify(session)
    assert report.ok is False
    assert [(d.sku, d.location_id, d.field, d.balance, d.expected) for d in report.drift] == [
        ("LAMP", wh, "on_hand", 17, 10)
    ]


def test_verify_reports_held_units_without_reservation_lines(session):
    _wh, _ = _two_sites(session)
    session.execute(text("UPDATE stock_levels SET held = 2 WHERE sku = 'BULB'"))
    drift = [(d.sku, d.field, d.balance, d.expected) for d in service.verify(session).drift]
    assert drift == [("BULB", "held", 2, 0), ("BULB", "held_vs_reservations", 2, 0)]
