"""KPIs, cohorts, channel mix and RFM over the analytics store.

Every computation reads one narrow ``SELECT`` of ``analytics_orders`` (one row per order or
return; ~26,000 rows for the Online Retail year) into pandas and aggregates there, so any of
them answers in well under a second. Definitions (docs/analytics.md):

* an **order** is a sale with at least one product line that was not cancelled; **revenue**
  is the merchandise value of orders (service lines such as postage are reported apart);
* AOV = revenue / orders; units per order = product units / orders;
* repeat-purchase rate = customers with ≥ 2 orders / customers with ≥ 1 order in the window
  (identified customers; guest orders cannot repeat);
* conversion = tracked sessions with an order / tracked sessions started in the window (how
  orders convert sessions: ``facts.record_sale_fact``, ``facts.record_tracked_order``);
* churn = customers who ordered in the previous window of the same length but not in this
  one / customers who ordered in the previous window;
* return rate = value of returns booked in the window / revenue of the window;
* cohort retention(m) = share of the customers whose first order is in month c who order in
  month c + m.

Windows are ``[start, end)`` in UTC dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, String, and_, case, func, select, type_coerce
from sqlalchemy.orm import Session

from omniretail.analytics.domain import (
    SEGMENTS,
    Kind,
    average_minor,
    quintile_scores,
    rate,
    rfm_segment,
)
from omniretail.analytics.models import CustomerDim, OrderFact, TrackedSession
from omniretail.core.errors import invalid

SPECIAL_SEGMENTS = ("guest", "registered")


@dataclass(frozen=True)
class Window:
    start: date
    end: date  # exclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def previous(self) -> Window:
        return Window(self.start - timedelta(days=self.days), self.start)

    def following(self) -> Window:
        return Window(self.end, self.end + timedelta(days=self.days))


def _ts(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def data_range(session: Session) -> tuple[date, date] | None:
    """First day with a fact and the day after the last one, or ``None`` when empty."""
    first, last = session.execute(
        select(func.min(OrderFact.occurred_at), func.max(OrderFact.occurred_at))
    ).one()
    if first is None or last is None:
        return None
    return _as_date(first), _as_date(last) + timedelta(days=1)


def _as_date(value: datetime) -> date:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).date()


def resolve_window(session: Session, start: date | None, end: date | None) -> Window:
    """Defaults: the whole history (first fact day to the day after the last)."""
    if start is None or end is None:
        span = data_range(session)
        today = datetime.now(UTC).date()
        first, after_last = span if span else (today, today + timedelta(days=1))
        start = start or first
        end = end or after_last
    if end <= start:
        raise invalid("invalid_window", "end must be after start", start=str(start), end=str(end))
    return Window(start, end)


def raw_timestamps(session: Session, column: Any) -> Any:
    """Select a UTC timestamp column without per-row conversion: SQLite's stored text is
    parsed by pandas in one vectorised call (``to_utc``)."""
    if session.get_bind().dialect.name == "sqlite":
        return type_coerce(column, String())
    return column


def to_utc(values: Any) -> pd.Series:
    return pd.Series(pd.to_datetime(pd.Series(values), utc=True, format="ISO8601"))


ORDER_COLUMNS = (
    "order_ref",
    "kind",
    "channel",
    "customer_key",
    "occurred_at",
    "revenue_minor",
    "units",
    "product_lines",
    "cancelled",
    "currency",
)


def load_orders(
    session: Session,
    *,
    before: date | None = None,
    since: date | None = None,
    channel: str | None = None,
    currency: str | None = None,
) -> pd.DataFrame:
    """Orders and returns as a frame: order_ref, kind, channel, customer_key, occurred_at
    (UTC), revenue_minor, units, product_lines, cancelled, currency. One Core query, built
    column-wise (no ORM rows)."""
    o = OrderFact
    query = select(
        o.order_ref,
        o.kind,
        o.channel,
        o.customer_key,
        raw_timestamps(session, o.occurred_at),
        o.revenue_minor,
        o.units,
        o.product_lines,
        o.cancelled,
        o.currency,
    )
    if before is not None:
        query = query.where(o.occurred_at < _ts(before))
    if since is not None:
        query = query.where(o.occurred_at >= _ts(since))
    if channel is not None:
        query = query.where(o.channel == channel)
    if currency is not None:
        query = query.where(o.currency == currency)
    rows = session.connection().execute(query).fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in ORDER_COLUMNS]
    frame = pd.DataFrame(
        {
            name: pd.Series(values, dtype=object)
            for name, values in zip(ORDER_COLUMNS, columns, strict=True)
        }
    )
    frame["occurred_at"] = to_utc(frame["occurred_at"])
    for name in ("revenue_minor", "units", "product_lines"):
        frame[name] = frame[name].astype("int64")
    frame["cancelled"] = frame["cancelled"].astype(bool)
    return frame


def orders_only(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``load_orders`` that are orders: sales with product lines, not cancelled."""
    mask = (frame["kind"] == Kind.SALE.value) & (frame["product_lines"] > 0) & ~frame["cancelled"]
    return frame[mask]


def within(frame: pd.DataFrame, window: Window) -> pd.DataFrame:
    start, end = pd.Timestamp(_ts(window.start)), pd.Timestamp(_ts(window.end))
    return frame[(frame["occurred_at"] >= start) & (frame["occurred_at"] < end)]


# --- SQL aggregates -------------------------------------------------------------------------


def _is_order() -> ColumnElement[bool]:
    o = OrderFact
    return and_(o.kind == Kind.SALE.value, o.product_lines > 0, o.cancelled.is_(False))


def _in_window(window: Window) -> ColumnElement[bool]:
    return and_(OrderFact.occurred_at >= _ts(window.start), OrderFact.occurred_at < _ts(window.end))


def _filters(channel: str | None, currency: str | None) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if channel is not None:
        out.append(OrderFact.channel == channel)
    if currency is not None:
        out.append(OrderFact.currency == currency)
    return out


def _month(session: Session) -> Any:
    """``YYYY-MM`` of the UTC order time, in SQL."""
    if session.get_bind().dialect.name == "sqlite":
        return func.substr(type_coerce(OrderFact.occurred_at, String()), 1, 7)
    return func.to_char(func.timezone("UTC", OrderFact.occurred_at), "YYYY-MM")


def _frame(session: Session, query: Any, names: Sequence[str]) -> pd.DataFrame:
    rows = session.connection().execute(query).fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pd.DataFrame(
        {n: pd.Series(v, dtype=object) for n, v in zip(names, columns, strict=True)}
    )


def _currency(session: Session, window: Window, channel: str | None, requested: str | None) -> str:
    if requested:
        return requested
    query = select(OrderFact.currency).where(_in_window(window), *_filters(channel, None))
    currencies = sorted(session.scalars(query.distinct()))
    if len(currencies) > 1:
        raise invalid(
            "mixed_currencies",
            "the facts are in several currencies; pass currency",
            currencies=currencies,
        )
    return currencies[0] if currencies else "GBP"


def per_customer(
    session: Session, window: Window, channel: str | None = None, currency: str | None = None
) -> pd.DataFrame:
    """Per customer (``None``: guests) and kind of fact in the window: ``kind`` (order,
    cancelled, return), count, revenue, units, last time."""
    o = OrderFact
    kind = case(
        (o.kind == Kind.RETURN.value, "return"),
        (o.cancelled.is_(True), "cancelled"),
        (o.product_lines > 0, "order"),
        else_="other",
    ).label("k")
    query = (
        select(
            o.customer_key,
            kind,
            func.count(),
            func.sum(o.revenue_minor),
            func.sum(o.units),
            raw_timestamps(session, func.max(o.occurred_at)),
        )
        .where(_in_window(window), *_filters(channel, currency))
        .group_by(o.customer_key, kind)
    )
    names = ("customer_key", "kind", "count", "revenue_minor", "units", "last_at")
    frame = _frame(session, query, names)
    for name in ("count", "revenue_minor", "units"):
        frame[name] = frame[name].astype("int64")
    frame["last_at"] = to_utc(frame["last_at"])
    return frame


def _customers_with_orders(
    session: Session, window: Window, channel: str | None, currency: str | None
) -> set[str]:
    o = OrderFact
    query = select(o.customer_key).where(
        _is_order(), _in_window(window), o.customer_key.is_not(None), *_filters(channel, currency)
    )
    return set(session.scalars(query.distinct()))


def _segment_keep(
    session: Session, orders: pd.DataFrame, window: Window, segment: str | None, country: str | None
) -> set[str] | None:
    """The customer keys an RFM-segment or country filter keeps (``None``: no filter)."""
    keep: set[str] | None = None
    if segment and segment not in SPECIAL_SEGMENTS:
        if segment not in SEGMENTS:
            raise invalid(
                "unknown_segment",
                f"unknown segment {segment!r}",
                allowed=[*SPECIAL_SEGMENTS, *SEGMENTS],
            )
        table = rfm_table(orders, window)
        keep = set(table.loc[table["segment"] == segment, "customer_key"])
    if country:
        in_country = set(
            session.scalars(select(CustomerDim.customer_key).where(CustomerDim.country == country))
        )
        keep = in_country if keep is None else keep & in_country
    return keep


def _apply_segment(
    frame: pd.DataFrame, segment: str | None, keep: set[str] | None, column: str = "customer_key"
) -> pd.DataFrame:
    if segment == "guest":
        frame = frame[frame[column].isna()]
    elif segment == "registered":
        frame = frame[frame[column].notna()]
    if keep is not None:
        frame = frame[frame[column].isin(keep)]
    return frame


# --- KPIs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiReport:
    start: date
    end: date
    channel: str | None
    segment: str | None
    country: str | None
    currency: str
    revenue_minor: int
    orders: int
    aov_minor: int | None
    units: int
    units_per_order: float | None
    customers: int
    guest_orders: int
    repeat_customers: int
    repeat_purchase_rate: float | None
    sessions: int
    converted_sessions: int
    conversion_rate: float | None
    previous_customers: int
    churned_customers: int
    churn_rate: float | None
    cancelled_orders: int
    return_count: int
    returned_minor: int
    returned_units: int
    return_rate: float | None
    net_revenue_minor: int


def kpis(
    session: Session,
    *,
    start: date | None = None,
    end: date | None = None,
    channel: str | None = None,
    segment: str | None = None,
    country: str | None = None,
    currency: str | None = None,
) -> KpiReport:
    window = resolve_window(session, start, end)
    money = _currency(session, window, channel, currency)
    facts = per_customer(session, window, channel, money)
    orders = facts[facts["kind"] == "order"]
    keep = _segment_keep(session, orders, window, segment, country)
    rfm_filter = segment is not None and segment not in SPECIAL_SEGMENTS
    facts = _apply_segment(facts, segment, keep)
    orders = facts[facts["kind"] == "order"]
    known = orders[orders["customer_key"].notna()]
    revenue = int(orders["revenue_minor"].sum())
    units = int(orders["units"].sum())
    count = int(orders["count"].sum())
    repeaters = int((known["count"] >= 2).sum())
    before = _customers_with_orders(session, window.previous(), channel, money)
    if segment == "guest":
        before = set()
    elif keep is not None:
        before &= keep
    churned = before - set(known["customer_key"])
    returns = facts[facts["kind"] == "return"]
    returned = -int(returns["revenue_minor"].sum())
    sessions, converted = _sessions(session, window, channel)
    return KpiReport(
        start=window.start,
        end=window.end,
        channel=channel,
        segment=segment,
        country=country,
        currency=money,
        revenue_minor=revenue,
        orders=count,
        aov_minor=average_minor(revenue, count),
        units=units,
        units_per_order=None if count == 0 else round(units / count, 4),
        customers=len(known),
        guest_orders=int(orders.loc[orders["customer_key"].isna(), "count"].sum()),
        repeat_customers=repeaters,
        repeat_purchase_rate=rate(repeaters, len(known)),
        sessions=sessions,
        converted_sessions=converted,
        conversion_rate=rate(converted, sessions),
        previous_customers=len(before),
        churned_customers=len(churned),
        churn_rate=None if rfm_filter else rate(len(churned), len(before)),
        cancelled_orders=int(facts.loc[facts["kind"] == "cancelled", "count"].sum()),
        return_count=int(returns["count"].sum()),
        returned_minor=returned,
        returned_units=-int(returns["units"].sum()),
        return_rate=rate(returned, revenue),
        net_revenue_minor=revenue - returned,
    )


def _sessions(session: Session, window: Window, channel: str | None) -> tuple[int, int]:
    s = TrackedSession
    query = select(func.count(), func.count(s.order_ref)).where(
        s.started_at >= _ts(window.start), s.started_at < _ts(window.end)
    )
    if channel is not None:
        query = query.where(s.channel == channel)
    total, converted = session.execute(query).one()
    return int(total or 0), int(converted or 0)


# --- cohorts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortRow:
    cohort: str  # YYYY-MM of the first order
    customers: int
    active: list[int]  # customers ordering in month c + m, m = 0, 1, ...
    retention: list[float]


@dataclass(frozen=True)
class CohortReport:
    start: date
    end: date
    channel: str | None
    months: int
    rows: list[CohortRow] = field(default_factory=list)


def cohorts(
    session: Session,
    *,
    start: date | None = None,
    end: date | None = None,
    channel: str | None = None,
    segment: str | None = None,
    country: str | None = None,
) -> CohortReport:
    """The monthly retention triangle of the cohorts whose first order falls in the window
    (first orders are found over the whole history before ``end``)."""
    window = resolve_window(session, start, end)
    o = OrderFact
    month = _month(session).label("month")
    query = (
        select(o.customer_key, month)
        .where(
            _is_order(),
            o.customer_key.is_not(None),
            o.occurred_at < _ts(window.end),
            *_filters(channel, None),
        )
        .group_by(o.customer_key, month)
    )
    activity = _frame(session, query, ("customer_key", "month"))
    if segment or country:
        orders = per_customer(session, window, channel)
        keep = _segment_keep(session, orders[orders["kind"] == "order"], window, segment, country)
        activity = _apply_segment(activity, segment, keep)
    if activity.empty:
        return CohortReport(window.start, window.end, channel, 0, [])
    year_month = activity["month"].str.split("-", expand=True).astype(int)
    activity["month"] = year_month[0] * 12 + year_month[1] - 1
    first = activity.groupby("customer_key")["month"].min().rename("cohort")
    activity = activity.join(first, on="customer_key")
    activity["age"] = activity["month"] - activity["cohort"]
    last_day = window.end - timedelta(days=1)
    start_m = window.start.year * 12 + window.start.month - 1
    end_m = last_day.year * 12 + last_day.month - 1
    activity = activity[(activity["cohort"] >= start_m) & (activity["cohort"] <= end_m)]
    counts = activity.groupby(["cohort", "age"]).size().unstack(fill_value=0)
    rows: list[CohortRow] = []
    for cohort_m, row in counts.iterrows():
        c = int(cast(int, cohort_m))
        active = [int(row.get(m, 0)) for m in range(end_m - c + 1)]
        size = active[0]
        rows.append(
            CohortRow(
                cohort=f"{c // 12:04d}-{c % 12 + 1:02d}",
                customers=size,
                active=active,
                retention=[round(a / size, 6) for a in active],
            )
        )
    months = max((len(r.active) for r in rows), default=0)
    return CohortReport(window.start, window.end, channel, months, rows)


# --- channel mix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelMixGroup:
    channels: str  # "1", "2", "3+"
    customers: int
    orders: int
    revenue_minor: int
    aov_minor: int | None
    frequency: float | None  # orders per customer in the window
    retained: int | None
    retention_rate: float | None  # share ordering again in the following window


@dataclass(frozen=True)
class ChannelMixReport:
    start: date
    end: date
    currency: str
    retention_window_end: date
    retention_observed: bool
    groups: list[ChannelMixGroup]
    channels: dict[str, int]  # orders per channel


def channel_mix(
    session: Session,
    *,
    start: date | None = None,
    end: date | None = None,
    currency: str | None = None,
) -> ChannelMixReport:
    """Identified customers grouped by how many channels they ordered through in the window
    (1, 2, 3+): AOV, orders per customer, and retention = share who order again in the
    following window of the same length (reported only when that window is fully in the
    data)."""
    window = resolve_window(session, start, end)
    following = window.following()
    money = _currency(session, window, None, currency)
    o = OrderFact
    query = (
        select(o.customer_key, o.channel, func.count(), func.sum(o.revenue_minor))
        .where(_is_order(), _in_window(window), o.currency == money)
        .group_by(o.customer_key, o.channel)
    )
    per = _frame(session, query, ("customer_key", "channel", "orders", "revenue"))
    per["orders"] = per["orders"].astype("int64")
    per["revenue"] = per["revenue"].astype("int64")
    per_channel = {str(k): int(v) for k, v in per.groupby("channel")["orders"].sum().items()}
    known = per[per["customer_key"].notna()]
    customers = known.groupby("customer_key").agg(
        channels=("channel", "nunique"), orders=("orders", "sum"), revenue=("revenue", "sum")
    )
    customers["group"] = np.where(
        customers["channels"] >= 3, "3+", customers["channels"].astype(str)
    )
    span = data_range(session)
    observed = span is not None and span[1] >= following.end
    later = _customers_with_orders(session, following, None, money) if observed else set()
    groups: list[ChannelMixGroup] = []
    for label in ("1", "2", "3+"):
        part = customers[customers["group"] == label]
        n = len(part)
        count = int(part["orders"].sum())
        revenue = int(part["revenue"].sum())
        retained = int(part.index.isin(list(later)).sum()) if observed else None
        groups.append(
            ChannelMixGroup(
                channels=label,
                customers=n,
                orders=count,
                revenue_minor=revenue,
                aov_minor=average_minor(revenue, count),
                frequency=None if n == 0 else round(count / n, 4),
                retained=retained,
                retention_rate=None if retained is None else rate(retained, n),
            )
        )
    return ChannelMixReport(
        window.start, window.end, money, following.end, observed, groups, per_channel
    )


# --- RFM ------------------------------------------------------------------------------------


def rfm_table(orders: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Per identified customer with an order in the window (rows of ``per_customer`` of kind
    ``order``): recency in days (from the last order's day to ``window.end``), frequency
    (orders), monetary (revenue), the R, F and M quintile scores, the cell ``"RFM"`` and the
    named segment."""
    known = orders[orders["customer_key"].notna()]
    columns = ["customer_key", "recency_days", "frequency", "monetary_minor", "r", "f", "m"]
    if known.empty:
        return pd.DataFrame(columns=[*columns, "cell", "segment"])
    per = (
        known.groupby("customer_key")
        .agg(
            last=("last_at", "max"),
            frequency=("count", "sum"),
            monetary_minor=("revenue_minor", "sum"),
        )
        .sort_index()
    )
    as_of = pd.Timestamp(_ts(window.end))
    per["recency_days"] = (as_of - per["last"].dt.floor("D")).dt.days.astype(int)
    per["r"] = quintile_scores(per["recency_days"].tolist(), higher_is_better=False)
    per["f"] = quintile_scores(per["frequency"].tolist())
    per["m"] = quintile_scores(per["monetary_minor"].tolist())
    per["cell"] = per["r"].astype(str) + per["f"].astype(str) + per["m"].astype(str)
    per["segment"] = [rfm_segment(r, f) for r, f in zip(per["r"], per["f"], strict=True)]
    out = per.reset_index()[[*columns, "cell", "segment"]]
    out["frequency"] = out["frequency"].astype(int)
    out["monetary_minor"] = out["monetary_minor"].astype(int)
    return out


@dataclass(frozen=True)
class RfmReport:
    start: date
    end: date
    channel: str | None
    customers: int
    segments: dict[str, int]
    cells: dict[str, int]
    table: pd.DataFrame


def rfm(
    session: Session,
    *,
    start: date | None = None,
    end: date | None = None,
    channel: str | None = None,
) -> RfmReport:
    window = resolve_window(session, start, end)
    facts = per_customer(session, window, channel)
    table = rfm_table(facts[facts["kind"] == "order"], window)
    segments = {name: int((table["segment"] == name).sum()) for name in SEGMENTS}
    cells = {str(k): int(v) for k, v in table.groupby("cell").size().sort_index().items()}
    return RfmReport(window.start, window.end, channel, len(table), segments, cells, table)


def as_dict(report: Any) -> dict[str, Any]:
    """A report dataclass as plain JSON-friendly values (dates as ISO strings); frames are
    left out."""
    out: dict[str, Any] = {}
    for f in fields(report):
        value = getattr(report, f.name)
        if not isinstance(value, pd.DataFrame):
            out[f.name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return as_dict(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
