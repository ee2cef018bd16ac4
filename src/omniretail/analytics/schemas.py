"""Request and response models of the analytics API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class KpiOut(_Out):
    start: date
    end: date = Field(description="Exclusive")
    channel: str | None
    segment: str | None
    country: str | None
    currency: str
    revenue_minor: int = Field(description="Merchandise revenue of orders, net of cancellations")
    orders: int
    aov_minor: int | None = Field(description="revenue / orders, rounded half-up")
    units: int
    units_per_order: float | None
    customers: int
    guest_orders: int
    repeat_customers: int
    repeat_purchase_rate: float | None
    sessions: int
    converted_sessions: int
    conversion_rate: float | None = Field(description="None when no sessions are tracked")
    previous_customers: int
    churned_customers: int
    churn_rate: float | None
    cancelled_orders: int
    return_count: int
    returned_minor: int
    returned_units: int
    return_rate: float | None = Field(description="returned value / revenue")
    net_revenue_minor: int


class CohortRowOut(_Out):
    cohort: str = Field(examples=["2011-01"])
    customers: int
    active: list[int]
    retention: list[float]


class CohortOut(_Out):
    start: date
    end: date
    channel: str | None
    months: int
    rows: list[CohortRowOut]


class ChannelMixGroupOut(_Out):
    channels: str = Field(examples=["1", "2", "3+"])
    customers: int
    orders: int
    revenue_minor: int
    aov_minor: int | None
    frequency: float | None
    retained: int | None
    retention_rate: float | None


class ChannelMixOut(_Out):
    start: date
    end: date
    currency: str
    retention_window_end: date
    retention_observed: bool
    groups: list[ChannelMixGroupOut]
    channels: dict[str, int]


class RfmCustomerOut(BaseModel):
    customer_key: str
    recency_days: int
    frequency: int
    monetary_minor: int
    r: int
    f: int
    m: int
    cell: str
    segment: str


class RfmOut(BaseModel):
    start: date
    end: date
    channel: str | None
    customers: int
    segments: dict[str, int]
    cells: dict[str, int]
    items: list[RfmCustomerOut]


class CustomerValueOut(_Out):
    customer_key: str
    frequency: int
    recency_days: int
    age_days: int
    monetary_minor: float
    p_alive: float
    expected_purchases: float
    expected_spend_minor: float
    clv_minor: int


class HoldoutBucketOut(_Out):
    frequency: str
    customers: int
    predicted_mean: float
    actual_mean: float


class HoldoutOut(_Out):
    calibration_end: date
    holdout_end: date
    holdout_days: int
    customers: int
    predicted_purchases: float
    actual_purchases: int
    ratio_predicted_over_actual: float | None
    mae: float
    rmse: float
    correlation: float | None
    buckets: list[HoldoutBucketOut]


class ClvOut(_Out):
    calibration_start: date
    calibration_end: date
    horizon_months: int
    monthly_discount: float
    currency: str
    customers: int
    repeat_customers: int
    bgnbd: dict[str, float]
    gamma_gamma: dict[str, float] | None
    frequency_spend_correlation: float | None
    total_clv_minor: int
    mean_clv_minor: int
    expected_purchases_total: float
    top: list[CustomerValueOut]
    holdout: HoldoutOut | None


class ForecastRequest(BaseModel):
    by: str = Field(default="channel", description="channel or location")
    freq: str = Field(default="W", description="W (weeks from Monday) or D")
    horizon: int = Field(default=4, ge=1, le=104)
    windows: int = Field(default=3, ge=1, le=20, description="Backtest origins")
    top: int | None = Field(default=None, ge=1, description="Only the N best-selling series")
    skus: list[str] | None = None
    min_nonzero: int = Field(default=2, ge=1)


class ForecastRunOut(_Out):
    id: str | None
    created_at: datetime
    freq: str
    horizon: int
    node_kind: str
    history_start: date | None
    history_end: date | None
    params: dict[str, Any]
    metrics: dict[str, Any]


class SeriesForecastOut(_Out):
    sku: str
    node: str
    demand_class: str
    model: str
    mase: float | None
    mase_seasonal_naive: float | None
    sigma: float | None
    mean_forecast: float
    forecast: list[tuple[date, float]]


class ReplenishmentRequest(BaseModel):
    run_id: str | None = Field(default=None, description="Default: the latest location run")
    service_level: float = Field(default=0.95, ge=0.5, lt=1)
    lead_time: float = Field(default=2.0, gt=0, description="Periods of the run (weeks)")
    review_period: float = Field(default=1.0, ge=0)
    pack_size: int = Field(default=1, ge=1)
    min_transfer: int = Field(default=1, ge=1)
    skus: list[str] | None = None


class SuggestionOut(_Out):
    id: str
    run_id: str
    kind: str = Field(description="transfer or purchase")
    sku: str
    from_location_id: str | None
    to_location_id: str
    quantity: int
    status: str
    details: dict[str, Any]
    created_at: datetime
    accepted_ref: str | None = Field(description="Transfer or purchase order id once accepted")


class ReplenishmentOut(_Out):
    run_id: str
    service_level: float
    lead_time: float
    review_period: float
    suggestions: list[SuggestionOut]
    unknown_nodes: list[str]


class AcceptRequest(BaseModel):
    supplier: str = Field(default="default supplier", min_length=1, max_length=200)
    quantity: int | None = Field(default=None, ge=1, description="Lower than suggested")
