"""Replenishment from a location forecast and inventory stock; acceptance into inventory."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from omniretail.analytics import service
from omniretail.analytics.models import ForecastRun, ForecastSeries, ReplenishmentSuggestion
from omniretail.catalog import service as catalog
from omniretail.core.errors import AppError
from omniretail.inventory import service as inventory

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _location(session, code):
    return inventory.create_location(
        session, code=code, name=code.upper(), type="store", timezone="Europe/London"
    )


def _receive(session, sku, location_id, quantity):
    inventory.record_movement(
        session, location_id=location_id, reason="receipt", lines=[(sku, quantity)], now=T0
    )


def _run(session, series, node_kind="location"):
    """A stored forecast run with ``(sku, node, mean per week, sigma)`` series."""
    session.add(
        ForecastRun(
            id="fcr_test",
            freq="W",
            horizon=4,
            node_kind=node_kind,
            history_start=date(2026, 1, 5),
            history_end=date(2026, 11, 23),
            params={},
            metrics={},
        )
    )
    for sku, node, mean, sigma in series:
        session.add(
            ForecastSeries(
                run_id="fcr_test",
                sku=sku,
                node=node,
                demand_class="smooth",
                model="AutoETS",
                periods=46,
                adi=1.0,
                cv2=0.1,
                mase=0.8,
                mase_seasonal_naive=1.0,
                sigma=sigma,
                mean_forecast=mean,
            )
        )
    session.flush()


@pytest.fixture()
def stores(session):
    """Store A sells 10 a week (σ 5) and holds 2; store B sells 2 a week (σ 1) and holds 100.

    With L = 2 weeks, R = 1, 95 %: A has SS ⌈1.6449·5·√2⌉ = 12, ROP 32, S 42, IP 2 → needs 40;
    B has SS 3, ROP 7, S 9, IP 100 → 91 to spare."""
    catalog.create_product(session, title="Mug", variants=[{"sku": "MUG"}])
    a, b = _location(session, "store-a"), _location(session, "store-b")
    _receive(session, "MUG", a.id, 2)
    _receive(session, "MUG", b.id, 100)
    _run(session, [("MUG", "store-a", 10.0, 5.0), ("MUG", "store-b", 2.0, 1.0)])
    session.commit()
    return a.id, b.id


def _moves(result):
    return [(s.kind, s.from_location_id, s.to_location_id, s.quantity) for s in result.suggestions]


def test_shortage_is_covered_by_a_transfer_from_the_store_with_excess(session, stores):
    a, b = stores
    # when
    result = service.suggest_replenishment(session, lead_time=2, review_period=1)
    # then
    assert _moves(result) == [("transfer", b, a, 40)]
    details = result.suggestions[0].details["to"]
    assert (details["safety_stock"], details["reorder_point"], details["order_up_to"]) == (
        12,
        32,
        42,
    )


def test_what_transfers_cannot_cover_is_bought(session, stores):
    # given store B keeps only 20 units (S 9 → 11 to spare)
    a, b = stores
    inventory.record_movement(session, location_id=b, reason="damage", lines=[("MUG", 80)], now=T0)
    # when
    result = service.suggest_replenishment(session, lead_time=2, review_period=1, pack_size=6)
    # then 40 − 11 = 29 rounded up to 5 packs of 6
    assert _moves(result) == [("transfer", b, a, 11), ("purchase", None, a, 30)]


def test_accepting_a_transfer_moves_stock_through_inventory(session, stores):
    # given
    a, b = stores
    suggestion = service.suggest_replenishment(session).suggestions[0]
    # when
    accepted = service.accept_suggestion(session, suggestion.id, now=T0)
    # then
    transfer = inventory.get_transfer(session, accepted.accepted_ref)
    assert (transfer.from_location_id, transfer.to_location_id, transfer.reference) == (
        b,
        a,
        suggestion.id,
    )
    assert inventory.stock_balance(session, "MUG", b, T0).on_hand == 60
    assert inventory.stock_balance(session, "MUG", a, T0).incoming == 40
    assert accepted.status == "accepted"


def test_accepting_a_purchase_suggestion_creates_a_purchase_order(session, stores):
    a, b = stores
    inventory.record_movement(session, location_id=b, reason="damage", lines=[("MUG", 100)],
                              now=T0)  # fmt: skip
    suggestion = service.suggest_replenishment(session).suggestions[0]
    accepted = service.accept_suggestion(session, suggestion.id, supplier="Acme", now=T0)
    po = inventory.get_purchase_order(session, accepted.accepted_ref)
    assert (po.location_id, po.supplier, po.lines[0].quantity_ordered) == (a, "Acme", 40)


def test_a_suggestion_is_accepted_once(session, stores):
    suggestion = service.suggest_replenishment(session).suggestions[0]
    service.accept_suggestion(session, suggestion.id, now=T0)
    with pytest.raises(AppError) as caught:
        service.accept_suggestion(session, suggestion.id, now=T0)
    assert (caught.value.code, caught.value.status) == ("suggestion_not_open", 409)


def test_when_the_units_are_gone_acceptance_fails_and_the_suggestion_stays_open(session, stores):
    # given the spare units were sold after the suggestion was made
    _, b = stores
    suggestion = service.suggest_replenishment(session).suggestions[0]
    inventory.record_movement(session, location_id=b, reason="damage", lines=[("MUG", 95)],
                              now=T0)  # fmt: skip
    # when
    with pytest.raises(AppError):
        service.accept_suggestion(session, suggestion.id, now=T0)
    # then
    row = session.get(ReplenishmentSuggestion, suggestion.id)
    assert (row.status, row.accepted_ref) == ("open", None)
    assert inventory.stock_balance(session, "MUG", b, T0).on_hand == 5


def test_a_new_computation_supersedes_open_suggestions(session, stores):
    first = service.suggest_replenishment(session).suggestions[0]
    service.suggest_replenishment(session)
    assert session.get(ReplenishmentSuggestion, first.id).status == "superseded"
    assert len(service.list_suggestions(session)) == 1


def test_forecast_nodes_without_an_inventory_location_are_reported(session, stores):
    _ = stores
    session.add(
        ForecastSeries(
            run_id="fcr_test",
            sku="MUG",
            node="popup",
            demand_class="smooth",
            model="AutoETS",
            periods=46,
            adi=1.0,
            cv2=0.1,
            mase=None,
            mase_seasonal_naive=None,
            sigma=None,
            mean_forecast=3.0,
        )
    )
    result = service.suggest_replenishment(session)
    assert result.unknown_nodes == ["popup"]


def test_a_channel_run_cannot_plan_locations(session):
    _run(session, [("MUG", "web", 10.0, 5.0)], node_kind="channel")
    with pytest.raises(AppError) as caught:
        service.suggest_replenishment(session, run_id="fcr_test")
    assert caught.value.code == "not_a_location_run"


def test_only_open_suggestions_are_listed_by_default(session, stores):
    service.suggest_replenishment(session)
    rows = session.scalars(select(ReplenishmentSuggestion.status)).all()
    assert rows == ["open"]
