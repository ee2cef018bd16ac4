"""Demand forecasting per SKU × node (location or channel) with statsforecast.

* **Demand** is the units sold (sales, product lines; returns are not netted) per period
  (ISO weeks starting Monday, or days), over complete periods only, from each series' first
  sale to the last complete period, zero-filled.
* **Model choice by demand class** (Syntetos–Boylan, ADI 1.32 / CV² 0.49, see
  ``domain.classify_demand``): smooth and erratic series → AutoETS; intermittent and lumpy
  → IMAPA (the Croston family's aggregate-and-smooth member; on the Online Retail backtest
  CrostonOptimized explodes on a few intermittent series and ADIDA is a hair behind IMAPA).
  ``compare=True`` backtests AutoETS, CrostonOptimized, ADIDA and IMAPA on every series and
  reports the best model per class (``best_per_class``); ``models=`` overrides the map.
* **Baseline**: seasonal naive with the frequency's season (52 weeks, 7 days) where every
  training window holds more than one season, else season 1 (the naive forecast; the M4
  convention for weekly data). The same ``m`` scales MASE.
* **Rolling-origin backtest**: ``windows`` origins ``horizon`` periods apart; at each origin
  the models are fitted on the history so far and forecast ``horizon`` periods.
  MASE = mean |error| / mean |y_t − y_{t−m}| of that origin's training data; a series' MASE
  is the mean over origins and steps; series whose scale is 0 are left out of the means.
  The headline ratio is mean MASE (chosen model) / mean MASE (seasonal naive).
* ``sigma`` per series is the RMSE of the chosen model's backtest errors (one-period
  errors pooled over the steps), used for safety stock.

Series are processed in batches (progress is reported per batch); ``n_jobs`` is passed to
statsforecast (1 or 2 on small machines).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import (
    ADIDA,
    IMAPA,
    AutoETS,
    CrostonOptimized,
    SeasonalNaive,
)

from omniretail.analytics.domain import DemandClass, classify_demand

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Frequency:
    code: str
    pandas_freq: str
    days: int
    season: int


FREQUENCIES = {
    "W": Frequency("W", "W-MON", 7, 52),
    "D": Frequency("D", "D", 1, 7),
}
MODEL_FOR_CLASS = {
    DemandClass.SMOOTH: "AutoETS",
    DemandClass.ERRATIC: "AutoETS",
    DemandClass.INTERMITTENT: "IMAPA",
    DemandClass.LUMPY: "IMAPA",
    DemandClass.NONE: "IMAPA",
}
BASELINE = "SeasonalNaive"
COMPARE_MODELS = ("AutoETS", "CrostonOptimized", "ADIDA", "IMAPA")


@dataclass(frozen=True)
class ForecastConfig:
    freq: str = "W"
    horizon: int = 4
    windows: int = 3
    min_train: int = 8  # periods of history before the first backtest origin
    season_length: int | None = None  # None: the frequency's season where history allows
    n_jobs: int = 1
    batch: int = 500
    compare: bool = False
    models: Mapping[str, str] | None = None  # demand class → model, overriding the map

    def model_for(self, demand_class: str) -> str:
        chosen = (self.models or {}).get(demand_class)
        return chosen or MODEL_FOR_CLASS[DemandClass(demand_class)]

    @property
    def frequency(self) -> Frequency:
        return FREQUENCIES[self.freq]


def make_model(name: str, season_length: int = 1) -> Any:
    if name == "AutoETS":
        return AutoETS(season_length=season_length)
    if name == "CrostonOptimized":
        return CrostonOptimized()
    if name == "ADIDA":
        return ADIDA()
    if name == "IMAPA":
        return IMAPA()
    if name == BASELINE:
        return SeasonalNaive(season_length=season_length)
    raise ValueError(f"unknown model {name!r}")


# --- demand ---------------------------------------------------------------------------------


def period_start(stamps: pd.Series, freq: str) -> pd.Series:
    """The first day (naive date at midnight) of the period holding each UTC timestamp."""
    days = stamps.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    if freq == "W":
        return days - pd.to_timedelta(days.dt.weekday, unit="D")
    return days


def demand_frame(lines: pd.DataFrame, freq: str = "W") -> pd.DataFrame:
    """Units per (sku, node, period) from sale lines (columns sku, node, occurred_at (UTC),
    quantity): complete periods only, each series from its first sale to the last complete
    period, zero-filled. Columns: unique_id, sku, node, ds, y."""
    columns = ["unique_id", "sku", "node", "ds", "y"]
    if lines.empty:
        return pd.DataFrame(columns=columns)
    f = FREQUENCIES[freq]
    stamps = pd.to_datetime(lines["occurred_at"], utc=True)
    first_day = stamps.min().tz_convert("UTC").tz_localize(None).normalize()
    last_day = stamps.max().tz_convert("UTC").tz_localize(None).normalize()
    start = period_start(pd.Series([stamps.min()]), freq).iloc[0]
    if start < first_day:
        start += pd.Timedelta(days=f.days)
    end = period_start(pd.Series([stamps.max()]), freq).iloc[0]
    if end + pd.Timedelta(days=f.days - 1) <= last_day:
        end += pd.Timedelta(days=f.days)
    # periods [start, end) are complete
    work = pd.DataFrame(
        {
            "sku": lines["sku"].to_numpy(),
            "node": lines["node"].to_numpy(),
            "ds": period_start(stamps, freq).to_numpy(),
            "y": lines["quantity"].to_numpy(dtype=float),
        }
    )
    work = work[(work["ds"] >= start) & (work["ds"] < end)]
    if work.empty:
        return pd.DataFrame(columns=columns)
    grouped = work.groupby(["sku", "node", "ds"], as_index=False)["y"].sum()
    grouped["unique_id"] = grouped["sku"] + "|" + grouped["node"]
    periods = pd.date_range(start, end - pd.Timedelta(days=1), freq=f.pandas_freq)
    firsts = grouped.groupby("unique_id")["ds"].min()
    index = pd.Index(periods)
    position = index.get_indexer(firsts.to_numpy())
    lengths = len(periods) - position
    ids = np.repeat(firsts.index.to_numpy(), lengths)
    ds: Any = np.concatenate([periods[p:] for p in position]) if len(position) else []
    full = pd.DataFrame({"unique_id": ids, "ds": ds})
    full = full.merge(grouped[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="left")
    full["y"] = full["y"].fillna(0.0)
    split = full["unique_id"].str.split("|", n=1, expand=True)
    full["sku"], full["node"] = split[0], split[1]
    return full[columns].sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)


def select_series(
    demand: pd.DataFrame,
    *,
    top: int | None = None,
    skus: list[str] | None = None,
    min_nonzero: int = 2,
) -> pd.DataFrame:
    """Series with at least ``min_nonzero`` periods of demand, optionally only ``skus`` and
    only the ``top`` by total units (ties by id)."""
    if skus:
        demand = demand[demand["sku"].isin(skus)]
    stats = demand.groupby("unique_id")["y"].agg(total="sum", nonzero=lambda y: int((y > 0).sum()))
    stats = stats[stats["nonzero"] >= min_nonzero]
    if top is not None:
        stats = stats.reset_index().sort_values(["total", "unique_id"], ascending=[False, True])
        stats = stats.head(top).set_index("unique_id")
    return demand[demand["unique_id"].isin(stats.index)].reset_index(drop=True)


def profiles(demand: pd.DataFrame) -> pd.DataFrame:
    """Per series: periods, ADI, CV² and demand class."""
    rows = []
    for uid, y in demand.groupby("unique_id", sort=True)["y"]:
        p = classify_demand(y.to_numpy())
        rows.append((uid, len(y), p.adi, p.cv2, p.demand_class.value))
    return pd.DataFrame(rows, columns=["unique_id", "periods", "adi", "cv2", "demand_class"])


# --- backtest and forecast ------------------------------------------------------------------


@dataclass
class BacktestResult:
    series: pd.DataFrame  # per series: class, model, seasons, MASE (chosen, naive, others)
    summary: dict[str, Any]
    errors: pd.DataFrame = field(default_factory=pd.DataFrame)  # cross-validation rows


def _seasons(train_periods: int, config: ForecastConfig) -> int:
    season = config.season_length or config.frequency.season
    return season if train_periods > season else 1


def _ets_season(train_periods: int, config: ForecastConfig) -> int:
    season = config.season_length or config.frequency.season
    return season if train_periods >= 2 * season + 2 else 1


def _plan(demand: pd.DataFrame, config: ForecastConfig) -> pd.DataFrame:
    plan = profiles(demand)
    plan["model"] = plan["demand_class"].map(config.model_for)
    test = config.windows * config.horizon
    plan["backtest"] = plan["periods"] >= test + config.min_train
    first_train = plan["periods"] - test
    plan["season"] = [_seasons(int(n), config) for n in first_train]
    plan["ets_season"] = [_ets_season(int(n), config) for n in first_train]
    return plan


def _batches(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _scales(demand: pd.DataFrame, cv: pd.DataFrame, seasons: dict[str, int]) -> pd.Series:
    """MASE denominator per row of ``cv``: the mean absolute ``m``-step difference of the
    series up to and including that row's cutoff (cumulative sums, one pass per series)."""
    keys = cv[["unique_id", "cutoff"]].drop_duplicates()
    wanted: dict[str, list[Any]] = {}
    for uid, cutoff in keys.itertuples(index=False):
        wanted.setdefault(uid, []).append(cutoff)
    rows: list[tuple[str, Any, float]] = []
    for uid, g in demand[demand["unique_id"].isin(wanted)].groupby("unique_id", sort=False):
        y = g["y"].to_numpy(dtype=float)
        ds = g["ds"].to_numpy()
        m = seasons[str(uid)]
        cumulative = np.concatenate([[0.0], np.cumsum(np.abs(y[m:] - y[:-m]))])
        for cutoff in wanted[str(uid)]:
            k = int(np.searchsorted(ds, np.datetime64(cutoff), side="right"))
            n = k - m
            rows.append((str(uid), cutoff, float(cumulative[n] / n) if n > 0 else 0.0))
    table = pd.DataFrame(rows, columns=["unique_id", "cutoff", "scale"])
    merged = cv[["unique_id", "cutoff"]].merge(table, on=["unique_id", "cutoff"], how="left")
    return pd.Series(merged["scale"].to_numpy(), index=cv.index)


def backtest(
    demand: pd.DataFrame,
    config: ForecastConfig | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Rolling-origin backtest of the chosen model per series against seasonal naive."""
    config = config or ForecastConfig()
    started = time.perf_counter()
    notify = progress or (lambda _s, _d, _t: None)
    plan = _plan(demand, config)
    evaluated = plan[plan["backtest"]]
    total = len(evaluated)
    parts: list[pd.DataFrame] = []
    done = 0
    notify("backtest", 0, total)
    group_keys = ["model", "season", "ets_season"]
    for (model, season, ets_season), group in evaluated.groupby(group_keys, sort=True):
        names = list(COMPARE_MODELS) if config.compare else [str(model)]
        models = [make_model(n, int(ets_season)) for n in names]
        models.append(make_model(BASELINE, int(season)))
        for ids in _batches(sorted(group["unique_id"]), config.batch):
            chunk = demand[demand["unique_id"].isin(ids)][["unique_id", "ds", "y"]]
            sf = StatsForecast(
                models=models, freq=config.frequency.pandas_freq, n_jobs=config.n_jobs
            )
            cv = sf.cross_validation(
                df=chunk, h=config.horizon, step_size=config.horizon, n_windows=config.windows
            )
            cv = cv.reset_index() if "unique_id" not in cv.columns else cv
            cv["chosen"] = cv[str(model)]
            parts.append(cv)
            done += len(ids)
            notify("backtest", done, total)
    if not parts:
        return BacktestResult(_series_table(plan, None), _summary(plan, None, config, started))
    cv = pd.concat(parts, ignore_index=True)
    seasons = dict(zip(plan["unique_id"], plan["season"], strict=True))
    cv["scale"] = _scales(demand, cv, seasons)
    return BacktestResult(_series_table(plan, cv), _summary(plan, cv, config, started), cv)


def _model_columns(cv: pd.DataFrame) -> list[str]:
    fixed = {"unique_id", "ds", "cutoff", "y", "scale", "index"}
    return [c for c in cv.columns if c not in fixed]


def _series_table(plan: pd.DataFrame, cv: pd.DataFrame | None) -> pd.DataFrame:
    table = plan.copy()
    if cv is None:
        table["mase"] = np.nan
        table["mase_seasonal_naive"] = np.nan
        table["sigma"] = np.nan
        return table
    valid_scale = cv.groupby("unique_id")["scale"].min() > 0
    columns = _model_columns(cv)
    ratios = cv[columns].sub(cv["y"], axis=0).abs().div(cv["scale"].replace(0, np.nan), axis=0)
    mase = ratios.groupby(cv["unique_id"]).mean()
    mase[~valid_scale.reindex(mase.index, fill_value=False)] = np.nan
    sigma = (cv["chosen"] - cv["y"]).pow(2).groupby(cv["unique_id"]).mean().pow(0.5)
    table = table.set_index("unique_id")
    table["mase"] = mase["chosen"]
    table["mase_seasonal_naive"] = mase[BASELINE]
    for name in columns:
        if name not in ("chosen", BASELINE):
            table[f"mase_{name}"] = mase[name]
    table["sigma"] = sigma
    return table.reset_index()


def _mean(values: pd.Series) -> float | None:
    clean = values.dropna()
    return None if clean.empty else float(clean.mean())


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 4)


def _summary(
    plan: pd.DataFrame, cv: pd.DataFrame | None, config: ForecastConfig, started: float
) -> dict[str, Any]:
    table = _series_table(plan, cv)
    scored = table.dropna(subset=["mase", "mase_seasonal_naive"])
    chosen, naive = _mean(scored["mase"]), _mean(scored["mase_seasonal_naive"])
    per_class: dict[str, Any] = {}
    others = [c for c in table.columns if c.startswith("mase_") and c != "mase_seasonal_naive"]
    for cls, part in scored.groupby("demand_class"):
        m, n = _mean(part["mase"]), _mean(part["mase_seasonal_naive"])
        entry: dict[str, Any] = {
            "series": len(part),
            "model": config.model_for(str(cls)),
            "mase": _round(m),
            "mase_seasonal_naive": _round(n),
            "ratio": _ratio(m, n),
        }
        if others:
            means = {c.removeprefix("mase_"): _round(_mean(part[c])) for c in others}
            finite = {k: v for k, v in means.items() if v is not None}
            entry["mase_by_model"] = means
            entry["best_model"] = min(finite, key=lambda k: finite[k]) if finite else None
        per_class[str(cls)] = entry
    per_model = {c.removeprefix("mase_"): _round(_mean(scored[c])) for c in others}
    return {
        "series": len(plan),
        "backtested": int(plan["backtest"].sum()),
        "scored": len(scored),
        "zero_scale_series": int(plan["backtest"].sum()) - len(scored),
        "horizon": config.horizon,
        "windows": config.windows,
        "freq": config.freq,
        "season_lengths": {str(k): int(v) for k, v in plan["season"].value_counts().items()},
        "mase": _round(chosen),
        "mase_seasonal_naive": _round(naive),
        "mase_ratio_vs_seasonal_naive": _ratio(chosen, naive),
        "classes": {str(k): int(v) for k, v in plan["demand_class"].value_counts().items()},
        "per_class": per_class,
        "per_model": per_model,
        "seconds": round(time.perf_counter() - started, 3),
    }


def forecast(
    demand: pd.DataFrame,
    config: ForecastConfig | None = None,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit the chosen model per series on its whole history and forecast ``horizon``
    periods. Returns (forecasts: unique_id, ds, yhat; the plan per series)."""
    config = config or ForecastConfig()
    notify = progress or (lambda _s, _d, _t: None)
    plan = _plan(demand, config)
    plan["fit_season"] = [_ets_season(int(n), config) for n in plan["periods"]]
    total = len(plan)
    done = 0
    parts: list[pd.DataFrame] = []
    notify("forecast", 0, total)
    for (model, season), group in plan.groupby(["model", "fit_season"], sort=True):
        for ids in _batches(sorted(group["unique_id"]), config.batch):
            chunk = demand[demand["unique_id"].isin(ids)][["unique_id", "ds", "y"]]
            sf = StatsForecast(
                models=[make_model(str(model), int(season))],
                freq=config.frequency.pandas_freq,
                n_jobs=config.n_jobs,
            )
            out = sf.forecast(df=chunk, h=config.horizon)
            out = out.reset_index() if "unique_id" not in out.columns else out
            parts.append(
                pd.DataFrame(
                    {
                        "unique_id": out["unique_id"],
                        "ds": out["ds"],
                        "yhat": out[str(model)].clip(lower=0.0),
                    }
                )
            )
            done += len(ids)
            notify("forecast", done, total)
    forecasts = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["unique_id", "ds", "yhat"])
    )
    return forecasts, plan
