"""Demand series, rolling-origin backtest with MASE, stored forecast runs."""

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from omniretail.analytics import forecasting, importer, service
from omniretail.analytics.domain import seasonal_scale
from omniretail.analytics.models import ForecastSeries, ForecastValue
from tests.analytics.factories import REAL_FILE, REAL_FILE_MISSING, sale


def _lines(rows):
    return pd.DataFrame(
        [
            {"sku": s, "node": n, "occurred_at": pd.Timestamp(t, tz="UTC"), "quantity": q}
            for s, n, t, q in rows
        ]
    )


def _weekly(values, uid="A|web"):
    ds = pd.date_range("2023-01-02", periods=len(values), freq="W-MON")
    sku, node = uid.split("|")
    return pd.DataFrame({"unique_id": uid, "sku": sku, "node": node, "ds": ds, "y": values})


def test_demand_keeps_complete_weeks_from_the_first_sale_zero_filled():
    # given sales from Wednesday 3 Jan (a partial first week) to Wednesday 24 Jan (partial)
    lines = _lines(
        [
            ("A", "web", "2024-01-03 10:00", 5),
            ("A", "web", "2024-01-08 10:00", 2),
            ("A", "web", "2024-01-14 23:00", 3),
            ("B", "web", "2024-01-16 10:00", 4),
            ("A", "web", "2024-01-24 10:00", 7),
        ]
    )
    # when
    demand = forecasting.demand_frame(lines, "W")
    # then weeks of 8 and 15 Jan only; B starts with its first sale
    assert [(r.unique_id, str(r.ds.date()), r.y) for r in demand.itertuples()] == [
        ("A|web", "2024-01-08", 5.0),
        ("A|web", "2024-01-15", 0.0),
        ("B|web", "2024-01-15", 4.0),
    ]


def test_top_selects_the_best_selling_series():
    demand = pd.concat([_weekly([5, 5, 5], "A|web"), _weekly([9, 9, 9], "B|web"),
                        _weekly([0, 1, 0], "C|web")])  # fmt: skip
    chosen = forecasting.select_series(demand, top=1)
    assert chosen["unique_id"].unique().tolist() == ["B|web"]


def test_series_with_fewer_than_two_demand_periods_are_left_out():
    demand = pd.concat([_weekly([5, 5, 5], "A|web"), _weekly([0, 1, 0], "C|web")])
    chosen = forecasting.select_series(demand)
    assert chosen["unique_id"].unique().tolist() == ["A|web"]


def test_backtest_mase_of_naive_on_a_linear_trend_is_the_mean_step():
    # given y = 1, 2, 3, ...: the naive forecast is h behind at step h and the in-sample
    # naive error is 1, so MASE = mean(1..4) = 2.5 at every origin
    demand = _weekly(np.arange(1, 25, dtype=float))
    # when
    result = forecasting.backtest(demand, forecasting.ForecastConfig(horizon=4, windows=3))
    # then
    row = result.series.iloc[0]
    assert (row["demand_class"], row["model"], row["season"]) == ("smooth", "AutoETS", 1)
    assert row["mase_seasonal_naive"] == pytest.approx(2.5)
    assert row["mase"] < 0.2
    assert result.summary["mase_ratio_vs_seasonal_naive"] < 0.1


def test_mase_scales_are_the_training_windows_seasonal_differences():
    rng = np.random.default_rng(3)
    values = rng.poisson(3, 30).astype(float)
    demand = _weekly(values)
    result = forecasting.backtest(demand, forecasting.ForecastConfig(horizon=4, windows=3))
    cutoffs = sorted(result.errors["cutoff"].unique())
    expected = [seasonal_scale(values[: 30 - 4 * k], 1) for k in (3, 2, 1)]
    scales = result.errors.groupby("cutoff")["scale"].first().loc[cutoffs].tolist()
    assert scales == pytest.approx(expected)


def test_seasonal_naive_uses_the_full_season_when_history_allows():
    rng = np.random.default_rng(4)
    demand = _weekly(rng.poisson(5, 130).astype(float))
    result = forecasting.backtest(demand, forecasting.ForecastConfig(horizon=4, windows=2))
    assert result.summary["season_lengths"] == {"52": 1}


def test_intermittent_series_get_imapa():
    demand = _weekly([0, 0, 3, 0, 0, 0, 2, 0, 0, 4, 0, 0, 0, 3, 0, 0, 2, 0, 0, 0, 3, 0, 0, 2])
    result = forecasting.backtest(demand, forecasting.ForecastConfig(horizon=4, windows=2))
    row = result.series.iloc[0]
    assert (row["demand_class"], row["model"]) == ("intermittent", "IMAPA")


def test_compare_backtests_every_candidate_model():
    rng = np.random.default_rng(5)
    demand = _weekly(rng.poisson(5, 30).astype(float))
    config = forecasting.ForecastConfig(horizon=4, windows=2, compare=True)
    result = forecasting.backtest(demand, config)
    assert set(result.summary["per_model"]) == {"AutoETS", "CrostonOptimized", "ADIDA", "IMAPA"}


def test_run_forecast_stores_series_metrics_and_values(session):
    # given 20 weeks of sales of one SKU on the web
    start = date(2024, 1, 1)
    for week in range(20):
        sale(session, f"o{week}", "A", start + timedelta(weeks=week), [("MUG", 4 + week % 3, 500)])
    # when
    run = service.run_forecast(session, horizon=4, windows=2)
    # then
    assert (run.node_kind, run.history_start, run.history_end) == (
        "channel",
        date(2024, 1, 1),
        date(2024, 5, 13),
    )
    series = session.scalar(select(ForecastSeries))
    assert (series.sku, series.node, series.demand_class) == ("MUG", "web", "smooth")
    assert series.mean_forecast > 0
    assert session.scalar(select(func.count()).select_from(ForecastValue)) == 4


def test_forecast_without_sales_history_is_a_clear_error(session):
    from omniretail.core.errors import AppError

    with pytest.raises(AppError) as caught:
        service.run_forecast(session)
    assert caught.value.code == "no_demand"


@pytest.mark.slow
@pytest.mark.skipif(not REAL_FILE.exists(), reason=REAL_FILE_MISSING)
def test_weekly_backtest_on_the_real_file_beats_seasonal_naive():
    # given weekly units of the 200 best-selling SKUs (by units over the year) of the real
    # file: 52 complete weeks, so the seasonal naive baseline falls back to m = 1
    prepared = importer.prepare(importer.read_frame(REAL_FILE.read_bytes()))
    lines = prepared.lines
    sold = lines[
        (lines["kind"] == "sale") & (lines["line_type"] == "product") & (lines["quantity"] > 0)
    ]
    frame = sold.assign(node=sold["channel"])[["sku", "node", "occurred_at", "quantity"]]
    demand = forecasting.select_series(forecasting.demand_frame(frame, "W"), top=200)
    # when 3 rolling origins 4 weeks apart, 4 weeks ahead
    result = forecasting.backtest(demand, forecasting.ForecastConfig(horizon=4, windows=3))
    # then
    summary = result.summary
    assert (summary["series"], summary["scored"], summary["season_lengths"]) == (
        200,
        200,
        {"1": 200},
    )
    assert summary["mase_ratio_vs_seasonal_naive"] < 1


def test_utc_helper_used_by_fixtures_is_aware():
    assert datetime(2024, 1, 1, tzinfo=UTC).tzinfo is UTC
