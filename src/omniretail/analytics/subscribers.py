"""Outbox subscribers: orders, POS sales, returns, cancellations and tracked sessions of the
other contexts become analytics facts. Handlers are idempotent (facts are keyed by source
and reference), so a redelivered event changes nothing. A payload that cannot be a fact
(no lines, no time) is logged and skipped rather than retried: it would fail the same way
every time.

Payloads (as the order context emits them; times ISO-8601 with an offset, money in minor
units):

* ``order.placed`` and ``pos.sale`` (``order.service.order_payload``): ``order_id``,
  ``occurred_at``, ``channel`` (code) or ``channel_id``, ``customer_id`` (null for guests),
  ``currency``, ``shipping_minor``, ``location_id`` (POS), ``session_id`` (optional) and
  ``lines[{sku, quantity, unit_price_minor, discount_minor, location_id}]``. Both are
  recorded under source ``order``, so one order is never counted twice. A line's value is
  quantity × unit price − discount, as priced (tax-inclusive prices stay inclusive; tax added
  on top is not revenue); shipping becomes a ``SHIPPING`` service line; each line keeps the
  location it was allocated to (a location id).
* ``return.received``: ``return_id``, ``order_id``, ``occurred_at``, ``channel_id``,
  ``location_id``, ``customer_id``, ``currency``, ``amount_minor`` and
  ``lines[{sku, quantity}]``; unit prices come from the original order's facts, else the
  refunded amount is spread over the units.
* ``order.cancelled``: ``order_id``.
* ``tracking.session.started`` (the customer context's tracking ingest): ``session_id``,
  ``channel`` (the source kind: web, app, pos, server), ``started_at``, ``customer_id``.
* ``tracking.order.completed`` (a tracked Segment ``Order Completed``): ``order_id``,
  ``occurred_at``, ``channel``, ``customer_id``, ``session_id`` (null when the tracking batch
  did not know the session); it converts a session, it is not a sale.

An order that names no session converts its customer's latest tracked session within the
attribution window (``facts.record_sale_fact``), so conversion needs no session id on orders;
a guest order converts the latest session of the visitor its cart's tracking ``anonymous_id``
belongs to.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omniretail.analytics import facts
from omniretail.analytics.domain import Kind
from omniretail.analytics.models import OrderFact, SalesLine
from omniretail.core import events
from omniretail.core.errors import AppError
from omniretail.core.models import OutboxEvent
from omniretail.core.money import allocate
from omniretail.customer import service as customers

log = logging.getLogger("omniretail.analytics")
SOURCE = "order"


class Skip(Exception):
    """The event carries no fact for analytics."""


def _time(payload: dict[str, Any], *names: str) -> datetime:
    for name in names:
        value = payload.get(name)
        if value:
            try:
                return datetime.fromisoformat(str(value))
            except ValueError:
                raise Skip(f"{name} is not an ISO time: {value!r}") from None
    raise Skip(f"no {' or '.join(names)}")


def _ref(payload: dict[str, Any], *names: str) -> str:
    for name in names:
        if payload.get(name):
            return str(payload[name])
    raise Skip(f"no {' or '.join(names)}")


def _customer(payload: dict[str, Any]) -> str | None:
    value = payload.get("customer_id")
    return str(value) if isinstance(value, str | int) and value != "" else None


def _channel(session: Session, payload: dict[str, Any], fallback: str | None = None) -> str:
    if payload.get("channel"):
        return str(payload["channel"])
    channel_id = payload.get("channel_id")
    if channel_id:
        from omniretail.catalog import service as catalog

        try:
            return catalog.get_channel(session, str(channel_id)).code
        except AppError:
            return str(channel_id)
    if fallback:
        return fallback
    raise Skip("no channel")


def _handle(event: OutboxEvent, record: Any) -> None:
    try:
        record()
    except Skip as reason:
        log.info("event %s (%s) skipped: %s", event.id, event.topic, reason)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("event %s (%s) has a malformed line: %r", event.id, event.topic, exc)
    except AppError as exc:
        if exc.status >= 500:
            raise
        log.warning("event %s (%s) is not a valid fact: %s", event.id, event.topic, exc.message)


def on_sale(session: Session, event: OutboxEvent) -> None:
    payload = dict(event.payload or {})

    def record() -> None:
        raw = payload.get("lines")
        if not raw:
            raise Skip("no lines")
        lines: list[facts.FactLine] = []
        for line in raw:
            quantity = int(line["quantity"])
            price = int(line.get("unit_price_minor") or 0)
            discount = int(line.get("discount_minor") or 0)
            lines.append(
                facts.FactLine(
                    sku=str(line["sku"]),
                    quantity=quantity,
                    unit_price_minor=price,
                    amount_minor=max(0, quantity * price - discount),
                    location=line.get("location_id"),
                )
            )
        shipping = int(payload.get("shipping_minor") or 0)
        if shipping > 0:
            lines.append(facts.FactLine("SHIPPING", 1, shipping, line_type="service"))
        facts.record_sale_fact(
            session,
            order_ref=_ref(payload, "order_id", "id"),
            occurred_at=_time(payload, "occurred_at", "placed_at"),
            channel=_channel(session, payload),
            location=payload.get("location_id"),
            customer_key=_customer(payload),
            currency=str(payload.get("currency") or "GBP"),
            lines=lines,
            source=SOURCE,
            session_key=payload.get("session_id"),
            visitor_key=_visitor(session, payload),
        )

    _handle(event, record)


def _visitor(session: Session, payload: dict[str, Any]) -> str | None:
    """A guest order's tracked visitor: the person behind the cart's tracking anonymous id."""
    anonymous_id = payload.get("anonymous_id")
    if payload.get("customer_id") or not isinstance(anonymous_id, str) or not anonymous_id:
        return None
    return customers.find_customer_id(session, "anonymous_id", anonymous_id)


def _original_prices(session: Session, order_ref: str | None) -> dict[str, int]:
    if not order_ref:
        return {}
    rows = session.execute(
        select(SalesLine.sku, SalesLine.unit_price_minor).where(
            SalesLine.order_ref == order_ref, SalesLine.kind == Kind.SALE.value
        )
    )
    return {sku: price for sku, price in rows}


def on_return(session: Session, event: OutboxEvent) -> None:
    payload = dict(event.payload or {})

    def record() -> None:
        raw = payload.get("lines")
        if not raw:
            raise Skip("no lines")
        original = payload.get("order_id")
        prices = _original_prices(session, original)
        known: dict[str, int] = {}
        for line in raw:
            known[str(line["sku"])] = known.get(str(line["sku"]), 0) + int(line["quantity"])
        amounts: dict[str, int] = {}
        if all("unit_price_minor" in line or str(line["sku"]) in prices for line in raw):
            for line in raw:
                sku = str(line["sku"])
                price = int(line.get("unit_price_minor", prices.get(sku, 0)))
                amounts[sku] = amounts.get(sku, 0) + int(line["quantity"]) * price
        else:  # spread the refunded amount over the units
            shares = allocate(int(payload.get("amount_minor") or 0), list(known.values()))
            amounts = dict(zip(known, shares, strict=True))
        bought_on = session.scalar(
            select(OrderFact.channel).where(OrderFact.order_ref == (original or "")).limit(1)
        )
        facts.record_return_fact(
            session,
            return_ref=_ref(payload, "return_id", "id"),
            occurred_at=_time(payload, "occurred_at", "received_at"),
            channel=_channel(session, payload, fallback=bought_on),
            location=payload.get("location_id"),
            customer_key=_customer(payload),
            currency=str(payload.get("currency") or "GBP"),
            lines=[
                facts.FactLine(
                    sku=sku,
                    quantity=quantity,
                    unit_price_minor=amounts[sku] // quantity if quantity else 0,
                    amount_minor=amounts[sku],
                )
                for sku, quantity in known.items()
            ],
            source=SOURCE,
            original_order_ref=original,
        )

    _handle(event, record)


def on_cancel(session: Session, event: OutboxEvent) -> None:
    payload = dict(event.payload or {})
    _handle(
        event,
        lambda: facts.record_cancellation_fact(
            session, order_ref=_ref(payload, "order_id", "id"), source=SOURCE
        ),
    )


def on_session(session: Session, event: OutboxEvent) -> None:
    payload = dict(event.payload or {})
    _handle(
        event,
        lambda: facts.record_session_fact(
            session,
            session_key=_ref(payload, "session_id", "id"),
            channel=_channel(session, payload),
            started_at=_time(payload, "started_at", "occurred_at"),
            customer_key=_customer(payload),
        ),
    )


def on_tracked_order(session: Session, event: OutboxEvent) -> None:
    payload = dict(event.payload or {})
    _handle(
        event,
        lambda: facts.record_tracked_order(
            session,
            order_ref=_ref(payload, "order_id"),
            occurred_at=_time(payload, "occurred_at"),
            channel=_channel(session, payload),
            customer_key=_customer(payload),
            session_key=payload.get("session_id") or None,
        ),
    )


HANDLERS = {
    "order.placed": on_sale,
    "pos.sale": on_sale,
    "return.received": on_return,
    "order.cancelled": on_cancel,
    "tracking.session.started": on_session,
    "tracking.order.completed": on_tracked_order,
}


def register() -> None:
    for topic, handler in HANDLERS.items():
        events.subscribe(topic)(handler)
