"""`omni sourcing` commands: thin wrappers over the same services as the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session

from omniretail.core.db import get_database
from omniretail.core.errors import AppError
from omniretail.core.money import Money
from omniretail.fulfillment import service

app = typer.Typer(
    help="Order sourcing (where orders ship from), re-optimisation and delivery promise.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")

Lines = Annotated[list[str], typer.Argument(help="SKU=QUANTITY pairs, e.g. TSHIRT-M=2")]


def _run(fn: Callable[[Session], T], write: bool = True) -> T:
    try:
        with get_database().unit_of_work(write=write) as session:
            return fn(session)
    except AppError as e:
        err.print(f"[red]error[/red] {e.code}: {e.message}")
        if e.details:
            err.print({k: v for k, v in e.details.items() if k != "explanation"})
            if e.details.get("explanation"):
                err.print(e.details["explanation"])
        raise typer.Exit(1) from None


def _pairs(values: list[str]) -> list[service.LineRequest]:
    out = []
    for value in values:
        sku, sep, qty = value.rpartition("=")
        if not sep or not sku:
            raise typer.BadParameter(f"expected SKU=QUANTITY, got {value!r}")
        try:
            out.append(service.LineRequest(sku, int(qty)))
        except ValueError:
            raise typer.BadParameter(f"quantity of {sku!r} is not a whole number") from None
    return out


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _show_decision(view: service.DecisionView) -> None:
    title = f"decision {view.id}" if view.id else "plan (dry run, not stored)"
    console.print(
        f"[bold]{title}[/bold]  {view.method} · strategy {view.strategy} · solver {view.solver}"
        f" · {view.outcome} · {view.candidates} candidates · {view.solve_ms:.2f} ms"
    )
    table = Table("#", "location", "type", "kind", "km", "units", "lines", "cost")
    for p in view.packages:
        table.add_row(
            str(p.position),
            p.location_code,
            p.location_type,
            p.kind,
            f"{p.distance_km:.1f}",
            str(p.units),
            ", ".join(f"{x.quantity} x {x.sku}" for x in p.lines),
            _money(p.shipping_cost + p.handling_cost + p.transfer_cost, view.currency),
        )
    console.print(table)
    c = view.cost_breakdown
    console.print(
        f"total [bold]{_money(view.total_cost, view.currency)}[/bold]: shipping "
        f"{_money(c['shipping'], view.currency)}, handling {_money(c['handling'], view.currency)}"
        f", transfer {_money(c['transfer'], view.currency)}, split penalty "
        f"{_money(c['split_penalty'], view.currency)}"
    )
    if view.unfulfilled:
        missing = ", ".join(f"{x['quantity']} x {x['sku']}" for x in view.unfulfilled)
        console.print(f"[yellow]unfulfilled[/yellow] {missing}")
    if view.alternatives:
        alts = Table("alternative", "packages", "cost", "lost because")
        for a in view.alternatives:
            cost = "-" if a["total_cost"] is None else _money(a["total_cost"], view.currency)
            alts.add_row(a["label"], str(a["packages"] or "-"), cost, a["reason"])
        console.print(alts)


@app.command("plan")
def plan(
    lines: Lines,
    lat: Annotated[float | None, typer.Option(help="Destination latitude")] = None,
    lon: Annotated[float | None, typer.Option(help="Destination longitude")] = None,
    method: Annotated[
        str, typer.Option(help="standard, express, same_day, pickup or curbside")
    ] = "standard",
    pickup: Annotated[str | None, typer.Option(help="Pickup store id or code")] = None,
    channel: Annotated[str | None, typer.Option(help="Sales channel id or code")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="cost_optimal, nearest, fewest_splits, store_first, warehouse_first"),
    ] = None,
    max_packages: Annotated[int | None, typer.Option(help="At most this many packages")] = None,
    allow_partial: Annotated[
        bool | None, typer.Option("--allow-partial/--no-partial", help="Accept partial plans")
    ] = None,
    reference: Annotated[str | None, typer.Option(help="Order reference")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide only, store nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Decide where an order ships from and store the decision with its explanation."""
    destination = None if lat is None or lon is None else (lat, lon)
    view = _run(
        lambda s: service.plan_sourcing(
            s,
            _pairs(lines),
            method=method,
            destination=destination,
            pickup_location=pickup,
            channel=channel,
            strategy=strategy,
            max_packages=max_packages,
            allow_partial=allow_partial,
            reference=reference,
            dry_run=dry_run,
        )
    )
    if as_json:
        console.print_json(json.dumps(asdict(view), default=_default))
        return
    _show_decision(view)
    console.print(view.explanation, style="dim")


@app.command("show")
def show(decision_id: Annotated[str, typer.Argument(help="Decision id (src_...)")]) -> None:
    """Show a stored decision: packages, cost breakdown, alternatives, explanation."""
    view = _run(lambda s: service.get_decision(s, decision_id), write=False)
    _show_decision(view)
    console.print(view.explanation, style="dim")


@app.command("reoptimize")
def reoptimize(
    limit: Annotated[int, typer.Option(help="At most this many open decisions")] = 500,
    time_limit: Annotated[float, typer.Option(help="Seconds per decision for HiGHS")] = 10.0,
    apply: Annotated[
        bool, typer.Option("--apply", help="Replace plans that got cheaper (default: report)")
    ] = False,
) -> None:
    """Re-solve open (unreleased) decisions with the exact solver and report the savings.

    Each decision is re-solved (and, with --apply, replaced) in its own transaction, so a
    long batch never holds the capacity rows that new orders book."""
    ids = _run(lambda s: service.open_decisions(s, limit=limit), write=False)
    done: list[service.ReoptimizedDecision] = []
    with Progress(
        TextColumn("re-optimising"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("decisions", total=len(ids))
        for decision_id in ids:

            def one(s: Session, decision_id: str = decision_id) -> service.ReoptimizedDecision:
                return service.reoptimize_decision(
                    s, decision_id, apply=apply, time_limit=time_limit
                )

            done.append(_run(one))
            bar.advance(task)
    report = service.ReoptimizeReport(done, apply)
    table = Table("decision", "reference", "was", "exact", "saving", "status")
    for d in report.decisions:
        table.add_row(
            d.decision_id,
            d.reference or "",
            str(d.old_cost),
            "-" if d.new_cost is None else str(d.new_cost),
            str(d.saving),
            d.status,
        )
    console.print(table)
    verb = "applied" if report.applied else "possible (run with --apply to replace the plans)"
    console.print(
        f"{len(report.decisions)} open decisions, {report.improved} cheaper with the exact "
        f"solver; saving {report.total_saving} minor units {verb}"
    )


@app.command("promise")
def promise(
    lines: Lines,
    lat: Annotated[float | None, typer.Option(help="Destination latitude")] = None,
    lon: Annotated[float | None, typer.Option(help="Destination longitude")] = None,
    timezone: Annotated[str | None, typer.Option(help="Customer's IANA time zone")] = None,
    pickup: Annotated[str | None, typer.Option(help="Pickup store id or code")] = None,
    channel: Annotated[str | None, typer.Option(help="Sales channel id or code")] = None,
) -> None:
    """Earliest delivery or pickup time per method for a cart."""
    destination = None if lat is None or lon is None else (lat, lon)
    view = _run(
        lambda s: service.delivery_promise(
            s,
            _pairs(lines),
            destination=destination,
            destination_timezone=timezone,
            pickup_location=pickup,
            channel=channel,
        ),
        write=False,
    )
    table = Table("method", "promise", "from", "order by")
    for o in view.options:
        text = o.text if o.available else f"[dim]not available: {o.reason}[/dim]"
        table.add_row(
            o.method,
            text,
            ", ".join(o.locations),
            "" if o.order_by is None else o.order_by.isoformat(timespec="minutes"),
        )
    console.print(table)


@app.command("strategy")
def strategy(
    channel: Annotated[str, typer.Argument(help="Sales channel id or code")],
    name: Annotated[
        str, typer.Option(help="cost_optimal, nearest, fewest_splits, store_first, warehouse_first")
    ] = "cost_optimal",
    max_packages: Annotated[int | None, typer.Option(help="At most this many packages")] = None,
    allow_partial: Annotated[bool, typer.Option(help="Accept partial plans")] = False,
) -> None:
    """Set a channel's sourcing strategy."""
    view = _run(
        lambda s: service.set_channel_strategy(
            s, channel, strategy=name, max_packages=max_packages, allow_partial=allow_partial
        )
    )
    console.print(f"channel [bold]{view.channel_code}[/bold]: {view.strategy}")


@app.command("cost-model")
def cost_model(
    set_json: Annotated[
        str | None, typer.Option("--set", help='JSON changes, e.g. {"split_penalty": 200}')
    ] = None,
) -> None:
    """Show (or change) the sourcing cost model."""
    if set_json is None:
        model = _run(lambda s: service.get_cost_model(s), write=False)
    else:
        try:
            changes = json.loads(set_json)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc.msg}") from None
        model = _run(lambda s: service.set_cost_model(s, changes))
    console.print_json(json.dumps(model.to_dict()))
