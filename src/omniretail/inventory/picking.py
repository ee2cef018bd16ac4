"""Stock moves of store and warehouse fulfilment on allocated reservations.

An order's reservation may hold units at several locations; each location picks, packs and
hands over its own share, at its own time. These two operations act on one location's share:

* :func:`fulfill_location`: the allocated units of one location leave the building (a package
  ships, or the customer collects). The reservation becomes ``fulfilled`` when no allocated
  units remain anywhere.
* :func:`write_off_allocated`: a pick exception. Units that were allocated are not on the
  shelf: the allocation and on hand go down together (ledger reason ``cycle_count`` with the
  note), so the balance stays rebuildable from the ledger and ``omni inventory verify`` keeps
  holding. Re-sourcing the missing units elsewhere is the fulfilment context's job.

Both lock the reservation's stock rows first (one read, as every reservation change does).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from omniretail.core.errors import conflict, invalid
from omniretail.inventory.domain import LineStatus, Reason, ReservationStatus
from omniretail.inventory.service import (
    LINES,
    Change,
    L,
    ReservationView,
    _apply_unconditional,
    _aware,
    _effective_status,
    _not_active,
    _now,
    _read_reservation,
    _set_header,
    _transition_lines,
    atomic,
    get_reservation,
)


def _allocated_header(
    session: Session, reservation_id: str, at: datetime, action: str
) -> tuple[Any, list[Any]]:
    header, lines = _read_reservation(session, reservation_id)
    if header.status not in (ReservationStatus.ALLOCATED.value, ReservationStatus.FULFILLED.value):
        status = _effective_status(header.status, _aware(header.expires_at), at)
        raise _not_active(status, reservation_id, action)
    return header, lines


def _close_if_done(session: Session, reservation_id: str, at: datetime) -> None:
    """Mark the header fulfilled (or released) once no line is allocated any more."""
    statuses = set(session.scalars(select(L.status).where(L.reservation_id == reservation_id)))
    if LineStatus.ALLOCATED.value in statuses:
        return
    final = (
        ReservationStatus.FULFILLED
        if LineStatus.FULFILLED.value in statuses
        else ReservationStatus.RELEASED
    )
    _set_header(session, reservation_id, at, status=final.value)


def fulfill_location(
    session: Session, reservation_id: str, location_id: str, *, now: datetime | None = None
) -> ReservationView:
    """The allocated units of ``location_id`` leave the building (a sale): on hand and
    allocated go down for that location only. Repeating it changes nothing."""
    at = _now(now)

    def run() -> ReservationView:
        header, _lines = _allocated_header(session, reservation_id, at, "fulfil")
        if header.status == ReservationStatus.ALLOCATED.value:
            moved = _transition_lines(
                session,
                reservation_id,
                LineStatus.ALLOCATED,
                LineStatus.FULFILLED,
                L.location_id == location_id,
            )
            _apply_unconditional(
                session,
                [
                    Change(
                        stock_id, Reason.SALE, on_hand=-q, allocated=-q, reference=reservation_id
                    )
                    for _, stock_id, q in moved
                ],
                at,
            )
            if moved:
                _close_if_done(session, reservation_id, at)
        return get_reservation(session, reservation_id, at)

    return atomic(session, run)


def write_off_allocated(
    session: Session,
    reservation_id: str,
    *,
    location_id: str,
    sku: str,
    quantity: int,
    note: str | None = None,
    now: datetime | None = None,
) -> ReservationView:
    """``quantity`` allocated units of ``sku`` at ``location_id`` are not there (a pick
    exception): allocated and on hand go down together with a ``cycle_count`` ledger entry.
    More than is allocated there is a 409 ``not_allocated`` and changes nothing."""
    if quantity <= 0:
        raise invalid("invalid_quantity", "quantity must be positive", quantity=quantity)
    at = _now(now)

    def run() -> ReservationView:
        _header, lines = _allocated_header(session, reservation_id, at, "write off")
        candidates = [
            line
            for line in lines
            if line.line_status == LineStatus.ALLOCATED.value
            and line.location_id == location_id
            and line.sku == sku
        ]
        allocated = sum(line.quantity for line in candidates)
        if quantity > allocated:
            raise conflict(
                "not_allocated",
                f"only {allocated} of {sku} are allocated at this location",
                sku=sku,
                location_id=location_id,
                requested=quantity,
                allocated=allocated,
            )
        left = quantity
        changes = []
        for line in sorted(candidates, key=lambda x: -x.line_id):
            take = min(left, line.quantity)
            if take == 0:
                break
            values = (
                {"status": LineStatus.RELEASED.value}
                if take == line.quantity
                else {"quantity": L.quantity - take}
            )
            session.execute(
                update(LINES)
                .where(L.id == line.line_id, L.status == LineStatus.ALLOCATED.value)
                .values(**values)
            )
            changes.append(
                Change(
                    line.stock_id,
                    Reason.CYCLE_COUNT,
                    on_hand=-take,
                    allocated=-take,
                    reference=reservation_id,
                    note=note or "pick exception: not found",
                )
            )
            left -= take
        _apply_unconditional(session, changes, at)
        _close_if_done(session, reservation_id, at)
        return get_reservation(session, reservation_id, at)

    return atomic(session, run)
