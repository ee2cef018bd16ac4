"""Sourcing decisions with their explanation (pure: no I/O).

:func:`solve_plan` runs the request-path heuristic (or the exact solver), falls back to the
exact solver when the heuristic finds nothing although the cheap checks pass, names the reason
when no full plan exists (with a partial plan when the order allows it), and, on request,
explains the decision: the chosen plan, its cost breakdown, and the alternatives (one
location, nearest first, fewest packages, cost-optimal) with why each lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from omniretail.core.money import Money
from omniretail.fulfillment import heuristic
from omniretail.fulfillment.domain import (
    PICKUP_METHODS,
    STRATEGY_TEXT,
    Assignment,
    Infeasibility,
    Instance,
    IntArray,
    Method,
    Plan,
    Reason,
    SourcingProblem,
    Strategy,
    compile_problem,
    to_plan,
    violations,
)
from omniretail.fulfillment.exact import solve_exact

FALLBACK_SECONDS = 2.0  # exact solver budget when the heuristic finds no plan


class Status:
    PLANNED = "planned"
    PARTIAL = "partial"
    INFEASIBLE = "infeasible"


@dataclass(frozen=True)
class Alternative:
    label: str  # single_location | nearest_first | fewest_packages | cost_optimal
    description: str
    plan: Plan | None
    lost_because: str  # higher_cost | worse_on_strategy | violates_constraints | not_possible
    reason: str
    cost_delta: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "description": self.description,
            "lost_because": self.lost_because,
            "reason": self.reason,
            "cost_delta": self.cost_delta,
            "total_cost": None if self.plan is None else self.plan.total,
            "packages": None if self.plan is None else len(self.plan.packages),
            "locations": [] if self.plan is None else self.plan.locations(),
        }


@dataclass(frozen=True)
class SourcingResult:
    status: str
    plan: Plan | None
    infeasibility: Infeasibility | None
    strategy: Strategy
    solver: str  # heuristic | exact | exact_fallback
    candidates: int
    solve_ms: float
    alternatives: tuple[Alternative, ...] = ()
    explanation: str = ""


def money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def solve_plan(
    problem: SourcingProblem,
    *,
    solver: str = "heuristic",
    explain: bool = False,
    time_limit: float = 10.0,
) -> SourcingResult:
    """Plan ``problem``. ``solver``: ``heuristic`` (request path) or ``exact`` (HiGHS)."""
    started = time.perf_counter()
    inst = compile_problem(problem)
    used = solver
    assignment: Assignment | None = None
    reason: Infeasibility | None = inst.blocked
    if reason is None:
        if solver == "exact":
            assignment = solve_exact(inst, time_limit=time_limit).assignment
        else:
            assignment = heuristic.solve(inst)
        if assignment is None:
            reason = diagnose(inst)
            if reason is None:  # the cheap checks pass: only a search can tell
                exact = solve_exact(inst, time_limit=FALLBACK_SECONDS)
                if exact.assignment is not None:
                    assignment, used = exact.assignment, "exact_fallback"
                else:
                    reason = diagnose_combinatorial(inst)
    plan: Plan | None = None
    status = Status.INFEASIBLE
    if assignment is not None:
        plan, status = to_plan(inst, assignment), Status.PLANNED
    elif reason is not None and problem.constraints.allow_partial and inst.blocked is None:
        partial = partial_assignment(inst)
        if partial:
            plan, status = to_plan(inst, partial), Status.PARTIAL
    alternatives: tuple[Alternative, ...] = ()
    if explain and plan is not None:
        plan, alternatives = _alternatives(inst, plan)
    result = SourcingResult(
        status=status,
        plan=plan,
        infeasibility=reason if status != Status.PLANNED else None,
        strategy=problem.strategy,
        solver=used,
        candidates=inst.m,
        solve_ms=round((time.perf_counter() - started) * 1000, 3),
        alternatives=alternatives,
    )
    if explain:
        result = replace(result, explanation=explanation(problem, result))
    return result


# --- why there is no plan -------------------------------------------------------------------


def diagnose(inst: Instance) -> Infeasibility | None:
    """The first reason found by cheap checks, or None when only a search can tell."""
    problem = inst.problem
    method = problem.method
    if inst.blocked is not None:
        return inst.blocked
    if inst.capable == 0:
        if method is Method.SAME_DAY:
            text = (
                f"no location can deliver same day within "
                f"{problem.cost_model.same_day_radius_km:g} km"
            )
        elif method in PICKUP_METHODS:
            text = f"no location can fill {method.value} orders at this store"
        else:
            text = f"no location with coordinates can ship {method.value} orders"
        return Infeasibility(Reason.NO_CAPABLE_LOCATION, text, {"method": method.value})
    assert inst.supply is not None and inst.supply_open is not None
    short: list[dict[str, Any]] = [
        {"sku": line.sku, "requested": line.quantity, "available": int(inst.supply[k])}
        for k, line in enumerate(problem.lines)
        if inst.supply[k] < line.quantity
    ]
    if short:
        skus = ", ".join(str(s["sku"]) for s in short)
        return Infeasibility(
            Reason.INSUFFICIENT_STOCK, f"not enough stock for {skus}", {"lines": short}
        )
    full: list[dict[str, Any]] = [
        {"sku": line.sku, "requested": line.quantity, "available": int(inst.supply_open[k])}
        for k, line in enumerate(problem.lines)
        if inst.supply_open[k] < line.quantity
    ]
    if full:
        skus = ", ".join(str(s["sku"]) for s in full)
        return Infeasibility(
            Reason.CAPACITY_EXHAUSTED,
            f"the locations holding {skus} have no picking capacity left today",
            {"lines": full},
        )
    for idx in inst.group_lines:
        need = inst.q[idx]
        holds = (inst.A[:, idx] >= need[None, :]).all(axis=1)
        if not (holds & (inst.cap >= need.sum())).any():
            names = [problem.lines[k].sku for k in idx]
            text = (
                f"no single location can send {', '.join(names)} together"
                if len(idx) > 1
                else f"no single location can send all {int(need[0])} units of {names[0]}"
            )
            return Infeasibility(Reason.SHIP_TOGETHER_UNSATISFIABLE, text, {"skus": names})
    room = np.minimum(inst.cap, inst.A.sum(axis=1)).sum()
    if room < inst.q.sum():
        return Infeasibility(
            Reason.CAPACITY_EXHAUSTED,
            f"the locations with stock can pick only {int(room)} of {int(inst.q.sum())} units"
            " today",
            {"units": int(inst.q.sum()), "capacity": int(room)},
        )
    return None


def diagnose_combinatorial(inst: Instance) -> Infeasibility:
    """After the exact solver found no plan: which constraint is to blame."""
    limit = inst.problem.constraints.max_packages
    if limit is not None:
        relaxed = solve_exact(inst, use_max_packages=False, time_limit=FALLBACK_SECONDS)
        if relaxed.assignment is not None:
            fewest = compile_problem(
                replace(
                    inst.problem,
                    strategy=Strategy.FEWEST_SPLITS,
                    constraints=replace(inst.problem.constraints, max_packages=None),
                )
            )
            best = solve_exact(fewest, time_limit=FALLBACK_SECONDS).assignment or relaxed.assignment
            return Infeasibility(
                Reason.MAX_PACKAGES_EXCEEDED,
                f"the order needs {len(best)} packages; at most {limit} are allowed",
                {"max_packages": limit, "packages_needed": len(best)},
            )
    if inst.groups:
        uncapped = replace(inst, cap=np.full(inst.m, 1 << 40, dtype=np.int64))
        if solve_exact(uncapped, time_limit=FALLBACK_SECONDS).assignment is None:
            return Infeasibility(
                Reason.SHIP_TOGETHER_UNSATISFIABLE,
                "the lines that must ship together cannot all be kept together",
                {"groups": [[inst.problem.lines[k].sku for k in g] for g in inst.group_lines]},
            )
    return Infeasibility(
        Reason.CAPACITY_EXHAUSTED,
        "the locations with stock cannot pick every line today within their capacity",
        {"units": int(inst.q.sum())},
    )


def partial_assignment(inst: Instance) -> Assignment | None:
    """As many units as possible (then the cheapest way): lines short of stock are cut to
    what exists, groups no single location can send are left out; then the heuristic, and
    the exact solver (fill the most units) when the heuristic cannot place the rest."""
    assert inst.supply_open is not None
    demand: IntArray = np.minimum(inst.q, inst.supply_open)
    for idx in inst.group_lines:
        need = inst.q[idx]
        holds = (inst.A[:, idx] >= need[None, :]).all(axis=1) & (inst.cap >= need.sum())
        if (demand[idx] < need).any() or not holds.any():
            demand[idx] = 0
    if not demand.any():
        return None
    found = heuristic.solve(inst, demand)
    if found:
        return found
    exact = solve_exact(inst, demand, partial=True, time_limit=FALLBACK_SECONDS)
    return exact.assignment or None


# --- alternatives and explanation -----------------------------------------------------------


def _signature(plan: Plan) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
    return tuple(sorted((p.location_id, tuple(sorted(p.lines))) for p in plan.packages))


def _alternatives(inst: Instance, chosen: Plan) -> tuple[Plan, tuple[Alternative, ...]]:
    problem = inst.problem
    options: list[tuple[str, str, Plan | None, str]] = []
    single = heuristic.single_location(inst)
    options.append(
        (
            "single_location",
            "everything from the best single location",
            None if single is None else to_plan(inst, single),
            "no single eligible location holds every line with capacity left",
        )
    )
    near = heuristic.nearest_first(inst)
    options.append(
        (
            "nearest_first",
            "each line from the nearest location that has it",
            None if near is None else to_plan(inst, near),
            "nearest-first cannot fill every line",
        )
    )
    for strategy, label, text in (
        (Strategy.FEWEST_SPLITS, "fewest_packages", "the fewest packages"),
        (Strategy.COST_OPTIMAL, "cost_optimal", "the cheapest plan"),
    ):
        if problem.strategy is strategy:
            continue
        other = compile_problem(replace(problem, strategy=strategy))
        found = heuristic.solve(other)
        # cost it under the chosen strategy's instance (same coefficients, other ranking)
        plan = None if found is None else to_plan(inst, found)
        options.append((label, text, plan, f"no plan found for {text}"))
    # An alternative that ranks better under the strategy and is valid replaces the choice.
    valid = [
        (label, plan)
        for label, _, plan, _ in options
        if plan is not None and plan.complete and not violations(problem, plan)
    ]
    if chosen.complete:
        for _label, plan in valid:
            if plan.rank() < chosen.rank():
                chosen = plan
    out: list[Alternative] = []
    seen = {_signature(chosen)}
    for label, text, plan, missing in options:
        if plan is None:
            out.append(Alternative(label, text, None, "not_possible", missing))
            continue
        sig = _signature(plan)
        if sig in seen:
            continue
        seen.add(sig)
        out.append(_why_lost(inst, chosen, label, text, plan))
    return chosen, tuple(out)


def _why_lost(inst: Instance, chosen: Plan, label: str, text: str, plan: Plan) -> Alternative:
    problem = inst.problem
    currency = problem.cost_model.currency
    delta = plan.total - chosen.total
    broken = violations(problem, plan)
    if broken:
        return Alternative(label, text, plan, "violates_constraints", broken[0], delta)
    if not plan.complete and chosen.complete:
        return Alternative(label, text, plan, "not_possible", "it leaves units unfulfilled", delta)
    if round(plan.primary, 6) > round(chosen.primary, 6):
        extra = plan.primary - chosen.primary
        what = {
            Strategy.NEAREST: f"{extra:.1f} more unit-km",
            Strategy.FEWEST_SPLITS: f"{extra:.0f} more package(s)",
            Strategy.STORE_FIRST: f"{extra:.0f} more unit(s) from outside stores",
            Strategy.WAREHOUSE_FIRST: f"{extra:.0f} more unit(s) from outside warehouses",
        }.get(problem.strategy, f"{extra:g} worse")
        return Alternative(
            label, text, plan, "worse_on_strategy", f"{what} ({problem.strategy.value})", delta
        )
    parts = []
    for name in ("shipping", "handling", "transfer", "split_penalty"):
        diff = getattr(plan.cost, name) - getattr(chosen.cost, name)
        if diff:
            sign = "+" if diff > 0 else "-"
            parts.append(f"{name.replace('_', ' ')} {sign}{money(abs(diff), currency)}")
    if delta > 0:
        reason = f"costs {money(delta, currency)} more ({', '.join(parts)})"
        return Alternative(label, text, plan, "higher_cost", reason, delta)
    return Alternative(
        label, text, plan, "tie", "costs the same; the chosen plan was found first", delta
    )


def describe_plan(plan: Plan) -> str:
    currency = plan.cost.currency
    parts = []
    for p in plan.packages:
        where = {"ship": f"{p.distance_km:.0f} km", "pickup": "at the pickup store"}.get(
            p.kind.value, f"transfer {p.distance_km:.0f} km, +{p.lead_time_hours} h"
        )
        parts.append(f"{p.location_code} ({p.units} unit{'s' if p.units != 1 else ''}, {where})")
    c = plan.cost
    cost = (
        f"{money(c.total, currency)} (shipping {money(c.shipping, currency)}, handling "
        f"{money(c.handling, currency)}"
        + (f", transfer {money(c.transfer, currency)}" if c.transfer else "")
        + (f", split penalty {money(c.split_penalty, currency)}" if c.split_penalty else "")
        + ")"
    )
    count = len(plan.packages)
    return f"{count} package{'s' if count != 1 else ''}: {'; '.join(parts)}; cost {cost}"


def explanation(problem: SourcingProblem, result: SourcingResult) -> str:
    lines = [
        f"Strategy {result.strategy.value}: {STRATEGY_TEXT[result.strategy]}.",
        f"{result.candidates} eligible candidate locations with stock; solver {result.solver}.",
    ]
    if problem.method in PICKUP_METHODS:
        lines.append(f"Pickup at {problem.pickup_location_id}.")
    if result.infeasibility is not None:
        lines.append(f"No full plan: {result.infeasibility.message}.")
    if result.plan is not None:
        label = "Partial plan" if result.status == Status.PARTIAL else "Chosen"
        lines.append(f"{label}: {describe_plan(result.plan)}.")
        if result.plan.unfulfilled:
            missing = ", ".join(f"{q} x {sku}" for sku, q in result.plan.unfulfilled)
            lines.append(f"Unfulfilled: {missing}.")
    for alt in result.alternatives:
        lines.append(f"Alternative {alt.label} ({alt.description}) lost: {alt.reason}.")
    return " ".join(lines)
