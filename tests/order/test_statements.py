"""Checkout loads and writes in bulk: the statements of ``complete`` do not grow with the
number of lines (the inventory converts every hold with one set-based update)."""

from contextlib import contextmanager

from sqlalchemy import event

from omniretail.catalog import service as catalog
from omniretail.inventory import service as inventory
from omniretail.order import service
from omniretail.order.domain import TenderRequest
from omniretail.pricing import service as pricing
from omniretail.pricing.service import PriceInput
from tests.order.helpers import ADDRESS

STAFF = service.Access.staff_member()
SKUS = [f"S-{i}" for i in range(10)]


@contextmanager
def statements(session):
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _complete(session, lines: int) -> list[str]:
    cart, _ = service.create_cart(
        session, STAFF, channel="web", lines=[(s, 1) for s in SKUS[:lines]]
    )
    service.set_checkout(
        session,
        cart.id,
        STAFF,
        email="count@example.com",
        shipping_address=ADDRESS,
        delivery=[{"method": "standard"}],
    )
    with statements(session) as seen:
        service.complete(session, cart.id, STAFF, tenders=[TenderRequest("card", None, "tok_visa")])
    return seen


def test_statements_do_not_grow_with_lines(shop, session):
    catalog.create_product(session, title="Many", variants=[{"sku": s} for s in SKUS])
    pricing.upsert_prices(session, "gbp", [PriceInput(s, 1000) for s in SKUS])
    inventory.record_movement(
        session, location_id=shop.wh, reason="receipt", lines=[(s, 5) for s in SKUS]
    )
    one, ten = _complete(session, 1), _complete(session, 10)

    stock_updates = [s for s in ten if s.startswith("UPDATE stock_levels")]
    assert len(stock_updates) == 1
    assert len(ten) == len(one)
    assert len(ten) <= 30
    ours = [
        s
        for s in ten
        if any(t in s for t in ("carts", "orders", "order_lines", "payments", "test_gateway"))
    ]
    # claim the cart, fraud counts, the gateway charge, insert order, lines, payments
    assert len(ours) == 6
