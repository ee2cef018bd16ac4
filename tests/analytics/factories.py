"""Small builders for analytics tests: a hand-made dataset with values worked out by hand,
Online Retail CSV text, and the path of the real file (never copied into the repository)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omniretail.analytics import service
from omniretail.analytics.facts import FactLine
from omniretail.analytics.models import (
    CustomerDim,
    ImportRun,
    OrderFact,
    ProductDim,
    SalesLine,
)
from omniretail.demo.generator import HEADER, generate_invoice_rows, generate_products

ROOT = Path(__file__).resolve().parents[2]
REAL_FILE = ROOT / ".." / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
REAL_FILE_MISSING = (
    f"the Online Retail file is not at {REAL_FILE.resolve()} (../shared/data from the repo root)"
)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def sale(
    session: Session,
    ref: str,
    customer: str | None,
    day: date,
    lines: Sequence[tuple[str, int, int]],
    channel: str = "web",
    location: str | None = None,
    service_lines: Sequence[tuple[str, int, int]] = (),
    session_key: str | None = None,
) -> None:
    """A sale of ``(sku, quantity, unit price in pence)`` lines."""
    service.record_sale_fact(
        session,
        order_ref=ref,
        occurred_at=at(day),
        channel=channel,
        location=location,
        customer_key=customer,
        lines=[FactLine(s, q, p) for s, q, p in lines]
        + [FactLine(s, q, p, line_type="service") for s, q, p in service_lines],
        session_key=session_key,
    )


def handmade(session: Session) -> None:
    """The first quarter of 2024 of a small shop (values in the tests are worked by hand).

    | order | customer | day        | channel | lines (qty × pence)        | revenue | units |
    |-------|----------|------------|---------|----------------------------|---------|-------|
    | o1    | A        | 2024-01-05 | web     | SKU1 2×500, SKU2 1×1000    | 2000    | 3     |
    | o2    | B        | 2024-01-20 | store   | SKU1 1×500                 | 500     | 1     |
    | o3    | A        | 2024-02-03 | app     | SKU3 4×250                 | 1000    | 4     |
    | o4    | C        | 2024-02-10 | web     | SKU2 2×1000 (+ POST 1×300) | 2000    | 2     |
    | o5    | guest    | 2024-02-15 | web     | SKU1 1×500                 | 500     | 1     |
    | o6    | A        | 2024-03-01 | store   | SKU1 2×500                 | 1000    | 2     |
    | o7    | C        | 2024-03-12 | web     | SKU3 1×250                 | 250     | 1     |
    | o8    | D        | 2024-03-20 | web     | SKU2 1×1000                | 1000    | 1     |
    | o9    | B        | 2024-03-25 | web     | SKU1 1×500, then cancelled | –       | –     |
    | r1    | A        | 2024-03-05 | store   | return of SKU1 1×500       | −500    | −1    |

    Four tracked sessions in January and February; o1 and o4 came from s1 and s3."""
    for key, day in [("s1", date(2024, 1, 5)), ("s2", date(2024, 1, 6))]:
        service.record_session_fact(session, session_key=key, channel="web", started_at=at(day, 10))
    for key, day in [("s3", date(2024, 2, 10)), ("s4", date(2024, 2, 11))]:
        service.record_session_fact(session, session_key=key, channel="web", started_at=at(day, 10))
    sale(
        session,
        "o1",
        "A",
        date(2024, 1, 5),
        [("SKU1", 2, 500), ("SKU2", 1, 1000)],
        session_key="s1",
    )
    sale(session, "o2", "B", date(2024, 1, 20), [("SKU1", 1, 500)], channel="store")
    sale(session, "o3", "A", date(2024, 2, 3), [("SKU3", 4, 250)], channel="app")
    sale(
        session,
        "o4",
        "C",
        date(2024, 2, 10),
        [("SKU2", 2, 1000)],
        service_lines=[("POST", 1, 300)],
        session_key="s3",
    )
    sale(session, "o5", None, date(2024, 2, 15), [("SKU1", 1, 500)])
    sale(session, "o6", "A", date(2024, 3, 1), [("SKU1", 2, 500)], channel="store")
    sale(session, "o7", "C", date(2024, 3, 12), [("SKU3", 1, 250)])
    sale(session, "o8", "D", date(2024, 3, 20), [("SKU2", 1, 1000)])
    sale(session, "o9", "B", date(2024, 3, 25), [("SKU1", 1, 500)])
    service.record_cancellation_fact(session, order_ref="o9")
    service.record_return_fact(
        session,
        return_ref="r1",
        occurred_at=at(date(2024, 3, 5)),
        channel="store",
        customer_key="A",
        lines=[FactLine("SKU1", 1, 500)],
        original_order_ref="o1",
    )


Q1 = {"start": date(2024, 1, 1), "end": date(2024, 4, 1)}


# --- Online Retail CSV ----------------------------------------------------------------------


def csv_text(rows: Iterable[Sequence[str]], header: Sequence[str] = HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def row(
    invoice: str,
    code: str,
    qty: str,
    when: str,
    price: str,
    customer: str = "12346",
    description: str = "WHITE HEART MUG",
    country: str = "United Kingdom",
) -> list[str]:
    return [invoice, code, description, qty, when, price, customer, country]


def generated_rows(invoices: int = 120, products: int = 40, seed: int = 7) -> list[list[str]]:
    return list(
        generate_invoice_rows(generate_products(products, seed), invoices=invoices, seed=seed + 4)
    )


def multichannel_rows(invoices: int = 400, seed: int = 5) -> list[list[str]]:
    """Generated invoices with a Channel column: each customer prefers one channel and uses
    one or two others now and then (so some customers are on 1, 2 and 3 channels)."""
    import random

    rng = random.Random(seed)
    channels = ["web", "app", "store"]
    out = []
    for r in generated_rows(invoices=invoices, seed=seed):
        customer = r[6]
        if customer:
            home = channels[(int(customer) // 3) % 3]
            chosen = home if rng.random() < 0.7 else rng.choice(channels)
        else:
            chosen = "web"
        out.append([*r, chosen])
    # one channel per invoice: use the channel of its first row
    first: dict[str, str] = {}
    for r in out:
        first.setdefault(r[0], r[8])
        r[8] = first[r[0]]
    return out


MULTICHANNEL_HEADER = [*HEADER, "Channel"]


def counts(session: Session) -> dict[str, int]:
    """Row counts a failed import must leave unchanged."""
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for name, model in [
            ("lines", SalesLine),
            ("orders", OrderFact),
            ("customers", CustomerDim),
            ("products", ProductDim),
            ("runs", ImportRun),
        ]
    }
