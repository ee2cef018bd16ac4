"""Each channel strategy behaves as named, on one network where they all differ.

A and B (one unit each) to central London. Islington dark store holds both (cheapest:
5.04), Daventry holds both (5.07), Oxford Street holds both (6.91), Covent Garden holds A
(0.5 km, the nearest), Oxford Street is the nearest for B (1.3 km).
"""

import pytest

from omniretail.fulfillment.domain import Strategy, compile_problem, to_plan
from omniretail.fulfillment.exact import solve_exact
from omniretail.fulfillment.sourcing import solve_plan
from tests.fulfillment.factories import (
    DARK_ISLINGTON,
    ST_COVENT,
    ST_OXFORD_ST,
    WH_DAVENTRY,
    WH_DONCASTER,
    problem,
)

NETWORK = [WH_DAVENTRY, WH_DONCASTER, ST_OXFORD_ST, ST_COVENT, DARK_ISLINGTON]
ATP = {
    ("dk-islington", "A"): 1,
    ("dk-islington", "B"): 1,
    ("wh-daventry", "A"): 1,
    ("wh-daventry", "B"): 1,
    ("st-oxford-st", "A"): 1,
    ("st-oxford-st", "B"): 1,
    ("st-covent", "A"): 1,
}


def _plan(strategy):
    return solve_plan(problem(NETWORK, [("A", 1), ("B", 1)], ATP, strategy=strategy)).plan


def _where(plan):
    return {p.location_id: [sku for sku, _ in p.lines] for p in plan.packages}


def test_cost_optimal_takes_the_cheapest_plan():
    plan = _plan(Strategy.COST_OPTIMAL)
    assert (_where(plan), plan.total) == ({"dk-islington": ["A", "B"]}, 504)


def test_nearest_ships_each_unit_from_the_closest_location_that_has_it():
    plan = _plan(Strategy.NEAREST)
    assert (_where(plan), plan.total) == ({"st-covent": ["A"], "st-oxford-st": ["B"]}, 1341)
    assert plan.primary == pytest.approx(0.546 + 1.32)


def test_fewest_splits_takes_the_cheapest_single_package():
    plan = _plan(Strategy.FEWEST_SPLITS)
    assert (_where(plan), len(plan.packages), plan.total) == ({"dk-islington": ["A", "B"]}, 1, 504)


def test_fewest_splits_accepts_a_dearer_plan_to_save_a_package():
    atp = {
        ("wh-daventry", "A"): 20,
        ("dk-islington", "B"): 20,
        ("st-oxford-st", "A"): 20,
        ("st-oxford-st", "B"): 20,
    }
    lines = [("A", 20), ("B", 20)]
    cheap = solve_plan(problem(NETWORK, lines, atp)).plan
    fewest = solve_plan(problem(NETWORK, lines, atp, strategy=Strategy.FEWEST_SPLITS)).plan
    assert (len(cheap.packages), cheap.total) == (2, 2727)
    assert (len(fewest.packages), fewest.total) == (1, 4301)


def test_store_first_fills_from_stores_when_they_can():
    plan = _plan(Strategy.STORE_FIRST)
    assert (_where(plan), plan.total) == ({"st-oxford-st": ["A", "B"]}, 691)


def test_warehouse_first_fills_from_warehouses_when_they_can():
    plan = _plan(Strategy.WAREHOUSE_FIRST)
    assert (_where(plan), plan.total) == ({"wh-daventry": ["A", "B"]}, 507)


def test_store_first_still_uses_a_warehouse_for_what_no_store_holds():
    atp = {("st-covent", "A"): 1, ("wh-daventry", "A"): 1, ("wh-daventry", "B"): 1}
    plan = solve_plan(
        problem(NETWORK, [("A", 1), ("B", 1)], atp, strategy=Strategy.STORE_FIRST)
    ).plan
    assert _where(plan) == {"st-covent": ["A"], "wh-daventry": ["B"]}


@pytest.mark.parametrize("strategy", list(Strategy))
def test_the_exact_solver_agrees_with_the_heuristic_on_each_strategy(strategy):
    p = problem(NETWORK, [("A", 1), ("B", 1)], ATP, strategy=strategy)
    inst = compile_problem(p)
    exact = to_plan(inst, solve_exact(inst).assignment)
    assert _where(exact) == _where(_plan(strategy))
