"""Pure inventory rules: splitting, ATP, stock-level events, hours, distances, validation."""

from datetime import UTC, datetime

import pytest

from omniretail.inventory.domain import (
    InventoryRuleError,
    LocationFacts,
    SourcingRule,
    SplitStrategy,
    atp,
    check_coordinates,
    check_opening_hours,
    check_timezone,
    distance_km,
    is_open,
    plan_split,
    sourcing_locations,
    stock_level_events,
)


def test_preferred_split_fills_locations_in_the_given_order():
    plan = plan_split(5, [("a", 2), ("b", 10), ("c", 4)], SplitStrategy.PREFERRED)
    assert plan == [("a", 2), ("b", 3)]


def test_any_split_uses_one_location_that_can_fill_the_whole_line():
    plan = plan_split(5, [("a", 2), ("b", 4), ("c", 6)], SplitStrategy.ANY)
    assert plan == [("c", 5)]


def test_any_split_uses_the_fewest_locations_when_none_can_fill_it_alone():
    plan = plan_split(9, [("a", 2), ("b", 4), ("c", 6)], SplitStrategy.ANY)
    assert plan == [("c", 6), ("b", 3)]


def test_split_is_none_when_the_total_is_short_and_ignores_negative_free():
    assert plan_split(7, [("a", 2), ("b", -3), ("c", 4)], SplitStrategy.PREFERRED) is None


def test_atp_is_on_hand_minus_reserved_minus_safety_never_below_zero():
    assert atp(10, 3, 2) == 5
    assert atp(10, 3, 2, buffer=1) == 4
    assert atp(2, 3, 1) == 0


def test_events_out_of_stock_back_in_stock_and_low_stock():
    assert [e.topic for e in stock_level_events(5, 3, 3)] == ["inventory.low_stock"]
    assert [e.topic for e in stock_level_events(3, 0, 3)] == ["inventory.out_of_stock"]
    assert [e.topic for e in stock_level_events(0, 2, 3)] == [
        "inventory.back_in_stock",
        "inventory.low_stock",
    ]
    assert [e.topic for e in stock_level_events(0, 8, 3)] == ["inventory.back_in_stock"]
    assert stock_level_events(3, 2, 3) == []  # already low: no repeat
    assert stock_level_events(-2, 0, 3) == []  # below zero reads as zero


def test_opening_hours_are_checked_in_the_location_time_zone():
    hours = check_opening_hours({"mon": [["09:00", "12:00"], ["14:00", "24:00"]]})
    monday_10_paris = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 10:00 in Paris
    monday_13_paris = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    monday_2330_paris = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)
    assert is_open(hours, "Europe/Paris", monday_10_paris) is True
    assert is_open(hours, "Europe/Paris", monday_13_paris) is False
    assert is_open(hours, "Europe/Paris", monday_2330_paris) is True
    assert is_open(hours, "America/New_York", monday_10_paris) is False  # 04:00 there


@pytest.mark.parametrize(
    "hours",
    [
        {"monday": [["09:00", "18:00"]]},
        {"mon": [["9:00", "18:00"]]},
        {"mon": [["18:00", "09:00"]]},
        {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]},
    ],
)
def test_bad_opening_hours_are_rejected(hours):
    with pytest.raises(InventoryRuleError) as exc:
        check_opening_hours(hours)
    assert exc.value.code == "invalid_opening_hours"


def test_time_zone_must_be_iana():
    assert check_timezone("Europe/Paris") == "Europe/Paris"
    with pytest.raises(InventoryRuleError) as exc:
        check_timezone("Paris")
    assert exc.value.code == "invalid_timezone"


@pytest.mark.parametrize("lat,lon", [(91.0, 0.0), (0.0, 181.0), (None, 2.0), (float("nan"), 0)])
def test_bad_coordinates_are_rejected(lat, lon):
    with pytest.raises(InventoryRuleError) as exc:
        check_coordinates(lat, lon)
    assert exc.value.code == "invalid_coordinates"


def test_distance_paris_to_lyon_is_391_5_km():
    assert round(distance_km(48.8566, 2.3522, 45.7640, 4.8357), 1) == 391.5


def test_sourcing_rules_select_warehouses_and_ship_from_store_stores():
    locations = [
        LocationFacts("l1", "wh-1", "warehouse", ("ship",)),
        LocationFacts("l2", "store-a", "store", ("pickup", "ship_from_store")),
        LocationFacts("l3", "store-b", "store", ("pickup",)),
    ]
    rules = [SourcingRule(location_type="warehouse"), SourcingRule(capability="ship_from_store")]
    assert sourcing_locations(rules, locations) == ["l1", "l2"]
    assert sourcing_locations([SourcingRule(location_id="l3")], locations) == ["l3"]
    assert sourcing_locations([], locations) == ["l2", "l3", "l1"]  # no rules: all, by code
