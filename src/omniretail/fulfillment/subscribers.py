"""Outbox subscribers of the fulfillment context.

* ``order.placed`` (status ``allocated``) and ``order.status_changed`` to ``allocated`` (an
  order released from a fraud review): create the order's fulfilment tasks.
* ``order.updated`` (an edit before fulfilment): replace the untouched tasks.
* ``order.cancelled``: cancel its open tasks (the order context gave the stock back).
* ``order.customer_arrived`` (curbside check-in): the pickup task is due now, with the bay.

Both are idempotent: tasks are created once per order, and cancelling finds nothing open the
second time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from omniretail.core import events
from omniretail.core.models import OutboxEvent
from omniretail.fulfillment import tasks


def _order_id(event: OutboxEvent) -> str | None:
    payload: dict[str, Any] = dict(event.payload or {})
    value = payload.get("order_id") or payload.get("id")
    return str(value) if value else None


def on_order_placed(session: Session, event: OutboxEvent) -> None:
    order_id = _order_id(event)
    if order_id and (event.payload or {}).get("status") == "allocated":
        tasks.create_tasks_for_order(session, order_id)


def on_status_changed(session: Session, event: OutboxEvent) -> None:
    order_id = _order_id(event)
    if order_id and (event.payload or {}).get("to") == "allocated":
        tasks.create_tasks_for_order(session, order_id)


def on_order_updated(session: Session, event: OutboxEvent) -> None:
    order_id = _order_id(event)
    if order_id:
        tasks.rebuild_tasks(session, order_id)


def on_order_cancelled(session: Session, event: OutboxEvent) -> None:
    order_id = _order_id(event)
    if order_id:
        tasks.cancel_order_tasks(session, order_id)


def on_customer_arrived(session: Session, event: OutboxEvent) -> None:
    payload: dict[str, Any] = dict(event.payload or {})
    order_id, location_id = _order_id(event), payload.get("location_id")
    if order_id and location_id:
        tasks.customer_arrived(
            session,
            order_id,
            str(location_id),
            bay=payload.get("bay"),
            vehicle=payload.get("vehicle"),
        )


def register() -> None:
    events.subscribe("order.placed")(on_order_placed)
    events.subscribe("order.status_changed")(on_status_changed)
    events.subscribe("order.updated")(on_order_updated)
    events.subscribe("order.cancelled")(on_order_cancelled)
    events.subscribe("order.customer_arrived")(on_customer_arrived)
