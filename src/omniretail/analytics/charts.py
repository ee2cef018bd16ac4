"""PNG/SVG charts of the analytics reports (matplotlib, Agg backend, no global pyplot state,
so rendering is safe in API worker threads). SVG output is reproducible: fixed hash salt and
no creation date."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from omniretail.analytics.forecasting import BacktestResult
    from omniretail.analytics.kpis import ChannelMixReport, CohortReport, RfmReport
    from omniretail.analytics.lifetime import ClvReport

matplotlib.use("Agg")
# Reproducible SVG (fixed ids, text kept as text); set once, as rc_context is not thread-safe.
matplotlib.rcParams.update({"svg.hashsalt": "omniretail", "svg.fonttype": "none"})

FORMATS = ("png", "svg")
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
ACCENT = "#2f6f8f"
SECOND = "#d9822b"
GREY = "#8a8a8a"


def _render(fig: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buffer, format=fmt, dpi=110, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def _empty(title: str, fmt: str) -> bytes:
    fig = Figure(figsize=(6, 2.5))
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}\n(no data)", ha="center", va="center", color=GREY)
    return _render(fig, fmt)


def cohort_heatmap(report: CohortReport, fmt: str = "png") -> bytes:
    """Monthly cohorts (rows) × months since the first order (columns), retention in %."""
    title = "Monthly cohort retention"
    if not report.rows:
        return _empty(title, fmt)
    months = report.months
    grid = np.full((len(report.rows), months), np.nan)
    for i, row in enumerate(report.rows):
        grid[i, : len(row.retention)] = row.retention
    fig = Figure(figsize=(1.0 + 0.62 * months, 0.9 + 0.38 * len(report.rows)))
    ax = fig.subplots()
    shown = np.ma.masked_invalid(grid[:, 1:] if months > 1 else grid)
    image = ax.imshow(shown, cmap="Blues", aspect="auto", vmin=0, vmax=max(0.01, shown.max()))
    offset = 1 if months > 1 else 0
    for i in range(grid.shape[0]):
        for j in range(offset, months):
            value = grid[i, j]
            if not np.isnan(value):
                dark = value > 0.6 * float(shown.max())
                ax.text(
                    j - offset,
                    i,
                    f"{value * 100:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
    ax.set_xticks(range(months - offset), [str(m) for m in range(offset, months)], fontsize=8)
    ax.set_yticks(
        range(len(report.rows)), [f"{r.cohort} ({r.customers})" for r in report.rows], fontsize=8
    )
    ax.set_xlabel("months since first order")
    ax.set_ylabel("cohort (customers)")
    ax.set_title(f"{title} (%), {report.start} – {report.end}", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, format=lambda v, _p: f"{v * 100:.0f}%")
    return _render(fig, fmt)


def channel_mix_chart(report: ChannelMixReport, fmt: str = "png") -> bytes:
    """AOV, orders per customer and next-window retention of customers on 1, 2, 3+ channels."""
    groups = report.groups
    labels = [f"{g.channels} ch.\n({g.customers})" for g in groups]
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 3)
    aov = [(g.aov_minor or 0) / 100 for g in groups]
    freq = [g.frequency or 0 for g in groups]
    retention = [(g.retention_rate or 0) * 100 for g in groups]
    panels = [
        (axes[0], aov, f"AOV ({report.currency})"),
        (axes[1], freq, "orders per customer"),
        (axes[2], retention, "retention next window (%)"),
    ]
    for ax, values, title in panels:
        ax.bar(labels, values, color=[ACCENT, SECOND, "#5a9e6f"])
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        for x, v in enumerate(values):
            ax.text(
                x, v, f"{v:,.2f}" if v < 100 else f"{v:,.0f}", ha="center", va="bottom", fontsize=7
            )
    if not report.retention_observed:
        axes[2].text(
            0.5,
            0.5,
            "following window\nnot in the data",
            transform=axes[2].transAxes,
            ha="center",
            va="center",
            color=GREY,
            fontsize=8,
        )
    fig.suptitle(f"Channel mix, {report.start} – {report.end}", fontsize=10)
    return _render(fig, fmt)


def rfm_segments_chart(report: RfmReport, fmt: str = "png") -> bytes:
    if not report.customers:
        return _empty("RFM segments", fmt)
    items = sorted(report.segments.items(), key=lambda kv: kv[1])
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    names = [k.replace("_", " ") for k, _ in items]
    values = [v for _, v in items]
    ax.barh(names, values, color=ACCENT)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v} ({v / report.customers:.0%})", va="center", fontsize=8)
    ax.set_xlabel("customers")
    ax.set_title(
        f"RFM segments ({report.customers} customers), {report.start} – {report.end}", fontsize=10
    )
    ax.set_xlim(0, max(values) * 1.25)
    return _render(fig, fmt)


def clv_holdout_chart(report: ClvReport, fmt: str = "png") -> bytes:
    """Mean predicted vs actual purchases in the holdout, by calibration-period frequency."""
    holdout = report.holdout
    if holdout is None or not holdout.buckets:
        return _empty("CLV holdout", fmt)
    labels = [b.frequency for b in holdout.buckets]
    x = np.arange(len(labels))
    fig = Figure(figsize=(7, 3.4))
    ax = fig.subplots()
    ax.bar(x - 0.2, [b.actual_mean for b in holdout.buckets], 0.4, label="actual", color=GREY)
    ax.bar(x + 0.2, [b.predicted_mean for b in holdout.buckets], 0.4, label="BG/NBD", color=ACCENT)
    ax.set_xticks(x, labels)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout")
    ax.legend(fontsize=8)
    ax.set_title(
        f"Holdout {holdout.calibration_end} – {holdout.holdout_end}: predicted "
        f"{holdout.predicted_purchases:,.0f} vs actual {holdout.actual_purchases:,}",
        fontsize=10,
    )
    return _render(fig, fmt)


def forecast_chart(
    uid: str,
    series: pd.DataFrame,
    result: BacktestResult,
    ahead: pd.DataFrame,
    fmt: str = "png",
) -> bytes:
    fig = Figure(figsize=(9, 3.4))
    ax = fig.subplots()
    ax.plot(series["ds"], series["y"], color="black", lw=1.2, label="actual")
    cv = result.errors
    if not cv.empty:
        for i, (_cutoff, part) in enumerate(cv.groupby("cutoff")):
            ax.plot(
                part["ds"],
                part["chosen"],
                color=ACCENT,
                lw=1.6,
                label="backtest (chosen model)" if i == 0 else None,
            )
            ax.plot(
                part["ds"],
                part["SeasonalNaive"],
                color=SECOND,
                lw=1.2,
                ls="--",
                label="backtest (seasonal naive)" if i == 0 else None,
            )
    if not ahead.empty:
        ax.plot(ahead["ds"], ahead["yhat"], color=ACCENT, lw=1.6, ls=":", label="forecast")
    row = result.series.iloc[0] if len(result.series) else None
    detail = ""
    if row is not None:
        mase = row.get("mase")
        naive = row.get("mase_seasonal_naive")
        detail = f" – {row['demand_class']}, {row['model']}"
        if mase is not None and naive is not None and np.isfinite(mase) and np.isfinite(naive):
            detail += f", MASE {mase:.2f} vs naive {naive:.2f}"
    ax.set_title(f"Weekly units {uid}{detail}", fontsize=10)
    ax.set_ylabel("units per week")
    ax.legend(fontsize=8, loc="upper left")
    ax.tick_params(labelsize=8)
    return _render(fig, fmt)
