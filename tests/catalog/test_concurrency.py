"""Races on PostgreSQL with committed data: stale writers get 412/409, never a lost update
or a 500."""

import threading
import time

import pytest

from omniretail.catalog import service
from omniretail.core.errors import AppError

pytestmark = pytest.mark.postgres


def _hold_then_commit(db, work, holding: threading.Event, seconds: float = 0.5) -> None:
    """Run ``work`` in a transaction, signal, keep the transaction open, then commit."""
    with db.unit_of_work() as session:
        work(session)
        holding.set()
        time.sleep(seconds)


def _catch(db, work) -> AppError | None:
    try:
        with db.unit_of_work() as session:
            work(session)
    except AppError as e:
        return e
    return None


def test_two_writers_with_the_same_if_match_one_gets_412(pg_db):
    # given a product at version 1
    with pg_db.unit_of_work() as session:
        product_id = service.create_product(session, title="Tee", variants=[{"sku": "RACE-1"}]).id
    holding = threading.Event()
    first = threading.Thread(
        target=_hold_then_commit,
        args=(pg_db, lambda s: service.update_product(s, product_id, {"title": "A"}, {1}), holding),
    )
    # when a second writer that also read version 1 writes while the first holds its lock
    first.start()
    holding.wait(5)
    error = _catch(pg_db, lambda s: service.update_product(s, product_id, {"title": "B"}, {1}))
    first.join()
    # then it is refused and the first change stands
    assert error is not None and (error.code, error.status) == ("precondition_failed", 412)
    with pg_db.unit_of_work(write=False) as session:
        product = service.get_product(session, product_id)
        assert (product.title, product.version) == ("A", 2)


def test_two_creators_of_the_same_sku_one_gets_409(pg_db):
    holding = threading.Event()

    def create(title):
        return lambda s: service.create_product(s, title=title, variants=[{"sku": "RACE-2"}])

    first = threading.Thread(target=_hold_then_commit, args=(pg_db, create("A"), holding))
    first.start()
    holding.wait(5)
    error = _catch(pg_db, create("B"))
    first.join()
    assert error is not None and (error.code, error.status) == ("concurrent_update", 409)
    with pg_db.unit_of_work(write=False) as session:
        assert service.get_variant(session, "RACE-2").product.title == "A"
