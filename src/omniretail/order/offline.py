"""The reference offline register: rings sales up into a local queue (a JSON file) with the
register's own ids and sequence numbers, and syncs the queue to a server when it is reachable.

Queue file::

    {"register_id": "reg_...", "next_sequence": 4,
     "sales": [{"client_id": "<uuid>", "sequence": 1, "sold_at": "...", "lines": [...],
                "tenders": [...], "total": 2400}, ...],
     "acknowledged": ["<uuid>", ...]}

A sale stays in the file after it is acknowledged, so a batch can be replayed on purpose
(``--all``); the server ignores what it already has.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx


@dataclass(frozen=True)
class Item:
    sku: str
    price: int  # minor units, tax included (what the shelf label says)


def parse_item(value: str) -> Item:
    sku, sep, price = value.rpartition(":")
    if not sep or not sku or not price.isdigit():
        raise ValueError(f"items look like SKU:PRICE (minor units), not {value!r}")
    return Item(sku, int(price))


def load_queue(path: Path, register_id: str | None) -> dict[str, Any]:
    if path.exists():
        queue: dict[str, Any] = json.loads(path.read_text())
        if register_id and queue.get("register_id") != register_id:
            raise ValueError(f"{path} belongs to register {queue.get('register_id')}")
        return queue
    if not register_id:
        raise ValueError("a new queue needs --register")
    return {"register_id": register_id, "next_sequence": 1, "sales": [], "acknowledged": []}


def save_queue(path: Path, queue: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(queue, indent=1))
    tmp.replace(path)


def ring_up(
    queue: dict[str, Any], items: Sequence[Item], count: int, seed: int, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Ring up ``count`` sales (1-2 items each, paid in cash or on the card terminal) and
    append them to the queue."""
    if not items:
        raise ValueError("give at least one --item SKU:PRICE")
    made = []
    for _ in range(count):
        seq = int(queue["next_sequence"])
        rnd = random.Random(seed * 1_000_003 + seq)
        picked = rnd.sample(list(items), k=min(len(items), rnd.choice([1, 2])))
        quantities = [rnd.choice([1, 1, 2]) for _ in picked]
        lines = [
            {"sku": i.sku, "quantity": q, "unit_price": i.price}
            for i, q in zip(picked, quantities, strict=True)
        ]
        total = sum(q * i.price for i, q in zip(picked, quantities, strict=True))
        if seq % 2:
            tendered = -(-total // 500) * 500
            tenders = [{"type": "cash", "tendered": tendered}]
        else:
            tenders = [{"type": "card_terminal", "reference": f"OFF-{seq:06d}"}]
        sale = {
            "client_id": str(uuid.uuid4()),
            "sequence": seq,
            "sold_at": (now or datetime.now(UTC)).isoformat(),
            "lines": lines,
            "tenders": tenders,
            "total": total,
        }
        queue["sales"].append(sale)
        queue["next_sequence"] = seq + 1
        made.append(sale)
    return made


@dataclass
class SyncReport:
    sent: int
    created: int
    duplicates: int
    needs_review: int
    missing_sequences: list[int]
    stock_discrepancies: int


def sync_queue(
    queue: dict[str, Any],
    *,
    server: str,
    api_key: str,
    resend_all: bool = False,
    client: httpx.Client | None = None,
    batch: int = 200,
) -> SyncReport:
    """Send the queued sales (all of them with ``resend_all``) and mark what the server
    acknowledged. Raises ``httpx.HTTPError`` when the server cannot be reached."""
    acked = set(queue.get("acknowledged", []))
    pending = [s for s in queue["sales"] if resend_all or s["client_id"] not in acked]
    report = SyncReport(len(pending), 0, 0, 0, [], 0)
    own = client is None
    http = client or httpx.Client(base_url=server, timeout=30)
    try:
        for start in range(0, max(len(pending), 1), batch):
            chunk = pending[start : start + batch]
            if not chunk and start:
                break
            response = http.post(
                "/api/v1/pos/sync",
                json={"register_id": queue["register_id"], "sales": chunk},
                headers={"Authorization": f"Bearer {api_key}"},
            )
            if response.status_code != 200:
                raise httpx.HTTPStatusError(
                    f"sync refused: {response.status_code} {response.text}",
                    request=response.request,
                    response=response,
                )
            body = response.json()
            report.created += body["created"]
            report.duplicates += body["duplicates"]
            report.needs_review += body["needs_review"]
            report.missing_sequences = body["missing_sequences"]
            for item in body["items"]:
                acked.add(item["client_id"])
                report.stock_discrepancies += len(item["stock_discrepancies"])
    finally:
        if own:
            http.close()
    queue["acknowledged"] = sorted(acked)
    return report
