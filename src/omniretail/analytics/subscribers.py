"""Outbox subscribers: sales, returns, cancellations and tracked sessions of the other
contexts become analytics facts. Handlers are idempotent (the facts are keyed by source and
reference), so a redelivered event changes nothing.

Expected payloads (ISO-8601 times with an offset; amounts in minor units):

* ``order.placed`` (source ``order``) and ``pos.sale`` (source ``pos``)::

    {"order_id": "ord_...", "occurred_at": "...", "channel": "web", "location": "store-1",
     "customer_id": "cus_..." | null, "currency": "GBP", "session_id": "..." | null,
     "lines": [{"sku": "TEE-M", "quantity": 2, "unit_price_minor": 1500,
                "line_type": "product" | "service"}]}

* ``return.received``: ``return_id``, ``order_id`` (the original), ``occurred_at``,
  ``channel``, ``location``, ``customer_id``, ``currency``, ``lines`` (positive quantities);
* ``order.cancelled``: ``order_id``;
* ``tracking.session.started``: ``session_id``, ``channel``, ``started_at``,
  ``customer_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from omniretail.analytics import facts
from omniretail.core import events
from omniretail.core.errors import invalid
from omniretail.core.models import OutboxEvent

SALE_SOURCES = {"order.placed": "order", "pos.sale": "pos"}


def _time(payload: dict[str, Any], *names: str) -> datetime:
    for name in names:
        value = payload.get(name)
        if value:
            try:
                return datetime.fromisoformat(str(value))
            except ValueError:
                raise invalid("invalid_event", f"{name} is not an ISO time: {value!r}") from None
    raise invalid("invalid_event", f"the event has no {' or '.join(names)}")


def _ref(payload: dict[str, Any], *names: str) -> str:
    for name in names:
        if payload.get(name):
            return str(payload[name])
    raise invalid("invalid_event", f"the event has no {' or '.join(names)}")


def _customer(payload: dict[str, Any]) -> str | None:
    value = payload.get("customer_id") or payload.get("customer")
    return str(value) if isinstance(value, str | int) and value != "" else None


def on_sale(session: Session, event: OutboxEvent) -> None:
    payload = dict(event.payload or {})
    facts.record_sale_fact(
        session,
        order_ref=_ref(payload, "order_id", "id"),
        occurred_at=_time(payload, "occurred_at", "placed_at", "created_at"),
        channel=str(payload.get("channel") or "web"),
        location=payload.get("location"),
        customer_key=_customer(payload),
        currency=str(payload.get("currency") or "GBP"),
        lines=list(payload.get("lines") or []),
        source=SALE_SOURCES.get(event.topic, "order"),
        session_key=payload.get("session_id"),
    )


def on_return(session: Session, event: OutboxEvent) -> None:
    payload = dict(event.payload or {})
    facts.record_return_fact(
        session,
        return_ref=_ref(payload, "return_id", "id"),
        occurred_at=_time(payload, "occurred_at", "received_at", "created_at"),
        channel=str(payload.get("channel") or "web"),
        location=payload.get("location"),
        customer_key=_customer(payload),
        currency=str(payload.get("currency") or "GBP"),
        lines=list(payload.get("lines") or []),
        source=str(payload.get("source") or "order"),
        original_order_ref=payload.get("order_id"),
    )


def on_cancel(session: Session, event: OutboxEvent) -> None:
    payload = dict(event.payload or {})
    facts.record_cancellation_fact(session, order_ref=_ref(payload, "order_id", "id"))


def on_session(session: Session, event: OutboxEvent) -> None:
    payload = dict(event.payload or {})
    facts.record_session_fact(
        session,
        session_key=_ref(payload, "session_id", "id"),
        channel=str(payload.get("channel") or "web"),
        started_at=_time(payload, "started_at", "occurred_at"),
        customer_key=_customer(payload),
    )


HANDLERS = {
    "order.placed": on_sale,
    "pos.sale": on_sale,
    "return.received": on_return,
    "order.cancelled": on_cancel,
    "tracking.session.started": on_session,
}


def register() -> None:
    for topic, handler in HANDLERS.items():
        events.subscribe(topic)(handler)
