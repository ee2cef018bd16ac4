"""Tables of the fulfillment context.

* ``sourcing_decisions``: one row per sourcing decision: the input summary, the outcome, the
  cost breakdown, the alternatives and why they lost, the explanation, the solver and the
  strategy. ``state`` is ``open`` until the order context releases it to the floor
  (``released``) or cancels it; only open decisions are re-optimised.
* ``sourcing_packages`` / ``sourcing_package_lines``: the chosen plan, one package per
  location. Shipments and store tasks (pick, pack, collect) will reference these rows.
* ``sourcing_capacity_usage``: units assigned per location and local day, checked against the
  location's daily pick capacity with a conditional update.
* ``sourcing_strategies``: per sales channel, the strategy and constraints.
* ``fulfillment_settings``: network-wide documents (cost model, carrier calendar).
* ``location_fulfillment_calendars``: cut-off times, holidays and handling time per location.
* ``fulfillment_tasks`` / ``fulfillment_task_lines``: the work of one location for one delivery
  group of an order (pick, pack, then ready + hand-over for pickups, or ship): its state,
  SLA deadlines, alerts sent and history; per line the units picked and short.
* ``shipments``: what left a location with a carrier: packages with tracking numbers and
  labels, tracking events, shipped/delivered times. An order may ship in several shipments.

Locations, SKUs and channels belong to other contexts: referenced by id without foreign keys.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from omniretail.core.db import Base
from omniretail.core.timeutil import utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


class SourcingDecision(Base):
    __tablename__ = "sourcing_decisions"
    __table_args__ = (
        Index("ix_sourcing_decisions_reference", "reference"),
        Index("ix_sourcing_decisions_state", "state", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(120))
    channel_id: Mapped[str | None] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(20))
    strategy: Mapped[str] = mapped_column(String(20))
    solver: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(12))  # planned | partial
    state: Mapped[str] = mapped_column(String(12), default="open")
    destination: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pickup_location_id: Mapped[str | None] = mapped_column(String(40))
    lines: Mapped[list[Any]] = mapped_column(JSON)
    constraints: Mapped[dict[str, Any]] = mapped_column(JSON)
    cost_model: Mapped[dict[str, Any]] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    total_cost: Mapped[int] = mapped_column(Integer)
    cost_breakdown: Mapped[dict[str, Any]] = mapped_column(JSON)
    packages_count: Mapped[int] = mapped_column(Integer)
    unfulfilled: Mapped[list[Any]] = mapped_column(JSON, default=list)
    infeasibility: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    alternatives: Mapped[list[Any]] = mapped_column(JSON, default=list)
    explanation: Mapped[str] = mapped_column(Text)
    input_summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    solve_ms: Mapped[float] = mapped_column(Float)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SourcingPackage(Base):
    __tablename__ = "sourcing_packages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("sourcing_decisions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    location_id: Mapped[str] = mapped_column(String(40), index=True)
    location_code: Mapped[str] = mapped_column(String(64))
    location_type: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(12))  # ship | pickup | transfer
    distance_km: Mapped[float] = mapped_column(Float)
    lead_time_hours: Mapped[int] = mapped_column(Integer, default=0)
    units: Mapped[int] = mapped_column(Integer)
    shipping_cost: Mapped[int] = mapped_column(Integer)
    handling_cost: Mapped[int] = mapped_column(Integer)
    transfer_cost: Mapped[int] = mapped_column(Integer)
    capacity_day: Mapped[date] = mapped_column(Date)  # the location's local day it counts on


class SourcingPackageLine(Base):
    __tablename__ = "sourcing_package_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("sourcing_packages.id"), index=True)
    line_id: Mapped[str | None] = mapped_column(String(120))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)


class CapacityUsage(Base):
    __tablename__ = "sourcing_capacity_usage"
    __table_args__ = (CheckConstraint("units >= 0", name="units_not_negative"),)

    location_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    units: Mapped[int] = mapped_column(Integer, default=0)


class ChannelStrategy(Base):
    __tablename__ = "sourcing_strategies"

    channel_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(20))
    max_packages: Mapped[int | None] = mapped_column(Integer)
    split_lines: Mapped[bool] = mapped_column(default=True)
    allow_partial: Mapped[bool] = mapped_column(default=False)
    allow_transfers: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FulfillmentSetting(Base):
    __tablename__ = "fulfillment_settings"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LocationCalendarRow(Base):
    __tablename__ = "location_fulfillment_calendars"

    location_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    cutoffs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    holidays: Mapped[list[Any]] = mapped_column(JSON, default=list)
    handling_minutes: Mapped[int] = mapped_column(Integer, default=120)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FulfillmentTask(Base):
    __tablename__ = "fulfillment_tasks"
    __table_args__ = (
        Index("ix_fulfillment_tasks_queue", "location_id", "state", "due_at"),
        Index("ix_fulfillment_tasks_state", "state", "due_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    group_id: Mapped[str] = mapped_column(String(20))
    channel_id: Mapped[str] = mapped_column(String(40))
    reservation_id: Mapped[str | None] = mapped_column(String(40))
    location_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))  # pickup | ship | transfer | collect
    method: Mapped[str] = mapped_column(String(20))
    pickup_location_id: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(120))
    parent_id: Mapped[str | None] = mapped_column(String(40))
    due_at: Mapped[datetime] = mapped_column()
    ready_at: Mapped[datetime | None] = mapped_column()
    collect_by: Mapped[datetime | None] = mapped_column()
    handed_over_at: Mapped[datetime | None] = mapped_column()
    alerts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FulfillmentTaskLine(Base):
    __tablename__ = "fulfillment_task_lines"
    __table_args__ = (
        UniqueConstraint("task_id", "sku", name="uq_fulfillment_task_lines_sku"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("picked >= 0 AND short >= 0 AND picked + short <= quantity", name="picks"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("fulfillment_tasks.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    picked: Mapped[int] = mapped_column(Integer, default=0)
    short: Mapped[int] = mapped_column(Integer, default=0)


class Shipment(Base):
    __tablename__ = "shipments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    task_id: Mapped[str] = mapped_column(String(40), index=True)
    location_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))  # ship (to the customer) | transfer
    carrier: Mapped[str] = mapped_column(String(40))
    service: Mapped[str | None] = mapped_column(String(40))
    tracking_number: Mapped[str] = mapped_column(String(80), index=True)
    state: Mapped[str] = mapped_column(String(16))  # shipped | in_transit | delivered | ...
    destination: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    packages: Mapped[list[Any]] = mapped_column(JSON, default=list)
    events: Mapped[list[Any]] = mapped_column(JSON, default=list)
    shipped_at: Mapped[datetime] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
