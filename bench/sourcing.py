"""Order sourcing: heuristic latency, optimality gap against HiGHS, and the cost and package
count against the peers' nearest-location rule.

A generated UK-like network (stores spread over real cities by population with jittered
coordinates, distribution centres at real logistics hubs, a few dark stores), 200 or 1,000
locations, two stock profiles:

* ``easy``: every location holds 80% of the SKUs;
* ``sparse``: every location holds 10% of the SKUs.

Orders have 1-10 lines (1-3 units each) and ship to customers drawn by city population.
For every order the script times the request-path solver (problem compilation, heuristic,
plan with cost breakdown), checks the plan against every rule (``violations``), and plans the
same order with the nearest-first rule (each line from the nearest location that has it,
moving on for what is left). For a sample of orders it also solves the exact MILP (HiGHS) and
reports the heuristic's mean gap to the optimum.

Prints one JSON object per case on stdout; progress goes to stderr.

    .venv/bin/python bench/sourcing.py [--quick] [--orders 2000] [--exact 200] [--seed 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from omniretail.fulfillment.domain import (
    Constraints,
    CostModel,
    Line,
    Method,
    Network,
    Point,
    SourceLocation,
    SourcingProblem,
    Strategy,
    compile_problem,
    to_plan,
    violations,
)
from omniretail.fulfillment.exact import solve_exact
from omniretail.fulfillment.heuristic import nearest_first
from omniretail.fulfillment.sourcing import solve_plan

# (city, latitude, longitude, population in thousands): the larger UK urban areas
CITIES: list[tuple[str, float, float, int]] = [
    ("London", 51.5074, -0.1278, 9000),
    ("Birmingham", 52.4862, -1.8904, 2600),
    ("Manchester", 53.4808, -2.2426, 2800),
    ("Leeds", 53.8008, -1.5491, 1900),
    ("Glasgow", 55.8642, -4.2518, 1700),
    ("Liverpool", 53.4084, -2.9916, 900),
    ("Newcastle", 54.9783, -1.6178, 800),
    ("Sheffield", 53.3811, -1.4701, 730),
    ("Bristol", 51.4545, -2.5879, 690),
    ("Nottingham", 52.9548, -1.1581, 730),
    ("Leicester", 52.6369, -1.1398, 510),
    ("Edinburgh", 55.9533, -3.1883, 540),
    ("Cardiff", 51.4816, -3.1791, 480),
    ("Belfast", 54.5973, -5.9301, 340),
    ("Southampton", 50.9097, -1.4044, 860),
    ("Brighton", 50.8225, -0.1372, 480),
    ("Plymouth", 50.3755, -4.1427, 260),
    ("Stoke-on-Trent", 53.0027, -2.1794, 370),
    ("Coventry", 52.4068, -1.5197, 370),
    ("Hull", 53.7676, -0.3274, 310),
    ("Bradford", 53.7960, -1.7594, 350),
    ("Reading", 51.4543, -0.9781, 320),
    ("Milton Keynes", 52.0406, -0.7594, 260),
    ("Norwich", 52.6309, 1.2974, 210),
    ("Exeter", 50.7184, -3.5339, 130),
    ("Oxford", 51.7520, -1.2577, 160),
    ("Cambridge", 52.2053, 0.1218, 150),
    ("York", 53.9590, -1.0815, 210),
    ("Aberdeen", 57.1497, -2.0943, 220),
    ("Dundee", 56.4620, -2.9707, 150),
    ("Inverness", 57.4778, -4.2247, 60),
    ("Swansea", 51.6214, -3.9436, 300),
    ("Ipswich", 52.0567, 1.1482, 180),
    ("Peterborough", 52.5695, -0.2405, 200),
    ("Preston", 53.7632, -2.7031, 310),
    ("Middlesbrough", 54.5742, -1.2350, 370),
    ("Bournemouth", 50.7192, -1.8808, 470),
    ("Derby", 52.9225, -1.4746, 270),
    ("Canterbury", 51.2802, 1.0789, 55),
    ("Carlisle", 54.8925, -2.9329, 75),
]

# Distribution centres at real logistics hubs.
HUBS: list[tuple[str, float, float]] = [
    ("Daventry", 52.2568, -1.1553),
    ("Doncaster", 53.5228, -1.1285),
    ("Avonmouth", 51.5050, -2.6960),
    ("Bellshill", 55.8200, -4.0200),
    ("Warrington", 53.3900, -2.5970),
    ("Milton Keynes", 52.0100, -0.7300),
    ("Thurrock", 51.4900, 0.3300),
    ("Wakefield", 53.6830, -1.4990),
    ("Crick", 52.3480, -1.1370),
    ("Swindon", 51.5600, -1.7800),
    ("Tamworth", 52.6330, -1.6950),
    ("Peterborough", 52.5700, -0.2400),
]

SKUS = 2000
QUANTITIES = ([1, 2, 3], [0.75, 0.18, 0.07])
GOALS = {
    200: {"p99_ms": 2.0},
    1000: {"p99_ms": 5.0},
}


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def _city_points(rng: np.random.Generator, count: int, spread_km: float) -> np.ndarray:
    pops = np.array([c[3] for c in CITIES], dtype=np.float64)
    picks = rng.choice(len(CITIES), size=count, p=pops / pops.sum())
    lat = np.array([CITIES[i][1] for i in picks])
    lon = np.array([CITIES[i][2] for i in picks])
    # jitter: larger cities spread wider
    scale = spread_km * np.sqrt(pops[picks] / 1000.0).clip(0.5, 3.0)
    dlat = rng.normal(0, 1, count) * scale / 111.0
    dlon = rng.normal(0, 1, count) * scale / (111.0 * np.cos(np.radians(lat)))
    return np.stack([lat + dlat, lon + dlon], axis=1)


def make_network(rng: np.random.Generator, size: int) -> tuple[Network, np.ndarray]:
    """Locations and their remaining capacity (units that can still be picked today)."""
    n_wh = 6 if size <= 200 else 12
    n_dark = max(2, size // 40)
    n_store = size - n_wh - n_dark
    locations: list[SourceLocation] = []
    capacity: list[int] = []
    for i, (name, lat, lon) in enumerate(HUBS[:n_wh]):
        locations.append(
            SourceLocation(
                f"wh{i}", f"dc-{name.lower()}", "warehouse", lat, lon, frozenset({"ship"})
            )
        )
        capacity.append(int(rng.integers(2000, 8000)))
    for i, (lat, lon) in enumerate(_city_points(rng, n_dark, 6.0)):
        caps = frozenset({"ship", "same_day"})
        locations.append(SourceLocation(f"dk{i}", f"dark-{i}", "dark_store", lat, lon, caps))
        capacity.append(int(rng.integers(100, 400)))
    for i, (lat, lon) in enumerate(_city_points(rng, n_store, 5.0)):
        ships = rng.random() < 0.85
        caps = frozenset({"pickup", "ship_from_store"} if ships else {"pickup"})
        locations.append(SourceLocation(f"st{i}", f"store-{i}", "store", lat, lon, caps))
        daily = int(rng.integers(30, 150))
        capacity.append(max(0, daily - int(rng.integers(0, daily + 10))))  # some are full
    return Network(locations), np.array(capacity, dtype=np.int64)


def make_stock(rng: np.random.Generator, network: Network, profile: str) -> np.ndarray:
    """ATP per (location, SKU): warehouses hold deep stock, stores a few units."""
    share = {"easy": 0.8, "sparse": 0.1}[profile]
    size = len(network)
    held = rng.random((size, SKUS)) < share
    is_wh = np.array([loc.type == "warehouse" for loc in network.locations])
    depth = np.where(
        is_wh[:, None],
        rng.integers(5, 200, (size, SKUS)),
        rng.geometric(0.45, (size, SKUS)),
    )
    atp: np.ndarray = np.where(held, depth, 0).astype(np.int32)
    return atp


def make_orders(rng: np.random.Generator, count: int) -> list[tuple[list[Line], Point]]:
    out = []
    points = _city_points(rng, count, 8.0)
    for i in range(count):
        n = int(rng.integers(1, 11))
        skus = rng.choice(SKUS, size=n, replace=False)
        qty = rng.choice(QUANTITIES[0], size=n, p=QUANTITIES[1])
        lines = [Line(f"SKU-{int(s):05d}", int(q)) for s, q in zip(skus, qty, strict=True)]
        out.append((lines, Point(float(points[i, 0]), float(points[i, 1]))))
    return out


def problem_for(
    network: Network,
    capacity: np.ndarray,
    stock: np.ndarray,
    lines: list[Line],
    destination: Point,
    cost_model: CostModel,
) -> SourcingProblem:
    cols = [int(line.sku.split("-")[1]) for line in lines]
    return SourcingProblem(
        network=network,
        lines=tuple(lines),
        atp=stock[:, cols].astype(np.int64),
        capacity=capacity,
        method=Method.STANDARD,
        destination=destination,
        constraints=Constraints(),
        cost_model=cost_model,
        strategy=Strategy.COST_OPTIMAL,
    )


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def run_case(size: int, profile: str, orders: int, exact_sample: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed + size + (0 if profile == "easy" else 1))
    network, capacity = make_network(rng, size)
    stock = make_stock(rng, network, profile)
    cost_model = CostModel()
    batch = make_orders(rng, orders)
    problems = [problem_for(network, capacity, stock, ls, d, cost_model) for ls, d in batch]
    for p in problems[:50]:  # warm-up: caches, first numpy calls
        solve_plan(p)
    latencies: list[float] = []
    plans = []
    gc.collect()
    gc.disable()
    try:
        for p in problems:
            started = time.perf_counter()
            result = solve_plan(p)
            latencies.append((time.perf_counter() - started) * 1000)
            plans.append(result)
    finally:
        gc.enable()
    explained: list[float] = []
    for p in problems[: max(100, len(problems) // 5)]:
        started = time.perf_counter()
        solve_plan(p, explain=True)
        explained.append((time.perf_counter() - started) * 1000)
    bad = 0
    planned = 0
    costs: list[int] = []
    nearest_costs: list[int] = []
    packages: list[int] = []
    nearest_packages: list[int] = []
    infeasible = 0
    for p, result in zip(problems, plans, strict=True):
        if result.plan is None or not result.plan.complete:
            infeasible += 1
            continue
        planned += 1
        bad += len(violations(p, result.plan))
        inst = compile_problem(p)
        baseline = nearest_first(inst)
        if baseline is None:
            continue
        base_plan = to_plan(inst, baseline)
        costs.append(result.plan.total)
        packages.append(len(result.plan.packages))
        nearest_costs.append(base_plan.total)
        nearest_packages.append(len(base_plan.packages))
    gaps: list[float] = []
    exact_seconds: list[float] = []
    worst = 0.0
    sample = [i for i, r in enumerate(plans) if r.plan is not None and r.plan.complete]
    for n_done, i in enumerate(sample[:exact_sample], 1):
        inst = compile_problem(problems[i])
        exact = solve_exact(inst, time_limit=60.0)
        exact_seconds.append(exact.seconds)
        if exact.cost is None or exact.status != "optimal":
            log(f"  exact solver: {exact.status} on order {i}")
            continue
        plan = plans[i].plan
        assert plan is not None
        gap = (plan.total - exact.cost) / exact.cost * 100 if exact.cost else 0.0
        if gap < -1e-9:
            log(f"  order {i}: heuristic {plan.total} below the optimum {exact.cost}?")
        gaps.append(gap)
        worst = max(worst, gap)
        if n_done % 50 == 0:
            log(f"  exact {n_done}/{min(exact_sample, len(sample))}")
    mean_cost = float(np.mean(costs))
    mean_nearest = float(np.mean(nearest_costs))
    mean_pk = float(np.mean(packages))
    mean_nearest_pk = float(np.mean(nearest_packages))
    goal: dict[str, str] = {
        "p99_ms": f"<= {GOALS[size]['p99_ms']}",
        "gap_pct_mean": "<= 0.5" if profile == "easy" else "<= 3.0",
        "violations": "== 0",
    }
    if profile == "sparse":
        goal["cost_saving_vs_nearest_pct"] = ">= 10"
        goal["package_reduction_vs_nearest_pct"] = ">= 20"
    return {
        "bench": "sourcing",
        "case": {"locations": size, "profile": profile},
        "metrics": {
            "orders": len(problems),
            "planned": planned,
            "infeasible": infeasible,
            "p50_ms": round(pct(latencies, 50), 3),
            "p99_ms": round(pct(latencies, 99), 3),
            "max_ms": round(max(latencies), 3),
            "explained_p99_ms": round(pct(explained, 99), 3),
            "gap_pct_mean": round(float(np.mean(gaps)), 4) if gaps else None,
            "gap_pct_max": round(worst, 4),
            "exact_orders": len(gaps),
            "exact_p50_ms": round(pct(exact_seconds, 50) * 1000, 1) if exact_seconds else None,
            "violations": bad,
            "packages_per_order": round(mean_pk, 3),
            "nearest_packages_per_order": round(mean_nearest_pk, 3),
            "cost_per_order": round(mean_cost / 100, 2),
            "nearest_cost_per_order": round(mean_nearest / 100, 2),
            "cost_saving_vs_nearest_pct": round((1 - mean_cost / mean_nearest) * 100, 2),
            "package_reduction_vs_nearest_pct": round((1 - mean_pk / mean_nearest_pk) * 100, 2),
        },
        "goal": goal,
        "machine": {
            "python": platform.python_version(),
            "cpus": _cpus(),
            "loadavg_1m": round(_load(), 2),  # other work on the machine inflates p99
        },
    }


def _load() -> float:
    import os

    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer orders (a smoke run)")
    parser.add_argument("--orders", type=int, default=2000, help="orders per case")
    parser.add_argument("--exact", type=int, default=200, help="orders per case solved exactly")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    orders, exact = (300, 40) if args.quick else (args.orders, args.exact)
    for size in (200, 1000):
        for profile in ("easy", "sparse"):
            log(f"case locations={size} profile={profile}: {orders} orders, {exact} exact")
            started = time.perf_counter()
            out = run_case(size, profile, orders, exact, args.seed)
            log(f"  done in {time.perf_counter() - started:.1f} s")
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
