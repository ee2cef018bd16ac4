"""Contract with the order context: an order placed through the real checkout, its
cancellation and a POS sale become analytics facts through the outbox."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMNI_PII_KEYS", "JhM0nDTN7n6vJ4Yt1r0t3cBm3zj0G3yW1m4Ck4v6b5E=")
os.environ.setdefault("OMNI_PII_INDEX_KEY", "test-blind-index-key-0123456789")
os.environ.setdefault("OMNI_PII_KEY_FILE", str(Path(tempfile.gettempdir()) / "omni-test-pii.keys"))

from sqlalchemy import select

from omniretail.analytics.models import OrderFact, SalesLine
from omniretail.core import events
from tests.order.helpers import ADDRESS, build_shop, checkout, complete, start_cart


def test_a_web_order_placed_at_checkout_becomes_a_sale_fact(client, session, make_key):
    # given the order context's small shop and a delivered web order of one tee (2000, VAT
    # included) shipped from the warehouse
    shop = build_shop(session, make_key)
    cart_id, token = start_cart(client, shop, [("TEE-M", 1)])
    body = {"email": "ada@example.com", "shipping_address": ADDRESS,
            "delivery": [{"method": "standard"}]}  # fmt: skip
    assert checkout(client, shop, cart_id, token, body).status_code == 200
    placed = complete(client, shop, cart_id, token)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    # when the outbox is dispatched
    events.dispatch_pending(session)
    # then
    fact = session.scalar(select(OrderFact).where(OrderFact.order_ref == order_id))
    assert (fact.source, fact.kind, fact.channel, fact.currency) == ("order", "sale", "web", "GBP")
    assert (fact.revenue_minor, fact.service_minor, fact.units) == (2000, 495, 1)
    line = session.scalar(
        select(SalesLine).where(SalesLine.order_ref == order_id, SalesLine.sku == "TEE-M")
    )
    assert line.location == shop.wh
