"""`omni orders` and `omni pos` commands."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, NoReturn

import httpx
import typer
from rich.console import Console

from omniretail.core.cli import fail
from omniretail.core.db import get_database
from omniretail.core.errors import AppError
from omniretail.order import offline, pos, rates, service
from omniretail.order import payments as pay

app = typer.Typer(help="Carts, orders, payments and returns.", no_args_is_help=True)
pos_app = typer.Typer(
    help="Store registers (POS), including offline selling.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _fail(error: AppError) -> NoReturn:
    fail(error, 1)


# --- orders ---------------------------------------------------------------------------------


@app.command("list")
def list_orders(
    customer: Annotated[str | None, typer.Option(help="Customer id or email")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status")] = None,
    limit: Annotated[int, typer.Option(help="How many")] = 20,
) -> None:
    """Orders, newest first (one history per customer across channels with --customer)."""
    try:
        with get_database().unit_of_work(write=False) as session:
            rows, _ = service.list_orders(session, status=status, customer_id=customer, limit=limit)
            for o in rows:
                console.print(
                    f"{o.id}  {o.status:<16} {o.source:<8} {o.total:>9} {o.currency}  "
                    f"{o.placed_at:%Y-%m-%d %H:%M}  {o.customer_id or '-'}"
                )
    except AppError as e:
        _fail(e)


@app.command("show")
def show(order_id: Annotated[str, typer.Argument(help="Order id")]) -> None:
    """One order as JSON."""
    from omniretail.order.api import order_out

    try:
        with get_database().unit_of_work(write=False) as session:
            order = service.get_order(session, order_id)
            console.print_json(order_out(session, order).model_dump_json())
    except AppError as e:
        _fail(e)


@app.command("status")
def set_status(
    order_id: Annotated[str, typer.Argument(help="Order id")],
    status: Annotated[str, typer.Argument(help="fulfilling, ready_for_pickup, shipped, ...")],
) -> None:
    """Move an order along its lifecycle."""
    try:
        with get_database().unit_of_work() as session:
            order = service.transition(session, order_id, status, by="cli")
            console.print(f"{order.id} is {order.status}")
    except AppError as e:
        _fail(e)


@app.command("tax-rate")
def tax_rate(
    country: Annotated[str, typer.Option(help="ISO country code")],
    rate_bp: Annotated[int, typer.Option(help="Basis points: 2000 = 20 %")],
    inclusive: Annotated[bool, typer.Option(help="Prices include the tax")] = True,
    region: Annotated[str | None, typer.Option(help="State or province")] = None,
) -> None:
    """Set a tax rate."""
    try:
        with get_database().unit_of_work() as session:
            rates.set_tax_rate(
                session, country=country, region=region, rate_bp=rate_bp, inclusive=inclusive
            )
        console.print(f"tax {country}{'/' + region if region else ''}: {rate_bp} bp")
    except AppError as e:
        _fail(e)


@app.command("shipping-rate")
def shipping_rate(
    method: Annotated[str, typer.Option(help="standard, express, same_day, locker, ...")],
    amount: Annotated[int, typer.Option(help="Minor units")],
    channel: Annotated[str | None, typer.Option(help="Only this channel")] = None,
    country: Annotated[str | None, typer.Option(help="Only this country")] = None,
    free_over: Annotated[int | None, typer.Option(help="Free from this goods total")] = None,
) -> None:
    """Set a shipping rate."""
    try:
        with get_database().unit_of_work() as session:
            rates.set_shipping_rate(
                session,
                method=method,
                amount=amount,
                channel_id=channel,
                country=country,
                free_over=free_over,
            )
        console.print(f"shipping {method}: {amount}")
    except AppError as e:
        _fail(e)


@app.command("return-window")
def return_window(
    channel: Annotated[str, typer.Argument(help="Channel id or code")],
    days: Annotated[int, typer.Argument(help="Days after delivery")],
) -> None:
    """Set a channel's return window."""
    try:
        with get_database().unit_of_work() as session:
            rates.set_return_window(session, channel, days)
        console.print(f"returns on {channel}: {days} days")
    except AppError as e:
        _fail(e)


@app.command("gift-card")
def gift_card(
    amount: Annotated[int, typer.Option(help="Minor units")],
    currency: Annotated[str, typer.Option(help="ISO currency")] = "GBP",
    code: Annotated[str | None, typer.Option(help="A code (random when left out)")] = None,
) -> None:
    """Issue a gift card; the code is printed once."""
    try:
        with get_database().unit_of_work() as session:
            plaintext, account = pay.issue_gift_card(
                session, amount=amount, currency=currency.upper(), code=code
            )
        console.print(f"{account.id} [bold]{plaintext}[/bold] {amount} {currency.upper()}")
    except AppError as e:
        _fail(e)


@app.command("sweep-carts")
def sweep_carts(
    older_than_days: Annotated[
        int, typer.Option(min=1, help="Delete guest carts untouched for this many days")
    ] = 30,
) -> None:
    """Delete abandoned guest carts (holds released); customers' carts persist."""
    total = 0
    try:
        while True:
            with get_database().unit_of_work() as session:
                count = service.sweep_abandoned_carts(session, older_than_days=older_than_days)
            total += count
            if count < 500:
                break
    except AppError as e:
        _fail(e)
    console.print(f"{total} carts deleted")


# --- pos ------------------------------------------------------------------------------------


@pos_app.command("create-register")
def create_register(
    code: Annotated[str, typer.Option(help="Register code")],
    location: Annotated[str, typer.Option(help="Store location id or code")],
    channel: Annotated[str, typer.Option(help="Store channel id or code")],
) -> None:
    """Create a register at a store."""
    try:
        with get_database().unit_of_work() as session:
            register = pos.create_register(
                session, code=code, location_id=location, channel=channel
            )
            console.print(f"{register.id} {register.code}")
    except AppError as e:
        _fail(e)


@pos_app.command("discrepancies")
def discrepancies(
    location: Annotated[str | None, typer.Option(help="Only this location id")] = None,
) -> None:
    """Open stock discrepancies and sales to review."""
    with get_database().unit_of_work(write=False) as session:
        for d in pos.list_discrepancies(session, location_ids=[location] if location else None):
            console.print(f"{d.id}  {d.kind:<18} {d.sku or '-':<14} {d.quantity:>4}  {d.sale_id}")


@pos_app.command("simulate")
def simulate(
    register: Annotated[str | None, typer.Option(help="Register id (a new queue needs it)")] = None,
    sales: Annotated[int, typer.Option(help="How many sales to ring up")] = 10,
    item: Annotated[
        list[str] | None, typer.Option(help="SKU:PRICE the register sells (repeatable)")
    ] = None,
    queue: Annotated[Path, typer.Option(help="The register's local queue file")] = Path(
        "register-queue.json"
    ),
    offline_mode: Annotated[
        bool, typer.Option("--offline/--online", help="Queue sales locally (network down)")
    ] = True,
    sync: Annotated[
        bool, typer.Option("--sync/--no-sync", help="Sync the queue afterwards")
    ] = True,
    server: Annotated[str, typer.Option(help="Server URL")] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None, typer.Option(envvar="OMNI_POS_API_KEY", help="Store associate's API key")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
) -> None:
    """A reference offline register: ring up SALES into QUEUE, then sync when reachable."""
    try:
        items = [offline.parse_item(i) for i in item or []]
        state = offline.load_queue(queue, register)
        made = offline.ring_up(state, items, sales, seed)
        offline.save_queue(queue, state)
    except ValueError as e:
        err.print(f"[red]error[/red] {e}")
        raise typer.Exit(2) from None
    summary: dict[str, object] = {
        "register_id": state["register_id"],
        "rung_up": len(made),
        "queued": len(state["sales"]) - len(state["acknowledged"]),
        "mode": "offline" if offline_mode else "online",
    }
    if sync:
        summary["sync"] = _sync(state, queue, server, api_key, resend_all=False)
    typer.echo(json.dumps(summary))


@pos_app.command("sync")
def sync_command(
    queue: Annotated[Path, typer.Option(help="The register's local queue file")] = Path(
        "register-queue.json"
    ),
    server: Annotated[str, typer.Option(help="Server URL")] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None, typer.Option(envvar="OMNI_POS_API_KEY", help="Store associate's API key")
    ] = None,
    resend_all: Annotated[
        bool, typer.Option("--all", help="Resend acknowledged sales too (a replay)")
    ] = False,
) -> None:
    """Send the queued sales to the server (replays are no-ops there)."""
    try:
        state = offline.load_queue(queue, None)
    except ValueError as e:
        err.print(f"[red]error[/red] {e}")
        raise typer.Exit(2) from None
    typer.echo(json.dumps(_sync(state, queue, server, api_key, resend_all)))


def _sync(
    state: dict[str, object], queue: Path, server: str, api_key: str | None, resend_all: bool
) -> dict[str, object]:
    if not api_key:
        err.print("[red]error[/red] give --api-key (or OMNI_POS_API_KEY)")
        raise typer.Exit(2)
    try:
        report = offline.sync_queue(state, server=server, api_key=api_key, resend_all=resend_all)
    except httpx.HTTPError as e:
        err.print(f"[yellow]still offline[/yellow]: {e}; the sales stay queued")
        raise typer.Exit(3) from None
    offline.save_queue(queue, state)
    return asdict(report)
