"""Properties of every sourcing decision, over random problems (hypothesis).

For any network, stock, capacity, method, strategy and constraints:
* a plan never breaks a rule: ATP per location and SKU, remaining capacity, capabilities,
  maximum packages, ship-together groups, unsplittable lines, quantities (``violations``);
* a full plan is returned whenever one exists (the exact solver is the judge);
* no plan means a named reason, and a partial plan whenever partial fulfilment is allowed
  and some units can be sent.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniretail.fulfillment.domain import (
    Constraints,
    CostModel,
    Method,
    Reason,
    SourceLocation,
    Strategy,
    build_problem,
    compile_problem,
    violations,
)
from omniretail.fulfillment.exact import solve_exact
from omniretail.fulfillment.sourcing import Status, partial_assignment, solve_plan

CAPS = {
    "warehouse": ("ship",),
    "store": ("pickup", "ship_from_store"),
    "dark_store": ("ship", "same_day"),
    "locker": ("pickup",),
}


@st.composite
def problems(draw):
    n_locations = draw(st.integers(1, 7))
    locations = []
    for i in range(n_locations):
        kind = draw(st.sampled_from(sorted(CAPS)))
        caps = draw(st.sets(st.sampled_from(sorted({c for v in CAPS.values() for c in v}))))
        locations.append(
            SourceLocation(
                f"l{i}",
                f"l{i}",
                kind,
                draw(st.floats(51.2, 51.8)),
                draw(st.floats(-0.6, 0.3)),
                frozenset(caps) | frozenset(CAPS[kind][:1]),
            )
        )
    n_lines = draw(st.integers(1, 5))
    lines = [(f"S{k}", draw(st.integers(1, 4))) for k in range(n_lines)]
    atp = {(x.id, sku): draw(st.integers(0, 5)) for x in locations for sku, _ in lines}
    capacity = {x.id: draw(st.one_of(st.none(), st.integers(0, 8))) for x in locations}
    skus = [s for s, _ in lines]
    groups = draw(st.lists(st.lists(st.sampled_from(skus), min_size=2, max_size=3), max_size=1))
    method = draw(st.sampled_from([Method.STANDARD, Method.SAME_DAY, Method.PICKUP]))
    constraints = Constraints(
        max_packages=draw(st.one_of(st.none(), st.integers(1, 3))),
        ship_together=tuple(tuple(dict.fromkeys(g)) for g in groups),
        split_lines=draw(st.booleans()),
        allow_partial=draw(st.booleans()),
        allow_transfers=draw(st.booleans()),
    )
    pickup = draw(st.sampled_from([x.id for x in locations])) if method is Method.PICKUP else None
    return build_problem(
        locations,
        lines,
        atp,
        capacity=capacity,
        method=method,
        destination=None if pickup else (51.5, -0.13),
        pickup_location_id=pickup,
        constraints=constraints,
        cost_model=CostModel(),
        strategy=draw(st.sampled_from(list(Strategy))),
    )


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(problems())
def test_no_plan_breaks_atp_capacity_capabilities_packages_or_groups(problem):
    result = solve_plan(problem, explain=True)
    if result.plan is not None:
        assert violations(problem, result.plan) == []
    for alternative in result.alternatives:
        if alternative.plan is not None and alternative.lost_because != "violates_constraints":
            assert violations(problem, alternative.plan) == []


@PROPERTY
@given(problems())
def test_a_full_plan_is_found_whenever_one_exists(problem):
    result = solve_plan(problem)
    exact = solve_exact(compile_problem(problem))
    assert (result.status == Status.PLANNED) == (exact.assignment is not None)


@PROPERTY
@given(problems())
def test_no_plan_comes_with_a_named_reason_and_a_partial_plan_when_allowed(problem):
    result = solve_plan(problem)
    if result.status == Status.PLANNED:
        assert result.infeasibility is None and result.plan.complete
        return
    assert isinstance(result.infeasibility.code, Reason)
    assert result.infeasibility.message
    inst = compile_problem(problem)
    possible = inst.blocked is None and partial_assignment(inst)
    if problem.constraints.allow_partial and possible:
        assert result.status == Status.PARTIAL
        assert 0 < result.plan.units < problem.units
    else:
        assert (result.status, result.plan) == (Status.INFEASIBLE, None)
