"""Analytics use cases: the public interface of the context.

*Facts in*: ``record_sale_fact``, ``record_return_fact``, ``record_cancellation_fact``,
``record_session_fact`` (``facts.py``; idempotent, flush only) and the Online Retail import
(``import_online_retail``). *Insight out*: ``kpis``, ``cohorts``, ``channel_mix``, ``rfm``,
``customer_lifetime_value``, ``run_forecast``/``backtest_demand``, replenishment
suggestions and their acceptance into inventory transfers or purchase orders, and charts.

Services flush, never commit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from omniretail.analytics import charts, forecasting
from omniretail.analytics.domain import Kind, LineType, NodeStock, plan_moves, plan_node
from omniretail.analytics.facts import (
    FactLine,
    record_cancellation_fact,
    record_return_fact,
    record_sale_fact,
    record_session_fact,
)
from omniretail.analytics.importer import ImportReport, import_online_retail
from omniretail.analytics.kpis import (
    ChannelMixReport,
    CohortReport,
    KpiReport,
    RfmReport,
    as_dict,
    channel_mix,
    cohorts,
    kpis,
    raw_timestamps,
    rfm,
    to_utc,
)
from omniretail.analytics.lifetime import ClvReport, customer_lifetime_value
from omniretail.analytics.models import (
    ForecastRun,
    ForecastSeries,
    ForecastValue,
    ReplenishmentSuggestion,
    SalesLine,
)
from omniretail.core.errors import AppError, conflict, invalid, not_found
from omniretail.core.events import emit
from omniretail.core.ids import new_id
from omniretail.core.timeutil import as_utc, utcnow

__all__ = [
    "ChannelMixReport",
    "ClvReport",
    "CohortReport",
    "FactLine",
    "ImportReport",
    "KpiReport",
    "RfmReport",
    "accept_suggestion",
    "as_dict",
    "backtest_demand",
    "channel_mix",
    "cohorts",
    "customer_lifetime_value",
    "dismiss_suggestion",
    "import_online_retail",
    "kpis",
    "latest_run",
    "list_suggestions",
    "record_cancellation_fact",
    "record_return_fact",
    "record_sale_fact",
    "record_session_fact",
    "render_chart",
    "rfm",
    "run_forecast",
    "suggest_replenishment",
]

NODE_KINDS = ("channel", "location")
MAX_API_SERIES = 5000


# --- demand and forecasts -------------------------------------------------------------------


def load_sales(
    session: Session,
    *,
    by: str = "channel",
    skus: Sequence[str] | None = None,
    node: str | None = None,
) -> pd.DataFrame:
    """Sold units of product lines: sku, node (channel or location), occurred_at, quantity."""
    if by not in NODE_KINDS:
        raise invalid("invalid_node_kind", "by must be 'channel' or 'location'", allowed=NODE_KINDS)
    s = SalesLine
    node_col = s.channel if by == "channel" else s.location
    query = select(s.sku, node_col, raw_timestamps(session, s.occurred_at), s.quantity).where(
        s.kind == Kind.SALE.value, s.line_type == LineType.PRODUCT.value, s.quantity > 0
    )
    if by == "location":
        query = query.where(s.location.is_not(None))
    if skus:
        query = query.where(s.sku.in_(list(skus)))
    if node is not None:
        query = query.where(node_col == node)
    rows = session.connection().execute(query).fetchall()
    names = ("sku", "node", "occurred_at", "quantity")
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    frame = pd.DataFrame(
        {n: pd.Series(v, dtype=object) for n, v in zip(names, columns, strict=True)}
    )
    frame["occurred_at"] = to_utc(frame["occurred_at"])
    frame["quantity"] = frame["quantity"].astype("int64")
    return frame


@dataclass(frozen=True)
class ForecastRunView:
    id: str | None
    created_at: datetime
    freq: str
    horizon: int
    node_kind: str
    history_start: date | None
    history_end: date | None
    params: dict[str, Any]
    metrics: dict[str, Any]


def _config(
    freq: str, horizon: int, windows: int, n_jobs: int, compare: bool, season_length: int | None
) -> forecasting.ForecastConfig:
    if freq not in forecasting.FREQUENCIES:
        raise invalid("invalid_freq", "freq must be W (weeks) or D (days)")
    if not 1 <= horizon <= 104:
        raise invalid("invalid_horizon", "horizon must be between 1 and 104 periods")
    if not 1 <= windows <= 20:
        raise invalid("invalid_windows", "windows must be between 1 and 20")
    if n_jobs < 1:
        raise invalid("invalid_n_jobs", "n_jobs must be at least 1")
    return forecasting.ForecastConfig(
        freq=freq,
        horizon=horizon,
        windows=windows,
        n_jobs=n_jobs,
        compare=compare,
        season_length=season_length,
    )


def _demand(
    session: Session,
    by: str,
    freq: str,
    top: int | None,
    skus: Sequence[str] | None,
    min_nonzero: int,
    max_series: int | None,
) -> pd.DataFrame:
    demand = forecasting.demand_frame(load_sales(session, by=by, skus=skus), freq)
    demand = forecasting.select_series(
        demand, top=top, skus=list(skus) if skus else None, min_nonzero=min_nonzero
    )
    count = demand["unique_id"].nunique()
    if count == 0:
        raise AppError("no_demand", "no series with enough sales history to forecast", 422)
    if max_series is not None and count > max_series:
        raise invalid(
            "too_many_series",
            f"{count} series; pass top or skus (at most {max_series} here)",
            series=count,
        )
    return demand


def backtest_demand(
    session: Session,
    *,
    by: str = "channel",
    freq: str = "W",
    horizon: int = 4,
    windows: int = 3,
    top: int | None = None,
    skus: Sequence[str] | None = None,
    min_nonzero: int = 2,
    compare: bool = False,
    season_length: int | None = None,
    n_jobs: int = 1,
    max_series: int | None = None,
    progress: forecasting.Progress | None = None,
) -> forecasting.BacktestResult:
    """Rolling-origin backtest (MASE against seasonal naive) without storing anything."""
    config = _config(freq, horizon, windows, n_jobs, compare, season_length)
    demand = _demand(session, by, freq, top, skus, min_nonzero, max_series)
    return forecasting.backtest(demand, config, progress)


def run_forecast(
    session: Session,
    *,
    by: str = "channel",
    freq: str = "W",
    horizon: int = 4,
    windows: int = 3,
    top: int | None = None,
    skus: Sequence[str] | None = None,
    min_nonzero: int = 2,
    season_length: int | None = None,
    n_jobs: int = 1,
    max_series: int | None = None,
    progress: forecasting.Progress | None = None,
) -> ForecastRunView:
    """Backtest, then forecast every selected series and store the run, its per-series
    metrics (class, model, MASE, σ, mean forecast) and the forecast values."""
    config = _config(freq, horizon, windows, n_jobs, False, season_length)
    demand = _demand(session, by, freq, top, skus, min_nonzero, max_series)
    result = forecasting.backtest(demand, config, progress)
    forecasts, _plan = forecasting.forecast(demand, config, progress)
    run_id = new_id("fcr")
    first = demand["ds"].min().date()
    last = (demand["ds"].max() + pd.Timedelta(days=config.frequency.days)).date()
    params = {
        "by": by,
        "top": top,
        "skus": list(skus) if skus else None,
        "min_nonzero": min_nonzero,
        "windows": windows,
        "season_length": season_length,
    }
    run = ForecastRun(
        id=run_id,
        created_at=utcnow(),
        freq=freq,
        horizon=horizon,
        node_kind=by,
        history_start=first,
        history_end=last,
        params=params,
        metrics=result.summary,
    )
    session.add(run)
    means = forecasts.groupby("unique_id")["yhat"].mean()
    table = result.series.set_index("unique_id")
    keys = demand.drop_duplicates("unique_id").set_index("unique_id")[["sku", "node"]]
    session.add_all(
        ForecastSeries(
            run_id=run_id,
            sku=str(keys.at[uid, "sku"]),
            node=str(keys.at[uid, "node"]),
            demand_class=str(row.demand_class),
            model=str(row.model),
            periods=int(row.periods),
            adi=float(row.adi) if math.isfinite(row.adi) else 0.0,
            cv2=float(row.cv2),
            mase=_float(row.mase),
            mase_seasonal_naive=_float(row.mase_seasonal_naive),
            sigma=_float(row.sigma),
            mean_forecast=float(means.get(uid, 0.0)),
        )
        for uid, row in table.iterrows()
    )
    session.flush()
    values = [
        {
            "run_id": run_id,
            "sku": str(keys.at[uid, "sku"]),
            "node": str(keys.at[uid, "node"]),
            "period_start": pd.Timestamp(ds).date(),
            "quantity": float(yhat),
        }
        for uid, ds, yhat in forecasts[["unique_id", "ds", "yhat"]].itertuples(index=False)
    ]
    if values:
        session.execute(insert(ForecastValue), values)
    session.flush()
    return _run_view(run)


def _float(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _run_view(run: ForecastRun) -> ForecastRunView:
    return ForecastRunView(
        id=run.id,
        created_at=as_utc(run.created_at),
        freq=run.freq,
        horizon=run.horizon,
        node_kind=run.node_kind,
        history_start=run.history_start,
        history_end=run.history_end,
        params=dict(run.params or {}),
        metrics=dict(run.metrics or {}),
    )


def latest_run(session: Session, node_kind: str | None = None) -> ForecastRunView:
    query = select(ForecastRun).order_by(ForecastRun.id.desc()).limit(1)
    if node_kind is not None:
        query = query.where(ForecastRun.node_kind == node_kind)
    run = session.scalar(query)
    if run is None:
        raise not_found("forecast_run", node_kind or "latest")
    return _run_view(run)


def get_run(session: Session, run_id: str) -> ForecastRunView:
    run = session.get(ForecastRun, run_id)
    if run is None:
        raise not_found("forecast_run", run_id)
    return _run_view(run)


@dataclass(frozen=True)
class SeriesForecast:
    sku: str
    node: str
    demand_class: str
    model: str
    mase: float | None
    mase_seasonal_naive: float | None
    sigma: float | None
    mean_forecast: float
    forecast: list[tuple[date, float]]


def run_series(
    session: Session, run_id: str, *, sku: str | None = None, limit: int = 100
) -> list[SeriesForecast]:
    get_run(session, run_id)
    query = select(ForecastSeries).where(ForecastSeries.run_id == run_id)
    if sku is not None:
        query = query.where(ForecastSeries.sku == sku)
    series = list(
        session.scalars(
            query.order_by(ForecastSeries.mean_forecast.desc(), ForecastSeries.sku).limit(limit)
        )
    )
    values: dict[tuple[str, str], list[tuple[date, float]]] = {}
    if series:
        rows = session.execute(
            select(
                ForecastValue.sku,
                ForecastValue.node,
                ForecastValue.period_start,
                ForecastValue.quantity,
            )
            .where(
                ForecastValue.run_id == run_id,
                ForecastValue.sku.in_([s.sku for s in series]),
            )
            .order_by(ForecastValue.period_start)
        )
        for s_sku, s_node, start, qty in rows:
            values.setdefault((s_sku, s_node), []).append((start, round(float(qty), 4)))
    return [
        SeriesForecast(
            sku=s.sku,
            node=s.node,
            demand_class=s.demand_class,
            model=s.model,
            mase=s.mase,
            mase_seasonal_naive=s.mase_seasonal_naive,
            sigma=s.sigma,
            mean_forecast=round(s.mean_forecast, 4),
            forecast=values.get((s.sku, s.node), []),
        )
        for s in series
    ]


# --- replenishment --------------------------------------------------------------------------


@dataclass(frozen=True)
class SuggestionView:
    id: str
    run_id: str
    kind: str
    sku: str
    from_location_id: str | None
    to_location_id: str
    quantity: int
    status: str
    details: dict[str, Any]
    created_at: datetime
    accepted_ref: str | None


@dataclass(frozen=True)
class ReplenishmentResult:
    run_id: str
    service_level: float
    lead_time: float
    review_period: float
    suggestions: list[SuggestionView] = field(default_factory=list)
    unknown_nodes: list[str] = field(default_factory=list)


def _suggestion_view(row: ReplenishmentSuggestion) -> SuggestionView:
    return SuggestionView(
        id=row.id,
        run_id=row.run_id,
        kind=row.kind,
        sku=row.sku,
        from_location_id=row.from_location_id,
        to_location_id=row.to_location_id,
        quantity=row.quantity,
        status=row.status,
        details=dict(row.details or {}),
        created_at=as_utc(row.created_at),
        accepted_ref=row.accepted_ref,
    )


def suggest_replenishment(
    session: Session,
    *,
    run_id: str | None = None,
    service_level: float = 0.95,
    lead_time: float = 2.0,
    review_period: float = 1.0,
    pack_size: int = 1,
    min_transfer: int = 1,
    skus: Sequence[str] | None = None,
) -> ReplenishmentResult:
    """Suggested transfers (excess → shortage between locations) and purchase orders from a
    location forecast run and the current stock (``inventory.service.stock_balances``).

    Per SKU and location: ``SS = ⌈z(service level)·σ·√L⌉`` (σ: RMSE of one-period backtest
    errors; √μ when the series had no backtest), ``ROP = ⌈μ·L⌉ + SS``,
    ``S = ⌈μ·(L + R)⌉ + SS`` with μ the mean forecast per period, L the lead time and R the
    review period in periods; inventory position = on hand − reserved + incoming. Locations
    at or below ROP need ``S − IP``; locations above ``S`` can give their unreserved excess.
    Earlier open suggestions for the same SKUs are superseded."""
    from omniretail.inventory import service as inventory

    if not 0.5 <= service_level < 1:
        raise invalid("invalid_service_level", "service_level must be in [0.5, 1)")
    if lead_time <= 0 or review_period < 0:
        raise invalid("invalid_lead_time", "lead_time must be > 0 and review_period >= 0")
    if pack_size < 1 or min_transfer < 1:
        raise invalid("invalid_pack_size", "pack_size and min_transfer must be at least 1")
    run = get_run(session, run_id) if run_id else latest_run(session, "location")
    if run.node_kind != "location":
        raise conflict(
            "not_a_location_run",
            f"forecast run {run.id} is per {run.node_kind}; run one with by=location",
        )
    assert run.id is not None
    query = select(ForecastSeries).where(ForecastSeries.run_id == run.id)
    if skus:
        query = query.where(ForecastSeries.sku.in_(list(skus)))
    series = list(session.scalars(query))
    locations = inventory.list_locations(session)
    # forecast nodes are location codes (imports) or ids (facts from the order context)
    codes = {loc.code: loc.id for loc in locations} | {loc.id: loc.id for loc in locations}
    ids_to_code = {loc.id: loc.code for loc in locations}
    unknown = sorted({s.node for s in series if s.node not in codes})
    wanted = sorted({s.sku for s in series if s.node in codes})
    balances = inventory.stock_balances(session, skus=wanted) if wanted else []
    by_sku: dict[str, dict[str, NodeStock]] = {}
    for b in balances:
        by_sku.setdefault(b.sku, {})[b.location_id] = NodeStock(
            b.location_id, b.on_hand, b.reserved, b.incoming, 0.0, 0.0
        )
    for s in series:
        if s.node not in codes:
            continue
        loc = codes[s.node]
        current = by_sku.setdefault(s.sku, {}).get(loc, NodeStock(loc, 0, 0, 0, 0.0, 0.0))
        sigma = s.sigma if s.sigma is not None else math.sqrt(max(s.mean_forecast, 0.0))
        by_sku[s.sku][loc] = NodeStock(
            loc, current.on_hand, current.reserved, current.incoming, s.mean_forecast, sigma
        )
    if wanted:
        session.execute(
            update(ReplenishmentSuggestion)
            .where(
                ReplenishmentSuggestion.status == "open",
                ReplenishmentSuggestion.sku.in_(wanted),
            )
            .values(status="superseded")
        )
    created: list[ReplenishmentSuggestion] = []
    for sku in wanted:
        nodes = by_sku.get(sku, {})
        plans = {
            loc: plan_node(node, lead_time, review_period, service_level)
            for loc, node in sorted(nodes.items())
        }
        for move in plan_moves(list(plans.values()), pack_size, min_transfer):
            target = plans[move.to_location_id]
            details: dict[str, Any] = {
                "to": _plan_details(target, nodes[move.to_location_id], ids_to_code),
                "service_level": service_level,
                "lead_time": lead_time,
                "review_period": review_period,
            }
            if move.from_location_id:
                details["from"] = _plan_details(
                    plans[move.from_location_id], nodes[move.from_location_id], ids_to_code
                )
            row = ReplenishmentSuggestion(
                id=new_id("rpl"),
                run_id=run.id,
                kind=move.kind,
                sku=sku,
                from_location_id=move.from_location_id,
                to_location_id=move.to_location_id,
                quantity=move.quantity,
                status="open",
                details=details,
                created_at=utcnow(),
            )
            session.add(row)
            created.append(row)
    session.flush()
    return ReplenishmentResult(
        run.id,
        service_level,
        lead_time,
        review_period,
        [_suggestion_view(r) for r in created],
        unknown,
    )


def _plan_details(plan: Any, node: NodeStock, codes: dict[str, str]) -> dict[str, Any]:
    return {
        "location_id": plan.location_id,
        "location_code": codes.get(plan.location_id),
        "mean_demand": round(node.mean_demand, 4),
        "sigma": round(node.sigma, 4),
        "on_hand": node.on_hand,
        "reserved": node.reserved,
        "incoming": node.incoming,
        "inventory_position": plan.inventory_position,
        "safety_stock": plan.safety_stock,
        "reorder_point": plan.reorder_point,
        "order_up_to": plan.order_up_to,
    }


def list_suggestions(
    session: Session, *, status: str | None = "open", limit: int = 200
) -> list[SuggestionView]:
    query = select(ReplenishmentSuggestion).order_by(ReplenishmentSuggestion.id).limit(limit)
    if status is not None:
        query = query.where(ReplenishmentSuggestion.status == status)
    return [_suggestion_view(r) for r in session.scalars(query)]


def _open_suggestion(session: Session, suggestion_id: str) -> ReplenishmentSuggestion:
    row = session.get(ReplenishmentSuggestion, suggestion_id, with_for_update=True)
    if row is None:
        raise not_found("suggestion", suggestion_id)
    if row.status != "open":
        raise conflict(
            "suggestion_not_open",
            f"suggestion {suggestion_id} is {row.status}",
            status=row.status,
            accepted_ref=row.accepted_ref,
        )
    return row


def accept_suggestion(
    session: Session,
    suggestion_id: str,
    *,
    supplier: str = "default supplier",
    quantity: int | None = None,
    now: datetime | None = None,
) -> SuggestionView:
    """Turn an open suggestion into an inventory transfer (``inventory.service.
    create_transfer``: units leave the source now and show as incoming at the destination)
    or a purchase order (``create_purchase_order``). ``quantity`` may lower the amount. If
    inventory refuses (e.g. the units are no longer free), nothing changes."""
    from omniretail.inventory import service as inventory

    row = _open_suggestion(session, suggestion_id)
    qty = row.quantity if quantity is None else quantity
    if qty < 1 or qty > row.quantity:
        raise invalid("invalid_quantity", f"quantity must be between 1 and {row.quantity}")
    reference = row.id
    if row.kind == "transfer":
        assert row.from_location_id is not None
        transfer = inventory.create_transfer(
            session,
            from_location_id=row.from_location_id,
            to_location_id=row.to_location_id,
            lines=[(row.sku, qty)],
            reference=reference,
            note="replenishment suggestion",
            now=now,
        )
        row.accepted_ref = transfer.id
    else:
        po = inventory.create_purchase_order(
            session,
            location_id=row.to_location_id,
            supplier=supplier,
            lines=[(row.sku, qty)],
            reference=reference,
            now=now,
        )
        row.accepted_ref = po.id
    row.status = "accepted"
    row.quantity = qty
    emit(
        session,
        "analytics.replenishment.accepted",
        {"suggestion_id": row.id, "kind": row.kind, "ref": row.accepted_ref, "sku": row.sku},
        row.id,
    )
    session.flush()
    return _suggestion_view(row)


def dismiss_suggestion(session: Session, suggestion_id: str) -> SuggestionView:
    row = _open_suggestion(session, suggestion_id)
    row.status = "dismissed"
    session.flush()
    return _suggestion_view(row)


# --- charts ---------------------------------------------------------------------------------

CHARTS = ("cohort-retention", "channel-mix", "forecast", "rfm-segments", "clv-holdout")


def render_chart(
    session: Session,
    name: str,
    fmt: str = "png",
    *,
    start: date | None = None,
    end: date | None = None,
    channel: str | None = None,
    sku: str | None = None,
    by: str = "channel",
    node: str | None = None,
    calibration_end: date | None = None,
) -> bytes:
    """A chart as PNG or SVG bytes, computed from the current data."""
    if fmt not in charts.FORMATS:
        raise invalid("invalid_format", "format must be png or svg", allowed=charts.FORMATS)
    if name == "cohort-retention":
        return charts.cohort_heatmap(cohorts(session, start=start, end=end, channel=channel), fmt)
    if name == "channel-mix":
        return charts.channel_mix_chart(channel_mix(session, start=start, end=end), fmt)
    if name == "rfm-segments":
        return charts.rfm_segments_chart(rfm(session, start=start, end=end, channel=channel), fmt)
    if name == "clv-holdout":
        if calibration_end is None:
            raise invalid("calibration_end_required", "pass calibration_end for clv-holdout")
        report = customer_lifetime_value(
            session, start=start, calibration_end=calibration_end, holdout_end=end
        )
        if report.holdout is None:
            raise invalid("holdout_required", "pass end (the holdout end) for clv-holdout")
        return charts.clv_holdout_chart(report, fmt)
    if name == "forecast":
        return _forecast_chart(session, fmt, sku=sku, by=by, node=node)
    raise not_found("chart", name, available=list(CHARTS))


def _forecast_chart(
    session: Session, fmt: str, *, sku: str | None, by: str, node: str | None
) -> bytes:
    """Actual weekly demand, the rolling-origin backtest forecasts of the chosen model and of
    seasonal naive, and the forecast ahead, for one SKU × node (default: the series with the
    highest median weekly units)."""
    lines = load_sales(session, by=by, skus=[sku] if sku else None, node=node)
    demand = forecasting.demand_frame(lines, "W")
    if demand.empty:
        raise AppError("no_demand", "no sales history for this chart", 422)
    # the steadiest best seller: highest median weekly units (one huge order does not count)
    stats = demand.groupby("unique_id")["y"].agg(["median", "sum"])
    uid = str(stats.sort_values(["median", "sum"], ascending=False).index[0])
    series = demand[demand["unique_id"] == uid]
    config = forecasting.ForecastConfig(horizon=4, windows=3)
    result = forecasting.backtest(series, config)
    ahead, _ = forecasting.forecast(series, config)
    return charts.forecast_chart(uid, series, result, ahead, fmt)
