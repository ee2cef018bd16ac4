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
import threading
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
    threads: int,
    locations: list[str],
    seconds: float,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """One client process driving ``threads`` connections (a thread each: the GIL is released
    while a thread waits for the database, as pgbench's ``-j`` threads multiplex theirs). The
    pool keeps one connection per thread open and does not ping it before each use, as
    pgbench keeps its connections; each reservation is its own unit of work (session,
    transaction, commit), as in an API request."""
    engine = make_engine(url, pool_size=threads, max_overflow=0, pool_pre_ping=False)
    db = Database(engine)
    results: list[tuple[int, int]] = []

    def run(client: int) -> None:
        sku = {"high": "HOT", "none": f"U{client}", "last": "LAST", "naive": "NAIVE"}[mode]
        done = errors = 0
        go.wait()
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
                log(f"client {client}: {type(exc).__name__}: {exc}")
                errors += 1
        results.append((done, errors))

    pool = [threading.Thread(target=run, args=(index * threads + t,)) for t in range(threads)]
    for t in pool:
        t.start()
    ready.put(index)
    for t in pool:
        t.join()
    out.put((sum(r[0] for r in results), sum(r[1] for r in results)))
    engine.dispose()


def run_phase(
    url: str, mode: str, processes: int, threads: int, locations: list[str], seconds: float
) -> tuple[int, int, float]:
    ctx = mp.get_context("fork")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=worker, args=(url, mode, i, threads, locations, seconds, ready, go, out))
        for i in range(processes)
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


def _pgbench_conn(url: str) -> tuple[list[str], dict[str, str]]:
    target = make_url(url)
    env = dict(os.environ)
    if target.password:
        env["PGPASSWORD"] = str(target.password)
    conn = ["-h", target.host or "127.0.0.1", "-p", str(target.port or 5432)]
    conn += ["-U", target.username or "postgres"]
    return conn, env


def _tps(stdout: str) -> float | None:
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", stdout)
    return float(match.group(1)) if match else None


def pgbench_tps(url: str, clients: int, seconds: int) -> float | None:
    """pgbench's built-in ``simple-update`` (the goal's baseline) in a scratch database."""
    if shutil.which("pgbench") is None:
        log("pgbench not found")
        return None
    conn, env = _pgbench_conn(_recreate_pg_database(url, PGBENCH_DB))
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
    return _tps(result.stdout)


def _same_sql_script(contention: str, locations: list[str]) -> str:
    """The statement our service sends for a one-unit hold from any of the locations, with
    pgbench variables for its parameters (a fresh reservation id per transaction)."""
    candidates = "ARRAY[" + ",".join(f"'{loc}'" for loc in locations) + "]"
    values = {
        "rid": "('rsv_pgb_' || :client_id || '_' || :r)",
        "channel_id": "NULL",
        "kind": "'cart'",
        "reference": "NULL",
        "expires_at": "(now() + interval '15 minutes')",
        "now": "now()",
        "buffer": "0",
        "qty": "1",
        "sku": "'HOT'" if contention == "high" else "('U' || :client_id)",
        "loc": f"({candidates})[:l + 1]",
        "candidates": candidates,
        "n_candidates": str(len(locations)),
    }
    sql = re.sub(r":(\w+)", lambda m: values[m.group(1)], service._HOLD_ANY_PG.text)
    return "\n".join(
        [
            r"\set r random(1, 9000000000000000)",
            rf"\set l random(0, {len(locations) - 1})",
            " ".join(sql.split()) + ";",
        ]
    )


def pgbench_same_sql_tps(
    url: str, clients: int, seconds: int, contention: str, locations: list[str]
) -> float | None:
    """pgbench (its C client, prepared statements) sending our reservation statement itself,
    each in its own transaction, on our benchmark database: what the database does with the
    same work when the client costs next to nothing."""
    if shutil.which("pgbench") is None:
        return None
    conn, env = _pgbench_conn(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(_same_sql_script(contention, locations))
        script.flush()
        result = subprocess.run(
            [
                "pgbench",
                *conn,
                *("-n", "-M", "prepared", "-c", str(clients), "-j", "2"),
                *("-T", str(seconds), "-f", script.name, str(make_url(url).database)),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
    return _tps(result.stdout)


# --- one backend ----------------------------------------------------------------------------


def bench_backend(
    backend: str, url: str, workers: int, processes: int, seconds: float, last_units: int
) -> list[dict[str, Any]]:
    threads = workers // processes
    log(f"== {backend}: setup ({processes} processes x {threads} connections, {seconds:.0f} s)")
    load_before = os.getloadavg()[0]
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
        done, errors, elapsed = run_phase(url, contention, processes, threads, locs, seconds)
        rate = done / elapsed
        log(f"{backend} {contention}: {done} reservations in {elapsed:.1f} s = {rate:.0f}/s")
        metrics[contention] = {"reservations_per_s": round(rate, 1), "errors": errors}
    done, errors, _ = run_phase(url, "last", processes, threads, locs, max(seconds, 30))
    held, lines = held_units(url, "LAST")
    oversells = max(0, done - last_units) + abs(held - lines) + max(0, held - last_units)
    log(f"{backend} last {last_units} units: {done} reserved, held {held}, lines {lines}")
    naive_done, _, _ = run_phase(url, "naive", processes, threads, locs, max(seconds, 30))
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
        for contention in ("high", "none"):
            same = pgbench_same_sql_tps(url, workers, int(seconds), contention, locs)
            log(f"pgbench with our statement, {contention}: {same or 0:.0f} tps")
            m = metrics[contention]
            m["pgbench_same_sql_tps"] = None if same is None else round(same, 1)
            m["ratio_vs_pgbench_same_sql"] = (
                None if not same else round(m["reservations_per_s"] / same, 3)
            )
        log("pgbench simple-update (after) ...")
        tps_runs.append(pgbench_tps(url, workers, int(seconds)) or 0.0)
        log(f"pgbench: {tps_runs[-1]:.0f} tps")
        measured = [t for t in tps_runs if t > 0]
        tps = sum(measured) / len(measured) if measured else None
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    lines_out = []
    for contention in ("high", "none"):
        m = metrics[contention]
        goal: dict[str, str] = {"oversells": "== 0"}
        if backend == "postgresql":
            m["pgbench_tps"] = None if tps is None else round(tps, 1)
            m["pgbench_tps_runs"] = [round(t, 1) for t in tps_runs]
            m["ratio_vs_pgbench"] = None if not tps else round(m["reservations_per_s"] / tps, 3)
            goal["ratio_vs_pgbench"] = ">= 0.5"
        m["load_avg_1m"] = load  # at the start and at the end of this backend's run
        lines_out.append(
            {
                "bench": "reservations",
                "case": {
                    "backend": backend,
                    "contention": contention,
                    "workers": workers,
                    "processes": processes,
                    "layer": "service",
                    "pool_pre_ping": False,
                },
                "metrics": m,
                "goal": goal,
            }
        )
    return lines_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short phases")
    parser.add_argument("--workers", type=int, default=8, help="client connections")
    parser.add_argument(
        "--processes", type=int, default=4, help="client processes sharing the connections"
    )
    parser.add_argument("--seconds", type=float, default=None, help="per throughput phase")
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    args = parser.parse_args()
    if args.workers % args.processes:
        parser.error("--workers must be a multiple of --processes")
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
                for line in bench_backend(
                    "postgresql", scratch, args.workers, args.processes, seconds, last_units
                ):
                    print(json.dumps(line), flush=True)
            finally:
                _drop_pg_database(url, SCRATCH_DB)
    if args.backend in ("sqlite", "both"):
        folder = tempfile.mkdtemp(prefix="omni-bench-")
        try:
            sqlite_url = f"sqlite:///{folder}/bench.db"
            for line in bench_backend(
                "sqlite", sqlite_url, args.workers, args.processes, seconds, last_units
            ):
                print(json.dumps(line), flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
