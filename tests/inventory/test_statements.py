"""Statement counts of the reservation transitions: set-based, whatever the number of lines."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from omniretail.core.models import OutboxEvent
from omniretail.inventory import service
from omniretail.inventory.models import LedgerEntry
from tests.inventory.factories import T0, balance, make_location, make_skus, receive


@contextmanager
def counting(session: Session) -> Iterator[list[str]]:
    """SQL statements sent on the session's connection (an executemany counts once)."""
    statements: list[str] = []
    connection = session.connection()

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", before)


def _reservation(session: Session, lines: int, prefix: str) -> str:
    """A live hold of ``lines`` SKUs over two locations (two lines per SKU)."""
    skus = make_skus(session, *(f"{prefix}-{i}" for i in range(lines)))
    a = make_location(session, f"{prefix.lower()}-a")
    b = make_location(session, f"{prefix.lower()}-b")
    for sku in skus:
        receive(session, sku, a.id, 2)
        receive(session, sku, b.id, 5)
    view = service.reserve(session, [(sku, 3) for sku in skus], locations=[a.id, b.id], now=T0)
    assert len(view.lines) == 2 * lines
    session.flush()
    return view.id


def _count(session: Session, action: Callable[[], Any]) -> int:
    with counting(session) as statements:
        action()
        session.flush()
    return len(statements)


@pytest.mark.parametrize(
    "transition",
    [
        lambda s, rid: service.allocate_reservation(s, rid, order_reference="ord_1", now=T0),
        lambda s, rid: service.release_reservation(s, rid, now=T0),
    ],
    ids=["allocate", "release"],
)
def test_transitions_cost_the_same_statements_for_1_and_10_lines(session, transition):
    # Given a 1-line and a 10-line reservation (the 10-line one has 20 lines: 2 per SKU)
    small = _reservation(session, 1, "ONE")
    large = _reservation(session, 10, "TEN")
    # When each is moved
    n_small = _count(session, lambda: transition(session, small))
    n_large = _count(session, lambda: transition(session, large))
    # Then the number of statements does not grow with the lines: a read that locks the stock
    # rows, the lines, the stock rows, the ledger, the outbox (the 2 units of the first location
    # are gone), the header, plus the savepoint and its release
    assert n_large == n_small
    assert n_large <= 8


def test_allocating_10_lines_is_set_based_and_exact(session):
    # Given a 10-SKU reservation held over two locations
    rid = _reservation(session, 10, "SET")
    # When it is allocated
    with counting(session) as statements:
        view = service.allocate_reservation(session, rid, order_reference="ord_9", now=T0)
        session.flush()
    # Then it takes a fixed, small number of statements: no statement per line, no re-read
    writes = [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert len(statements) <= 8, statements
    # lines, stock rows, ledger (one insert), outbox (one insert for 10 events), header
    assert len(writes) == 5, writes
    # and the answer and the balances are those of a per-line allocation
    assert view.status == "allocated" and view.order_reference == "ord_9"
    assert view.expires_at is None
    assert {line.status for line in view.lines} == {"allocated"}
    assert view.quantity == 30
    assert view == service.get_reservation(session, rid, now=T0)
    location_ids = {line.location_id for line in view.lines}
    for i in range(10):
        for loc in location_ids:
            b = balance(session, f"SET-{i}", loc, T0)
            assert b["held"] == 0
            assert b["allocated"] == b["on_hand"] - b["available"]
    reasons = session.scalars(
        select(LedgerEntry.reason).where(LedgerEntry.reference == rid, LedgerEntry.held_delta < 0)
    ).all()
    assert reasons == ["allocation"] * 20


def test_set_based_fulfilment_emits_the_stock_level_events(session):
    # Given a reservation of the last units of a SKU, allocated
    make_skus(session, "LASTONE")
    loc = make_location(session, "ev-a")
    receive(session, "LASTONE", loc.id, 2)
    view = service.reserve(session, [("LASTONE", 2)], locations=[loc.id], now=T0)
    session.flush()
    before = session.scalars(
        select(OutboxEvent.topic).where(OutboxEvent.aggregate_id == "LASTONE")
    ).all()
    # When it is allocated (sellable stock reaches 0) and fulfilled (nothing sellable changes)
    service.allocate_reservation(session, view.id, now=T0)
    service.fulfill_reservation(session, view.id, now=T0)
    session.flush()
    after = session.scalars(
        select(OutboxEvent.topic).where(OutboxEvent.aggregate_id == "LASTONE")
    ).all()
    # Then the allocation says out of stock once, as the per-row path did
    assert after[len(before) :] == ["inventory.out_of_stock"]
    assert balance(session, "LASTONE", loc.id, T0)["on_hand"] == 0
