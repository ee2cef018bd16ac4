"""HTTP routes of the inventory context: thin wrappers over ``inventory.service``."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from omniretail.catalog import service as catalog
from omniretail.core.auth import Principal, Role
from omniretail.core.errors import AppError, not_found
from omniretail.core.pagination import clamp_limit
from omniretail.core.web import (
    ERROR_RESPONSES,
    AnyStaff,
    Idempotent,
    SessionDep,
    TransactionalRoute,
    check_locations,
    database_of,
    error_doc,
    require,
    storefront,
)
from omniretail.inventory import service
from omniretail.inventory.models import LedgerEntry
from omniretail.inventory.schemas import (
    AdjustmentIn,
    AllocateIn,
    AvailabilityOut,
    CycleCountIn,
    CycleCountOut,
    ExpireOut,
    ExtendIn,
    LedgerOut,
    LedgerPage,
    LocationIn,
    LocationOut,
    LocationPatch,
    MovementIn,
    MovementOut,
    PurchaseOrderIn,
    PurchaseOrderOut,
    PurchaseOrderReceiptIn,
    ReservationIn,
    ReservationOut,
    SourcingIn,
    SourcingOut,
    StockBalanceOut,
    StockSettingsIn,
    TransferIn,
    TransferOut,
    TransferReceiveIn,
    VerifyOut,
)


def _example(status: int, code: str, text: str, details: dict[str, Any]) -> dict[str, Any]:
    return error_doc(code, text, details)


RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    404: _example(404, "sku_not_found", "Unknown SKU, location or reservation", {"skus": ["X"]}),
    409: _example(
        409,
        "insufficient_stock",
        "Not enough stock",
        {"sku": "TSHIRT-RED-M", "requested": 3, "available": 1},
    ),
}

router = APIRouter(prefix="/api/v1", route_class=TransactionalRoute, responses=RESPONSES)
TAGS: list[str | Any] = ["inventory"]

Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Staff = Annotated[Principal, Depends(AnyStaff)]
Mover = Annotated[Principal, Depends(require(Role.STORE_ASSOCIATE))]
Shopper = Annotated[Principal, Depends(storefront(Role.STORE_ASSOCIATE))]
Reader = Annotated[Principal, Depends(storefront(*(r for r in Role if r is not Role.CHANNEL)))]


def _at(principal: Principal, location_ids: Iterable[str]) -> None:
    """Store associates act only at their own locations."""
    check_locations(principal, location_ids)


# --- locations ------------------------------------------------------------------------------


@router.post("/locations", status_code=201, tags=TAGS, summary="Create a location")
def create_location(
    body: LocationIn, session: SessionDep, _: Admin, __: None = Idempotent
) -> LocationOut:
    location = service.create_location(session, **body.model_dump())
    return LocationOut.model_validate(location)


@router.get("/locations", tags=TAGS, summary="List locations")
def list_locations(
    session: SessionDep,
    _: Staff,
    type: str | None = None,
    capability: str | None = None,
    active: bool | None = None,
) -> list[LocationOut]:
    rows = service.list_locations(session, type=type, capability=capability, active=active)
    return [LocationOut.model_validate(r) for r in rows]


@router.get("/locations/{ref}", tags=TAGS, summary="One location by id or code")
def get_location(ref: str, session: SessionDep, _: Staff) -> LocationOut:
    return LocationOut.model_validate(service.get_location(session, ref))


@router.patch("/locations/{ref}", tags=TAGS, summary="Change a location")
def update_location(ref: str, body: LocationPatch, session: SessionDep, _: Admin) -> LocationOut:
    changes = body.model_dump(exclude_unset=True)
    return LocationOut.model_validate(service.update_location(session, ref, changes))


# --- stock ----------------------------------------------------------------------------------


def _skus(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out += [s.strip() for s in value.split(",") if s.strip()]
    return out


@router.get("/stock", tags=TAGS, summary="Stock balances by SKU and/or location")
def stock(
    session: SessionDep,
    _: Staff,
    sku: Annotated[list[str] | None, Query(description="SKUs (repeat or comma-separate)")] = None,
    location_id: str | None = None,
) -> list[StockBalanceOut]:
    skus = _skus(sku)
    if not skus and location_id is None:
        raise AppError("filter_required", "give sku and/or location_id", 422)
    rows = service.stock_balances(session, skus=skus or None, location_id=location_id)
    return [StockBalanceOut.model_validate(r) for r in rows]


@router.post(
    "/stock/movements",
    tags=TAGS,
    summary="Receipt, return, damage or direct sale at one location",
)
def stock_movement(
    body: MovementIn, session: SessionDep, principal: Mover, _: None = Idempotent
) -> MovementOut:
    _at(principal, [body.location_id])
    result = service.record_movement(
        session,
        location_id=body.location_id,
        reason=body.reason,
        lines=[(line.sku, line.quantity) for line in body.lines],
        reference=body.reference,
        note=body.note,
    )
    return MovementOut.model_validate(result)


@router.post("/stock/adjustments", tags=TAGS, summary="Correct on hand by a signed delta")
def stock_adjustment(
    body: AdjustmentIn, session: SessionDep, principal: Mover, _: None = Idempotent
) -> StockBalanceOut:
    _at(principal, [body.location_id])
    result = service.adjust_stock(
        session,
        location_id=body.location_id,
        sku=body.sku,
        delta=body.delta,
        note=body.note,
        reference=body.reference,
    )
    return StockBalanceOut.model_validate(result)


@router.put("/stock/settings", tags=TAGS, summary="Safety stock and low-stock threshold")
def stock_settings(
    body: StockSettingsIn, session: SessionDep, principal: Mover, _: None = Idempotent
) -> StockBalanceOut:
    _at(principal, [body.location_id])
    result = service.set_stock_settings(
        session,
        location_id=body.location_id,
        sku=body.sku,
        safety_stock=body.safety_stock,
        low_stock_threshold=body.low_stock_threshold,
        clear_low_stock_threshold="low_stock_threshold" in body.model_fields_set,
    )
    return StockBalanceOut.model_validate(result)


@router.get("/stock/ledger", tags=TAGS, summary="Ledger entries, oldest first")
def stock_ledger(
    session: SessionDep,
    _: Staff,
    sku: str | None = None,
    location_id: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> LedgerPage:
    size = clamp_limit(limit)
    query = service.ledger_query(session, sku=sku, location_id=location_id)
    if cursor:
        query = query.where(LedgerEntry.id > _decode_int_cursor(cursor))
    rows = list(session.scalars(query.order_by(LedgerEntry.id).limit(size + 1)))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = base64.urlsafe_b64encode(str(rows[-1].id).encode()).decode().rstrip("=")
    return LedgerPage(items=[LedgerOut.model_validate(r) for r in rows], next_cursor=next_cursor)


def _decode_int_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except ValueError:
        raise AppError("invalid_cursor", "the cursor is not valid", 400) from None


@router.get("/stock/verify", tags=TAGS, summary="Rebuild balances from the ledger; report drift")
def stock_verify(session: SessionDep, _: Admin) -> VerifyOut:
    return VerifyOut.model_validate(service.verify(session))


# --- reservations ---------------------------------------------------------------------------


def _reservation_for(session: Any, principal: Principal, reservation_id: str) -> None:
    """Channel keys see only their channel's reservations; associates only their stores'."""
    view = service.get_reservation(session, reservation_id)
    if principal.role is Role.CHANNEL and view.channel_id != principal.channel_id:
        raise not_found("reservation", reservation_id)
    if principal.role is Role.STORE_ASSOCIATE:
        _at(principal, (line.location_id for line in view.lines))


@router.post(
    "/reservations",
    status_code=201,
    tags=TAGS,
    summary="Reserve stock for a cart or an order line (may split across locations)",
)
def create_reservation(
    body: ReservationIn,
    request: Request,
    session: SessionDep,
    principal: Shopper,
    _: None = Idempotent,
) -> ReservationOut:
    channel = body.channel
    locations = body.locations
    if principal.role is Role.CHANNEL:
        if channel is not None and channel != principal.channel_id:
            ch = catalog.get_channel(session, channel)
            if ch.id != principal.channel_id:
                raise AppError("forbidden", "a channel key reserves for its own channel", 403)
        channel = principal.channel_id
    elif principal.role is Role.STORE_ASSOCIATE:
        locations = locations or list(principal.location_ids)
        _at(principal, locations)
    items = [(line.sku, line.quantity) for line in body.items]
    options: dict[str, Any] = {
        "channel": channel,
        "locations": locations,
        "strategy": body.strategy,
        "ttl_seconds": body.ttl_seconds,
        "reference": body.reference,
        "kind": body.kind,
    }
    if request.state.idempotency is not None:
        # The idempotency record commits with the hold, in the request's transaction.
        return ReservationOut.model_validate(service.reserve(session, items, **options))
    # Nothing else to commit with the hold: end the request's read-only transaction (the
    # credential and channel checks) and let the hold be its own unit of work.
    session.commit()
    view = service.reserve_standalone(database_of(request), items, **options)
    return ReservationOut.model_validate(view)


@router.get("/reservations/{reservation_id}", tags=TAGS, summary="One reservation")
def get_reservation(reservation_id: str, session: SessionDep, principal: Reader) -> ReservationOut:
    _reservation_for(session, principal, reservation_id)
    return ReservationOut.model_validate(service.get_reservation(session, reservation_id))


@router.post(
    "/reservations/{reservation_id}/extend", tags=TAGS, summary="Extend a live hold's deadline"
)
def extend_reservation(
    reservation_id: str,
    body: ExtendIn,
    session: SessionDep,
    principal: Shopper,
    _: None = Idempotent,
) -> ReservationOut:
    _reservation_for(session, principal, reservation_id)
    view = service.extend_reservation(session, reservation_id, ttl_seconds=body.ttl_seconds)
    return ReservationOut.model_validate(view)


@router.post("/reservations/{reservation_id}/release", tags=TAGS, summary="Give the units back")
def release_reservation(
    reservation_id: str, session: SessionDep, principal: Shopper, _: None = Idempotent
) -> ReservationOut:
    _reservation_for(session, principal, reservation_id)
    return ReservationOut.model_validate(service.release_reservation(session, reservation_id))


@router.post(
    "/reservations/{reservation_id}/allocate",
    tags=TAGS,
    summary="Convert a live hold into an allocation (order placed)",
)
def allocate_reservation(
    reservation_id: str,
    body: AllocateIn,
    session: SessionDep,
    principal: Shopper,
    _: None = Idempotent,
) -> ReservationOut:
    _reservation_for(session, principal, reservation_id)
    view = service.allocate_reservation(
        session, reservation_id, order_reference=body.order_reference
    )
    return ReservationOut.model_validate(view)


@router.post(
    "/reservations/{reservation_id}/fulfill",
    tags=TAGS,
    summary="The allocated units were shipped or handed over (a sale)",
)
def fulfill_reservation(
    reservation_id: str, session: SessionDep, principal: Mover, _: None = Idempotent
) -> ReservationOut:
    _reservation_for(session, principal, reservation_id)
    return ReservationOut.model_validate(service.fulfill_reservation(session, reservation_id))


@router.post(
    "/reservations/expire",
    tags=TAGS,
    summary="Clean up expired holds now (the worker does this every minute)",
)
def expire_reservations(session: SessionDep, _: Admin) -> ExpireOut:
    return ExpireOut(expired_lines=service.expire_reservations(session))


# --- availability and sourcing --------------------------------------------------------------


@router.get(
    "/availability",
    tags=TAGS,
    summary="Available to promise per location and in total; pickup locations near a point",
)
def get_availability(
    session: SessionDep,
    principal: Reader,
    skus: Annotated[list[str], Query(description="Up to 100 SKUs (repeat or comma-separate)")],
    channel: Annotated[str | None, Query(description="Channel id or code")] = None,
    lat: float | None = None,
    lon: float | None = None,
    radius_km: Annotated[float | None, Query(description="Default 25 km")] = None,
) -> AvailabilityOut:
    if principal.role is Role.CHANNEL:
        if channel is not None and channel != principal.channel_id:
            ch = catalog.get_channel(session, channel)
            if ch.id != principal.channel_id:
                raise AppError("forbidden", "a channel key reads its own channel", 403)
        channel = principal.channel_id
    result = service.availability(
        session, _skus(skus), channel=channel, lat=lat, lon=lon, radius_km=radius_km
    )
    return AvailabilityOut.model_validate(result)


@router.get("/channel-sourcing/{channel}", tags=TAGS, summary="Which locations feed a channel")
def get_sourcing(channel: str, session: SessionDep, _: Staff) -> SourcingOut:
    return SourcingOut.model_validate(service.get_channel_sourcing(session, channel))


@router.put(
    "/channel-sourcing/{channel}",
    tags=TAGS,
    summary="Set a channel's sourcing rules, buffer and hold TTL",
)
def set_sourcing(channel: str, body: SourcingIn, session: SessionDep, _: Admin) -> SourcingOut:
    result = service.set_channel_sourcing(
        session,
        channel,
        rules=[r.model_dump() for r in body.rules],
        buffer=body.buffer,
        reservation_ttl_seconds=body.reservation_ttl_seconds,
    )
    return SourcingOut.model_validate(result)


# --- transfers ------------------------------------------------------------------------------


@router.post("/transfers", status_code=201, tags=TAGS, summary="Ship stock to another location")
def create_transfer(
    body: TransferIn, session: SessionDep, principal: Mover, _: None = Idempotent
) -> TransferOut:
    _at(principal, [body.from_location_id])
    view = service.create_transfer(
        session,
        from_location_id=body.from_location_id,
        to_location_id=body.to_location_id,
        lines=[(line.sku, line.quantity) for line in body.lines],
        reference=body.reference,
        note=body.note,
    )
    return TransferOut.model_validate(view)


@router.get("/transfers", tags=TAGS, summary="List transfers")
def list_transfers(session: SessionDep, _: Staff, status: str | None = None) -> list[TransferOut]:
    return [TransferOut.model_validate(t) for t in service.list_transfers(session, status=status)]


@router.get("/transfers/{transfer_id}", tags=TAGS, summary="One transfer")
def get_transfer(transfer_id: str, session: SessionDep, _: Staff) -> TransferOut:
    return TransferOut.model_validate(service.get_transfer(session, transfer_id))


@router.post(
    "/transfers/{transfer_id}/receive",
    tags=TAGS,
    summary="Receive a transfer (counted quantities; the difference is a discrepancy)",
)
def receive_transfer(
    transfer_id: str,
    body: TransferReceiveIn,
    session: SessionDep,
    principal: Mover,
    _: None = Idempotent,
) -> TransferOut:
    _at(principal, [service.get_transfer(session, transfer_id).to_location_id])
    view = service.receive_transfer(
        session,
        transfer_id,
        received={line.sku: line.quantity_received for line in body.lines},
    )
    return TransferOut.model_validate(view)


# --- purchase orders ------------------------------------------------------------------------


@router.post(
    "/purchase-orders", status_code=201, tags=TAGS, summary="Expected goods from a supplier"
)
def create_purchase_order(
    body: PurchaseOrderIn, session: SessionDep, principal: Mover, _: None = Idempotent
) -> PurchaseOrderOut:
    _at(principal, [body.location_id])
    view = service.create_purchase_order(
        session,
        location_id=body.location_id,
        supplier=body.supplier,
        lines=[(line.sku, line.quantity) for line in body.lines],
        reference=body.reference,
        expected_at=body.expected_at,
    )
    return PurchaseOrderOut.model_validate(view)


@router.get("/purchase-orders/{po_id}", tags=TAGS, summary="One purchase order")
def get_purchase_order(po_id: str, session: SessionDep, _: Staff) -> PurchaseOrderOut:
    return PurchaseOrderOut.model_validate(service.get_purchase_order(session, po_id))


@router.post(
    "/purchase-orders/{po_id}/receipts", tags=TAGS, summary="Receive goods against an order"
)
def receive_purchase_order(
    po_id: str,
    body: PurchaseOrderReceiptIn,
    session: SessionDep,
    principal: Mover,
    _: None = Idempotent,
) -> PurchaseOrderOut:
    _at(principal, [service.get_purchase_order(session, po_id).location_id])
    view = service.receive_purchase_order(
        session, po_id, lines=[(line.sku, line.quantity) for line in body.lines]
    )
    return PurchaseOrderOut.model_validate(view)


# --- cycle counts ---------------------------------------------------------------------------


@router.post(
    "/cycle-counts",
    status_code=201,
    tags=TAGS,
    summary="Record counted quantities; returns the variance report",
)
def create_cycle_count(
    body: CycleCountIn, session: SessionDep, principal: Mover, _: None = Idempotent
) -> CycleCountOut:
    _at(principal, [body.location_id])
    report = service.submit_cycle_count(
        session,
        location_id=body.location_id,
        counts=[(line.sku, line.counted) for line in body.lines],
        note=body.note,
    )
    return CycleCountOut.model_validate(report)


@router.get("/cycle-counts/{count_id}", tags=TAGS, summary="A cycle count's variance report")
def get_cycle_count(count_id: str, session: SessionDep, _: Staff) -> CycleCountOut:
    return CycleCountOut.model_validate(service.get_cycle_count(session, count_id))
