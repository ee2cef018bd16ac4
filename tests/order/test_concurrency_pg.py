"""Checkout under concurrency against PostgreSQL with committed data and real threads
(skipped on SQLite): the last units are sold exactly once, losers get a clear 409, a gift
card never goes below zero, and one cart makes one order."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from omniretail.catalog import service as catalog
from omniretail.core.errors import AppError
from omniretail.core.timeutil import utcnow
from omniretail.inventory import service as inventory
from omniretail.order import payments as pay
from omniretail.order import service
from omniretail.order.domain import TenderRequest
from omniretail.order.models import GatewayCharge, Order, OrderLine, StoredValueEntry
from omniretail.pricing import service as pricing
from omniretail.pricing.service import PriceInput
from tests.order.helpers import ADDRESS, build_shop

pytestmark = pytest.mark.postgres

STAFF = service.Access.staff_member()
THREADS = 20
HOME = {
    "email": "race@example.com",
    "shipping_address": ADDRESS,
    "delivery": [{"method": "standard"}],
}


def _run(target, count: int) -> None:
    barrier = threading.Barrier(count)
    threads = [threading.Thread(target=target, args=(n, barrier)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a checkout hung (deadlock?)"


def _shop_with_last_units(db, units: int):
    with db.unit_of_work() as s:
        shop = build_shop(s, lambda *a, **k: {})
        catalog.create_product(s, title="Last", variants=[{"sku": "LAST"}])
        pricing.upsert_prices(s, "gbp", [PriceInput("LAST", 1000)])
        inventory.record_movement(s, location_id=shop.wh, reason="receipt", lines=[("LAST", units)])
    return shop


def _no_oversell(db, units: int) -> None:
    with db.unit_of_work(write=False) as s:
        [b] = inventory.stock_balances(s, skus=["LAST"])
        assert (b.on_hand, b.allocated, b.held) == (units, units, 0)
        sold = s.scalar(select(func.sum(OrderLine.quantity)).where(OrderLine.sku == "LAST"))
        assert sold == units
        assert inventory.verify(s).drift == []


def test_twenty_checkouts_for_the_last_five_units(pg_db):
    # Given 5 units left
    _shop_with_last_units(pg_db, 5)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    # When 20 shoppers add one to a cart and check out at the same moment
    def shopper(n: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            with pg_db.unit_of_work() as s:
                cart, _ = service.create_cart(s, STAFF, channel="web", lines=[("LAST", 1)])
            with pg_db.unit_of_work() as s:
                service.set_checkout(s, cart.id, STAFF, **HOME)
            with pg_db.unit_of_work() as s:
                service.complete(
                    s, cart.id, STAFF, tenders=[TenderRequest("card", None, f"tok_card_{n}")]
                )
            outcomes.append("order")
        except AppError as exc:
            outcomes.append(f"{exc.status} {exc.code}")
        except Exception as exc:  # a deadlock or serialization error would land here
            errors.append(exc)

    _run(shopper, THREADS)

    # Then exactly 5 orders, 15 clear 409s, and no unit sold twice
    assert errors == []
    assert Counter(outcomes) == {"order": 5, "409 insufficient_stock": 15}
    _no_oversell(pg_db, 5)


def test_twenty_completes_with_expired_holds_race_at_checkout(pg_db):
    # Given 20 carts whose holds on the 5 last units all expired (each was made an hour or more
    # ago, one after the other)
    shop = _shop_with_last_units(pg_db, 5)
    carts = []
    start = utcnow() - timedelta(hours=8)
    for n in range(THREADS):
        at = start + timedelta(minutes=16 * n)
        with pg_db.unit_of_work() as s:
            cart, _ = service.create_cart(s, STAFF, channel="web", lines=[("LAST", 1)], now=at)
            service.set_checkout(s, cart.id, STAFF, now=at, **HOME)
            carts.append(cart.id)
    assert shop.wh
    outcomes: list[str] = []
    errors: list[BaseException] = []

    # When the 20 shoppers come back and complete at once
    def shopper(n: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            with pg_db.unit_of_work() as s:
                service.complete(
                    s, carts[n], STAFF, tenders=[TenderRequest("card", None, f"tok_c_{n}")]
                )
            outcomes.append("order")
        except AppError as exc:
            outcomes.append(f"{exc.status} {exc.code}")
        except Exception as exc:
            errors.append(exc)

    _run(shopper, THREADS)

    # Then the holds are taken again for 5 of them; 15 get a clear 409 and nothing is written
    assert errors == []
    assert Counter(outcomes) == {"order": 5, "409 reservation_expired": 15}
    _no_oversell(pg_db, 5)
    with pg_db.unit_of_work(write=False) as s:
        assert s.scalar(select(func.count()).select_from(GatewayCharge)) == 5


def test_a_gift_card_never_goes_below_zero_under_twenty_redemptions(pg_db):
    # Given a gift card with 6000 and 20 shoppers each paying a 1200 mug with it (click and
    # collect, no shipping)
    shop = _shop_with_last_units(pg_db, 5)
    with pg_db.unit_of_work() as s:
        inventory.record_movement(s, location_id=shop.store, reason="receipt", lines=[("MUG", 20)])
        code, account = pay.issue_gift_card(s, amount=6000, currency="GBP", code="GC-RACE-0001")
    carts = []
    for _ in range(THREADS):
        with pg_db.unit_of_work() as s:
            cart, _ = service.create_cart(s, STAFF, channel="web", lines=[("MUG", 1)])
            service.set_checkout(
                s,
                cart.id,
                STAFF,
                email="gift@example.com",
                delivery=[{"method": "bopis", "location_id": shop.store}],
            )
            carts.append(cart.id)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def shopper(n: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            with pg_db.unit_of_work() as s:
                service.complete(
                    s, carts[n], STAFF, tenders=[TenderRequest("gift_card", None, code)]
                )
            outcomes.append("order")
        except AppError as exc:
            outcomes.append(f"{exc.status} {exc.details.get('decline_code', exc.code)}")
        except Exception as exc:
            errors.append(exc)

    _run(shopper, THREADS)

    # Then 5 orders used the 6000 exactly; 15 were declined; the balance is 0, not below
    assert errors == []
    assert Counter(outcomes) == {"order": 5, "402 insufficient_balance": 15}
    with pg_db.unit_of_work(write=False) as s:
        balance = pay.gift_card_by_code(s, code).balance
        entries = s.scalar(
            select(func.sum(StoredValueEntry.amount)).where(
                StoredValueEntry.account_id == account.id
            )
        )
        assert (balance, entries) == (0, 0)
        assert s.scalar(select(func.count()).select_from(Order)) == 5


def test_the_same_cart_completed_five_times_at_once_is_one_order(pg_db):
    _shop_with_last_units(pg_db, 5)
    with pg_db.unit_of_work() as s:
        cart, _ = service.create_cart(s, STAFF, channel="web", lines=[("LAST", 1)])
        service.set_checkout(s, cart.id, STAFF, **HOME)
    seen: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def click(n: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            with pg_db.unit_of_work() as s:
                done = service.complete(
                    s, cart.id, STAFF, tenders=[TenderRequest("card", None, "tok_visa")]
                )
                seen.append((done.order.id, done.created))
        except Exception as exc:
            errors.append(exc)

    _run(click, 5)

    assert errors == []
    assert len({order_id for order_id, _ in seen}) == 1
    assert sorted(created for _, created in seen) == [False, False, False, False, True]
    with pg_db.unit_of_work(write=False) as s:
        assert s.scalar(select(func.count()).select_from(GatewayCharge)) == 1
