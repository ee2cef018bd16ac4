"""Concurrency against PostgreSQL with committed data and real threads (skipped on SQLite)."""

from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import text

from omniretail.core.errors import AppError
from omniretail.inventory import service
from tests.inventory.factories import make_location, make_skus, receive

pytestmark = pytest.mark.postgres

THREADS = 50
ATTEMPTS = 200


def _run_threads(target, count):
    barrier = threading.Barrier(count)
    threads = [threading.Thread(target=target, args=(n, barrier)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung (deadlock?)"


def _reserve_in_a_unit_of_work(db, items, **options):
    with db.unit_of_work() as s:
        return service.reserve(s, items, **options)


@pytest.mark.parametrize(
    "reserve",
    [_reserve_in_a_unit_of_work, service.reserve_standalone],
    ids=["unit_of_work", "standalone"],
)
def test_last_units_over_three_locations_are_reserved_exactly_once(pg_db, reserve):
    # Given 20 units spread 7/5/8 over three locations
    with pg_db.unit_of_work() as s:
        make_skus(s, "LAST")
        locs = [make_location(s, f"site-{i}").id for i in range(3)]
        for loc, qty in zip(locs, (7, 5, 8), strict=True):
            receive(s, "LAST", loc, qty)
    reserved: list[int] = []
    errors: list[BaseException] = []
    attempts: list[int] = []

    # When 50 threads each try up to 200 times to reserve 1-3 units until sold out
    def worker(n: int, barrier: threading.Barrier) -> None:
        want = random.Random(n).randint(1, 3)
        barrier.wait()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                view = reserve(pg_db, [("LAST", want)], locations=locs, strategy="any")
                reserved.append(view.quantity)
                attempts.append(attempt)
                return
            except AppError as exc:
                if exc.code != "insufficient_stock":
                    errors.append(exc)
                    return
                if exc.details["available"] == 0:
                    attempts.append(attempt)
                    return
                want = min(want, exc.details["available"])
            except Exception as exc:  # a deadlock or serialization error would land here
                errors.append(exc)
                return

    _run_threads(worker, THREADS)

    # Then exactly the 20 units are reserved, none twice, and nothing else went wrong
    assert errors == []
    assert sum(reserved) == 20
    assert len(attempts) == THREADS
    with pg_db.unit_of_work(write=False) as s:
        balances = service.stock_balances(s, skus=["LAST"])
        assert [(b.on_hand, b.held, b.available) for b in balances] == [
            (b.on_hand, b.on_hand, 0) for b in balances
        ]
        assert service.availability(s, ["LAST"]).items[0].available == 0
        assert service.verify(s).drift == []


def test_concurrent_reserve_release_sell_and_transfer_keep_the_ledger_exact(pg_db):
    # Given 60 units at each of three locations
    with pg_db.unit_of_work() as s:
        make_skus(s, "MIX")
        locs = [make_location(s, f"mix-{i}").id for i in range(3)]
        for loc in locs:
            receive(s, "MIX", loc, 60)
    sold: list[int] = []
    errors: list[BaseException] = []

    # When 20 threads mix reservations, releases, allocations, sales and transfers
    def worker(n: int, barrier: threading.Barrier) -> None:
        rnd = random.Random(1000 + n)
        barrier.wait()
        for _ in range(15):
            op = rnd.choice(["hold", "hold_release", "sell", "transfer", "allocate_ship"])
            order = rnd.sample(locs, 3)
            try:
                with pg_db.unit_of_work() as s:
                    if op == "sell":
                        service.record_movement(
                            s, location_id=order[0], reason="sale", lines=[("MIX", 2)]
                        )
                        sold.append(2)
                    elif op == "transfer":
                        service.create_transfer(
                            s,
                            from_location_id=order[0],
                            to_location_id=order[1],
                            lines=[("MIX", 1)],
                        )
                    else:
                        view = service.reserve(s, [("MIX", 3)], locations=order)
                        if op == "hold_release":
                            service.release_reservation(s, view.id)
                        elif op == "allocate_ship":
                            service.allocate_reservation(s, view.id)
                            service.fulfill_reservation(s, view.id)
                            sold.append(3)
            except AppError as exc:
                if exc.code != "insufficient_stock":
                    errors.append(exc)
            except Exception as exc:
                errors.append(exc)

    _run_threads(worker, 20)

    # Then no error leaked, nothing went negative and the ledger replays to the balances
    assert errors == []
    with pg_db.unit_of_work(write=False) as s:
        balances = service.stock_balances(s, skus=["MIX"])
        assert all(b.on_hand >= 0 and b.held >= 0 and b.allocated >= 0 for b in balances)
        in_transit = sum(b.incoming for b in balances)
        assert sum(b.on_hand for b in balances) + in_transit + sum(sold) == 180
        assert service.verify(s).drift == []


def test_a_hold_from_any_location_skips_a_row_another_transaction_has_locked(pg_db):
    # Given 5 units at each of two locations, and another transaction holding a's row locked
    with pg_db.unit_of_work() as s:
        make_skus(s, "SKIP")
        a, b = (make_location(s, f"skip-{i}").id for i in range(2))
        receive(s, "SKIP", a, 5)
        receive(s, "SKIP", b, 5)
    with pg_db.unit_of_work() as blocker:
        blocker.execute(
            text("SELECT id FROM stock_levels WHERE sku = 'SKIP' AND location_id = :a FOR UPDATE"),
            {"a": a},
        ).all()
        # When units are held from "any of a, b" while a is locked (a wait would time out)
        lines = []
        for _ in range(3):
            with pg_db.unit_of_work() as s:
                s.execute(text("SET LOCAL lock_timeout = '2s'"))
                view = service.reserve(s, [("SKIP", 1)], locations=[a, b], strategy="any")
            lines += [(line.location_id, line.quantity) for line in view.lines]
        # Then every hold went to b, at once
        assert lines == [(b, 1)] * 3
    with pg_db.unit_of_work(write=False) as s:
        assert service.availability(s, ["SKIP"]).items[0].locations == {a: 5, b: 2}
        assert service.verify(s).drift == []
