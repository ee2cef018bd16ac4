"""Tracking ingest throughput: real HTTP on loopback, batched clients, SQLite and PostgreSQL.

For each backend the script starts the real app (``create_app``) under uvicorn with
``--workers`` worker processes (default 2: one per core of the 2-core reference machine, as a
production deployment runs N stateless API processes), sends pre-built ``/v1/batch`` bodies
(100 Segment-spec events each: track, page and identify calls of a pool of ``--users``
users, with unique messageIds) from keep-alive client threads (``--clients``, default 4 per
worker) that honour 429 + Retry-After like the SDKs, then counts the stored events
(``events_lost`` must be 0). In the same run it measures a bare FastAPI endpoint that only
reads and JSON-parses the same bodies, served the same way (same workers and clients), and
reports ``ratio_vs_bare_parse``.

What ``events_per_s`` measures: events stored per second of wall time over the whole run,
end to end (HTTP, decoding, validation, identity resolution, encryption, the events insert,
the profile projection and the commit), warm (a warm-up run first). The first
``users / 100`` batches bring first-seen people (new profiles, identifiers, data keys), the
rest known people; every event's time is the same, so each person's first event starts one
tracked session (an outbox row) and the later ones none. Clients, server workers and the
database share the machine's cores, and so does any other work on the machine: each case
also reports the CPU time per event of the server processes, of the PostgreSQL backends
serving them and of the client (from /proc), ``events_per_cpu_s`` (events per CPU second of
all three: what one idle core would sustain) and the 1-minute load average before and
after.

    .venv/bin/python bench/ingest.py            # default size
    .venv/bin/python bench/ingest.py --quick    # smaller run
    .venv/bin/python bench/ingest.py --workers 1 --backend sqlite

PostgreSQL: ``OMNI_BENCH_DATABASE_URL`` (default postgresql://postgres@127.0.0.1:5432/test); the
tables live in their own schema (``bench_ingest``), dropped and re-created at each run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import Request

BATCH = 100
SCHEMA = "bench_ingest"
GOAL_EVENTS_PER_S = 5000


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- servers (subprocess side) -----------------------------------------------------------


APPLICATION = "omni-bench-ingest"  # application_name of the server's PostgreSQL sessions


def _engine_options(url: str, application: str = "omni-bench") -> dict[str, Any]:
    if not url.startswith("postgresql"):
        return {}
    return {"connect_args": {"options": f"-csearch_path={SCHEMA}", "application_name": application}}


def _with_pid(app: Any) -> Any:
    """``GET /__pid`` answers the worker's process id (to wait until every worker serves)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/__pid":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
            return
        await app(scope, receive, send)

    return wrapped


def app_ours() -> Any:
    """The real app on ``OMNI_BENCH_SERVE_URL`` (an app factory: one per worker process)."""
    from omniretail.api import create_app
    from omniretail.core.db import Database, make_engine

    url = os.environ["OMNI_BENCH_SERVE_URL"]
    engine = make_engine(url, **_engine_options(url, APPLICATION))
    return _with_pid(create_app(Database(engine)))


def app_bare() -> Any:
    """A FastAPI endpoint that only reads and parses the body."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()

    @app.post("/v1/batch")
    async def batch(request: Request) -> Response:  # Request: module level, for FastAPI
        json.loads(await request.body())
        return Response(content=b'{"success":true}', media_type="application/json")

    return _with_pid(app)


def _listen_with_nodelay() -> None:
    """uvicorn binds the shared socket of ``--workers N`` with protocol 0, so asyncio does not
    set TCP_NODELAY on accepted connections and every keep-alive response waits ~40 ms for
    the client's delayed ACK (uvicorn issue #3149; the single-process path is not affected).
    Re-wrap the bound socket with IPPROTO_TCP, as a fixed uvicorn would."""
    from uvicorn.config import Config

    original = Config.bind_socket

    def bind_socket(self: Config) -> socket.socket:
        sock = original(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, sock.detach())
            sock.set_inheritable(True)
        return sock

    Config.bind_socket = bind_socket  # type: ignore[method-assign]


def serve(factory: str, port: int, workers: int) -> None:
    import uvicorn

    _listen_with_nodelay()
    uvicorn.run(
        f"ingest:{factory}",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


# --- client side -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def wait_for_workers(port: int, proc: subprocess.Popen[bytes], workers: int) -> None:
    """Wait until every worker process answers (each imports the app on its own)."""
    wait_for_port(port, proc, timeout=120)
    pids: set[str] = set()
    deadline = time.monotonic() + 180
    while len(pids) < workers:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"only {len(pids)} of {workers} workers answered")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("GET", "/__pid", headers={"Connection": "close"})
            pids.add(conn.getresponse().read().decode())
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)
        finally:
            conn.close()


def build_bodies(batches: int, users: int, run: str) -> list[bytes]:
    bodies = []
    n = 0
    for b in range(batches):
        events = []
        for _ in range(BATCH):
            u = n % users
            base = {
                "messageId": f"{run}-{n}",
                "anonymousId": f"anon-{run}-{u}",
                "timestamp": "2025-06-01T10:00:00.000Z",
                "context": {
                    "library": {"name": "analytics-python", "version": "2.4.0"},
                    "page": {"path": f"/p/{n % 50}", "url": f"https://shop.example/p/{n % 50}"},
                    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
                },
                "integrations": {},
            }
            kind = n % 10
            event: dict[str, Any]
            if kind == 0:
                event = {
                    **base,
                    "type": "identify",
                    "userId": f"user-{run}-{u}",
                    "traits": {"plan": "gold", "email": f"user{u}@example.org"},
                }
            elif kind < 3:
                event = {**base, "type": "page", "name": "Product", "properties": {"n": n}}
            else:
                event = {
                    **base,
                    "type": "track",
                    "event": "Product Viewed",
                    "userId": f"user-{run}-{u}" if u % 2 else None,
                    "properties": {
                        "product_id": f"prd-{n % 200}",
                        "price": 19.99,
                        "currency": "EUR",
                        "position": n % 12,
                    },
                }
            events.append(event)
            n += 1
        bodies.append(json.dumps({"batch": events, "sentAt": "2025-06-01T10:00:01.000Z"}).encode())
        del b
    return bodies


def blast(port: int, bodies: list[bytes], headers: dict[str, str], clients: int) -> dict[str, Any]:
    """Send every body once (resending on 429/5xx/errors like the SDKs); returns timings."""
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    stats: dict[str, float] = {"ok": 0, "throttled": 0, "errors": 0, "failed": 0}
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                break
            for _attempt in range(20):
                try:
                    conn.request("POST", "/v1/batch", body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    with lock:
                        stats["errors"] += 1
                    time.sleep(0.2)
                    continue
                if response.status == 200:
                    with lock:
                        stats["ok"] += 1
                    break
                if response.status == 429:
                    with lock:
                        stats["throttled"] += 1
                    time.sleep(float(response.getheader("Retry-After") or 1))
                    continue
                with lock:
                    stats["errors"] += 1
                if response.status < 500:
                    break
            else:
                with lock:
                    stats["failed"] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats["elapsed_s"] = time.perf_counter() - started
    return stats


class CPUMeter:
    """CPU seconds used while a block runs by the server (the uvicorn supervisor and its
    worker processes), by the PostgreSQL backends serving it (``application_name``; the
    server is on this machine) and by this client process, read from /proc. Processes that
    start during the block count from zero."""

    def __init__(self, server_pid: int, url: str) -> None:
        self.server_pid = server_pid
        self.url = url if url.startswith("postgresql") else None
        self.tick = os.sysconf("SC_CLK_TCK")
        self.start: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}
        self.client = 0.0

    def _cpu(self, pid: int) -> float | None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self.tick

    def _server(self) -> dict[int, float]:
        pids = [self.server_pid]
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat") as f:
                        parent = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                if parent == self.server_pid:
                    pids.append(int(name))
        return {pid: cpu for pid in pids if (cpu := self._cpu(pid)) is not None}

    def _database(self) -> dict[int, float]:
        if self.url is None:
            return {}
        from sqlalchemy import text

        from omniretail.core.db import make_engine

        engine = make_engine(self.url)
        with engine.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :app"),
                {"app": APPLICATION},
            ).scalars()
            found = {pid: cpu for pid in pids if (cpu := self._cpu(pid)) is not None}
        engine.dispose()
        return found

    def __enter__(self) -> CPUMeter:
        self.start = {"server": self._server(), "database": self._database()}
        self.client = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client = time.process_time() - self.client
        for name, now in (("server", self._server()), ("database", self._database())):
            before = self.start[name]
            self.used[name] = sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())
        self.used["client"] = self.client


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args], env=env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()  # uvicorn's supervisor stops its workers
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def prepare(url: str) -> str:
    """Create the schema and a write key; returns the key."""
    from sqlalchemy import text

    from omniretail.all_models import metadata
    from omniretail.core.db import Database, make_engine
    from omniretail.customer import tracking

    if url.startswith("postgresql"):
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        admin.dispose()
    engine = make_engine(url, **_engine_options(url))
    metadata.create_all(engine)
    with Database(engine).unit_of_work() as session:
        key, _ = tracking.create_source(session, "bench", "server")
    engine.dispose()
    return key


def stored_events(url: str) -> int:
    from sqlalchemy import func, select

    from omniretail.core.db import Database, make_engine
    from omniretail.customer.models import CustomerEvent

    engine = make_engine(url, **_engine_options(url))
    with Database(engine).unit_of_work(write=False) as session:
        count = int(session.scalar(select(func.count()).select_from(CustomerEvent)) or 0)
    engine.dispose()
    return count


def run_case(
    backend: str, url: str, batches: int, users: int, clients: int, workers: int
) -> dict[str, Any]:
    import base64

    case = {
        "backend": backend,
        "batch_events": BATCH,
        "workers": workers,
        "clients": clients,
        "users": users,
    }
    goal = {"events_per_s": f">= {GOAL_EVENTS_PER_S}", "events_lost": "== 0"}
    try:
        key = prepare(url)
    except Exception as exc:
        return {"bench": "ingest", "case": case, "skipped": f"cannot prepare database: {exc}"}
    env = {
        **os.environ,
        "OMNI_BENCH_SERVE_URL": url,
        "OMNI_LOG_LEVEL": "WARNING",
        "OMNI_PII_KEYS": os.environ.get("OMNI_PII_KEYS") or _fernet(),
        "OMNI_PII_INDEX_KEY": os.environ.get("OMNI_PII_INDEX_KEY") or uuid.uuid4().hex,
    }
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        "Content-Type": "application/json",
    }
    run = uuid.uuid4().hex[:6]
    bodies = build_bodies(batches, users, run)
    warmup = build_bodies(5, users, run + "w")

    port = free_port()
    proc = start(["--serve", "app_ours", "--port", str(port), "--workers", str(workers)], env)
    try:
        wait_for_workers(port, proc, workers)
        blast(port, warmup, headers, clients)
        load_before = load_average()
        with CPUMeter(proc.pid, url) as cpu:
            ours = blast(port, bodies, headers, clients)
        load_after = load_average()
    finally:
        stop(proc)
    sent = (len(bodies) + len(warmup)) * BATCH
    stored = stored_events(url)

    port = free_port()
    proc = start(["--serve", "app_bare", "--port", str(port), "--workers", str(workers)], env)
    try:
        wait_for_workers(port, proc, workers)
        blast(port, warmup, headers, clients)
        bare = blast(port, bodies, headers, clients)
    finally:
        stop(proc)

    events = len(bodies) * BATCH
    ours_rate = events / ours["elapsed_s"]
    bare_rate = events / bare["elapsed_s"]
    return {
        "bench": "ingest",
        "case": case,
        "metrics": {
            "events_per_s": round(ours_rate, 1),
            "events_lost": sent - stored,
            "bare_parse_events_per_s": round(bare_rate, 1),
            "ratio_vs_bare_parse": round(ours_rate / bare_rate, 3),
            "requests_throttled": ours["throttled"],
            "request_errors": ours["errors"],
            "elapsed_s": round(ours["elapsed_s"], 2),
            "server_cpu_us_per_event": round(1e6 * cpu.used["server"] / events, 1),
            "database_cpu_us_per_event": (
                round(1e6 * cpu.used["database"] / events, 1) if backend == "postgresql" else None
            ),
            "client_cpu_us_per_event": round(1e6 * cpu.used["client"] / events, 1),
            "events_per_cpu_s": round(events / sum(cpu.used.values()), 1),
            "load_average_1m_before": load_before,
            "load_average_1m_after": load_after,
        },
        "goal": goal,
    }


def _fernet() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller run")
    parser.add_argument("--batches", type=int, default=None, help="batches of 100 per case")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--clients", type=int, default=None, help="default: 4 per worker")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workers)
        return
    clients = args.clients or 4 * args.workers

    batches = args.batches or (100 if args.quick else 600)
    cases = []
    if args.backend in ("sqlite", "all"):
        path = Path(tempfile.mkdtemp(prefix="omni-bench-")) / "ingest.db"
        cases.append(("sqlite", f"sqlite:///{path}"))
    if args.backend in ("postgresql", "all"):
        cases.append(
            (
                "postgresql",
                os.environ.get(
                    "OMNI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
                ),
            )
        )
    for backend, url in cases:
        log(f"ingest: {backend}, {batches} batches of {BATCH} ...")
        result = run_case(backend, url, batches, args.users, clients, args.workers)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
