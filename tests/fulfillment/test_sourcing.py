"""Sourcing decisions on small networks with hand-computed costs (default cost model).

Per-candidate coefficients towards London (see factories for the distances):
Daventry: package 575 (shipping 385 + handling 40 + split 150), unit 41 (16 + 25);
Doncaster: package 650, unit 60; Oxford Street: package 651, unit 95; Covent Garden: package
650, unit 95; Islington dark store: package 562, unit 46. A plan costs its packages minus one
split penalty (150) plus its units.
"""

import pytest

from omniretail.fulfillment.domain import (
    Constraints,
    CostModel,
    Method,
    PackageKind,
    Reason,
    SourcingRuleError,
    violations,
)
from omniretail.fulfillment.sourcing import Status, solve_plan
from tests.fulfillment.factories import (
    DARK_ISLINGTON,
    ST_BRIGHTON,
    ST_COVENT,
    ST_OXFORD_ST,
    WH_DAVENTRY,
    WH_DONCASTER,
    problem,
)

NETWORK = [WH_DAVENTRY, WH_DONCASTER, ST_OXFORD_ST, ST_COVENT, ST_BRIGHTON]


def _packages(plan):
    return [(p.location_id, p.lines) for p in plan.packages]


def test_the_cheapest_location_wins_over_the_nearest_store():
    p = problem(NETWORK, [("A", 1)], {("wh-daventry", "A"): 4, ("st-oxford-st", "A"): 4})
    result = solve_plan(p)
    assert _packages(result.plan) == [("wh-daventry", (("A", 1),))]
    assert result.plan.cost.to_dict() == {
        "shipping": 401,
        "handling": 65,
        "transfer": 0,
        "split_penalty": 0,
        "total": 466,
        "currency": "GBP",
    }


def test_two_units_at_each_of_two_locations_fill_an_order_of_three_by_splitting():
    # The peers' case: one location cannot fill the line, so it is split (2 + 1).
    p = problem(NETWORK, [("A", 3)], {("wh-daventry", "A"): 2, ("wh-doncaster", "A"): 2})
    result = solve_plan(p)
    assert result.status == Status.PLANNED
    assert _packages(result.plan) == [
        ("wh-daventry", (("A", 2),)),
        ("wh-doncaster", (("A", 1),)),
    ]
    assert (result.plan.total, result.plan.cost.split_penalty) == (1217, 150)


def test_a_line_that_may_not_be_split_is_refused_with_the_reason():
    p = problem(
        NETWORK,
        [("A", 3)],
        {("wh-daventry", "A"): 2, ("wh-doncaster", "A"): 2},
        constraints=Constraints(split_lines=False),
    )
    result = solve_plan(p)
    assert (result.status, result.infeasibility.code) == (
        Status.INFEASIBLE,
        Reason.SHIP_TOGETHER_UNSATISFIABLE,
    )
    assert result.infeasibility.message == "no single location can send all 3 units of A"


def test_a_store_without_ship_capability_never_ships():
    p = problem(NETWORK, [("A", 1)], {("st-brighton", "A"): 9, ("wh-doncaster", "A"): 1})
    assert _packages(solve_plan(p).plan) == [("wh-doncaster", (("A", 1),))]


def test_a_location_without_capacity_left_is_skipped():
    p = problem(
        NETWORK,
        [("A", 1)],
        {("wh-daventry", "A"): 5, ("wh-doncaster", "A"): 5},
        capacity={"wh-daventry": 0},
    )
    assert _packages(solve_plan(p).plan) == [("wh-doncaster", (("A", 1),))]


def test_capacity_splits_an_order_one_location_could_otherwise_fill():
    p = problem(
        NETWORK,
        [("A", 2), ("B", 1)],
        {("wh-daventry", "A"): 5, ("wh-daventry", "B"): 5, ("wh-doncaster", "B"): 5},
        capacity={"wh-daventry": 2},
    )
    result = solve_plan(p)
    assert _packages(result.plan) == [
        ("wh-daventry", (("A", 2),)),
        ("wh-doncaster", (("B", 1),)),
    ]
    assert violations(p, result.plan) == []


def test_lines_that_must_ship_together_leave_one_location():
    # Alone, A is cheapest at Daventry and B only exists there and at Doncaster; together
    # they must come from the one location holding both.
    p = problem(
        NETWORK,
        [("A", 1), ("B", 1)],
        {("wh-daventry", "A"): 1, ("wh-doncaster", "A"): 1, ("wh-doncaster", "B"): 1},
        constraints=Constraints(ship_together=(("A", "B"),)),
    )
    assert _packages(solve_plan(p).plan) == [("wh-doncaster", (("A", 1), ("B", 1)))]


def test_max_packages_makes_the_solver_consolidate():
    # Twenty of each: cheap units at Daventry (A) and Islington (B) beat one package from
    # Oxford Street with its dear store handling, unless only one package is allowed.
    network = [*NETWORK, DARK_ISLINGTON]
    atp = {
        ("wh-daventry", "A"): 20,
        ("dk-islington", "B"): 20,
        ("st-oxford-st", "A"): 20,
        ("st-oxford-st", "B"): 20,
    }
    lines = [("A", 20), ("B", 20)]
    free = solve_plan(problem(network, lines, atp))
    capped = solve_plan(problem(network, lines, atp, constraints=Constraints(max_packages=1)))
    assert (free.plan.locations(), free.plan.total) == (["dk-islington", "wh-daventry"], 2727)
    assert (capped.plan.locations(), capped.plan.total) == (["st-oxford-st"], 4301)


def test_pickup_is_picked_at_the_store_when_it_holds_the_stock():
    p = problem(
        NETWORK,
        [("A", 1)],
        {("st-brighton", "A"): 1, ("wh-daventry", "A"): 5},
        method=Method.PICKUP,
        pickup_location_id="st-brighton",
    )
    result = solve_plan(p)
    package = result.plan.packages[0]
    assert (package.location_id, package.kind, package.lead_time_hours) == (
        "st-brighton",
        PackageKind.PICKUP,
        0,
    )
    assert result.plan.cost.to_dict()["total"] == 100  # pickup handling 60 + 40, no shipping


def test_pickup_without_stock_at_the_store_comes_by_transfer_with_its_lead_time():
    p = problem(
        NETWORK,
        [("A", 1)],
        {("wh-daventry", "A"): 5},
        method=Method.PICKUP,
        pickup_location_id="st-brighton",
    )
    result = solve_plan(p)
    package = result.plan.packages[0]
    assert (package.location_id, package.kind, package.lead_time_hours) == (
        "wh-daventry",
        PackageKind.TRANSFER,
        48,
    )
    assert (package.distance_km, result.plan.cost.transfer, result.plan.total) == (
        173.936,
        163,
        228,
    )


def test_pickup_without_transfers_and_without_store_stock_is_short():
    p = problem(
        NETWORK,
        [("A", 1)],
        {("wh-daventry", "A"): 5},
        method=Method.PICKUP,
        pickup_location_id="st-brighton",
        constraints=Constraints(allow_transfers=False),
    )
    result = solve_plan(p)
    assert result.infeasibility.code == Reason.INSUFFICIENT_STOCK


def test_pickup_at_a_location_without_pickup_is_refused():
    p = problem(
        NETWORK,
        [("A", 1)],
        {("wh-daventry", "A"): 5},
        method=Method.PICKUP,
        pickup_location_id="wh-daventry",
    )
    reason = solve_plan(p).infeasibility
    assert (reason.code, reason.message) == (
        Reason.PICKUP_LOCATION_NOT_CAPABLE,
        "location 'wh-daventry' does not offer pickup",
    )


def test_same_day_needs_a_same_day_location_within_the_radius():
    p = problem(NETWORK, [("A", 1)], {("wh-daventry", "A"): 5}, method=Method.SAME_DAY)
    reason = solve_plan(p).infeasibility
    assert (reason.code, reason.message) == (
        Reason.NO_CAPABLE_LOCATION,
        "no location can deliver same day within 30 km",
    )


def test_same_day_from_the_dark_store_costs_the_courier_surcharge():
    p = problem(
        [*NETWORK, DARK_ISLINGTON],
        [("A", 1)],
        {("dk-islington", "A"): 2, ("wh-daventry", "A"): 5},
        method=Method.SAME_DAY,
    )
    result = solve_plan(p)
    assert _packages(result.plan) == [("dk-islington", (("A", 1),))]
    assert result.plan.cost.shipping == 972 + 1  # 320 + 650 surcharge + 2 (km), + 1 per unit


def test_not_enough_stock_names_the_lines_and_what_exists():
    p = problem(NETWORK, [("A", 5)], {("wh-daventry", "A"): 2, ("wh-doncaster", "A"): 2})
    result = solve_plan(p)
    assert (result.status, result.plan) == (Status.INFEASIBLE, None)
    assert result.infeasibility.to_dict() == {
        "code": "insufficient_stock",
        "message": "not enough stock for A",
        "details": {"lines": [{"sku": "A", "requested": 5, "available": 4}]},
    }


def test_a_partial_plan_is_offered_when_the_order_allows_it():
    p = problem(
        NETWORK,
        [("A", 5), ("B", 1)],
        {("wh-daventry", "A"): 2, ("wh-doncaster", "A"): 2, ("wh-daventry", "B"): 1},
        constraints=Constraints(allow_partial=True),
    )
    result = solve_plan(p)
    assert result.status == Status.PARTIAL
    assert result.infeasibility.code == Reason.INSUFFICIENT_STOCK
    assert (result.plan.units, result.plan.unfulfilled) == (5, (("A", 1),))
    assert violations(p, result.plan) == []


def test_stock_only_at_full_locations_is_a_capacity_problem():
    p = problem(
        NETWORK,
        [("A", 2)],
        {("wh-daventry", "A"): 3},
        capacity={"wh-daventry": 0},
    )
    assert solve_plan(p).infeasibility.code == Reason.CAPACITY_EXHAUSTED


def test_too_few_packages_allowed_says_how_many_are_needed():
    p = problem(
        NETWORK,
        [("A", 1), ("B", 1)],
        {("wh-daventry", "A"): 1, ("wh-doncaster", "B"): 1},
        constraints=Constraints(max_packages=1),
    )
    reason = solve_plan(p).infeasibility
    assert (reason.code, dict(reason.details)) == (
        Reason.MAX_PACKAGES_EXCEEDED,
        {"max_packages": 1, "packages_needed": 2},
    )


def test_the_explanation_lists_the_alternatives_and_why_they_lost():
    atp = {
        ("dk-islington", "A"): 1,
        ("dk-islington", "B"): 1,
        ("st-covent", "A"): 1,
        ("st-oxford-st", "B"): 1,
    }
    p = problem([*NETWORK, DARK_ISLINGTON], [("A", 1), ("B", 1)], atp)
    result = solve_plan(p, explain=True)
    assert (result.plan.total, _packages(result.plan)) == (
        504,
        [("dk-islington", (("A", 1), ("B", 1)))],
    )
    assert [a.to_dict() for a in result.alternatives] == [
        {
            "label": "nearest_first",
            "description": "each line from the nearest location that has it",
            "lost_because": "higher_cost",
            "reason": "costs 8.37 GBP more (shipping +3.17 GBP, handling +3.70 GBP, "
            "split penalty +1.50 GBP)",
            "cost_delta": 837,
            "total_cost": 1341,
            "packages": 2,
            "locations": ["st-covent", "st-oxford-st"],
        }
    ]
    assert result.explanation.startswith(
        "Strategy cost_optimal: the cheapest plan that meets every constraint. "
        "3 eligible candidate locations with stock; solver heuristic. Chosen: 1 package: "
        "dk-islington (2 units, 4 km); cost 5.04 GBP (shipping 3.24 GBP, handling 1.80 GBP)."
    )


def test_a_cost_model_with_an_unknown_location_type_is_refused():
    with pytest.raises(SourcingRuleError) as info:
        CostModel.from_dict({"handling_per_unit": {"castle": 5}})
    assert (info.value.code, info.value.message) == (
        "invalid_cost_model",
        "handling_per_unit: unknown location types castle",
    )


def test_a_problem_with_a_sku_twice_is_refused():
    with pytest.raises(SourcingRuleError) as info:
        problem(NETWORK, [("A", 1), ("A", 2)], {})
    assert info.value.code == "duplicate_sku"
