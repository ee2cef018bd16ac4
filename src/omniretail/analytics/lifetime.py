"""Customer lifetime value over the analytics store: per-customer summaries, the BG/NBD and
Gamma-Gamma fits of ``clv.py``, predictions over a horizon and a calibration/holdout check.

Purchases are counted per day (several orders of one customer on one day are one purchase,
as in the BG/NBD literature); the spend of a purchase day is its merchandise revenue. Only
identified customers count (guests cannot be followed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from omniretail.analytics import clv
from omniretail.analytics.domain import Kind
from omniretail.analytics.kpis import (
    Window,
    _ts,
    load_orders,
    orders_only,
    resolve_window,
    within,
)
from omniretail.core.errors import AppError, invalid


@dataclass(frozen=True)
class CustomerValue:
    customer_key: str
    frequency: int  # repeat purchase days in the calibration period
    recency_days: int  # first to last purchase day
    age_days: int  # first purchase day to the end of the calibration period
    monetary_minor: float  # mean spend of the repeat purchase days
    p_alive: float
    expected_purchases: float
    expected_spend_minor: float
    clv_minor: int


@dataclass(frozen=True)
class HoldoutBucket:
    frequency: str  # calibration repeat purchases: "0", "1", ..., "6+"
    customers: int
    predicted_mean: float
    actual_mean: float


@dataclass(frozen=True)
class HoldoutReport:
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
    buckets: list[HoldoutBucket]


@dataclass(frozen=True)
class ClvReport:
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
    top: list[CustomerValue]
    holdout: HoldoutReport | None


def summarize(frame: pd.DataFrame, window: Window) -> pd.DataFrame:
    """Per customer over ``window``: x (repeat purchase days), t_x and T in days, m (mean
    revenue of the repeat purchase days, net of returns: scaled by the share of the
    customer's purchases in the window that were not returned)."""
    orders = within(orders_only(frame), window)
    orders = orders[orders["customer_key"].notna()]
    columns = ["customer_key", "x", "t_x", "T", "m"]
    if orders.empty:
        return pd.DataFrame(columns=columns)
    days = orders.assign(day=orders["occurred_at"].dt.floor("D"))
    per_day = days.groupby(["customer_key", "day"], as_index=False)["revenue_minor"].sum()
    per_day = per_day.sort_values(["customer_key", "day"])
    first = per_day.groupby("customer_key")["day"].transform("min")
    per_day["repeat"] = per_day["day"] > first
    end = pd.Timestamp(_ts(window.end))
    grouped = per_day.groupby("customer_key")
    out = pd.DataFrame(
        {
            "x": grouped.size() - 1,
            "t_x": (grouped["day"].max() - grouped["day"].min()).dt.days,
            "T": (end - grouped["day"].min()).dt.days,
        }
    )
    repeat = per_day[per_day["repeat"]].groupby("customer_key")["revenue_minor"].mean()
    # spend net of returns: scale by the share of the customer's purchases they kept
    sold = per_day.groupby("customer_key")["revenue_minor"].sum()
    returns = within(frame[frame["kind"] == Kind.RETURN.value], window)
    returned = -returns.groupby("customer_key")["revenue_minor"].sum()
    kept = (1 - returned.reindex(sold.index).fillna(0) / sold.where(sold > 0)).clip(0, 1)
    out["m"] = (repeat.reindex(out.index) * kept.reindex(out.index)).fillna(0.0)
    return out.reset_index()[columns]


def _holdout(
    params: clv.BgNbdParams,
    summary: pd.DataFrame,
    frame: pd.DataFrame,
    calibration_end: date,
    holdout_end: date,
) -> HoldoutReport:
    days = (holdout_end - calibration_end).days
    later = within(orders_only(frame), Window(calibration_end, holdout_end))
    later = later[later["customer_key"].isin(summary["customer_key"])]
    actual_days = (
        later.assign(day=later["occurred_at"].dt.floor("D"))
        .groupby("customer_key")["day"]
        .nunique()
    )
    actual = actual_days.reindex(summary["customer_key"]).fillna(0).to_numpy(dtype=float)
    predicted = clv.expected_purchases(
        params, float(days), summary["x"], summary["t_x"], summary["T"]
    )
    error = predicted - actual
    buckets: list[HoldoutBucket] = []
    x = summary["x"].to_numpy()
    for label, mask in [(str(k), x == k) for k in range(6)] + [("6+", x >= 6)]:
        if mask.any():
            buckets.append(
                HoldoutBucket(
                    label,
                    int(mask.sum()),
                    round(float(predicted[mask].mean()), 4),
                    round(float(actual[mask].mean()), 4),
                )
            )
    correlation = (
        float(np.corrcoef(predicted, actual)[0, 1])
        if len(actual) > 1 and actual.std() > 0 and predicted.std() > 0
        else None
    )
    total_actual = int(actual.sum())
    return HoldoutReport(
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        holdout_days=days,
        customers=len(actual),
        predicted_purchases=round(float(predicted.sum()), 2),
        actual_purchases=total_actual,
        ratio_predicted_over_actual=round(float(predicted.sum()) / total_actual, 4)
        if total_actual
        else None,
        mae=round(float(np.abs(error).mean()), 4),
        rmse=round(float(np.sqrt((error**2).mean())), 4),
        correlation=None if correlation is None else round(correlation, 4),
        buckets=buckets,
    )


def customer_lifetime_value(
    session: Session,
    *,
    start: date | None = None,
    calibration_end: date | None = None,
    holdout_end: date | None = None,
    horizon_months: int = 12,
    monthly_discount: float = 0.01,
    channel: str | None = None,
    top: int = 20,
    penalizer: float = 0.0,
) -> ClvReport:
    """Fit BG/NBD and Gamma-Gamma on ``[start, calibration_end)`` and predict purchases and
    discounted CLV over ``horizon_months``. With ``holdout_end`` the purchases predicted for
    ``[calibration_end, holdout_end)`` are compared with the actual ones."""
    if horizon_months < 1 or horizon_months > 120:
        raise invalid("invalid_horizon", "horizon_months must be between 1 and 120")
    if not 0 <= monthly_discount < 1:
        raise invalid("invalid_discount", "monthly_discount must be in [0, 1)")
    window = resolve_window(session, start, calibration_end)
    if holdout_end is not None and holdout_end <= window.end:
        raise invalid("invalid_holdout", "holdout_end must be after calibration_end")
    frame = load_orders(session, before=holdout_end or window.end, channel=channel)
    currency = str(frame["currency"].mode().iloc[0]) if len(frame) else "GBP"
    summary = summarize(frame, window)
    if len(summary) < 2:
        raise AppError("not_enough_customers", "CLV needs at least two identified customers", 422)
    try:
        fit = clv.fit_bgnbd(summary["x"], summary["t_x"], summary["T"], penalizer=penalizer)
    except clv.FitError as exc:
        raise AppError("clv_fit_failed", str(exc), 422) from None
    params = fit.params
    x, t_x, T = summary["x"], summary["t_x"], summary["T"]
    repeat = summary[(summary["x"] > 0) & (summary["m"] > 0)]
    gg: clv.FitResult[clv.GammaGammaParams] | None = None
    if len(repeat) >= 2:
        try:
            gg = clv.fit_gamma_gamma(repeat["x"], repeat["m"], penalizer=penalizer)
        except clv.FitError:
            gg = None
    if gg is not None and gg.params.q > 1:
        spend = clv.expected_spend(gg.params, x, summary["m"])
    else:  # no usable spend model: each customer's own mean (or the overall mean)
        overall = float(repeat["m"].mean()) if len(repeat) else 0.0
        spend = np.where(summary["x"] > 0, summary["m"], overall)
    alive = clv.p_alive(params, x, t_x, T)
    horizon_days = horizon_months * 30.0
    purchases = clv.expected_purchases(params, horizon_days, x, t_x, T)
    value = clv.lifetime_value(params, spend, x, t_x, T, horizon_months, monthly_discount)
    table = summary.assign(
        p_alive=alive, expected=purchases, spend=spend, clv=np.round(value).astype(int)
    ).sort_values(["clv", "customer_key"], ascending=[False, True])
    correlation = (
        float(np.corrcoef(repeat["x"], repeat["m"])[0, 1])
        if len(repeat) > 2 and repeat["x"].std() > 0
        else None
    )
    top_rows = [
        CustomerValue(
            customer_key=str(r.customer_key),
            frequency=int(r.x),
            recency_days=int(r.t_x),
            age_days=int(r.T),
            monetary_minor=round(float(r.m), 2),
            p_alive=round(float(r.p_alive), 4),
            expected_purchases=round(float(r.expected), 4),
            expected_spend_minor=round(float(r.spend), 2),
            clv_minor=int(r.clv),
        )
        for r in table.head(top).itertuples(index=False)
    ]
    return ClvReport(
        calibration_start=window.start,
        calibration_end=window.end,
        horizon_months=horizon_months,
        monthly_discount=monthly_discount,
        currency=currency,
        customers=len(summary),
        repeat_customers=int((summary["x"] > 0).sum()),
        bgnbd={
            "r": params.r,
            "alpha": params.alpha,
            "a": params.a,
            "b": params.b,
            "log_likelihood": fit.log_likelihood,
        },
        gamma_gamma=None
        if gg is None
        else {
            "p": gg.params.p,
            "q": gg.params.q,
            "gamma": gg.params.gamma,
            "log_likelihood": gg.log_likelihood,
        },
        frequency_spend_correlation=None if correlation is None else round(correlation, 4),
        total_clv_minor=int(table["clv"].sum()),
        mean_clv_minor=round(float(table["clv"].mean())),
        expected_purchases_total=round(float(purchases.sum()), 2),
        top=top_rows,
        holdout=None
        if holdout_end is None
        else _holdout(params, summary, frame, window.end, holdout_end),
    )


def default_holdout_split(first: date, after_last: date, holdout_days: int) -> date:
    """The calibration end that leaves ``holdout_days`` of history for the holdout."""
    return after_last - timedelta(days=holdout_days) if after_last > first else after_last
