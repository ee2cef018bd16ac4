"""Tables of the inventory context.

Stock lives in ``stock_levels``, one row per (SKU, location), with four counters changed only
by conditional updates: ``on_hand``, ``allocated`` (converted reservations of placed orders),
``held`` (units in reservation holds that have not been cleaned up yet, live or expired),
``safety_stock`` and ``incoming``. Every change is also a row in the append-only
``stock_ledger``, so the balances can be rebuilt and audited. The holds themselves are rows
of ``reservation_lines`` with a deadline; availability subtracts only those whose deadline
has not passed (see docs/inventory.md).

Variants and channels belong to the catalog: they are referenced by id and SKU, without a
foreign key into another context's tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from omniretail.core.db import Base
from omniretail.core.timeutil import utcnow

# BIGINT keys on PostgreSQL; INTEGER on SQLite so the key is the auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64))
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    capabilities: Mapped[list[Any]] = mapped_column(JSON, default=list)
    daily_pick_capacity: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StockLevel(Base):
    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("sku", "location_id"),
        Index("ix_stock_levels_location", "location_id"),
        # SQLite: availability reads every counter of a SKU's rows from this index alone (no
        # table lookups). Not on PostgreSQL, where indexing the counters would stop the hot
        # row's updates from being HOT (heap-only) updates.
        Index(
            "ix_stock_levels_atp",
            "sku",
            "location_id",
            "on_hand",
            "allocated",
            "held",
            "safety_stock",
        ).ddl_if(dialect="sqlite"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("allocated >= 0", name="allocated_not_negative"),
        CheckConstraint("held >= 0", name="held_not_negative"),
        CheckConstraint("safety_stock >= 0", name="safety_stock_not_negative"),
        CheckConstraint("incoming >= 0", name="incoming_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64))
    variant_id: Mapped[str] = mapped_column(String(40), index=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    allocated: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)
    safety_stock: Mapped[int] = mapped_column(Integer, default=0)
    incoming: Mapped[int] = mapped_column(Integer, default=0)
    low_stock_threshold: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """Append-only: one row per change of a stock balance, with its reason."""

    __tablename__ = "stock_ledger"
    __table_args__ = (Index("ix_stock_ledger_stock", "stock_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stock_id: Mapped[int] = mapped_column(ForeignKey("stock_levels.id"))
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(24))
    on_hand_delta: Mapped[int] = mapped_column(Integer, default=0)
    allocated_delta: Mapped[int] = mapped_column(Integer, default=0)
    held_delta: Mapped[int] = mapped_column(Integer, default=0)
    safety_delta: Mapped[int] = mapped_column(Integer, default=0)
    incoming_delta: Mapped[int] = mapped_column(Integer, default=0)
    reference: Mapped[str | None] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_reference", "reference"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16), default="cart")
    reference: Mapped[str | None] = mapped_column(String(120))
    order_reference: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReservationLine(Base):
    __tablename__ = "reservation_lines"
    __table_args__ = (
        # Live holds of one stock row, and the sweep of expired ones: only held lines count.
        Index(
            "ix_reservation_lines_held_stock",
            "stock_id",
            "expires_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
        Index(
            "ix_reservation_lines_held_expiry",
            "expires_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reservation_id: Mapped[str] = mapped_column(ForeignKey("reservations.id"), index=True)
    stock_id: Mapped[int] = mapped_column(ForeignKey("stock_levels.id"))
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column()


class ChannelInventorySettings(Base):
    __tablename__ = "channel_inventory_settings"

    channel_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    buffer: Mapped[int] = mapped_column(Integer, default=0)
    reservation_ttl_seconds: Mapped[int] = mapped_column(Integer, default=900)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SourcingRuleRow(Base):
    __tablename__ = "sourcing_rules"
    __table_args__ = (Index("ix_sourcing_rules_channel", "channel_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel_id: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer, default=0)
    location_id: Mapped[str | None] = mapped_column(ForeignKey("locations.id"))
    location_type: Mapped[str | None] = mapped_column(String(20))
    capability: Mapped[str | None] = mapped_column(String(20))


class Transfer(Base):
    __tablename__ = "transfers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    from_location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    to_location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_at: Mapped[datetime | None] = mapped_column()


class TransferLine(Base):
    __tablename__ = "transfer_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity_shipped: Mapped[int] = mapped_column(Integer)
    quantity_received: Mapped[int | None] = mapped_column(Integer)


class PurchaseOrder(Base):
    __tablename__ = "purchase_orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    supplier: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(24))
    expected_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PurchaseOrderLine(Base):
    __tablename__ = "purchase_order_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    purchase_order_id: Mapped[str] = mapped_column(ForeignKey("purchase_orders.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity_ordered: Mapped[int] = mapped_column(Integer)
    quantity_received: Mapped[int] = mapped_column(Integer, default=0)


class CycleCount(Base):
    __tablename__ = "cycle_counts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CycleCountLine(Base):
    __tablename__ = "cycle_count_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cycle_count_id: Mapped[str] = mapped_column(ForeignKey("cycle_counts.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    expected: Mapped[int] = mapped_column(Integer)
    counted: Mapped[int] = mapped_column(Integer)
