"""Request and response models of the fulfilment API (sourcing, delivery promise)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineIn(In):
    sku: str = Field(min_length=1, max_length=64, examples=["TSHIRT-RED-M"])
    quantity: int = Field(description="Units, greater than zero", examples=[2])
    line_id: str | None = Field(
        default=None, max_length=120, description="The caller's order line id, echoed back"
    )


class DestinationIn(In):
    latitude: float = Field(ge=-90, le=90, examples=[51.5154])
    longitude: float = Field(ge=-180, le=180, examples=[-0.1419])
    timezone: str | None = Field(
        default=None,
        description="IANA zone of the customer (promise texts)",
        examples=["Europe/London"],
    )


class SourcingPlanIn(In):
    lines: list[LineIn] = Field(min_length=1, max_length=50)
    method: str = Field(
        default="standard",
        description="standard, express, same_day, pickup or curbside",
        examples=["standard"],
    )
    destination: DestinationIn | None = None
    pickup_location: str | None = Field(
        default=None, description="Pickup store id or code (pickup, curbside)"
    )
    channel: str | None = Field(default=None, description="Sales channel id or code")
    strategy: str | None = Field(
        default=None,
        description="Override the channel's strategy: cost_optimal, nearest, fewest_splits, "
        "store_first, warehouse_first",
    )
    max_packages: int | None = Field(default=None, ge=1)
    ship_together: list[list[str]] = Field(
        default_factory=list, description="Groups of SKUs that must leave one location together"
    )
    split_lines: bool | None = Field(
        default=None, description="May one line's units come from several locations?"
    )
    allow_partial: bool | None = Field(
        default=None, description="Accept a plan that leaves some units unfulfilled"
    )
    allow_transfers: bool | None = Field(
        default=None, description="Pickup orders: may stock move to the pickup store first?"
    )
    reference: str | None = Field(default=None, max_length=120, description="Order reference")
    dry_run: bool = Field(default=False, description="Decide only: store nothing, book nothing")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lines": [{"sku": "TSHIRT-RED-M", "quantity": 2, "line_id": "1"}],
                    "method": "standard",
                    "destination": {"latitude": 51.5154, "longitude": -0.1419},
                    "channel": "web",
                    "reference": "ord_123",
                }
            ]
        },
    )


class PackageLineOut(Out):
    line_id: str | None
    sku: str
    quantity: int


class PackageOut(Out):
    position: int
    location_id: str
    location_code: str
    location_type: str
    kind: str = Field(description="ship, pickup (at the store itself) or transfer")
    distance_km: float
    lead_time_hours: int
    units: int
    shipping_cost: int
    handling_cost: int
    transfer_cost: int
    lines: list[PackageLineOut]


class DecisionOut(Out):
    id: str | None = Field(description="None for a dry run")
    stored: bool
    reference: str | None
    channel_id: str | None
    method: str
    strategy: str
    solver: str = Field(description="heuristic, exact or exact_fallback")
    outcome: str = Field(description="planned, or partial (some units unfulfilled)")
    state: str = Field(description="open, released, cancelled (draft for a dry run)")
    currency: str
    total_cost: int = Field(description="Minor units")
    cost_breakdown: dict[str, Any]
    packages: list[PackageOut]
    unfulfilled: list[dict[str, Any]]
    infeasibility: dict[str, Any] | None = Field(
        description="Why no full plan exists (partial plans only)"
    )
    alternatives: list[dict[str, Any]] = Field(
        description="Other plans considered and why each lost"
    )
    explanation: str
    candidates: int
    solve_ms: float
    revision: int
    created_at: datetime


class StrategyIn(In):
    strategy: str = Field(examples=["cost_optimal"])
    max_packages: int | None = Field(default=None, ge=1, examples=[3])
    split_lines: bool = True
    allow_partial: bool = False
    allow_transfers: bool = True


class StrategyOut(Out):
    channel_id: str | None
    channel_code: str | None
    strategy: str
    max_packages: int | None
    split_lines: bool
    allow_partial: bool
    allow_transfers: bool


class CostModelIn(In):
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    package_fixed: int | None = None
    per_km_package: float | None = None
    per_km_unit: float | None = None
    handling_per_package: dict[str, int] | None = None
    handling_per_unit: dict[str, int] | None = None
    split_penalty: int | None = None
    express_surcharge: int | None = None
    same_day_surcharge: int | None = None
    same_day_radius_km: float | None = None
    pickup_handling_per_package: int | None = None
    pickup_handling_per_unit: int | None = None
    transfer_fixed: int | None = None
    transfer_per_km: float | None = None
    transfer_lead_hours: int | None = None


class CostModelOut(BaseModel):
    currency: str
    package_fixed: int
    per_km_package: float
    per_km_unit: float
    handling_per_package: dict[str, int]
    handling_per_unit: dict[str, int]
    split_penalty: int
    express_surcharge: int
    same_day_surcharge: int
    same_day_radius_km: float
    pickup_handling_per_package: int
    pickup_handling_per_unit: int
    transfer_fixed: int
    transfer_per_km: float
    transfer_lead_hours: int


class TransitBand(BaseModel):
    max_km: float | None
    days: int


class CarrierCalendarIn(In):
    transit_bands: list[TransitBand] | None = None
    express_days: int | None = None
    collection_days: list[str] | None = None
    delivery_days: list[str] | None = None
    holidays: list[str] | None = Field(default=None, examples=[["2026-12-25", "2026-12-26"]])
    delivery_window: list[str] | None = None
    same_day_window: list[str] | None = None
    cutoffs: dict[str, str] | None = Field(default=None, examples=[{"standard": "16:00"}])
    pickup_rounding_minutes: int | None = None


class CarrierCalendarOut(BaseModel):
    transit_bands: list[TransitBand]
    express_days: int
    collection_days: list[str]
    delivery_days: list[str]
    holidays: list[str]
    delivery_window: list[str]
    same_day_window: list[str]
    cutoffs: dict[str, str]
    pickup_rounding_minutes: int


class LocationCalendarIn(In):
    cutoffs: dict[str, str] | None = Field(
        default=None, examples=[{"standard": "15:00", "same_day": "11:00"}]
    )
    holidays: list[str] | None = Field(default=None, examples=[["2026-12-25"]])
    handling_minutes: int | None = Field(default=None, ge=0, le=10080, examples=[90])


class LocationCalendarOut(Out):
    location_id: str
    location_code: str
    timezone: str
    opening_hours: dict[str, Any]
    cutoffs: dict[str, str]
    holidays: list[str]
    handling_minutes: int


class PromiseIn(In):
    lines: list[LineIn] = Field(min_length=1, max_length=50)
    destination: DestinationIn | None = None
    pickup_location: str | None = Field(default=None, description="Pickup store id or code")
    channel: str | None = Field(default=None, description="Ignored for channel keys")
    methods: list[str] | None = Field(
        default=None, description="Default: standard, express, same_day and pickup"
    )
    now: datetime | None = Field(default=None, description="Evaluate at this instant (tests)")


class PromiseOptionOut(Out):
    method: str
    available: bool
    earliest: datetime | None = Field(description="Delivery window start or pickup ready time")
    latest: datetime | None = Field(description="Delivery window end")
    order_by: datetime | None = Field(description="Order before this instant for this promise")
    text: str = Field(examples=["Order within 2 h 10 min for delivery tomorrow"])
    reason: str | None = Field(description="Why the method is not available")
    location_id: str | None
    location_code: str | None
    locations: list[str]


class PromiseOut(Out):
    now: datetime
    options: list[PromiseOptionOut]


# --- store fulfilment tasks and shipments -------------------------------------------------------


class TaskLineOut(Out):
    sku: str
    title: str
    quantity: int
    picked: int
    short: int


class TaskOut(Out):
    id: str = Field(examples=["ftk_01JD0Y8Q3V9N6W2K7M4T5R8S1A"])
    order_id: str
    group_id: str
    channel_id: str
    kind: str = Field(description="pickup, ship, transfer or collect", examples=["pickup"])
    method: str = Field(examples=["bopis"])
    state: str = Field(
        description="assigned, picking, picked, packed, ready, handed_over or cancelled",
        examples=["assigned"],
    )
    location_id: str
    pickup_location_id: str | None
    reservation_id: str | None
    assignee: str | None
    parent_id: str | None = Field(description="The task this one re-sources or collects")
    due_at: datetime = Field(description="Pick SLA deadline")
    overdue: bool
    ready_at: datetime | None
    collect_by: datetime | None = Field(description="End of the pickup hold")
    handed_over_at: datetime | None
    next_step: str | None
    lines: list[TaskLineOut]
    history: list[dict[str, Any]]
    shipments: list[str]
    created_at: datetime
    updated_at: datetime


class AssignIn(In):
    assignee: str = Field(min_length=1, max_length=120, examples=["maria.k"])


class PickLineIn(In):
    sku: str = Field(min_length=1, max_length=64, examples=["TEE-M"])
    picked: int = Field(ge=0, description="Units found on the shelf", examples=[2])


class PickIn(In):
    lines: list[PickLineIn] = Field(
        min_length=1,
        max_length=200,
        description="Every line of the task with the units found; fewer than asked is a pick "
        "exception (written off here, re-sourced elsewhere)",
    )


class PickOutcomeOut(Out):
    task: TaskOut
    short: dict[str, int] = Field(description="Units not found, per SKU")
    resourced: list[TaskOut] = Field(description="New tasks where the missing units were found")
    unavailable: dict[str, int] = Field(
        description="Units found nowhere: settled with the customer (voided or refunded)"
    )


class PickListLineOut(Out):
    sku: str
    title: str
    quantity: int
    tasks: list[dict[str, Any]]


class PickListOut(Out):
    location_id: str
    tasks: int
    units: int
    lines: list[PickListLineOut]


class PackageLineIn(In):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0)


class PackageIn(In):
    lines: list[PackageLineIn] = Field(min_length=1, max_length=200)
    weight_g: int | None = Field(default=None, gt=0, examples=[850])
    tracking_number: str | None = Field(
        default=None, min_length=1, max_length=80, description="When booked outside omniretail"
    )


class ShipIn(In):
    carrier: str = Field(default="manual", min_length=1, max_length=40, examples=["manual"])
    service: str | None = Field(default=None, max_length=40, examples=["next_day"])
    packages: list[PackageIn] | None = Field(
        default=None,
        max_length=50,
        description="How the picked units are boxed (default: one package with everything)",
    )


class ShipmentOut(Out):
    id: str = Field(examples=["shp_01JD0Y8Q3V9N6W2K7M4T5R8S1A"])
    order_id: str
    task_id: str
    location_id: str
    kind: str = Field(description="ship (to the customer) or transfer (to a pickup location)")
    carrier: str
    service: str | None
    tracking_number: str
    tracking_url: str | None
    state: str
    destination: dict[str, Any] | None
    packages: list[dict[str, Any]]
    events: list[dict[str, Any]]
    shipped_at: datetime
    delivered_at: datetime | None


class TrackingIn(In):
    status: str = Field(
        description="in_transit, out_for_delivery, delivered, exception or returned",
        examples=["delivered"],
    )
    note: str | None = Field(default=None, max_length=300)
    occurred_at: datetime | None = None


class SlaIn(In):
    pick_minutes: dict[str, int] | None = Field(
        default=None, description="Pick deadline per delivery method", examples=[{"bopis": 90}]
    )
    default_pick_minutes: int | None = None
    pickup_hold_hours: int | None = Field(default=None, examples=[72])
    reminder_hours: int | None = None
    cancel_uncollected: bool | None = None


class SlaOut(BaseModel):
    pick_minutes: dict[str, int]
    default_pick_minutes: int
    pickup_hold_hours: int
    reminder_hours: int
    cancel_uncollected: bool
