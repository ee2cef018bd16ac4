"""Picking capacity under concurrency: PostgreSQL, committed data, real threads (skipped on
SQLite)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from omniretail.fulfillment import service
from omniretail.fulfillment.models import SourcingDecision
from tests.fulfillment.factories import LONDON, T0, make_location, make_skus, receive, usage

pytestmark = pytest.mark.postgres

THREADS = 12


def test_a_location_never_takes_more_orders_than_its_daily_capacity(pg_db):
    # Given Daventry (cheapest) can pick 3 more units today and Doncaster has no limit
    with pg_db.unit_of_work() as s:
        make_skus(s, "A")
        daventry = make_location(s, "wh-daventry", daily_pick_capacity=3).id
        doncaster = make_location(s, "wh-doncaster", latitude=53.5228, longitude=-1.1285).id
        receive(s, "A", daventry, 50)
        receive(s, "A", doncaster, 50)
    placed: list[str] = []
    errors: list[BaseException] = []

    # When 12 orders of one unit are sourced at the same moment
    def worker(n: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            with pg_db.unit_of_work() as s:
                view = service.plan_sourcing(s, [("A", 1)], destination=LONDON, now=T0)
            placed.append(view.packages[0].location_id)
        except Exception as exc:
            errors.append(exc)

    barrier = threading.Barrier(THREADS)
    threads = [threading.Thread(target=worker, args=(n, barrier)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    # Then Daventry got exactly 3, Doncaster the rest, and every order got a decision
    assert errors == []
    assert (placed.count(daventry), placed.count(doncaster)) == (3, THREADS - 3)
    with pg_db.unit_of_work(write=False) as s:
        assert (usage(s, daventry), usage(s, doncaster)) == (3, THREADS - 3)
        assert s.scalar(select(func.count()).select_from(SourcingDecision)) == THREADS
