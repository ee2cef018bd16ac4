"""Reservations under contention: throughput, oversells, a naive baseline and pgbench.

Runs the real service (``inventory.service.reserve``, one unit of work per reservation) from
several worker processes, on PostgreSQL and on SQLite:

* ``contention=high``: every worker reserves 1 unit of the same SKU from any of 3 locations;
  also sells out the last N units (``oversells`` = units promised beyond stock, must be 0) and
  runs the same sell-out with a naive read-check-write implementation (plain SELECT, check in
  Python, write back an absolute value: ``naive_oversells``);
* ``contention=none``: each worker reserves its own SKU.

On PostgreSQL it also runs ``pgbench -b simple-update`` before and after (same server, same
client count, its own scratch database) and reports ``ratio_vs_pgbench`` = our
reservations/s over the mean pgbench TPS.
Prints one JSON object per case on stdout; progress goes to stderr.

    .venv/bin/python bench/reservations.py [--quick] [--workers 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.engine import make_url

from omniretail.all_models import metadata
from omniretail.catalog import service as catalog
from omniretail.core.db import Database, make_engine
from omniretail.core.errors import AppError
from omniretail.inventory import service
from omniretail.inventory.models import ReservationLine, StockLevel

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
SCRATCH_DB = "omni_bench_reservations"
PGBENCH_DB = "bench_pgbench"
HUGE = 10**9


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- setup ----------------------------------------------------------------------------------


def _pg_admin_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _recreate_pg_database(url: str, name: str) -> str:
    admin = create_engine(_pg_admin_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str, name: str) -> None:
    admin = create_engine(_pg_admin_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def setup(url: str, workers: int, last_units: int) -> dict[str, Any]:
    engine = make_engine(url)
    metadata.create_all(engine)
    db = Database(engine)
    skus = ["HOT", "LAST", "NAIVE", *(f"U{i}" for i in range(workers))]
    split = [last_units // 3, last_units // 3, last_units - 2 * (last_units // 3)]
    with db.unit_of_work() as s:
        catalog.create_product(s, title="Bench", variants=[{"sku": sku} for sku in skus])
        locs = [
            service.create_location(
                s, code=f"bench-{i}", name=f"Bench {i}", type="warehouse", timezone="UTC"
            ).id
            for i in range(3)
        ]
        for loc, units in zip(locs, split, strict=True):
            lines = [("HOT", HUGE), ("LAST", units), ("NAIVE", units)]
            lines += [(f"U{i}", HUGE) for i in range(workers)]
            service.record_movement(s, location_id=loc, reason="receipt", lines=lines)
    engine.dispose()
    return {"locations": locs}


# --- workers --------------------------------------------------------------------------------


def _naive_reserve(db: Database, sku: str, locations: list[str]) -> bool:
    """Read-check-write: a plain read, the check in Python, an absolute write-back."""
    with db.unit_of_work(write=False) as s:
        rows = s.execute(
            select(StockLevel.id, StockLevel.on_hand, StockLevel.allocated, StockLevel.held)
            .where(StockLevel.sku == sku, StockLevel.location_id.in_(locations))
            .order_by(StockLevel.id)
        ).all()
    for row in rows:
        if row.on_hand - row.allocated - row.held >= 1:
            with db.unit_of_work() as s:
                s.execute(
                    update(StockLevel).where(StockLevel.id == row.id).values(held=row.held + 1)
                )
            return True
    return False


def worker(
    url: str,
    mode: str,
    index: int,
    locations: list[str],
    seconds: float,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    engine = make_engine(url, pool_size=1, max_overflow=0)
    db = Database(engine)
    sku = {"high": "HOT", "none": f"U{index}", "last": "LAST", "naive": "NAIVE"}[mode]
    ready.put(index)
    go.wait()
    done = errors = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            if mode == "naive":
                if not _naive_reserve(db, sku, locations):
                    break
            else:
                with db.unit_of_work() as s:
                    service.reserve(s, [(sku, 1)], locations=locations, strategy="any")
            done += 1
        except AppError as exc:
            if exc.code == "insufficient_stock" and exc.details.get("available") == 0:
                break
            errors += 1
        except Exception as exc:  # anything else is a failure the benchmark must show
            log(f"worker {index}: {type(exc).__name__}: {exc}")
            errors += 1
    out.put((done, errors))
    engine.dispose()


def run_phase(
    url: str, mode: str, workers: int, locations: list[str], seconds: float
) -> tuple[int, int, float]:
    ctx = mp.get_context("fork")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=worker, args=(url, mode, i, locations, seconds, ready, go, out))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    started = time.perf_counter()
    go.set()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    return sum(r[0] for r in results), sum(r[1] for r in results), elapsed


def held_units(url: str, sku: str) -> tuple[int, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        held = conn.execute(
            select(func.coalesce(func.sum(StockLevel.held), 0)).where(StockLevel.sku == sku)
        ).scalar_one()
        lines = conn.execute(
            select(func.coalesce(func.sum(ReservationLine.quantity), 0)).where(
                ReservationLine.sku == sku
            )
        ).scalar_one()
    engine.dispose()
    return int(held), int(lines)


# --- pgbench --------------------------------------------------------------------------------


def pgbench_tps(url: str, clients: int, seconds: int) -> float | None:
    if shutil.which("pgbench") is None:
        log("pgbench not found")
        return None
    target = make_url(_recreate_pg_database(url, PGBENCH_DB))
    env = dict(os.environ)
    if target.password:
        env["PGPASSWORD"] = str(target.password)
    conn = ["-h", target.host or "127.0.0.1", "-p", str(target.port or 5432)]
    conn += ["-U", target.username or "postgres"]
    try:
        subprocess.run(
            ["pgbench", *conn, "-i", "-q", "-s", "1", PGBENCH_DB],
            check=True,
            capture_output=True,
            env=env,
        )
        result = subprocess.run(
            [
                "pgbench",
                *conn,
                *("-b", "simple-update", "-c", str(clients), "-j", "2"),
                *("-T", str(seconds), PGBENCH_DB),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
    finally:
        _drop_pg_database(url, PGBENCH_DB)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    return float(match.group(1)) if match else None


# --- one backend ----------------------------------------------------------------------------


def bench_backend(
    backend: str, url: str, workers: int, seconds: float, last_units: int
) -> list[dict[str, Any]]:
    log(f"== {backend}: setup ({workers} workers, {seconds:.0f} s per phase)")
    locs = setup(url, workers, last_units)["locations"]
    metrics: dict[str, dict[str, Any]] = {}
    tps_runs: list[float] = []
    if backend == "postgresql":
        # pgbench before and after our phases: the mean is fairer on a machine whose load
        # drifts (other processes share the cores).
        log("pgbench simple-update (before) ...")
        tps_runs.append(pgbench_tps(url, workers, int(seconds)) or 0.0)
        log(f"pgbench: {tps_runs[-1]:.0f} tps")
    for contention in ("high", "none"):
        done, errors, elapsed = run_phase(url, contention, workers, locs, seconds)
        rate = done / elapsed
        log(f"{backend} {contention}: {done} reservations in {elapsed:.1f} s = {rate:.0f}/s")
        metrics[contention] = {"reservations_per_s": round(rate, 1), "errors": errors}
    done, errors, _ = run_phase(url, "last", workers, locs, max(seconds, 30))
    held, lines = held_units(url, "LAST")
    oversells = max(0, done - last_units) + abs(held - lines) + max(0, held - last_units)
    log(f"{backend} last {last_units} units: {done} reserved, held {held}, lines {lines}")
    naive_done, _, _ = run_phase(url, "naive", workers, locs, max(seconds, 30))
    naive_oversells = max(0, naive_done - last_units)
    log(f"{backend} naive: {naive_done} reservations promised for {last_units} units")
    metrics["high"].update(
        {
            "oversells": oversells,
            "naive_oversells": naive_oversells,
            "sold_out_units": last_units,
            "errors": metrics["high"]["errors"] + errors,
        }
    )
    metrics["none"]["oversells"] = 0
    tps = None
    if backend == "postgresql":
        log("pgbench simple-update (after) ...")
        tps_runs.append(pgbench_tps(url, workers, int(seconds)) or 0.0)
        log(f"pgbench: {tps_runs[-1]:.0f} tps")
        measured = [t for t in tps_runs if t > 0]
        tps = sum(measured) / len(measured) if measured else None
    lines_out = []
    for contention in ("high", "none"):
        m = metrics[contention]
        goal: dict[str, str] = {"oversells": "== 0"}
        if backend == "postgresql":
            m["pgbench_tps"] = None if tps is None else round(tps, 1)
            m["pgbench_tps_runs"] = [round(t, 1) for t in tps_runs]
            m["ratio_vs_pgbench"] = None if not tps else round(m["reservations_per_s"] / tps, 3)
            goal["ratio_vs_pgbench"] = ">= 0.5"
        lines_out.append(
            {
                "bench": "reservations",
                "case": {"backend": backend, "contention": contention, "workers": workers},
                "metrics": m,
                "goal": goal,
            }
        )
    return lines_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=None, help="per throughput phase")
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    last_units = 60 if args.quick else 300
    url = os.environ.get("OMNI_BENCH_DATABASE_URL", DEFAULT_PG)

    if args.backend in ("postgresql", "both"):
        try:
            scratch = _recreate_pg_database(url, SCRATCH_DB)
        except Exception as exc:
            reason = f"cannot connect to PostgreSQL: {type(exc).__name__}"
            for contention in ("high", "none"):
                case = {"backend": "postgresql", "contention": contention}
                print(json.dumps({"bench": "reservations", "case": case, "skipped": reason}))
        else:
            try:
                for line in bench_backend("postgresql", scratch, args.workers, seconds, last_units):
                    print(json.dumps(line), flush=True)
            finally:
                _drop_pg_database(url, SCRATCH_DB)
    if args.backend in ("sqlite", "both"):
        folder = tempfile.mkdtemp(prefix="omni-bench-")
        try:
            sqlite_url = f"sqlite:///{folder}/bench.db"
            for line in bench_backend("sqlite", sqlite_url, args.workers, seconds, last_units):
                print(json.dumps(line), flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
