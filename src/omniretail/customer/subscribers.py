"""Outbox subscribers: orders, POS sales and returns of other contexts become commerce facts
on the customer timeline (and link the identifiers they carry).

Expected payload (any of the other contexts): ``customer`` (a customer id or an object of
identifiers: email, phone, loyalty_card, user_id, anonymous_id, external) or ``customer_id``;
``id``/``order_id``/``return_id``; ``total_minor`` or ``amount_minor``; ``currency``;
``channel``; ``occurred_at``. Events without a customer reference are ignored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from omniretail.core import events
from omniretail.core.models import OutboxEvent
from omniretail.customer.service import record_commerce_fact

TOPICS = {
    "order.placed": "order_placed",
    "pos.sale": "pos_sale",
    "return.received": "return_received",
    "order.refunded": "refund_issued",
}


def on_commerce_event(session: Session, event: OutboxEvent) -> None:
    kind = TOPICS.get(event.topic)
    payload: dict[str, Any] = dict(event.payload or {})
    ref = payload.get("customer") or payload.get("customer_id")
    if kind is None or not ref:
        return
    record_commerce_fact(session, ref, kind, payload)


def register() -> None:
    for topic in TOPICS:
        events.subscribe(topic)(on_commerce_event)
