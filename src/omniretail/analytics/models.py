"""Tables of the analytics context.

The analytics store is a small star schema of its own, fed by the Online Retail importer today
and by the order context's events later (see ``service.record_sale_fact``):

* ``analytics_sales_lines``: one row per invoice/order line (sales and returns), keyed by
  ``(source, order_ref, line_no)`` so every feed is idempotent;
* ``analytics_orders``: one row per invoice/order/return with its merchandise totals, the
  table every KPI reads (about 26,000 rows for the whole Online Retail year);
* ``analytics_customers`` and ``analytics_products``: the dimensions seen in the facts;
* ``analytics_sessions``: tracked sessions (for conversion), converted when an order carries
  the session key;
* forecasting runs, their per-series metrics and forecast values, and replenishment
  suggestions.

Money is integer minor units with an ISO currency; times are UTC. Customers, products and
locations of other contexts are referenced by key, never by foreign key.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from omniretail.core.db import Base
from omniretail.core.timeutil import utcnow

# BIGINT keys on PostgreSQL; INTEGER on SQLite so the key is the auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class SalesLine(Base):
    """A sold or returned line. ``quantity`` and ``amount_minor`` are signed as in the source
    (negative on returns); ``line_type`` is ``product``, ``service`` (postage, fees, manual
    adjustments, vouchers) or ``adjustment`` (zero-price stock corrections)."""

    __tablename__ = "analytics_sales_lines"
    __table_args__ = (UniqueConstraint("source", "order_ref", "line_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    order_ref: Mapped[str] = mapped_column(String(64))
    line_no: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # sale | return
    line_type: Mapped[str] = mapped_column(String(12))  # product | service | adjustment
    channel: Mapped[str] = mapped_column(String(40))
    location: Mapped[str | None] = mapped_column(String(64))
    customer_key: Mapped[str | None] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column()


class OrderFact(Base):
    """One invoice, order or return with its totals. ``revenue_minor`` and ``units`` count
    product lines only (merchandise); service lines are in ``service_minor``. Returns have
    ``kind='return'`` and negative totals."""

    __tablename__ = "analytics_orders"
    __table_args__ = (
        UniqueConstraint("source", "order_ref"),
        Index("ix_analytics_orders_occurred", "occurred_at"),
        Index("ix_analytics_orders_customer", "customer_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    order_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12))  # sale | return
    channel: Mapped[str] = mapped_column(String(40))
    location: Mapped[str | None] = mapped_column(String(64))
    customer_key: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    revenue_minor: Mapped[int] = mapped_column(BigInteger)
    service_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    units: Mapped[int] = mapped_column(Integer)
    product_lines: Mapped[int] = mapped_column(Integer)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    original_order_ref: Mapped[str | None] = mapped_column(String(64))
    session_key: Mapped[str | None] = mapped_column(String(80))


class CustomerDim(Base):
    __tablename__ = "analytics_customers"

    customer_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    country: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column()


class ProductDim(Base):
    __tablename__ = "analytics_products"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(300), default="")
    line_type: Mapped[str] = mapped_column(String(12), default="product")


class TrackedSession(Base):
    """A tracked storefront session; ``order_ref`` is set when an order carried its key."""

    __tablename__ = "analytics_sessions"
    __table_args__ = (Index("ix_analytics_sessions_started", "started_at"),)

    session_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    customer_key: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column()
    order_ref: Mapped[str | None] = mapped_column(String(64))


class ImportRun(Base):
    __tablename__ = "analytics_import_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rows: Mapped[int] = mapped_column(Integer)
    imported_rows: Mapped[int] = mapped_column(Integer)
    rejected_rows: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ForecastRun(Base):
    __tablename__ = "analytics_forecast_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    freq: Mapped[str] = mapped_column(String(4))
    horizon: Mapped[int] = mapped_column(Integer)
    node_kind: Mapped[str] = mapped_column(String(12))  # channel | location
    history_start: Mapped[date] = mapped_column(Date)
    history_end: Mapped[date] = mapped_column(Date)  # first period after the history
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ForecastSeries(Base):
    """Per series of a run: demand class, chosen model, backtest errors and the mean forecast
    per period that replenishment plans with."""

    __tablename__ = "analytics_forecast_series"

    run_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    demand_class: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(40))
    periods: Mapped[int] = mapped_column(Integer)
    adi: Mapped[float] = mapped_column(Float)
    cv2: Mapped[float] = mapped_column(Float)
    mase: Mapped[float | None] = mapped_column(Float)
    mase_seasonal_naive: Mapped[float | None] = mapped_column(Float)
    sigma: Mapped[float | None] = mapped_column(Float)  # RMSE of one-period backtest errors
    mean_forecast: Mapped[float] = mapped_column(Float)  # units per period over the horizon


class ForecastValue(Base):
    __tablename__ = "analytics_forecast_values"

    run_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    quantity: Mapped[float] = mapped_column(Float)


class ReplenishmentSuggestion(Base):
    __tablename__ = "analytics_replenishment_suggestions"
    __table_args__ = (Index("ix_analytics_replenishment_status", "status", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))  # purchase | transfer
    sku: Mapped[str] = mapped_column(String(64))
    from_location_id: Mapped[str | None] = mapped_column(String(40))
    to_location_id: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open|accepted|dismissed
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_ref: Mapped[str | None] = mapped_column(String(40))
