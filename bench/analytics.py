"""Analytics benchmark: Online Retail import, KPI queries, forecasting throughput and accuracy.

Cases (one JSON line each on stdout; everything else on stderr):

* ``import`` (SQLite file, and PostgreSQL when reachable): the full UCI Online Retail file
  (../shared/data/online_retail/online_retail.csv.gz from the repository root) through
  ``import_online_retail`` — reading, checking, writing — in one transaction.
  Goal on SQLite: ``import_rows_per_s >= 20000``.
* ``kpi`` (same databases): every KPI query on the imported year (KPIs for the year and for
  the second half with churn, an RFM-segment filter, cohorts, channel mix, RFM), each the
  median of 3 runs; ``kpi_max_s`` is the slowest. Goal ``<= 1 s``. CLV (a model fit, not a
  KPI) is reported as ``clv_s``.
* ``forecast`` on 10,000 synthetic intermittent weekly series (two years each): demand
  classification and the chosen model's forecast (``forecast_series_per_s``; goal: 10,000
  series in 60 s, i.e. >= 166.7/s), the seasonal naive forecast of the same series in the
  same run (``ratio_time_vs_seasonal_naive``), and the rolling-origin backtest
  (``mase_ratio_vs_seasonal_naive``, goal < 1).
* ``forecast_online_retail``: the weekly backtest of every SKU of the real file with at
  least two weeks of demand (``mase_ratio_vs_seasonal_naive``, goal < 1).

    .venv/bin/python bench/analytics.py            # default (about 3–4 minutes on 2 cores)
    .venv/bin/python bench/analytics.py --quick    # SQLite only, 2,000 series, top 500 SKUs

PostgreSQL: ``OMNI_BENCH_DATABASE_URL`` (default postgresql://postgres@127.0.0.1:5432/test);
the tables live in their own schema (``bench_analytics``), dropped and re-created each run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
SCHEMA = "bench_analytics"
GOALS = {
    "import": {"import_rows_per_s": ">= 20000"},
    "kpi": {"kpi_max_s": "<= 1.0"},
    "forecast": {"forecast_series_per_s": ">= 166.7", "mase_ratio_vs_seasonal_naive": "< 1"},
    "forecast_online_retail": {"mase_ratio_vs_seasonal_naive": "< 1"},
}


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def emit(case: dict[str, Any], metrics: dict[str, Any] | None = None, **extra: Any) -> None:
    name = case["name"]
    line: dict[str, Any] = {"bench": "analytics", "case": case}
    if metrics is not None:
        line["metrics"] = metrics
        if name in GOALS:
            line["goal"] = GOALS[name]
    line.update(extra)
    print(json.dumps(line), flush=True)


# --- databases ------------------------------------------------------------------------------


def sqlite_database() -> Any:
    from omniretail.all_models import metadata
    from omniretail.core.db import Database, make_engine

    path = Path(tempfile.mkdtemp(prefix="omni-bench-")) / "analytics.db"
    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    return Database(engine)


def postgres_database() -> Any:
    from sqlalchemy import text

    from omniretail.all_models import metadata
    from omniretail.core.db import Database, make_engine

    url = os.environ.get("OMNI_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    engine = make_engine(url, connect_args={"options": f"-csearch_path={SCHEMA}"})
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    metadata.create_all(engine)
    return Database(engine)


# --- cases ----------------------------------------------------------------------------------


def run_import(db: Any, backend: str, data: bytes) -> None:
    from omniretail.analytics import service

    started = time.perf_counter()
    with db.unit_of_work() as session:
        report = service.import_online_retail(session, data, file_name=DATA.name)
    seconds = time.perf_counter() - started
    log(f"{backend}: imported {report.imported_rows:,} of {report.rows:,} rows in {seconds:.1f} s")
    emit(
        {"name": "import", "backend": backend, "rows": report.rows},
        {
            "import_rows_per_s": round(report.rows / seconds, 1),
            "import_s": round(seconds, 2),
            "imported_rows": report.imported_rows,
            "rejected_rows": report.rejected_rows,
        },
    )


def _median_time(fn: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_kpis(db: Any, backend: str) -> None:
    from omniretail.analytics import service

    h2 = {"start": date(2011, 6, 1), "end": date(2011, 12, 1)}
    queries: dict[str, Callable[[Any], Any]] = {
        "kpis_year_s": lambda s: service.kpis(s),
        "kpis_h2_with_churn_s": lambda s: service.kpis(s, **h2),
        "kpis_segment_champions_s": lambda s: service.kpis(s, segment="champions"),
        "cohorts_s": lambda s: service.cohorts(s),
        "channel_mix_s": lambda s: service.channel_mix(s, **h2),
        "rfm_s": lambda s: service.rfm(s),
    }
    metrics: dict[str, Any] = {}
    with db.unit_of_work(write=False) as session:
        for name, query in queries.items():
            metrics[name] = round(_median_time(lambda q=query: q(session)), 4)
            log(f"{backend}: {name} {metrics[name]:.3f}")
        metrics["kpi_max_s"] = max(metrics.values())
        started = time.perf_counter()
        service.customer_lifetime_value(
            session, calibration_end=date(2011, 9, 1), holdout_end=date(2011, 12, 10)
        )
        metrics["clv_s"] = round(time.perf_counter() - started, 3)
    emit({"name": "kpi", "backend": backend, "orders": "online_retail"}, metrics)


def synthetic_series(count: int, weeks: int = 104, seed: int = 42) -> pd.DataFrame:
    """Intermittent weekly demand: each series sells in a week with probability 0.1–0.5,
    1 + Poisson(1–8) units when it does."""
    rng = np.random.default_rng(seed)
    chance = rng.uniform(0.1, 0.5, count)
    size = rng.uniform(1, 8, count)
    sells = rng.random((count, weeks)) < chance[:, None]
    units = (1 + rng.poisson(size[:, None], (count, weeks))) * sells
    ids = np.array([f"SKU{i:05d}|web" for i in range(count)])
    ds = pd.date_range("2022-01-03", periods=weeks, freq="W-MON")
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(ids, weeks),
            "ds": np.tile(ds, count),
            "y": units.ravel().astype(float),
        }
    )
    frame["sku"] = frame["unique_id"].str.split("|").str[0]
    frame["node"] = "web"
    # every series starts with its first sale, as demand_frame builds them
    first = frame["y"].gt(0).groupby(frame["unique_id"]).cummax()
    return frame[first].reset_index(drop=True)


def run_forecast(count: int) -> None:
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    from omniretail.analytics import forecasting

    demand = synthetic_series(count)
    config = forecasting.ForecastConfig(horizon=4, windows=3, n_jobs=1)
    log(f"forecast: {count:,} synthetic series")
    started = time.perf_counter()
    forecasts, plan = forecasting.forecast(demand, config)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    StatsForecast(models=[SeasonalNaive(season_length=52)], freq="W-MON", n_jobs=1).forecast(
        df=demand[["unique_id", "ds", "y"]], h=config.horizon
    )
    naive = time.perf_counter() - started
    started = time.perf_counter()
    result = forecasting.backtest(demand, config)
    backtest_s = time.perf_counter() - started
    summary = result.summary
    log(f"forecast: {ours:.1f} s (seasonal naive {naive:.1f} s), backtest {backtest_s:.1f} s")
    emit(
        {"name": "forecast", "series": count, "weeks": 104, "kind": "synthetic intermittent"},
        {
            "forecast_series_per_s": round(count / ours, 1),
            "forecast_s": round(ours, 2),
            "seasonal_naive_series_per_s": round(count / naive, 1),
            "ratio_time_vs_seasonal_naive": round(ours / naive, 2),
            "backtest_series_per_s": round(count / backtest_s, 1),
            "mase": summary["mase"],
            "mase_seasonal_naive": summary["mase_seasonal_naive"],
            "mase_ratio_vs_seasonal_naive": summary["mase_ratio_vs_seasonal_naive"],
            "classes": summary["classes"],
            "season_lengths": summary["season_lengths"],
            "forecast_rows": len(forecasts),
            "models": {str(k): int(v) for k, v in plan["model"].value_counts().items()},
        },
    )


def run_forecast_online_retail(data: bytes, top: int | None) -> None:
    from omniretail.analytics import forecasting, importer

    prepared = importer.prepare(importer.read_frame(data))
    lines = prepared.lines
    sold = lines[
        (lines["kind"] == "sale") & (lines["line_type"] == "product") & (lines["quantity"] > 0)
    ]
    frame = sold.assign(node=sold["channel"])[["sku", "node", "occurred_at", "quantity"]]
    demand = forecasting.select_series(forecasting.demand_frame(frame, "W"), top=top)
    config = forecasting.ForecastConfig(horizon=4, windows=3)
    started = time.perf_counter()
    result = forecasting.backtest(demand, config)
    seconds = time.perf_counter() - started
    s = result.summary
    log(f"online retail backtest: {s['series']:,} series in {seconds:.1f} s, ratio "
        f"{s['mase_ratio_vs_seasonal_naive']}")  # fmt: skip
    emit(
        {"name": "forecast_online_retail", "series": s["series"], "top": top, "freq": "W"},
        {
            "backtest_series_per_s": round(s["backtested"] / seconds, 1),
            "scored_series": s["scored"],
            "mase": s["mase"],
            "mase_seasonal_naive": s["mase_seasonal_naive"],
            "mase_ratio_vs_seasonal_naive": s["mase_ratio_vs_seasonal_naive"],
            "per_class": {
                k: {"series": v["series"], "model": v["model"], "ratio": v["ratio"]}
                for k, v in s["per_class"].items()
            },
            "season_lengths": s["season_lengths"],
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller, SQLite only")
    args = parser.parse_args()
    from omniretail.core.logs import configure_logging

    configure_logging(level="WARNING")
    series = 2_000 if args.quick else 10_000
    if not DATA.exists():
        reason = f"{DATA.resolve()} not found (the Online Retail file lives in ../shared/data)"
        for name in ("import", "kpi", "forecast_online_retail"):
            emit({"name": name}, skipped=reason)
    else:
        data = DATA.read_bytes()
        backends: list[tuple[str, Callable[[], Any]]] = [("sqlite", sqlite_database)]
        if not args.quick:
            backends.append(("postgresql", postgres_database))
        for backend, make in backends:
            try:
                db = make()
            except Exception as exc:  # no server: report and go on
                for name in ("import", "kpi"):
                    emit({"name": name, "backend": backend}, skipped=f"cannot connect: {exc}")
                continue
            run_import(db, backend, data)
            run_kpis(db, backend)
            db.engine.dispose()
        run_forecast_online_retail(data, 500 if args.quick else None)
    run_forecast(series)


if __name__ == "__main__":
    main()
