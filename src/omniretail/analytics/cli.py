"""`omni analytics`, `omni forecast` and `omni import` commands: thin wrappers over
``analytics.service``, one transaction each, Rich progress on long work."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from omniretail.analytics import importer, service
from omniretail.analytics.kpis import as_dict
from omniretail.core.cli import err, fail
from omniretail.core.db import get_database
from omniretail.core.errors import AppError

app = typer.Typer(help="KPIs, cohorts, RFM and customer lifetime value.", no_args_is_help=True)
forecast_app = typer.Typer(help="Demand forecasting and replenishment.", no_args_is_help=True)
import_app = typer.Typer(help="Import sales history.", no_args_is_help=True)
console = Console()

StartOpt = Annotated[
    str | None, typer.Option("--start", help="First day YYYY-MM-DD (default: first fact)")
]
EndOpt = Annotated[
    str | None, typer.Option("--end", help="Day after the last, YYYY-MM-DD (exclusive)")
]
ChannelOpt = Annotated[str | None, typer.Option("--channel", help="Only this channel code")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]


def _fail(error: AppError, code: int = 2) -> NoReturn:
    fail(error, code)


def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(AppError("invalid_date", f"{name} must be YYYY-MM-DD, not {value!r}", 422))


@contextmanager
def _progress(description: str) -> Iterator[Callable[[str, int, int], None]]:
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{description}: {stage}", total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield update


def _money(minor: int | float | None, currency: str = "") -> str:
    if minor is None:
        return "–"
    return f"{minor / 100:,.2f} {currency}".strip()


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


# --- import ---------------------------------------------------------------------------------


@import_app.command("online-retail")
def import_online_retail(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or CSV.GZ in the UCI Online Retail format", exists=True, dir_okay=False
        ),
    ],
    channel: Annotated[str, typer.Option(help="Channel code of rows without Channel")] = "web",
    location: Annotated[
        str | None, typer.Option(help="Location code of rows without Location")
    ] = None,
    currency: Annotated[str, typer.Option(help="ISO currency of UnitPrice")] = "GBP",
    source: Annotated[str, typer.Option(help="Source name (the idempotency key)")] = (
        "online_retail"
    ),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report, write nothing")
    ] = False,
    catalog: Annotated[
        bool,
        typer.Option("--catalog", help="Also create catalog products for new StockCodes"),
    ] = False,
    customers: Annotated[
        bool,
        typer.Option(
            "--customers",
            help="Also create a customer profile per CustomerID (identifier "
            "external:<source>, trait country); existing ones are kept",
        ),
    ] = False,
    orders: Annotated[
        bool,
        typer.Option(
            "--orders",
            help="Also create completed orders, returns and credit notes in the order context, "
            "with the customers' timeline (implies --customers; the channels must be catalog "
            "channels)",
        ),
    ] = False,
    report_json: Annotated[
        Path | None,
        typer.Option("--report-json", help="Write the full report (every row issue) here"),
    ] = None,
    show: Annotated[int, typer.Option(help="Rejected rows to list")] = 20,
) -> None:
    """Import sales history into the analytics store: products, customers, orders, returns.

    Invoices starting with C are returns; rows without CustomerID are guest orders. A bad row
    rejects its whole invoice (nothing of it is written) and is listed; reinterpreted rows
    (service codes, zero prices, ...) are counted. With --customers and --orders the history
    also becomes customer profiles, orders and returns (customer 360, order API, console).
    Re-running the same file imports nothing twice. Exit status: 0 all rows imported, 1 some
    rows rejected, 2 file refused."""
    data = importer.read_file(file)
    try:
        with get_database().unit_of_work() as session, _progress(file.name) as progress:
            report = service.import_online_retail(
                session,
                data,
                file_name=file.name,
                source=source,
                channel=channel,
                location=location,
                currency=currency,
                dry_run=dry_run,
                create_catalog_products=catalog,
                create_customers=customers,
                create_orders=orders,
                progress=progress,
            )
    except AppError as e:
        _fail(e)
    _print_import(report, show)
    if report_json is not None:
        report_json.write_text(json.dumps(report.to_dict(), indent=1, default=str))
        console.print(f"report written to {report_json}")
    if report.rejected_rows:
        raise typer.Exit(1)


def _print_import(report: importer.ImportReport, show: int) -> None:
    mode = " (dry run: nothing written)" if report.dry_run else ""
    console.print(
        f"[bold]{report.file}[/bold]{mode}: {report.rows:,} rows, {report.invoices:,} invoices "
        f"in {report.seconds:.1f} s ({report.rows_per_s:,.0f} rows/s)\n"
        f"imported {report.imported_rows:,} rows: {report.imported_orders:,} invoices, "
        f"{report.imported_returns:,} returns, {report.new_customers:,} new customers, "
        f"{report.new_products:,} new products"
        + (f", {report.catalog_products:,} catalog products" if report.catalog_products else "")
        + f"\nalready imported (skipped): {report.skipped_rows:,} rows of "
        f"{report.skipped_invoices:,} invoices; rejected {report.rejected_rows:,} rows of "
        f"{report.rejected_invoices:,} invoices\n"
        f"value imported {_money(report.amount_minor_imported, report.currency)}, "
        f"rejected {_money(report.amount_minor_rejected, report.currency)}"
    )
    if report.customer_profiles_created or report.customer_profiles_existing:
        console.print(
            f"customer profiles: {report.customer_profiles_created:,} created, "
            f"{report.customer_profiles_existing:,} already known"
            + (
                f", {report.customer_ids_refused:,} CustomerIDs refused (blocked values: "
                "their invoices are guest orders)"
                if report.customer_ids_refused
                else ""
            )
            + (
                f", {report.customer_ids_suppressed:,} CustomerIDs of erased customers "
                "left out (guest orders)"
                if report.customer_ids_suppressed
                else ""
            )
            + f"; {report.facts_rekeyed:,} analytics orders now keyed by profile id"
        )
    if report.orders_created or report.invoices_already_ordered or report.returns_created:
        console.print(
            f"order context: {report.orders_created:,} orders "
            f"({report.order_lines_created:,} lines), {report.returns_created:,} returns, "
            f"{report.credit_notes_created:,} credit notes without original order, "
            f"{report.timeline_facts_created:,} timeline facts; "
            f"{report.invoices_already_ordered:,} invoices there already, "
            f"{report.invoices_without_order_lines:,} stock adjustments (not orders)"
        )
    counts = Table(title="Rejected and reinterpreted rows")
    for column in ("Outcome", "Code", "Rows", "Meaning"):
        counts.add_column(column, overflow="fold")
    for code, n in report.rejected.items():
        counts.add_row("[red]rejected[/red]", code, f"{n:,}", importer.REJECT_MESSAGES[code])
    for code, n in report.reinterpreted.items():
        counts.add_row("reinterpreted", code, f"{n:,}", importer.REINTERPRET_MESSAGES[code])
    if report.rejected or report.reinterpreted:
        console.print(counts)
    rejected = [i for i in report.issues if i.code in importer.REJECT_MESSAGES]
    if rejected and show:
        table = Table(title=f"Rejected rows (first {min(show, len(rejected))} of {len(rejected)})")
        for column in ("Row", "Invoice", "StockCode", "Code", "Value"):
            table.add_column(column, overflow="fold")
        for issue in rejected[:show]:
            table.add_row(
                str(issue.row), issue.invoice, issue.stock_code, issue.code, issue.value or ""
            )
        console.print(table)


# --- analytics ------------------------------------------------------------------------------


@app.command("kpis")
def kpis_command(
    start: StartOpt = None,
    end: EndOpt = None,
    channel: ChannelOpt = None,
    segment: Annotated[str | None, typer.Option(help="guest, registered or an RFM segment")] = None,
    country: Annotated[str | None, typer.Option(help="Customers of this country")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Revenue, orders, AOV, units per order, conversion, repeat rate, churn and returns."""
    try:
        with get_database().unit_of_work(write=False) as session:
            r = service.kpis(
                session,
                start=_date(start, "--start"),
                end=_date(end, "--end"),
                channel=channel,
                segment=segment,
                country=country,
            )
    except AppError as e:
        _fail(e)
    if as_json:
        _print_json(as_dict(r))
        return
    table = Table(title=f"KPIs {r.start} – {r.end} (exclusive)")
    table.add_column("KPI")
    table.add_column("Value", justify="right")
    rows = [
        ("revenue", _money(r.revenue_minor, r.currency)),
        ("orders", f"{r.orders:,}"),
        ("AOV", _money(r.aov_minor, r.currency)),
        ("units", f"{r.units:,}"),
        ("units per order", "–" if r.units_per_order is None else f"{r.units_per_order:.2f}"),
        ("customers", f"{r.customers:,}"),
        ("guest orders", f"{r.guest_orders:,}"),
        ("repeat-purchase rate", _pct(r.repeat_purchase_rate)),
        ("conversion", f"{_pct(r.conversion_rate)} of {r.sessions:,} sessions"),
        ("churn", f"{_pct(r.churn_rate)} of {r.previous_customers:,} previous customers"),
        ("cancelled orders", f"{r.cancelled_orders:,}"),
        ("returns", f"{r.return_count:,} ({_money(r.returned_minor, r.currency)})"),
        ("return rate", _pct(r.return_rate)),
        ("net revenue", _money(r.net_revenue_minor, r.currency)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


@app.command("cohorts")
def cohorts_command(
    start: StartOpt = None,
    end: EndOpt = None,
    channel: ChannelOpt = None,
    counts: Annotated[bool, typer.Option("--counts", help="Customers instead of %")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Monthly cohort retention triangle: % of each first-order cohort ordering m months on."""
    try:
        with get_database().unit_of_work(write=False) as session:
            report = service.cohorts(
                session, start=_date(start, "--start"), end=_date(end, "--end"), channel=channel
            )
    except AppError as e:
        _fail(e)
    if as_json:
        _print_json(as_dict(report))
        return
    table = Table(title=f"Cohort retention {report.start} – {report.end}")
    table.add_column("cohort")
    table.add_column("customers", justify="right")
    for m in range(report.months):
        table.add_column(f"m{m}", justify="right")
    for row in report.rows:
        cells = (
            [str(a) for a in row.active] if counts else [f"{v * 100:.0f}" for v in row.retention]
        )
        table.add_row(row.cohort, str(row.customers), *cells)
    console.print(table)


@app.command("channel-mix")
def channel_mix_command(
    start: StartOpt = None, end: EndOpt = None, as_json: JsonOpt = False
) -> None:
    """Customers active on 1, 2 or 3+ channels: AOV, orders per customer, retention."""
    try:
        with get_database().unit_of_work(write=False) as session:
            report = service.channel_mix(
                session, start=_date(start, "--start"), end=_date(end, "--end")
            )
    except AppError as e:
        _fail(e)
    if as_json:
        _print_json(as_dict(report))
        return
    table = Table(title=f"Channel mix {report.start} – {report.end}")
    for column in ("channels", "customers", "orders", "AOV", "orders/customer", "retention"):
        table.add_column(column, justify="right")
    for g in report.groups:
        table.add_row(
            g.channels,
            f"{g.customers:,}",
            f"{g.orders:,}",
            _money(g.aov_minor, report.currency),
            "–" if g.frequency is None else f"{g.frequency:.2f}",
            _pct(g.retention_rate),
        )
    console.print(table)
    if not report.retention_observed:
        console.print(
            f"retention: the following window (to {report.retention_window_end}) "
            "is not fully in the data"
        )


@app.command("rfm")
def rfm_command(
    start: StartOpt = None,
    end: EndOpt = None,
    channel: ChannelOpt = None,
    top: Annotated[int, typer.Option(help="Customers to list (by monetary value)")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """RFM quintile scores and named segment sizes."""
    try:
        with get_database().unit_of_work(write=False) as session:
            report = service.rfm(
                session, start=_date(start, "--start"), end=_date(end, "--end"), channel=channel
            )
    except AppError as e:
        _fail(e)
    if as_json:
        data = as_dict(report)
        data["top"] = (
            report.table.sort_values("monetary_minor", ascending=False)
            .head(top)
            .to_dict(orient="records")
        )
        _print_json(data)
        return
    table = Table(
        title=f"RFM segments {report.start} – {report.end} ({report.customers:,} customers)"
    )
    table.add_column("segment")
    table.add_column("customers", justify="right")
    table.add_column("share", justify="right")
    for name, n in sorted(report.segments.items(), key=lambda kv: -kv[1]):
        table.add_row(name, f"{n:,}", f"{n / report.customers:.1%}" if report.customers else "–")
    console.print(table)
    if top:
        best = report.table.sort_values("monetary_minor", ascending=False).head(top)
        listing = Table(title=f"Top {top} customers by monetary value")
        for column in ("customer", "recency (days)", "orders", "monetary", "cell", "segment"):
            listing.add_column(column)
        for row in best.itertuples(index=False):
            listing.add_row(
                str(row.customer_key),
                str(row.recency_days),
                str(row.frequency),
                _money(int(row.monetary_minor)),
                str(row.cell),
                str(row.segment),
            )
        console.print(listing)


@app.command("clv")
def clv_command(
    start: StartOpt = None,
    calibration_end: Annotated[
        str | None, typer.Option(help="End of the fitting period (default: all history)")
    ] = None,
    holdout_end: Annotated[
        str | None, typer.Option(help="Compare predicted vs actual purchases up to here")
    ] = None,
    horizon_months: Annotated[int, typer.Option(help="CLV horizon in months")] = 12,
    monthly_discount: Annotated[float, typer.Option(help="Discount rate per month")] = 0.01,
    channel: ChannelOpt = None,
    top: Annotated[int, typer.Option(help="Customers to list")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Fit BG/NBD and Gamma-Gamma; predicted purchases, P(alive) and CLV per customer."""
    try:
        with get_database().unit_of_work(write=False) as session:
            r = service.customer_lifetime_value(
                session,
                start=_date(start, "--start"),
                calibration_end=_date(calibration_end, "--calibration-end"),
                holdout_end=_date(holdout_end, "--holdout-end"),
                horizon_months=horizon_months,
                monthly_discount=monthly_discount,
                channel=channel,
                top=top,
            )
    except AppError as e:
        _fail(e)
    if as_json:
        _print_json(as_dict(r))
        return
    console.print(
        f"calibration {r.calibration_start} – {r.calibration_end}: {r.customers:,} customers, "
        f"{r.repeat_customers:,} with repeat purchases\n"
        f"BG/NBD r={r.bgnbd['r']:.4f} alpha={r.bgnbd['alpha']:.4f} a={r.bgnbd['a']:.4g} "
        f"b={r.bgnbd['b']:.4g}"
        + (
            f"\nGamma-Gamma p={r.gamma_gamma['p']:.4f} q={r.gamma_gamma['q']:.4f} "
            f"gamma={r.gamma_gamma['gamma']:.4f}"
            if r.gamma_gamma
            else "\nGamma-Gamma: not fitted"
        )
        + f"\nCLV over {r.horizon_months} months: total {_money(r.total_clv_minor, r.currency)}, "
        f"mean {_money(r.mean_clv_minor, r.currency)}"
    )
    if r.holdout:
        h = r.holdout
        console.print(
            f"holdout {h.calibration_end} – {h.holdout_end}: predicted "
            f"{h.predicted_purchases:,.0f} vs actual {h.actual_purchases:,} purchases "
            f"(ratio {h.ratio_predicted_over_actual}), MAE {h.mae}, correlation {h.correlation}"
        )
    table = Table(title=f"Top {len(r.top)} customers by CLV")
    for column in ("customer", "x", "t_x", "T", "P(alive)", "E[purchases]", "CLV"):
        table.add_column(column, justify="right")
    for c in r.top:
        table.add_row(
            c.customer_key,
            str(c.frequency),
            str(c.recency_days),
            str(c.age_days),
            f"{c.p_alive:.3f}",
            f"{c.expected_purchases:.2f}",
            _money(c.clv_minor, r.currency),
        )
    console.print(table)


@app.command("chart")
def chart_command(
    name: Annotated[str, typer.Argument(help=", ".join(service.CHARTS))],
    out: Annotated[Path, typer.Option("--out", help="File to write (.png or .svg)")],
    start: StartOpt = None,
    end: EndOpt = None,
    channel: ChannelOpt = None,
    sku: Annotated[str | None, typer.Option(help="forecast: SKU (default best seller)")] = None,
    by: Annotated[str, typer.Option(help="forecast: channel or location")] = "channel",
    node: Annotated[str | None, typer.Option(help="forecast: channel/location code")] = None,
    calibration_end: Annotated[str | None, typer.Option(help="clv-holdout: split date")] = None,
) -> None:
    """Render a chart (format from the file extension)."""
    fmt = out.suffix.lstrip(".").lower()
    try:
        with get_database().unit_of_work(write=False) as session:
            body = service.render_chart(
                session,
                name,
                fmt,
                start=_date(start, "--start"),
                end=_date(end, "--end"),
                channel=channel,
                sku=sku,
                by=by,
                node=node,
                calibration_end=_date(calibration_end, "--calibration-end"),
            )
    except AppError as e:
        _fail(e)
    out.write_bytes(body)
    console.print(f"wrote {out} ({len(body):,} bytes)")


# --- forecast -------------------------------------------------------------------------------

ByOpt = Annotated[str, typer.Option("--by", help="Series per SKU × channel or × location")]
TopOpt = Annotated[int | None, typer.Option(help="Only the N best-selling series")]
SkuOpt = Annotated[list[str] | None, typer.Option("--sku", help="Only this SKU; repeatable")]
HorizonOpt = Annotated[int, typer.Option(help="Periods to forecast (and per backtest origin)")]
WindowsOpt = Annotated[int, typer.Option(help="Backtest origins")]
JobsOpt = Annotated[int, typer.Option("--n-jobs", help="statsforecast worker processes")]


def _print_summary(summary: dict[str, Any]) -> None:
    console.print(
        f"{summary['series']:,} series ({summary['backtested']:,} backtested, "
        f"{summary['scored']:,} scored) in {summary['seconds']:.1f} s; "
        f"horizon {summary['horizon']} × {summary['windows']} origins; seasonal naive m = "
        f"{', '.join(summary['season_lengths'])}\n"
        f"MASE {summary['mase']} vs seasonal naive {summary['mase_seasonal_naive']} → ratio "
        f"[bold]{summary['mase_ratio_vs_seasonal_naive']}[/bold]"
    )
    table = Table(title="Backtest by demand class")
    for column in ("class", "series", "model", "MASE", "naive MASE", "ratio", "best"):
        table.add_column(column, justify="right")
    for cls, entry in summary["per_class"].items():
        table.add_row(
            cls,
            str(entry["series"]),
            entry["model"],
            str(entry["mase"]),
            str(entry["mase_seasonal_naive"]),
            str(entry["ratio"]),
            str(entry.get("best_model") or ""),
        )
    console.print(table)


@forecast_app.command("backtest")
def backtest_command(
    by: ByOpt = "channel",
    top: TopOpt = None,
    sku: SkuOpt = None,
    horizon: HorizonOpt = 4,
    windows: WindowsOpt = 3,
    compare: Annotated[
        bool, typer.Option("--compare", help="Backtest every candidate model on every series")
    ] = False,
    n_jobs: JobsOpt = 1,
    as_json: JsonOpt = False,
) -> None:
    """Rolling-origin backtest: MASE of the chosen model per demand class vs seasonal naive."""
    try:
        with get_database().unit_of_work(write=False) as session, _progress("backtest") as p:
            result = service.backtest_demand(
                session,
                by=by,
                top=top,
                skus=sku,
                horizon=horizon,
                windows=windows,
                compare=compare,
                n_jobs=n_jobs,
                progress=p,
            )
    except AppError as e:
        _fail(e)
    if as_json:
        _print_json(result.summary)
        return
    _print_summary(result.summary)


@forecast_app.command("run")
def run_command(
    by: ByOpt = "channel",
    top: TopOpt = None,
    sku: SkuOpt = None,
    horizon: HorizonOpt = 4,
    windows: WindowsOpt = 3,
    n_jobs: JobsOpt = 1,
) -> None:
    """Backtest and forecast every series, and store the run (used by replenishment)."""
    try:
        with get_database().unit_of_work() as session, _progress("forecast") as p:
            run = service.run_forecast(
                session,
                by=by,
                top=top,
                skus=sku,
                horizon=horizon,
                windows=windows,
                n_jobs=n_jobs,
                progress=p,
            )
    except AppError as e:
        _fail(e)
    console.print(
        f"forecast run [bold]{run.id}[/bold] ({run.node_kind}, {run.freq}, "
        f"history {run.history_start} – {run.history_end})"
    )
    _print_summary(run.metrics)


@forecast_app.command("replenish")
def replenish_command(
    run_id: Annotated[
        str | None, typer.Option(help="Forecast run (default latest by location)")
    ] = None,
    service_level: Annotated[float, typer.Option(help="Cycle service level")] = 0.95,
    lead_time: Annotated[float, typer.Option(help="Lead time in periods")] = 2.0,
    review_period: Annotated[float, typer.Option(help="Review period in periods")] = 1.0,
    pack_size: Annotated[int, typer.Option(help="Purchase in multiples of")] = 1,
    sku: SkuOpt = None,
) -> None:
    """Suggest transfers (excess → shortage) and purchase orders from forecast and stock."""
    try:
        with get_database().unit_of_work() as session:
            result = service.suggest_replenishment(
                session,
                run_id=run_id,
                service_level=service_level,
                lead_time=lead_time,
                review_period=review_period,
                pack_size=pack_size,
                skus=sku,
            )
    except AppError as e:
        _fail(e)
    _print_suggestions(result.suggestions)
    if result.unknown_nodes:
        console.print(
            f"forecast nodes without an inventory location: {', '.join(result.unknown_nodes)}"
        )


def _print_suggestions(rows: list[service.SuggestionView]) -> None:
    table = Table(title=f"{len(rows)} suggestions")
    for column in ("id", "kind", "sku", "from", "to", "qty", "status", "ref"):
        table.add_column(column, overflow="fold")
    for s in rows:
        table.add_row(
            s.id,
            s.kind,
            s.sku,
            s.from_location_id or "",
            s.to_location_id,
            str(s.quantity),
            s.status,
            s.accepted_ref or "",
        )
    console.print(table)


@forecast_app.command("suggestions")
def suggestions_command(
    status: Annotated[str, typer.Option(help="open, accepted, dismissed, superseded")] = "open",
) -> None:
    """List replenishment suggestions."""
    with get_database().unit_of_work(write=False) as session:
        rows = service.list_suggestions(session, status=status)
    _print_suggestions(rows)


@forecast_app.command("accept")
def accept_command(
    suggestion_id: Annotated[str, typer.Argument(help="Suggestion id (rpl_...)")],
    supplier: Annotated[
        str, typer.Option(help="Supplier of a purchase order")
    ] = "default supplier",
    quantity: Annotated[int | None, typer.Option(help="Lower quantity")] = None,
) -> None:
    """Turn a suggestion into an inventory transfer or purchase order."""
    try:
        with get_database().unit_of_work() as session:
            view = service.accept_suggestion(
                session, suggestion_id, supplier=supplier, quantity=quantity
            )
    except AppError as e:
        _fail(e)
    console.print(f"{view.id} accepted: {view.kind} {view.accepted_ref}")
