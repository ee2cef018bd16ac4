"""Request and response models of the inventory API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Sku = Field(min_length=1, max_length=64, examples=["TSHIRT-RED-M"])


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- locations ------------------------------------------------------------------------------


class LocationIn(BaseModel):
    code: str = Field(min_length=1, max_length=64, examples=["paris-rivoli"])
    name: str = Field(min_length=1, max_length=200, examples=["Paris Rivoli"])
    type: str = Field(
        description="warehouse, store, dark_store, locker or dropship", examples=["store"]
    )
    timezone: str = Field(description="IANA time zone", examples=["Europe/Paris"])
    latitude: float | None = Field(default=None, examples=[48.8606])
    longitude: float | None = Field(default=None, examples=[2.3376])
    capabilities: list[str] = Field(
        default_factory=list,
        description="ship, pickup, curbside, same_day, ship_from_store, returns",
        examples=[["pickup", "ship_from_store", "returns"]],
    )
    opening_hours: dict[str, list[list[str]]] = Field(
        default_factory=dict,
        description="Local time per weekday (mon..sun); days left out are closed",
        examples=[{"mon": [["09:00", "19:00"]], "sat": [["10:00", "13:00"], ["14:00", "18:00"]]}],
    )
    daily_pick_capacity: int | None = Field(default=None, ge=0, examples=[400])
    address: dict[str, Any] = Field(default_factory=dict)


class LocationPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    type: str | None = None
    timezone: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    capabilities: list[str] | None = None
    opening_hours: dict[str, list[list[str]]] | None = None
    daily_pick_capacity: int | None = Field(default=None, ge=0)
    address: dict[str, Any] | None = None
    active: bool | None = None


class LocationOut(Out):
    id: str
    code: str
    name: str
    type: str
    timezone: str
    latitude: float | None
    longitude: float | None
    capabilities: list[str]
    opening_hours: dict[str, list[list[str]]]
    daily_pick_capacity: int | None
    address: dict[str, Any]
    active: bool


# --- stock ----------------------------------------------------------------------------------


class LineIn(BaseModel):
    sku: str = Sku
    quantity: int = Field(description="Units, greater than zero", examples=[2])


class StockBalanceOut(Out):
    sku: str
    variant_id: str
    location_id: str
    on_hand: int
    allocated: int = Field(description="Units of placed orders (converted reservations)")
    held: int = Field(description="Units in live reservation holds")
    reserved: int = Field(description="allocated + held")
    safety_stock: int
    incoming: int = Field(description="Expected from purchase orders and transfers in transit")
    available: int = Field(description="on hand − reserved − safety stock, never below zero")
    low_stock_threshold: int | None


class MovementIn(BaseModel):
    location_id: str
    reason: Literal["receipt", "return", "damage", "sale"] = Field(
        description="receipt and return add units; damage and sale remove them "
        "(a sale without reservation may only take available units)"
    )
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    reference: str | None = Field(default=None, max_length=120)
    note: str | None = Field(default=None, max_length=500)


class MovementOut(Out):
    location_id: str
    reason: str
    balances: list[StockBalanceOut]


class AdjustmentIn(BaseModel):
    location_id: str
    sku: str = Sku
    delta: int = Field(description="Signed, non-zero change of on hand", examples=[-2])
    note: str | None = Field(default=None, max_length=500)
    reference: str | None = Field(default=None, max_length=120)


class StockSettingsIn(BaseModel):
    location_id: str
    sku: str = Sku
    safety_stock: int | None = Field(default=None, ge=0)
    low_stock_threshold: int | None = Field(
        default=None, ge=0, description="Emit inventory.low_stock when available falls to this"
    )


class LedgerOut(Out):
    id: int
    sku: str
    location_id: str
    reason: str
    on_hand_delta: int
    allocated_delta: int
    held_delta: int
    safety_delta: int
    incoming_delta: int
    reference: str | None
    note: str | None
    created_at: datetime


class LedgerPage(BaseModel):
    items: list[LedgerOut]
    next_cursor: str | None = None


class DriftOut(Out):
    sku: str
    location_id: str
    field: str
    balance: int
    expected: int


class VerifyOut(Out):
    ok: bool
    rows_checked: int
    ledger_entries: int
    drift: list[DriftOut]


# --- reservations ---------------------------------------------------------------------------


class ReservationIn(BaseModel):
    items: list[LineIn] = Field(min_length=1, max_length=100)
    channel: str | None = Field(
        default=None, description="Channel id or code (channel keys always use their own)"
    )
    locations: list[str] | None = Field(
        default=None,
        max_length=200,
        description="Candidate location ids in preference order; default: the channel's "
        "sourcing locations",
    )
    strategy: Literal["preferred", "any"] = Field(
        default="preferred",
        description="preferred: fill from the first location, then the next; any: one "
        "location if one can fill the line, else the fewest",
    )
    ttl_seconds: int | None = Field(
        default=None, description="Hold duration; default: the channel's TTL (15 min)"
    )
    reference: str | None = Field(default=None, max_length=120, examples=["crt_01J..."])
    kind: Literal["cart", "order"] = "cart"


class ExtendIn(BaseModel):
    ttl_seconds: int | None = None


class AllocateIn(BaseModel):
    order_reference: str | None = Field(default=None, max_length=120)


class ReservationLineOut(Out):
    sku: str
    location_id: str
    quantity: int
    status: str


class ReservationOut(Out):
    id: str
    status: str = Field(description="active, allocated, released, expired or fulfilled")
    kind: str
    channel_id: str | None
    reference: str | None
    order_reference: str | None
    expires_at: datetime | None
    created_at: datetime
    quantity: int
    lines: list[ReservationLineOut]


class ExpireOut(BaseModel):
    expired_lines: int


# --- availability and sourcing --------------------------------------------------------------


class SkuAvailabilityOut(Out):
    sku: str
    available: int
    locations: dict[str, int] = Field(
        description="Location id -> units available (after the channel buffer), for the "
        "channel's sourcing locations that have any",
        examples=[{"loc_01JD...": 12, "loc_01JE...": 3}],
    )


class PickupLocationOut(Out):
    location_id: str
    code: str
    name: str
    type: str
    distance_km: float
    open_now: bool
    available: dict[str, int]


class AvailabilityOut(Out):
    channel: str | None
    buffer: int
    items: list[SkuAvailabilityOut]
    pickup: list[PickupLocationOut] | None = Field(
        description="Pickup-capable locations within radius_km of (lat, lon), nearest first"
    )


class SourcingRuleIn(Out):
    location_id: str | None = None
    location_type: str | None = None
    capability: str | None = None


class SourcingIn(BaseModel):
    rules: list[SourcingRuleIn] = Field(
        default_factory=list,
        description="A location feeds the channel if it matches any rule; no rules: all",
        examples=[[{"location_type": "warehouse"}, {"capability": "ship_from_store"}]],
    )
    buffer: int = Field(default=0, ge=0, description="Units held back per location")
    reservation_ttl_seconds: int = Field(default=900, description="Cart hold TTL")


class SourcingOut(Out):
    channel_id: str
    channel_code: str
    buffer: int
    reservation_ttl_seconds: int
    rules: list[SourcingRuleIn]
    location_ids: list[str]


# --- transfers, purchase orders, cycle counts -----------------------------------------------


class TransferIn(BaseModel):
    from_location_id: str
    to_location_id: str
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    reference: str | None = Field(default=None, max_length=120)
    note: str | None = Field(default=None, max_length=500)


class ReceivedLineIn(BaseModel):
    sku: str = Sku
    quantity_received: int = Field(ge=0)


class TransferReceiveIn(BaseModel):
    lines: list[ReceivedLineIn] = Field(
        default_factory=list, description="Counted quantities; lines left out arrived in full"
    )


class TransferLineOut(Out):
    sku: str
    quantity_shipped: int
    quantity_received: int | None
    discrepancy: int | None = Field(description="shipped − received, once received")


class TransferOut(Out):
    id: str
    from_location_id: str
    to_location_id: str
    status: str = Field(description="in_transit, received or received_with_discrepancy")
    reference: str | None
    created_at: datetime
    received_at: datetime | None
    lines: list[TransferLineOut]


class PurchaseOrderIn(BaseModel):
    location_id: str
    supplier: str = Field(min_length=1, max_length=200)
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    reference: str | None = Field(default=None, max_length=120)
    expected_at: datetime | None = None


class PurchaseOrderReceiptIn(BaseModel):
    lines: list[LineIn] = Field(min_length=1, max_length=500)


class PurchaseOrderLineOut(Out):
    sku: str
    quantity_ordered: int
    quantity_received: int
    outstanding: int


class PurchaseOrderOut(Out):
    id: str
    location_id: str
    supplier: str
    reference: str | None
    status: str
    expected_at: datetime | None
    created_at: datetime
    lines: list[PurchaseOrderLineOut]


class CountLineIn(BaseModel):
    sku: str = Sku
    counted: int = Field(ge=0)


class CycleCountIn(BaseModel):
    location_id: str
    lines: list[CountLineIn] = Field(min_length=1, max_length=2000)
    note: str | None = Field(default=None, max_length=500)


class VarianceLineOut(Out):
    sku: str
    expected: int
    counted: int
    variance: int


class CycleCountOut(Out):
    id: str
    location_id: str
    created_at: datetime
    note: str | None
    lines_counted: int
    lines_with_variance: int
    net_variance: int
    absolute_variance: int
    lines: list[VarianceLineOut]
