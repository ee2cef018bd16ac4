"""Sourcing decisions on the database: what is stored, the capacity they book, cancel and
release, channel strategies, re-optimisation with the exact solver, delivery promises.

Network: Daventry and Doncaster warehouses, a ship-from-store store on Oxford Street and a
pickup-only store in Brighton; orders go to central London. One unit of A from Daventry
costs 4.66, from Doncaster 5.60 (see test_sourcing for the coefficients).
"""

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from omniretail.core.errors import AppError
from omniretail.core.models import OutboxEvent
from omniretail.fulfillment import service
from omniretail.fulfillment.models import CapacityUsage, SourcingDecision
from tests.fulfillment.factories import (
    LONDON,
    T0,
    counts,
    make_channel,
    make_location,
    make_skus,
    receive,
    usage,
)


def _network(session, daventry_capacity=None):
    make_skus(session, "A", "B")
    daventry = make_location(
        session, "wh-daventry", daily_pick_capacity=daventry_capacity, name="DC Daventry"
    )
    doncaster = make_location(session, "wh-doncaster", latitude=53.5228, longitude=-1.1285)
    oxford = make_location(
        session,
        "st-oxford-st",
        type="store",
        capabilities=("pickup", "ship_from_store"),
        latitude=51.5154,
        longitude=-0.1419,
        name="Oxford Street",
        opening_hours={d: [["09:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    )
    brighton = make_location(
        session,
        "st-brighton",
        type="store",
        capabilities=("pickup",),
        latitude=50.8240,
        longitude=-0.1460,
        name="Brighton",
        opening_hours={d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
    )
    return daventry, doncaster, oxford, brighton


def _plan(session, lines, **kwargs):
    kwargs.setdefault("destination", LONDON)
    kwargs.setdefault("now", T0)
    return service.plan_sourcing(session, lines, **kwargs)


def test_a_decision_is_stored_with_packages_costs_explanation_and_alternatives(session):
    daventry, doncaster, *_ = _network(session)
    receive(session, "A", daventry.id, 5)
    receive(session, "A", doncaster.id, 5)
    view = _plan(session, [service.LineRequest("A", 2, "line-1")], reference="ord_1")
    assert (view.stored, view.outcome, view.state, view.total_cost) == (
        True,
        "planned",
        "open",
        507,
    )
    assert [(p.location_code, p.kind, p.units) for p in view.packages] == [
        ("wh-daventry", "ship", 2)
    ]
    assert [(x.line_id, x.sku, x.quantity) for x in view.packages[0].lines] == [("line-1", "A", 2)]
    assert view.cost_breakdown == {
        "shipping": 417,
        "handling": 90,
        "transfer": 0,
        "split_penalty": 0,
        "total": 507,
        "currency": "GBP",
    }
    assert view.explanation.startswith("Strategy cost_optimal: the cheapest plan")
    assert service.get_decision(session, view.id) == view


def test_a_decision_books_capacity_and_emits_an_event(session):
    daventry, *_ = _network(session)
    receive(session, "A", daventry.id, 5)
    view = _plan(session, [("A", 2)], reference="ord_1")
    assert usage(session, daventry.id) == 2
    event = session.scalars(
        select(OutboxEvent).where(OutboxEvent.topic == "sourcing.decision_created")
    ).one()
    assert (event.aggregate_id, event.payload["packages"]) == (
        view.id,
        [{"location_id": daventry.id, "kind": "ship", "lines": [["A", 2]]}],
    )


def test_a_dry_run_decides_but_stores_and_books_nothing(session):
    daventry, *_ = _network(session)
    receive(session, "A", daventry.id, 5)
    before = counts(session)
    view = _plan(session, [("A", 1)], dry_run=True)
    assert (view.stored, view.id, view.state, view.total_cost) == (False, None, "draft", 466)
    assert counts(session) == before


def test_lines_of_one_sku_are_planned_together_and_keep_their_ids(session):
    daventry, *_ = _network(session)
    receive(session, "A", daventry.id, 5)
    view = _plan(session, [service.LineRequest("A", 1, "l1"), service.LineRequest("A", 2, "l2")])
    assert [(x.line_id, x.quantity) for x in view.packages[0].lines] == [("l1", 1), ("l2", 2)]


def test_capacity_used_today_sends_the_next_order_elsewhere(session):
    daventry, doncaster, *_ = _network(session, daventry_capacity=2)
    receive(session, "A", daventry.id, 5)
    receive(session, "A", doncaster.id, 5)
    _plan(session, [("A", 2)])
    second = _plan(session, [("A", 1)])
    assert [p.location_code for p in second.packages] == ["wh-doncaster"]
    assert (usage(session, daventry.id), usage(session, doncaster.id)) == (2, 1)


def test_capacity_counts_per_local_day(session):
    daventry, doncaster, *_ = _network(session, daventry_capacity=2)
    receive(session, "A", daventry.id, 5)
    receive(session, "A", doncaster.id, 5)
    _plan(session, [("A", 2)])
    tomorrow = _plan(session, [("A", 1)], now=T0 + timedelta(days=1))
    assert [p.location_code for p in tomorrow.packages] == ["wh-daventry"]
    days = session.execute(
        select(CapacityUsage.day, CapacityUsage.units).order_by(CapacityUsage.day)
    ).all()
    assert days == [(date(2026, 11, 26), 2), (date(2026, 11, 27), 1)]


def test_cancelling_a_decision_gives_its_capacity_back(session):
    daventry, *_ = _network(session, daventry_capacity=10)
    receive(session, "A", daventry.id, 5)
    view = _plan(session, [("A", 3)])
    cancelled = service.cancel_decision(session, view.id)
    assert (cancelled.state, usage(session, daventry.id)) == ("cancelled", 0)


def test_a_decision_can_be_cancelled_only_while_open(session):
    daventry, *_ = _network(session)
    receive(session, "A", daventry.id, 5)
    view = _plan(session, [("A", 1)])
    service.release_decision(session, view.id)
    with pytest.raises(AppError) as info:
        service.cancel_decision(session, view.id)
    assert (info.value.code, info.value.status, info.value.details) == (
        "decision_not_open",
        409,
        {"state": "released"},
    )
    assert usage(session, daventry.id) == 1


def test_no_plan_raises_the_reason_and_writes_nothing(session):
    daventry, doncaster, *_ = _network(session)
    receive(session, "A", daventry.id, 2)
    receive(session, "A", doncaster.id, 2)
    before = counts(session)
    with pytest.raises(AppError) as info:
        _plan(session, [("A", 5)])
    error = info.value
    assert (error.code, error.status, error.message) == (
        "insufficient_stock",
        409,
        "not enough stock for A",
    )
    assert error.details["lines"] == [{"sku": "A", "requested": 5, "available": 4}]
    assert error.details["partial_allowed"] is False
    assert counts(session) == before


def test_a_partial_plan_is_stored_when_the_order_allows_it(session):
    daventry, *_ = _network(session)
    receive(session, "A", daventry.id, 2)
    view = _plan(session, [("A", 5)], allow_partial=True)
    assert (view.outcome, view.unfulfilled, view.infeasibility["code"]) == (
        "partial",
        [{"sku": "A", "quantity": 3}],
        "insufficient_stock",
    )


def test_an_unknown_sku_is_a_404_and_writes_nothing(session):
    _network(session)
    before = counts(session)
    with pytest.raises(AppError) as info:
        _plan(session, [("NOPE", 1)])
    assert (info.value.code, info.value.status) == ("sku_not_found", 404)
    assert counts(session) == before


def test_the_channel_strategy_applies_unless_the_request_overrides_it(session):
    daventry, doncaster, oxford, _ = _network(session)
    make_channel(session, "web")
    for loc in (daventry, doncaster, oxford):
        receive(session, "A", loc.id, 5)
    service.set_channel_strategy(session, "web", strategy="nearest")
    by_channel = _plan(session, [("A", 1)], channel="web", dry_run=True)
    overridden = _plan(session, [("A", 1)], channel="web", strategy="cost_optimal", dry_run=True)
    assert (by_channel.strategy, by_channel.packages[0].location_code) == (
        "nearest",
        "st-oxford-st",
    )
    assert (overridden.strategy, overridden.packages[0].location_code) == (
        "cost_optimal",
        "wh-daventry",
    )


def test_pickup_from_the_store_itself(session):
    *_, brighton = _network(session)
    receive(session, "A", brighton.id, 1)
    view = _plan(
        session, [("A", 1)], method="pickup", pickup_location="st-brighton", destination=None
    )
    assert [(p.location_code, p.kind, p.lead_time_hours) for p in view.packages] == [
        ("st-brighton", "pickup", 0)
    ]


def test_pickup_by_transfer_when_the_store_has_none(session):
    daventry, *_ = _network(session)
    receive(session, "A", daventry.id, 4)
    view = _plan(
        session, [("A", 1)], method="pickup", pickup_location="st-brighton", destination=None
    )
    assert [(p.location_code, p.kind, p.lead_time_hours) for p in view.packages] == [
        ("wh-daventry", "transfer", 48)
    ]


def test_reoptimize_reports_and_applies_the_saving_when_cheaper_stock_arrives(session):
    daventry, doncaster, *_ = _network(session)
    receive(session, "A", doncaster.id, 5)
    view = _plan(session, [("A", 2)], reference="ord_9")
    assert view.total_cost == 620
    receive(session, "A", daventry.id, 5)
    preview = service.reoptimize(session, now=T0)
    assert [
        (d.decision_id, d.old_cost, d.new_cost, d.saving, d.status) for d in preview.decisions
    ] == [(view.id, 620, 507, 113, "improved")]
    assert service.get_decision(session, view.id).revision == 1
    applied = service.reoptimize(session, apply=True, now=T0)
    after = service.get_decision(session, view.id)
    assert (applied.total_saving, after.revision, after.solver, after.total_cost) == (
        113,
        2,
        "exact",
        507,
    )
    assert [p.location_code for p in after.packages] == ["wh-daventry"]
    assert (usage(session, doncaster.id), usage(session, daventry.id)) == (0, 2)
    row = session.get(SourcingDecision, view.id)
    assert [(h["revision"], h["total_cost"]) for h in row.history] == [(1, 620)]


def test_reoptimize_leaves_released_decisions_alone(session):
    daventry, doncaster, *_ = _network(session)
    receive(session, "A", doncaster.id, 5)
    view = _plan(session, [("A", 2)])
    service.release_decision(session, view.id)
    receive(session, "A", daventry.id, 5)
    assert service.reoptimize(session, apply=True, now=T0).decisions == []


def test_reoptimize_keeps_a_plan_that_is_already_optimal(session):
    daventry, *_ = _network(session)
    receive(session, "A", daventry.id, 5)
    view = _plan(session, [("A", 2)])
    report = service.reoptimize(session, apply=True, now=T0)
    assert [(d.decision_id, d.saving, d.status) for d in report.decisions] == [
        (view.id, 0, "unchanged")
    ]


def test_the_promise_per_method_reads_the_location_calendars(session):
    daventry, *_ = _network(session)
    receive(session, "A", daventry.id, 5)
    service.set_location_calendar(session, "wh-daventry", cutoffs={"standard": "15:00"})
    view = service.delivery_promise(session, [("A", 1)], destination=LONDON, now=T0)
    by_method = {o.method: o for o in view.options}
    assert by_method["standard"].text == "Order within 1 h for delivery tomorrow"
    assert by_method["express"].text == "Order now for delivery tomorrow"
    assert (by_method["same_day"].available, by_method["same_day"].reason) == (
        False,
        "no location can deliver same day within 30 km",
    )


def test_the_promise_offers_pickup_at_stores_near_the_destination(session):
    *_, oxford, _ = _network(session)
    receive(session, "A", oxford.id, 1)
    view = service.delivery_promise(session, [("A", 1)], destination=LONDON, now=T0)
    pickup = [o for o in view.options if o.method == "pickup"]
    assert [(o.location_code, o.text) for o in pickup] == [
        ("st-oxford-st", "Ready for pickup today 14:00 at Oxford Street")
    ]


def test_a_location_calendar_with_a_bad_cut_off_is_refused(session):
    _network(session)
    with pytest.raises(AppError) as info:
        service.set_location_calendar(session, "wh-daventry", cutoffs={"standard": "25:00"})
    assert (info.value.code, info.value.status) == ("invalid_time", 422)
