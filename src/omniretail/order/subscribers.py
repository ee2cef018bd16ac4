"""Outbox subscribers of the order context.

``customer.erased`` (GDPR): orders keep their financial facts (ids, amounts, lines, payments,
channel, time) but lose the person's data: email, shipping and billing addresses, delivery
addresses and vehicles, client IP, tracking anonymous id. Their carts lose the same fields and
their tokens. Idempotent: a second delivery finds nothing left to remove.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from omniretail.core import events
from omniretail.core.models import OutboxEvent
from omniretail.order.models import Cart, CartToken, Order

PERSONAL_GROUP_KEYS = ("address", "vehicle", "bay")


def scrub_customer(session: Session, customer_ids: list[str]) -> int:
    """Remove personal data from the orders and carts of these customer ids; returns how
    many orders were touched."""
    if not customer_ids:
        return 0
    orders = list(session.scalars(select(Order).where(Order.customer_id.in_(customer_ids))))
    for order in orders:
        order.email = None
        order.anonymous_id = None
        order.shipping_address = None
        order.billing_address = None
        order.client_ip = None
        order.delivery = [
            {k: v for k, v in g.items() if k not in PERSONAL_GROUP_KEYS} for g in order.delivery
        ]
    carts = list(session.scalars(select(Cart).where(Cart.customer_id.in_(customer_ids))))
    for cart in carts:
        cart.email = None
        cart.anonymous_id = None
        cart.shipping_address = None
        cart.billing_address = None
        cart.delivery = [
            {k: v for k, v in g.items() if k not in PERSONAL_GROUP_KEYS} for g in cart.delivery
        ]
    if carts:
        session.execute(delete(CartToken).where(CartToken.cart_id.in_([c.id for c in carts])))
    session.flush()
    return len(orders)


def on_customer_erased(session: Session, event: OutboxEvent) -> None:
    payload: dict[str, Any] = dict(event.payload or {})
    ids = {str(i) for i in payload.get("profile_ids") or []}
    if payload.get("customer_id"):
        ids.add(str(payload["customer_id"]))
    scrub_customer(session, sorted(ids))


def register() -> None:
    events.subscribe("customer.erased")(on_customer_erased)
