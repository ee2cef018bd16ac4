"""`omni inventory` commands: thin wrappers over the same services as the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from omniretail.core.db import get_database
from omniretail.core.errors import AppError
from omniretail.inventory import service

app = typer.Typer(help="inventory commands", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")

Lines = Annotated[list[str], typer.Argument(help="SKU=QUANTITY pairs, e.g. TSHIRT-M=5")]


def _run(fn: Callable[[Session], T], write: bool = True) -> T:
    try:
        with get_database().unit_of_work(write=write) as session:
            return fn(session)
    except AppError as e:
        err.print(f"[red]error[/red] {e.code}: {e.message}")
        if e.details:
            err.print(e.details)
        raise typer.Exit(1) from None


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


def _print(value: Any) -> None:
    data = asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
    console.print_json(json.dumps(data, default=_default))


def _pairs(values: list[str]) -> list[tuple[str, int]]:
    out = []
    for value in values:
        sku, sep, qty = value.rpartition("=")
        if not sep or not sku:
            raise typer.BadParameter(f"expected SKU=QUANTITY, got {value!r}")
        try:
            out.append((sku, int(qty)))
        except ValueError:
            raise typer.BadParameter(f"quantity of {sku!r} is not a whole number") from None
    return out


# --- locations ------------------------------------------------------------------------------


@app.command("create-location")
def create_location(
    code: Annotated[str, typer.Option(help="Unique code, e.g. paris-rivoli")],
    name: Annotated[str, typer.Option(help="Display name")],
    type: Annotated[str, typer.Option(help="warehouse, store, dark_store, locker, dropship")],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Paris")],
    lat: Annotated[float | None, typer.Option(help="Latitude")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude")] = None,
    capability: Annotated[
        list[str] | None,
        typer.Option(help="ship, pickup, curbside, same_day, ship_from_store, returns"),
    ] = None,
    pick_capacity: Annotated[int | None, typer.Option(help="Daily pick capacity")] = None,
    hours: Annotated[
        str | None, typer.Option(help='Opening hours JSON: {"mon": [["09:00","18:00"]]}')
    ] = None,
) -> None:
    """Create a location."""
    location = _run(
        lambda s: service.create_location(
            s,
            code=code,
            name=name,
            type=type,
            timezone=timezone,
            latitude=lat,
            longitude=lon,
            capabilities=capability or [],
            daily_pick_capacity=pick_capacity,
            opening_hours=json.loads(hours) if hours else {},
        )
    )
    console.print(f"created location [bold]{location.code}[/bold] ({location.id})")


@app.command("locations")
def locations() -> None:
    """List locations."""
    rows = _run(lambda s: service.list_locations(s), write=False)
    for loc in rows:
        state = "" if loc.active else " (inactive)"
        caps = ",".join(loc.capabilities or [])
        console.print(f"{loc.id}  {loc.code:<20} {loc.type:<10} {loc.timezone:<20} {caps}{state}")


# --- stock ----------------------------------------------------------------------------------


@app.command("move")
def move(
    location: Annotated[str, typer.Option(help="Location id")],
    reason: Annotated[str, typer.Option(help="receipt, return, damage or sale")],
    lines: Lines,
    reference: Annotated[str | None, typer.Option(help="External reference")] = None,
) -> None:
    """Record a receipt, return, damage or direct sale."""
    _print(
        _run(
            lambda s: service.record_movement(
                s, location_id=location, reason=reason, lines=_pairs(lines), reference=reference
            )
        )
    )


@app.command("adjust")
def adjust(
    location: Annotated[str, typer.Option(help="Location id")],
    sku: Annotated[str, typer.Option(help="SKU")],
    delta: Annotated[int, typer.Option(help="Signed change of on hand")],
    note: Annotated[str | None, typer.Option(help="Why")] = None,
) -> None:
    """Correct on hand by a signed delta."""
    _print(
        _run(
            lambda s: service.adjust_stock(s, location_id=location, sku=sku, delta=delta, note=note)
        )
    )


@app.command("safety-stock")
def safety_stock(
    location: Annotated[str, typer.Option(help="Location id")],
    sku: Annotated[str, typer.Option(help="SKU")],
    units: Annotated[int | None, typer.Option(help="Safety stock")] = None,
    low_threshold: Annotated[int | None, typer.Option(help="Low-stock threshold")] = None,
) -> None:
    """Set safety stock and/or the low-stock threshold of a SKU at a location."""
    _print(
        _run(
            lambda s: service.set_stock_settings(
                s,
                location_id=location,
                sku=sku,
                safety_stock=units,
                low_stock_threshold=low_threshold,
            )
        )
    )


@app.command("stock")
def stock(
    sku: Annotated[list[str] | None, typer.Option(help="SKU (repeatable)")] = None,
    location: Annotated[str | None, typer.Option(help="Location id")] = None,
) -> None:
    """Show balances."""
    rows = _run(
        lambda s: service.stock_balances(s, skus=sku or None, location_id=location), write=False
    )
    console.print(f"{'sku':<24} {'location':<32} on_hand reserved safety incoming available")
    for b in rows:
        console.print(
            f"{b.sku:<24} {b.location_id:<32} {b.on_hand:>7} {b.reserved:>8} "
            f"{b.safety_stock:>6} {b.incoming:>8} {b.available:>9}"
        )


@app.command("availability")
def availability(
    sku: Annotated[list[str], typer.Option(help="SKU (repeatable, up to 100)")],
    channel: Annotated[str | None, typer.Option(help="Channel id or code")] = None,
    lat: Annotated[float | None, typer.Option(help="Latitude for pickup search")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude for pickup search")] = None,
    radius_km: Annotated[float | None, typer.Option(help="Pickup search radius")] = None,
) -> None:
    """Available to promise for a channel, and pickup locations near a point."""
    _print(
        _run(
            lambda s: service.availability(
                s, sku, channel=channel, lat=lat, lon=lon, radius_km=radius_km
            ),
            write=False,
        )
    )


@app.command("sourcing")
def sourcing(
    channel: Annotated[str, typer.Option(help="Channel id or code")],
    rule: Annotated[
        list[str] | None,
        typer.Option(
            help="A rule as key=value[,key=value]: location_id, location_type, capability; "
            "e.g. location_type=warehouse or capability=ship_from_store (repeatable)"
        ),
    ] = None,
    buffer: Annotated[int, typer.Option(help="Units held back per location")] = 0,
    ttl: Annotated[int, typer.Option(help="Cart hold TTL in seconds")] = 900,
) -> None:
    """Set which locations feed a channel, its buffer and its hold TTL."""
    rules = []
    for text in rule or []:
        parts = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        rules.append(parts)
    _print(
        _run(
            lambda s: service.set_channel_sourcing(
                s, channel, rules=rules, buffer=buffer, reservation_ttl_seconds=ttl
            )
        )
    )


# --- reservations ---------------------------------------------------------------------------


@app.command("reserve")
def reserve(
    lines: Lines,
    channel: Annotated[str | None, typer.Option(help="Channel id or code")] = None,
    location: Annotated[
        list[str] | None, typer.Option(help="Candidate location id, in preference order")
    ] = None,
    strategy: Annotated[str, typer.Option(help="preferred or any")] = "preferred",
    ttl: Annotated[int | None, typer.Option(help="Hold TTL in seconds")] = None,
    reference: Annotated[str | None, typer.Option(help="Cart or order line reference")] = None,
) -> None:
    """Reserve stock (may split across locations)."""
    _print(
        _run(
            lambda s: service.reserve(
                s,
                _pairs(lines),
                channel=channel,
                locations=location,
                strategy=strategy,
                ttl_seconds=ttl,
                reference=reference,
            )
        )
    )


@app.command("extend")
def extend(
    reservation_id: str, ttl: Annotated[int | None, typer.Option(help="Seconds")] = None
) -> None:
    """Extend a live hold."""
    _print(_run(lambda s: service.extend_reservation(s, reservation_id, ttl_seconds=ttl)))


@app.command("release")
def release(reservation_id: str) -> None:
    """Release a hold or an allocation."""
    _print(_run(lambda s: service.release_reservation(s, reservation_id)))


@app.command("allocate")
def allocate(
    reservation_id: str,
    order: Annotated[str | None, typer.Option(help="Order reference")] = None,
) -> None:
    """Convert a live hold into an allocation."""
    _print(_run(lambda s: service.allocate_reservation(s, reservation_id, order_reference=order)))


@app.command("fulfill")
def fulfill(reservation_id: str) -> None:
    """Ship or hand over the allocated units (a sale)."""
    _print(_run(lambda s: service.fulfill_reservation(s, reservation_id)))


@app.command("expire-reservations")
def expire_reservations(
    batch: Annotated[int, typer.Option(help="Lines per transaction")] = 1000,
) -> None:
    """Clean up expired holds (their units already stopped counting at the deadline)."""
    total = 0
    while True:
        count = _run(lambda s: service.expire_reservations(s, limit=batch))
        total += count
        if count < batch:
            break
    console.print(f"expired {total} reservation lines")


# --- transfers, purchase orders, counts, audit ----------------------------------------------


@app.command("transfer")
def transfer(
    source: Annotated[str, typer.Option("--from", help="Source location id")],
    destination: Annotated[str, typer.Option("--to", help="Destination location id")],
    lines: Lines,
    reference: Annotated[str | None, typer.Option(help="External reference")] = None,
) -> None:
    """Ship stock between locations (in transit until received)."""
    _print(
        _run(
            lambda s: service.create_transfer(
                s,
                from_location_id=source,
                to_location_id=destination,
                lines=_pairs(lines),
                reference=reference,
            )
        )
    )


@app.command("receive-transfer")
def receive_transfer(
    transfer_id: str,
    lines: Annotated[
        list[str] | None, typer.Argument(help="SKU=RECEIVED for lines that differ")
    ] = None,
) -> None:
    """Receive a transfer; lines not given arrived in full."""
    received = dict(_pairs(lines or []))
    _print(_run(lambda s: service.receive_transfer(s, transfer_id, received=received)))


@app.command("purchase-order")
def purchase_order(
    location: Annotated[str, typer.Option(help="Receiving location id")],
    supplier: Annotated[str, typer.Option(help="Supplier name")],
    lines: Lines,
    reference: Annotated[str | None, typer.Option(help="Supplier's order number")] = None,
) -> None:
    """Create a purchase order (its quantities show as incoming)."""
    _print(
        _run(
            lambda s: service.create_purchase_order(
                s,
                location_id=location,
                supplier=supplier,
                lines=_pairs(lines),
                reference=reference,
            )
        )
    )


@app.command("receive-po")
def receive_po(po_id: str, lines: Lines) -> None:
    """Receive goods against a purchase order."""
    _print(_run(lambda s: service.receive_purchase_order(s, po_id, lines=_pairs(lines))))


@app.command("count")
def count(
    location: Annotated[str, typer.Option(help="Location id")],
    lines: Annotated[list[str], typer.Argument(help="SKU=COUNTED pairs")],
    note: Annotated[str | None, typer.Option(help="Note")] = None,
) -> None:
    """Record a cycle count and print the variance report."""
    counts = []
    for value in lines:
        sku, _, qty = value.rpartition("=")
        counts.append((sku, int(qty)))
    report = _run(
        lambda s: service.submit_cycle_count(s, location_id=location, counts=counts, note=note)
    )
    console.print(
        f"cycle count {report.id}: {report.lines_counted} lines, "
        f"{report.lines_with_variance} with variance, net {report.net_variance:+d}, "
        f"absolute {report.absolute_variance}"
    )
    for line in report.lines:
        console.print(
            f"  {line.sku:<24} expected {line.expected:>6} counted {line.counted:>6} "
            f"variance {line.variance:+d}"
        )


@app.command("verify")
def verify() -> None:
    """Rebuild every balance from the ledger and report any drift (exit 1 if drift)."""
    report = _run(lambda s: service.verify(s), write=False)
    if report.ok:
        console.print(
            f"[green]ok[/green]: {report.rows_checked} balances match "
            f"{report.ledger_entries} ledger entries"
        )
        return
    console.print(f"[red]drift[/red] in {len(report.drift)} balances:")
    for d in report.drift:
        console.print(
            f"  {d.sku} @ {d.location_id}: {d.field} is {d.balance}, ledger says {d.expected}"
        )
    raise typer.Exit(1)
