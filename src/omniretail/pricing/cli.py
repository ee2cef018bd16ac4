"""`omni pricing` commands: price resolution and the channel-consistency audit. Each command
is one read-only unit of work over the same services as the API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from omniretail.core.cli import fail
from omniretail.core.db import get_database
from omniretail.core.errors import AppError
from omniretail.core.timeutil import as_utc
from omniretail.pricing import service

app = typer.Typer(
    help="Pricing: price resolution and the channel price-consistency audit.",
    no_args_is_help=True,
)
console = Console()


def _fail(error: AppError, code: int = 2) -> NoReturn:
    fail(error, code)


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo is not None else as_utc(parsed)


@app.command("resolve")
def resolve(
    sku: Annotated[str, typer.Option(help="The SKU to price")],
    channel: Annotated[str, typer.Option(help="Channel id or code")],
    quantity: Annotated[int, typer.Option(min=1, help="Quantity (selects quantity tiers)")] = 1,
    customer_group: Annotated[
        str | None, typer.Option(help="Customer group code, e.g. 'vip'")
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="ISO 8601 instant (default now; naive means UTC)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Show a SKU's price on a channel, the rule that won and why every other price lost."""
    try:
        with get_database().unit_of_work(write=False) as session:
            r = service.resolve_price(
                session, channel, sku, quantity, customer_group, _parse_at(at)
            )
    except AppError as e:
        if as_json:
            typer.echo(json.dumps(e.to_dict(), indent=2))
            raise typer.Exit(2) from None
        _fail(e)
    winner = r.winner
    assert winner is not None
    explanation = [service.verdict_dict(v) for v in r.explanation]
    if as_json:
        out: dict[str, Any] = {
            "sku": r.sku,
            "channel": channel,
            "quantity": r.quantity,
            "customer_group": r.customer_group,
            "at": r.at.isoformat(),
            "amount": winner.amount,
            "currency": winner.currency,
            "price_id": winner.price_id,
            "price_book": winner.book_code,
            "rule": r.rule,
            "explanation": explanation,
        }
        typer.echo(json.dumps(out, indent=2))
        return
    console.print(
        f"[bold]{r.sku}[/bold] on {channel} x{r.quantity}: [green]{winner.amount} "
        f"{winner.currency}[/green] from {winner.book_code!r} (rule {r.rule})"
    )
    table = Table(title="Candidates")
    for column in ("Status", "Book", "Amount", "Group", "Min qty", "Window", "Reason"):
        table.add_column(column, overflow="fold")
    for v in explanation:
        window = f"{v['starts_at'] or '-'} .. {v['ends_at'] or '-'}"
        table.add_row(
            v["status"],
            v["price_book"],
            str(v["amount"]),
            v["customer_group"] or "",
            str(v["min_quantity"]),
            window,
            v["reason"],
        )
    console.print(table)


@app.command("audit")
def audit(
    currency: Annotated[str | None, typer.Option(help="Only channels in this currency")] = None,
    show_intended: Annotated[
        bool, typer.Option("--intended/--no-intended", help="Also list intended differences")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    fail_on_problems: Annotated[
        bool,
        typer.Option(
            "--fail-on-problems", help="Exit with status 1 if any difference is unintended"
        ),
    ] = False,
) -> None:
    """List SKUs whose price or promotions differ between channels of one currency.

    Differences from a price book flagged intended_override are intended; others are problems.
    """
    try:
        with get_database().unit_of_work(write=False) as session:
            report = service.audit_consistency(session, currency=currency)
    except AppError as e:
        _fail(e)
    findings = [f for f in report.findings if show_intended or f.status == "unintended"]
    problems = len(report.unintended)
    if as_json:
        out = {
            "at": report.at.isoformat(),
            "groups": report.groups,
            "skus_compared": report.skus_compared,
            "unintended": problems,
            "intended": len(report.findings) - problems,
            "findings": [
                {
                    "sku": f.sku,
                    "currency": f.currency,
                    "aspect": f.aspect,
                    "status": f.status,
                    "channels": [
                        {
                            "channel": o.channel_code,
                            "amount": o.amount,
                            "price_book": o.price_book,
                            "intended": o.intended,
                            "promotion_ids": list(o.promotion_ids),
                        }
                        for o in f.offers
                    ],
                }
                for f in findings
            ],
        }
        typer.echo(json.dumps(out, indent=2))
    else:
        groups = "; ".join(f"{cur}: {', '.join(codes)}" for cur, codes in report.groups.items())
        console.print(
            f"compared {report.skus_compared} SKUs across {groups or 'no shared currency'}: "
            f"[red]{problems} unintended[/red], {len(report.findings) - problems} intended"
        )
        if findings:
            table = Table(title="Differences between channels")
            for column in ("Status", "SKU", "Currency", "Aspect", "Per channel"):
                table.add_column(column, overflow="fold")
            for f in findings:
                per_channel = "\n".join(
                    f"{o.channel_code}: "
                    + (
                        f"{o.amount} ({o.price_book}{', intended' if o.intended else ''})"
                        if f.aspect == "price"
                        else ", ".join(o.promotion_ids) or "none"
                    )
                    for o in f.offers
                )
                status = "[red]unintended[/red]" if f.status == "unintended" else "intended"
                table.add_row(status, f.sku or "(cart)", f.currency, f.aspect, per_channel)
            console.print(table)
    if fail_on_problems and problems:
        raise typer.Exit(1)
