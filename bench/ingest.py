"""Tracking ingest throughput: real HTTP on loopback, batched clients, SQLite and PostgreSQL.

For each backend the script starts the real app (``create_app``) in a uvicorn subprocess, sends
pre-built ``/v1/batch`` bodies (100 Segment-spec events each: track, page and identify calls
of a pool of users, with unique messageIds) from several keep-alive client threads that honour
429 + Retry-After like the SDKs, then counts the stored events (``events_lost`` must be 0).
In the same run it measures a bare FastAPI endpoint that only reads and JSON-parses the same
bodies, and reports ``ratio_vs_bare_parse``.

    .venv/bin/python bench/ingest.py            # default size
    .venv/bin/python bench/ingest.py --quick    # smaller run

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

BATCH = 100
SCHEMA = "bench_ingest"
GOAL_EVENTS_PER_S = 5000


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- servers (subprocess side) -----------------------------------------------------------


def _engine_options(url: str) -> dict[str, Any]:
    return (
        {"connect_args": {"options": f"-csearch_path={SCHEMA}"}}
        if url.startswith("postgresql")
        else {}
    )


def serve_ours(url: str, port: int) -> None:
    import uvicorn

    from omniretail.api import create_app
    from omniretail.core.db import Database, make_engine

    database = Database(make_engine(url, **_engine_options(url)))
    uvicorn.run(
        create_app(database), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


def serve_bare(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    app = FastAPI()

    @app.post("/v1/batch")
    async def batch(request: Request) -> Response:
        json.loads(await request.body())
        return Response(content=b'{"success":true}', media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


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
    stats = {"ok": 0, "throttled": 0, "errors": 0, "failed": 0}
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


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args], env=env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


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


def run_case(backend: str, url: str, batches: int, users: int, clients: int) -> dict[str, Any]:
    import base64

    case = {"backend": backend, "batch_events": BATCH, "clients": clients, "users": users}
    goal = {"events_per_s": f">= {GOAL_EVENTS_PER_S}", "events_lost": "== 0"}
    try:
        key = prepare(url)
    except Exception as exc:
        return {"bench": "ingest", "case": case, "skipped": f"cannot prepare database: {exc}"}
    env = {
        **os.environ,
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
    proc = start(["--serve-ours", "--url", url, "--port", str(port)], env)
    try:
        wait_for_port(port, proc)
        blast(port, warmup, headers, clients)
        ours = blast(port, bodies, headers, clients)
    finally:
        stop(proc)
    sent = (len(bodies) + len(warmup)) * BATCH
    stored = stored_events(url)

    port = free_port()
    proc = start(["--serve-bare", "--port", str(port)], env)
    try:
        wait_for_port(port, proc)
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
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--serve-ours", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ours:
        serve_ours(args.url, args.port)
        return
    if args.serve_bare:
        serve_bare(args.port)
        return

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
        print(json.dumps(run_case(backend, url, batches, args.users, args.clients)), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
