"""Model-based test of the stock ledger: random receipts, reservations, releases, expiries,
allocations, sales, transfers and counts against a plain in-memory model.

After every step: balances equal the model, on hand and reserved are never negative, no unit
is sold twice (received = on hand + in transit + sold + lost), expired holds stopped counting
the moment their deadline passed, and the ledger replays to the balances."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from omniretail.core.errors import AppError
from omniretail.inventory import service
from omniretail.inventory.domain import SplitStrategy, plan_split
from omniretail.inventory.models import StockLevel
from tests.inventory.factories import T0, make_location, make_skus

SKU = "PROP-1"
N_LOC = 3


def make_machine(db):
    class InventoryMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.session = db.session()
            make_skus(self.session, SKU)
            self.locs = [make_location(self.session, f"loc-{i}").id for i in range(N_LOC)]
            self.now = T0
            self.on_hand = [0] * N_LOC
            self.allocated = [0] * N_LOC
            self.safety = [0] * N_LOC
            self.holds: dict[str, tuple[dict[int, int], object]] = {}  # id -> (per loc, expiry)
            self.allocations: dict[str, dict[int, int]] = {}
            self.transfers: dict[str, tuple[int, int, int]] = {}
            self.received = self.sold = self.lost = 0

        def teardown(self) -> None:
            self.session.rollback()
            self.session.close()

        # --- model helpers ----------------------------------------------------------------
        def live_held(self, i: int) -> int:
            return sum(per.get(i, 0) for per, expiry in self.holds.values() if expiry > self.now)

        def free(self, i: int) -> int:
            return self.on_hand[i] - self.allocated[i] - self.live_held(i) - self.safety[i]

        def incoming(self, i: int) -> int:
            return sum(q for _, to, q in self.transfers.values() if to == i)

        # --- rules --------------------------------------------------------------------------
        @rule(i=st.integers(0, N_LOC - 1), q=st.integers(1, 6))
        def receive(self, i, q):
            service.record_movement(
                self.session,
                location_id=self.locs[i],
                reason="receipt",
                lines=[(SKU, q)],
                now=self.now,
            )
            self.on_hand[i] += q
            self.received += q

        @rule(i=st.integers(0, N_LOC - 1), units=st.integers(0, 3))
        def set_safety(self, i, units):
            service.set_stock_settings(
                self.session, location_id=self.locs[i], sku=SKU, safety_stock=units, now=self.now
            )
            self.safety[i] = units

        @rule(
            q=st.integers(1, 8),
            order=st.permutations(list(range(N_LOC))),
            size=st.integers(1, N_LOC),
            strategy=st.sampled_from(["preferred", "any"]),
            ttl=st.integers(30, 900),
        )
        def reserve(self, q, order, size, strategy, ttl):
            chosen = order[:size]
            free = [(i, self.free(i)) for i in chosen]
            expected = plan_split(q, free, SplitStrategy(strategy))
            try:
                view = service.reserve(
                    self.session,
                    [(SKU, q)],
                    locations=[self.locs[i] for i in chosen],
                    strategy=strategy,
                    ttl_seconds=ttl,
                    now=self.now,
                )
            except AppError as exc:
                assert expected is None, f"refused although {free} could fill {q}"
                assert exc.code == "insufficient_stock"
                assert exc.details["available"] == sum(max(0, n) for _, n in free)
                return
            assert expected is not None, f"reserved {q} although only {free} was free"
            got = [(self.locs.index(line.location_id), line.quantity) for line in view.lines]
            whole = [i for i, n in free if n >= q]
            if strategy == "any" and whole:
                # any of these: one location that can fill it (which one may vary)
                assert len(got) == 1 and got[0][0] in whole and got[0][1] == q
            else:
                assert got == expected
            self.holds[view.id] = (dict(got), self.now + timedelta(seconds=ttl))

        @precondition(lambda self: self.holds)
        @rule(pick=st.integers(0, 10_000))
        def release_hold(self, pick):
            rid = sorted(self.holds)[pick % len(self.holds)]
            service.release_reservation(self.session, rid, now=self.now)
            del self.holds[rid]

        @precondition(lambda self: self.holds)
        @rule(pick=st.integers(0, 10_000))
        def allocate(self, pick):
            rid = sorted(self.holds)[pick % len(self.holds)]
            per, expiry = self.holds[rid]
            try:
                service.allocate_reservation(self.session, rid, now=self.now)
            except AppError as exc:
                assert expiry <= self.now and exc.code == "reservation_expired"
                return
            assert expiry > self.now, "allocated an expired hold"
            del self.holds[rid]
            self.allocations[rid] = per
            for i, q in per.items():
                self.allocated[i] += q

        @precondition(lambda self: self.allocations)
        @rule(pick=st.integers(0, 10_000), ship=st.booleans())
        def finish_allocation(self, pick, ship):
            rid = sorted(self.allocations)[pick % len(self.allocations)]
            per = self.allocations.pop(rid)
            if ship:
                service.fulfill_reservation(self.session, rid, now=self.now)
            else:
                service.release_reservation(self.session, rid, now=self.now)
            for i, q in per.items():
                self.allocated[i] -= q
                if ship:
                    self.on_hand[i] -= q
                    self.sold += q

        @rule(i=st.integers(0, N_LOC - 1), q=st.integers(1, 6))
        def direct_sale(self, i, q):
            ok = q <= self.free(i)
            try:
                service.record_movement(
                    self.session,
                    location_id=self.locs[i],
                    reason="sale",
                    lines=[(SKU, q)],
                    now=self.now,
                )
            except AppError as exc:
                assert not ok and exc.code == "insufficient_stock"
                return
            assert ok, "sold a unit that was not available"
            self.on_hand[i] -= q
            self.sold += q

        @rule(src=st.integers(0, N_LOC - 1), shift=st.integers(1, N_LOC - 1), q=st.integers(1, 5))
        def transfer(self, src, shift, q):
            dst = (src + shift) % N_LOC
            ok = q <= self.on_hand[src] - self.allocated[src] - self.live_held(src)
            try:
                view = service.create_transfer(
                    self.session,
                    from_location_id=self.locs[src],
                    to_location_id=self.locs[dst],
                    lines=[(SKU, q)],
                    now=self.now,
                )
            except AppError as exc:
                assert not ok and exc.code == "insufficient_stock"
                return
            assert ok, "shipped reserved units"
            self.on_hand[src] -= q
            self.transfers[view.id] = (src, dst, q)

        @precondition(lambda self: self.transfers)
        @rule(pick=st.integers(0, 10_000), short=st.integers(0, 2))
        def receive_transfer(self, pick, short):
            tid = sorted(self.transfers)[pick % len(self.transfers)]
            _, dst, q = self.transfers.pop(tid)
            got = max(0, q - short)
            service.receive_transfer(self.session, tid, received={SKU: got}, now=self.now)
            self.on_hand[dst] += got
            self.lost += q - got

        @rule(seconds=st.integers(1, 600))
        def advance_time(self, seconds):
            self.now += timedelta(seconds=seconds)

        @rule()
        def sweep_expired(self):
            service.expire_reservations(self.session, now=self.now)
            self.holds = {k: v for k, v in self.holds.items() if v[1] > self.now}

        # --- invariants ---------------------------------------------------------------------
        @invariant()
        def balances_match_the_model(self):
            for i, loc in enumerate(self.locs):
                b = service.stock_balance(self.session, SKU, loc, self.now)
                assert (b.on_hand, b.allocated, b.held, b.safety_stock, b.incoming) == (
                    self.on_hand[i],
                    self.allocated[i],
                    self.live_held(i),
                    self.safety[i],
                    self.incoming(i),
                )
                assert b.available == max(0, self.free(i))

        @invariant()
        def counters_never_negative(self):
            rows = self.session.execute(
                select(StockLevel.on_hand, StockLevel.allocated, StockLevel.held)
            ).all()
            assert all(min(row) >= 0 for row in rows)

        @invariant()
        def no_unit_sold_twice(self):
            in_transit = sum(q for _, _, q in self.transfers.values())
            assert self.received == sum(self.on_hand) + in_transit + self.sold + self.lost

        @invariant()
        def availability_counts_only_live_holds(self):
            total = service.availability(self.session, [SKU], now=self.now).items[0].available
            assert total == sum(max(0, self.free(i)) for i in range(N_LOC))

        @invariant()
        def ledger_replays_to_the_balances(self):
            assert service.verify(self.session).drift == []

    return InventoryMachine


def test_ledger_state_machine(db):
    machine = make_machine(db)
    machine.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    machine.TestCase().runTest()
