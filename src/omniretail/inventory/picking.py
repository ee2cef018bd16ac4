"""Stock moves of store and warehouse fulfilment on allocated reservations.

An order's reservation may hold units at several locations; each location picks, packs and
hands over its own share, at its own time. These two operations act on one location's share:

* :func:`fulfill_location`: the allocated units of one location leave the building (a package
  ships, or the customer collects). The reservation becomes ``fulfilled`` when no allocated
  units remain anywhere.
* :func:`move_allocated`: units travelled to another location for the same order (a transfer
  to the pickup store arrived): they leave the source (``transfer_out``) and join the
  destination's stock (``transfer_in``) still allocated, so the sale, a release or a
  cancellation later acts where the units are.
* :func:`write_off_allocated`: a pick exception. Units that were allocated are not on the
  shelf: the allocation and on hand go down together (ledger reason ``cycle_count`` with the
  note), so the balance stays rebuildable from the ledger and ``omni inventory verify`` keeps
  holding. Re-sourcing the missing units elsewhere is the fulfilment context's job.

Both lock the reservation's stock rows first (one read, as every reservation change does).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from omniretail.core.errors import conflict, invalid
from omniretail.inventory.domain import LineStatus, Reason, ReservationStatus
from omniretail.inventory.service import (
    LINES,
    Change,
    L,
    ReservationView,
    S,
    _apply_unconditional,
    _aware,
    _effective_status,
    _ensure_stock_rows,
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


def move_allocated(
    session: Session,
    reservation_id: str,
    *,
    from_location: str,
    to_location: str,
    items: Mapping[str, int],
    note: str | None = None,
    now: datetime | None = None,
) -> ReservationView:
    """``items`` (SKU -> units) allocated at ``from_location`` are now at ``to_location``: on
    hand and allocated go down at the source (``transfer_out``) and up at the destination
    (``transfer_in``), and the reservation's lines follow them (a line is split when only part
    of it moves). Units no longer allocated at the source (moved before, released) are left
    alone, so repeating it changes nothing."""
    at = _now(now)
    if from_location == to_location:
        raise invalid("same_location", "the units are already at that location")

    def run() -> ReservationView:
        _header, lines = _allocated_header(session, reservation_id, at, "move")
        wanted = {sku: q for sku, q in items.items() if q > 0}
        moving: list[tuple[Any, int]] = []  # (line, units of it that move)
        for line in lines:
            left = wanted.get(line.sku, 0)
            if (
                left
                and line.line_status == LineStatus.ALLOCATED.value
                and line.location_id == from_location
            ):
                take = min(left, line.quantity)
                moving.append((line, take))
                wanted[line.sku] = left - take
        if not moving:
            return get_reservation(session, reservation_id, at)
        variants = dict(
            session.execute(
                select(S.id, S.variant_id).where(S.id.in_({line.stock_id for line, _ in moving}))
            ).all()
        )
        targets = _ensure_stock_rows(
            session, ((line.sku, variants[line.stock_id], to_location) for line, _ in moving), at
        )
        why = note or f"for {reservation_id}: moved from {from_location} to {to_location}"
        changes = []
        for line, take in moving:
            target = targets[(line.sku, to_location)]
            if take == line.quantity:
                session.execute(
                    update(LINES)
                    .where(L.id == line.line_id, L.status == LineStatus.ALLOCATED.value)
                    .values(stock_id=target, location_id=to_location)
                )
            else:
                session.execute(
                    update(LINES)
                    .where(L.id == line.line_id, L.status == LineStatus.ALLOCATED.value)
                    .values(quantity=L.quantity - take)
                )
                session.execute(
                    insert(LINES).values(
                        reservation_id=reservation_id,
                        stock_id=target,
                        sku=line.sku,
                        location_id=to_location,
                        quantity=take,
                        status=LineStatus.ALLOCATED.value,
                        expires_at=line.line_expires_at,
                    )
                )
            changes.append(
                Change(
                    line.stock_id,
                    Reason.TRANSFER_OUT,
                    on_hand=-take,
                    allocated=-take,
                    reference=reservation_id,
                    note=why,
                )
            )
            changes.append(
                Change(
                    target,
                    Reason.TRANSFER_IN,
                    on_hand=take,
                    allocated=take,
                    reference=reservation_id,
                    note=why,
                )
            )
        _apply_unconditional(session, changes, at)
        return get_reservation(session, reservation_id, at)

    return atomic(session, run)
