"""Checkout ``complete`` for 10-line carts: SQL statements per complete and latency.

Builds its own data in a temporary SQLite file and, when reachable, in a PostgreSQL database
(``OMNI_BENCH_DATABASE_URL``, default ``postgresql://postgres@127.0.0.1:5432/test_order_bench``,
created if missing, schema rebuilt), then completes many 10-line carts through the real HTTP
route (``POST /api/v1/carts/{id}/complete`` with a publishable key, the cart token and an
Idempotency-Key; in-process ASGI client), counting statements with a SQLAlchemy
``before_cursor_execute`` listener.

Baseline measured in the same run: a naive per-line ``complete`` (one price lookup, one
reservation allocation and one ORM insert per line, the shape of a first implementation) on
identical carts, at the service level.

Prints one JSON object per backend on stdout; progress goes to stderr.

    .venv/bin/python bench/checkout.py [--quick] [--carts 200]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("OMNI_LOG_LEVEL", "WARNING")

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url

from omniretail.all_models import metadata
from omniretail.api import create_app
from omniretail.catalog import service as catalog
from omniretail.core import auth
from omniretail.core.db import Database, make_engine
from omniretail.core.events import emit
from omniretail.core.ids import new_id
from omniretail.core.timeutil import utcnow
from omniretail.inventory import service as inventory
from omniretail.order import payments as pay
from omniretail.order import rates, service
from omniretail.order.domain import TenderRequest
from omniretail.order.models import Cart, Order, OrderLine
from omniretail.pricing import service as pricing
from omniretail.pricing.service import PriceInput

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test_order_bench"
LINES = 10
SKUS = [f"BENCH-{i:02d}" for i in range(LINES)]
ADDRESS = {
    "name": "Bench Shopper",
    "line1": "1 Test Street",
    "city": "London",
    "postal_code": "EC1A 1BB",
    "country": "GB",
}
STAFF = service.Access.staff_member()
GOALS = {"statements_per_complete": "<= 30", "p95_ms": "<= 50 (SQLite)"}

CONTEXT_TABLES = {
    "inventory": ("stock_levels", "reservations", "reservation_lines", "stock_ledger"),
    "pricing": ("price_books", "prices", "promotions", "coupons", "channel_price_books"),
    "catalog": ("variants", "products", "product_categories", "categories", "channels"),
    "core": ("api_keys", "idempotency_keys", "users", "auth_tokens"),
}


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def classify(statement: str) -> str:
    words = statement.split()
    if not words:
        return "other"
    head = words[0].upper()
    if head in ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT"):
        return "transaction"
    match = re.search(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", statement, re.IGNORECASE)
    table = match.group(1) if match else ""
    for context, tables in CONTEXT_TABLES.items():
        if table in tables:
            return context
    return "order"


@contextmanager
def counting(engine: Engine):  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# --- data -----------------------------------------------------------------------------------


def seed(db: Database, carts: int) -> dict[str, Any]:
    with db.unit_of_work() as s:
        channel = catalog.create_channel(
            s, code="web", name="Web", type="web", currency="GBP", country="GB", locale="en-GB"
        )
        book = pricing.create_price_book(s, code="gbp", name="GBP", currency="GBP")
        pricing.assign_price_book(s, book.id, channel.id)
        catalog.create_product(
            s, title="Bench", variants=[{"sku": sku, "title": sku} for sku in SKUS]
        )
        pricing.upsert_prices(s, book.id, [PriceInput(sku, 1000 + i) for i, sku in enumerate(SKUS)])
        wh = inventory.create_location(
            s,
            code="wh",
            name="Warehouse",
            type="warehouse",
            timezone="Europe/London",
            capabilities=["ship"],
            address={"country": "GB"},
        )
        inventory.record_movement(
            s, location_id=wh.id, reason="receipt", lines=[(sku, 10 * carts + 100) for sku in SKUS]
        )
        rates.set_tax_rate(s, country="GB", region=None, rate_bp=2000, inclusive=True)
        rates.set_shipping_rate(s, method="standard", amount=495, free_over=50_000)
        key, _ = auth.create_api_key(s, "bench web", "channel", channel.id)
    return {"channel": channel.id, "key": key}


def make_carts(db: Database, count: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(count):
        with db.unit_of_work() as s:
            cart, token = service.create_cart(
                s, STAFF, channel="web", lines=[(sku, 1) for sku in SKUS]
            )
            service.set_checkout(
                s,
                cart.id,
                STAFF,
                email="bench@example.com",
                shipping_address=ADDRESS,
                delivery=[{"method": "standard"}],
            )
            out.append((cart.id, token))
    return out


def make_naive_carts(db: Database, count: int) -> list[tuple[str, list[str]]]:
    """Carts held line by line: one reservation per line (the naive shape)."""
    out = []
    for _ in range(count):
        with db.unit_of_work() as s:
            cart, _ = service.create_cart(s, STAFF, channel="web")
            holds = [
                inventory.reserve(s, [(sku, 1)], channel="web", reference=cart.id).id
                for sku in SKUS
            ]
            cart.lines = [{"sku": sku, "quantity": 1} for sku in SKUS]
            out.append((cart.id, holds))
    return out


def naive_complete(db: Database, cart_id: str, holds: list[str]) -> None:
    """The per-line baseline: every line priced, allocated and inserted on its own."""
    with db.unit_of_work() as s:
        cart = s.get(Cart, cart_id, with_for_update=True)
        assert cart is not None and cart.status == "active"
        channel = catalog.get_channel(s, cart.channel_id)
        order_id = new_id("ord")
        priced = []
        for line in cart.lines:
            facts = catalog.require_variants(s, [line["sku"]])[line["sku"]]
            price = pricing.resolve_price(s, channel, line["sku"], line["quantity"])
            assert price.winner is not None
            priced.append((line, facts, price.winner.amount))
        for rid in holds:
            inventory.allocate_reservation(s, rid, order_reference=order_id)
        total = sum(p * line["quantity"] for line, _, p in priced)
        now = utcnow()
        s.add(
            Order(
                id=order_id,
                source="online",
                channel_id=channel.id,
                status="allocated",
                currency=channel.currency,
                subtotal=total,
                discount_total=0,
                shipping_total=0,
                tax_total=0,
                total=total,
                delivery=[],
                coupons=[],
                fraud_score=0,
                fraud_reasons=[],
                history=[],
                version=1,
                placed_at=now,
                updated_at=now,
            )
        )
        s.flush()
        for position, (line, facts, p) in enumerate(priced):
            s.add(
                OrderLine(
                    id=new_id("oln"),
                    order_id=order_id,
                    position=position,
                    group_id="g1",
                    sku=line["sku"],
                    variant_id=facts.variant_id,
                    title=facts.title,
                    quantity=line["quantity"],
                    unit_price=p,
                    subtotal=p * line["quantity"],
                    discount=0,
                    tax=0,
                    total=p * line["quantity"],
                    allocations=[],
                )
            )
            s.flush()
        payments = pay.authorize_tenders(
            s,
            order_id=order_id,
            currency=channel.currency,
            allocations=[(TenderRequest("card", None, "tok_visa"), total)],
            customer_id=None,
            allowed=pay.ONLINE_TENDERS,
            now=now,
        )
        s.add_all(payments)
        emit(s, "order.placed", {"order_id": order_id}, order_id)
        cart.status, cart.order_id = "ordered", order_id


# --- one backend ----------------------------------------------------------------------------


def run_backend(name: str, url: str, carts: int, warmup: int) -> dict[str, Any]:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":  # a clean schema for this run
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    metadata.create_all(engine)
    db = Database(engine)
    info = seed(db, 2 * (carts + warmup))
    log(f"[{name}] preparing {carts + warmup} carts of {LINES} lines (and as many naive ones)")
    ours = make_carts(db, carts + warmup)
    naive = make_naive_carts(db, carts + warmup)
    headers = {"Authorization": f"Bearer {info['key']}"}
    latencies: list[float] = []
    cpu: list[float] = []
    counts: list[int] = []
    contexts: Counter[str] = Counter()
    load_before = os.getloadavg()[0]
    with TestClient(create_app(db)) as client:
        for n, (cart_id, token) in enumerate(ours):
            body = {"tenders": [{"type": "card", "token": "tok_visa"}]}
            with counting(engine) as seen:
                started, cpu_started = time.perf_counter(), time.process_time()
                response = client.post(
                    f"/api/v1/carts/{cart_id}/complete",
                    json=body,
                    headers={**headers, "X-Cart-Token": token, "Idempotency-Key": f"bench-{n}"},
                )
                elapsed = (time.perf_counter() - started) * 1000
                cpu_ms = (time.process_time() - cpu_started) * 1000
            if response.status_code != 201:
                raise RuntimeError(f"complete failed: {response.status_code} {response.text}")
            if n >= warmup:
                latencies.append(elapsed)
                cpu.append(cpu_ms)
                counts.append(len(seen))
                contexts.update(classify(st) for st in seen)
    naive_latencies: list[float] = []
    naive_counts: list[int] = []
    for n, (cart_id, holds) in enumerate(naive):
        with counting(engine) as seen:
            started = time.perf_counter()
            naive_complete(db, cart_id, holds)
            elapsed = (time.perf_counter() - started) * 1000
        if n >= warmup:
            naive_latencies.append(elapsed)
            naive_counts.append(len(seen))
    engine.dispose()
    per = statistics.mean(counts)
    by_context = {k: round(v / len(counts), 1) for k, v in sorted(contexts.items())}
    metrics = {
        "statements_per_complete": round(per, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "cpu_p50_ms": round(percentile(cpu, 0.50), 2),
        "cpu_p95_ms": round(percentile(cpu, 0.95), 2),
        "load_avg_1m": round(load_before, 2),
        "statements_by_context": by_context,
        "statements_order_context": by_context.get("order", 0.0),
        "naive_statements_per_complete": round(statistics.mean(naive_counts), 1),
        "naive_p50_ms": round(percentile(naive_latencies, 0.50), 2),
        "naive_p95_ms": round(percentile(naive_latencies, 0.95), 2),
        "ratio_naive_over_ours_statements": round(statistics.mean(naive_counts) / per, 2),
        "ratio_naive_over_ours_p95": round(
            percentile(naive_latencies, 0.95) / percentile(latencies, 0.95), 2
        ),
        "completes": len(counts),
    }
    return {
        "bench": "checkout",
        "case": {"backend": name, "cart_lines": LINES},
        "metrics": metrics,
        "goal": GOALS,
    }


def pg_url() -> str:
    return os.environ.get("OMNI_BENCH_DATABASE_URL", DEFAULT_PG)


def ensure_pg_database(url: str) -> None:
    parsed = make_url(url)
    admin_url = parsed.set(drivername="postgresql+psycopg", database="postgres")
    admin = create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
            ).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer carts")
    parser.add_argument("--carts", type=int, default=None, help="completes measured per backend")
    args = parser.parse_args()
    carts = args.carts or (30 if args.quick else 200)
    warmup = 5
    with tempfile.TemporaryDirectory(prefix="omni-bench-checkout-") as tmp:
        path = Path(tmp) / "bench.db"
        print(json.dumps(run_backend("sqlite", f"sqlite:///{path}", carts, warmup)), flush=True)
    url = pg_url()
    try:
        ensure_pg_database(url)
    except Exception as exc:  # unreachable server, no permission
        log(f"[postgresql] skipped: {exc}")
        print(
            json.dumps(
                {
                    "bench": "checkout",
                    "case": {"backend": "postgresql", "cart_lines": LINES},
                    "skipped": f"PostgreSQL unreachable at {make_url(url).render_as_string()}: "
                    f"{type(exc).__name__}",
                    "goal": GOALS,
                }
            ),
            flush=True,
        )
        return
    print(json.dumps(run_backend("postgresql", url, carts, warmup)), flush=True)


if __name__ == "__main__":
    main()
