"""Reservations under contention: throughput, oversells, a naive baseline and pgbench.

Runs the real service (``inventory.service.reserve_standalone``: a hold that is its own unit
of work, what ``POST /reservations`` runs without an Idempotency-Key, without HTTP; on
PostgreSQL one autocommit statement for a one-line hold, else a session, its transaction and
the commit) over 8 client connections, on PostgreSQL and on SQLite. The connections are
shared by 2 client processes (threads within each: the GIL is released while a thread waits
for the database), as pgbench drives its 8 connections from 2 threads (``-j 2``); the pools
keep the connections open and do not ping them before each use, as pgbench keeps its own.

* ``contention=high``: every client reserves 1 unit of the same SKU from any of 3 locations;
  also sells out the last N units (``oversells`` = units promised beyond stock, must be 0) and
  runs the same sell-out with a naive read-check-write implementation (plain SELECT, check in
  Python, write back an absolute value: ``naive_oversells``);
* ``contention=none``: each client reserves its own SKU.

On PostgreSQL it also runs ``pgbench -b simple-update`` before and after (same server, same
client count, its own scratch database) and reports ``ratio_vs_pgbench`` = our
reservations/s over the mean pgbench TPS (the goal), and pgbench sending our own reservation
statement (``ratio_vs_pgbench_same_sql``: the same database work with a client that costs
next to nothing). Because other work may share the cores, it also reports the CPU time per
reservation (client processes plus the PostgreSQL backends serving them, read from /proc) and
per pgbench transaction, and ``ratio_cpu_vs_pgbench``, the throughput ratio those costs imply
when both sides are CPU-bound. Prints one JSON object per case on stdout; progress goes to
stderr.

    .venv/bin/python bench/reservations.py [--quick] [--workers 8] [--processes 2] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
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
    db.dispose()
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
    pgbench keeps its connections; each reservation is its own unit of work, as in an API
    request without an Idempotency-Key."""
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
                    service.reserve_standalone(db, [(sku, 1)], locations=locations, strategy="any")
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
    go.wait()
    cpu = time.process_time()
    for t in pool:
        t.join()
    cpu = time.process_time() - cpu
    out.put((sum(r[0] for r in results), sum(r[1] for r in results), cpu))
    db.dispose()


@dataclass
class Phase:
    done: int
    errors: int
    elapsed: float
    client_cpu: float  # seconds, all client processes
    server_cpu: float | None  # seconds, the PostgreSQL backends serving them


def run_phase(
    url: str, mode: str, processes: int, threads: int, locations: list[str], seconds: float
) -> Phase:
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
    with BackendCPU(url) as server:
        started = time.perf_counter()
        go.set()
        results = [out.get(timeout=seconds + 300) for _ in procs]
        elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    return Phase(
        sum(r[0] for r in results),
        sum(r[1] for r in results),
        elapsed,
        sum(r[2] for r in results),
        server.seconds(),
    )


class BackendCPU:
    """CPU seconds of the PostgreSQL backends serving one database while a block runs, read
    from /proc (server on this machine) every 50 ms: a backend that exits keeps its last
    reading, so at most its last 50 ms are missed. ``seconds()`` is None when no backend of
    that database was seen (a remote server, or SQLite)."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.marker = f" {parsed.database} " if parsed.get_backend_name() == "postgresql" else None
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")
        self._others: set[int] = set()
        self._started = False

    def _sample(self) -> None:
        if self.marker is None:
            return
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in self._others:
                continue
            pid = int(name)
            try:
                if pid not in self.last:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmdline = f.read().decode(errors="replace")
                    if not cmdline.startswith("postgres:") or self.marker not in cmdline:
                        self._others.add(pid)
                        continue
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used = (int(fields[11]) + int(fields[12])) / self._tick
            if pid not in self.last:  # there before the block: count from now; else all
                self.first[pid] = 0.0 if self._started else used
            self.last[pid] = used

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def __enter__(self) -> BackendCPU:
        self._started = False
        self._sample()
        self._started = True
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def seconds(self) -> float | None:
        if not self.last:
            return None
        return sum(self.last[pid] - self.first.get(pid, 0.0) for pid in self.last)


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


@dataclass
class PgbenchRun:
    tps: float
    transactions: int
    cpu: float  # seconds: pgbench itself and the backends serving it

    @property
    def cpu_ms_per_tx(self) -> float | None:
        return 1000 * self.cpu / self.transactions if self.transactions else None


def _run_pgbench(args: list[str], env: dict[str, str], url: str) -> PgbenchRun | None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with BackendCPU(url) as server:
        result = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    count = re.search(r"number of transactions actually processed: (\d+)", result.stdout)
    if tps is None or count is None:
        return None
    return PgbenchRun(float(tps.group(1)), int(count.group(1)), client + (server.seconds() or 0))


def pgbench_simple_update(url: str, clients: int, seconds: int) -> PgbenchRun | None:
    """pgbench's built-in ``simple-update`` (the goal's baseline) in a scratch database."""
    if shutil.which("pgbench") is None:
        log("pgbench not found")
        return None
    target = _recreate_pg_database(url, PGBENCH_DB)
    conn, env = _pgbench_conn(target)
    try:
        subprocess.run(
            ["pgbench", *conn, "-i", "-q", "-s", "1", PGBENCH_DB],
            check=True,
            capture_output=True,
            env=env,
        )
        return _run_pgbench(
            [
                "pgbench",
                *conn,
                *("-b", "simple-update", "-c", str(clients), "-j", "2"),
                *("-T", str(seconds), PGBENCH_DB),
            ],
            env,
            target,
        )
    finally:
        _drop_pg_database(url, PGBENCH_DB)


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


def pgbench_same_sql(
    url: str, clients: int, seconds: int, contention: str, locations: list[str]
) -> PgbenchRun | None:
    """pgbench (its C client, prepared statements) sending our reservation statement itself,
    each in its own transaction, on our benchmark database: what the database does with the
    same work when the client costs next to nothing."""
    if shutil.which("pgbench") is None:
        return None
    conn, env = _pgbench_conn(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(_same_sql_script(contention, locations))
        script.flush()
        return _run_pgbench(
            [
                "pgbench",
                *conn,
                *("-n", "-M", "prepared", "-c", str(clients), "-j", "2"),
                *("-T", str(seconds), "-f", script.name, str(make_url(url).database)),
            ],
            env,
            url,
        )


# --- one backend ----------------------------------------------------------------------------


def _cpu_ms(phase: Phase) -> dict[str, float | None]:
    """CPU per reservation: the client processes and (PostgreSQL) the backends serving them.
    Unlike throughput, CPU time hardly depends on what else runs on the machine."""
    if not phase.done:
        return {}
    client = 1000 * phase.client_cpu / phase.done
    server = None if phase.server_cpu is None else 1000 * phase.server_cpu / phase.done
    return {
        "cpu_ms_per_reservation": round(client + (server or 0), 3),
        "client_cpu_ms_per_reservation": round(client, 3),
        "server_cpu_ms_per_reservation": None if server is None else round(server, 3),
    }


def bench_backend(
    backend: str, url: str, workers: int, processes: int, seconds: float, last_units: int
) -> list[dict[str, Any]]:
    threads = workers // processes
    log(f"== {backend}: setup ({processes} processes x {threads} connections, {seconds:.0f} s)")
    load_before = os.getloadavg()[0]
    locs = setup(url, workers, last_units)["locations"]
    metrics: dict[str, dict[str, Any]] = {}
    pgbench_runs: list[PgbenchRun] = []
    postgres = backend == "postgresql"
    if postgres:
        # pgbench before and after our phases: the mean is fairer on a machine whose load
        # drifts (other processes share the cores).
        log("pgbench simple-update (before) ...")
        run = pgbench_simple_update(url, workers, int(seconds))
        pgbench_runs += [run] if run else []
        log(f"pgbench: {run.tps if run else 0:.0f} tps")
    for contention in ("high", "none"):
        phase = run_phase(url, contention, processes, threads, locs, seconds)
        rate = phase.done / phase.elapsed
        log(f"{backend} {contention}: {phase.done} in {phase.elapsed:.1f} s = {rate:.0f}/s")
        metrics[contention] = {
            "reservations_per_s": round(rate, 1),
            "errors": phase.errors,
            **_cpu_ms(phase),
        }
    last = run_phase(url, "last", processes, threads, locs, max(seconds, 30))
    held, lines = held_units(url, "LAST")
    oversells = max(0, last.done - last_units) + abs(held - lines) + max(0, held - last_units)
    log(f"{backend} last {last_units} units: {last.done} reserved, held {held}, lines {lines}")
    naive = run_phase(url, "naive", processes, threads, locs, max(seconds, 30))
    naive_oversells = max(0, naive.done - last_units)
    log(f"{backend} naive: {naive.done} reservations promised for {last_units} units")
    metrics["high"].update(
        {
            "oversells": oversells,
            "naive_oversells": naive_oversells,
            "sold_out_units": last_units,
            "errors": metrics["high"]["errors"] + last.errors,
        }
    )
    metrics["none"]["oversells"] = 0
    if postgres:
        for contention in ("high", "none"):
            same = pgbench_same_sql(url, workers, int(seconds), contention, locs)
            log(f"pgbench with our statement, {contention}: {same.tps if same else 0:.0f} tps")
            m = metrics[contention]
            m["pgbench_same_sql_tps"] = None if same is None else round(same.tps, 1)
            m["ratio_vs_pgbench_same_sql"] = (
                None if not same else round(m["reservations_per_s"] / same.tps, 3)
            )
            cpu = same.cpu_ms_per_tx if same else None
            m["pgbench_same_sql_cpu_ms_per_tx"] = None if cpu is None else round(cpu, 3)
        log("pgbench simple-update (after) ...")
        run = pgbench_simple_update(url, workers, int(seconds))
        pgbench_runs += [run] if run else []
        log(f"pgbench: {run.tps if run else 0:.0f} tps")
    tps = sum(r.tps for r in pgbench_runs) / len(pgbench_runs) if pgbench_runs else None
    costs = [c for r in pgbench_runs if (c := r.cpu_ms_per_tx)]
    pgbench_cpu = sum(costs) / len(costs) if costs else None
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    lines_out = []
    for contention in ("high", "none"):
        m = metrics[contention]
        goal: dict[str, str] = {"oversells": "== 0"}
        if postgres:
            m["pgbench_tps"] = None if tps is None else round(tps, 1)
            m["pgbench_tps_runs"] = [round(r.tps, 1) for r in pgbench_runs]
            m["ratio_vs_pgbench"] = None if not tps else round(m["reservations_per_s"] / tps, 3)
            m["pgbench_cpu_ms_per_tx"] = None if pgbench_cpu is None else round(pgbench_cpu, 3)
            # The throughput ratio that the CPU costs imply when both sides are CPU-bound:
            # pgbench's CPU per transaction over ours per reservation.
            ours = m.get("cpu_ms_per_reservation")
            m["ratio_cpu_vs_pgbench"] = (
                None if not (ours and pgbench_cpu) else round(pgbench_cpu / ours, 3)
            )
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
        "--processes",
        type=int,
        default=2,
        help="client processes sharing the connections (pgbench runs 2 threads: -j 2)",
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
