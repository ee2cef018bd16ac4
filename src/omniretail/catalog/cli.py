"""`omni catalog` commands: bulk import, product and channel listings, channel and category
creation. Each command is one transaction over the same services as the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from omniretail.catalog import importer, service
from omniretail.catalog.schemas import ImportReport
from omniretail.core.cli import err, fail
from omniretail.core.db import get_database
from omniretail.core.errors import AppError

app = typer.Typer(
    help="Catalog: products, categories, sales channels and bulk import.", no_args_is_help=True
)
console = Console()


def _fail(error: AppError, code: int = 2) -> NoReturn:
    fail(error, code)


def _print_report(report: ImportReport) -> None:
    mode = " (dry run: nothing written)" if report.dry_run else ""
    console.print(
        f"{report.format}: {report.rows} rows, {report.products} products{mode}\n"
        f"imported {report.imported} (created {report.created}, updated {report.updated}, "
        f"unchanged {report.unchanged}), failed {report.failed}"
    )
    if not report.errors:
        return
    table = Table(title="Rows not imported", show_lines=False)
    for column in ("Row", "Line", "Handle", "SKU", "Code", "Message"):
        table.add_column(column, overflow="fold")
    for e in report.errors:
        table.add_row(
            str(e.row),
            "" if e.line is None else str(e.line),
            e.handle or "",
            e.sku or "",
            e.code,
            e.message,
        )
    console.print(table)


@app.command("import")
def import_file(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV (one row per variant) or JSONL (one product per line) file",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    format: Annotated[
        str | None,
        typer.Option("--format", help="csv or jsonl; guessed from the file extension when omitted"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and report, but write nothing")
    ] = False,
) -> None:
    """Import products from FILE; matching SKUs are updated, new ones created.

    Each product is imported all-or-nothing: a bad row is listed with its row and line
    number and nothing of its product is written, while the other products import. Running
    the same file again creates no duplicates. Exit status: 0 when every row imported, 1 when
    some rows were rejected, 2 when the file could not be read."""
    data = file.read_bytes()
    try:
        fmt = importer.detect_format(format, file.name, None, data)
        with (
            get_database().unit_of_work() as session,
            Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as bar,
        ):
            task = bar.add_task(f"importing {file.name}", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = importer.import_products(session, data, fmt, dry_run=dry_run, progress=advance)
    except AppError as e:
        _fail(e)
    _print_report(report)
    if report.failed:
        raise typer.Exit(1)


@app.command("products")
def list_products(
    q: Annotated[str | None, typer.Option("--q", help="Words to search for")] = None,
    category: Annotated[
        str | None, typer.Option(help="Category code (sub-categories included)")
    ] = None,
    status: Annotated[str | None, typer.Option(help="draft, active or archived")] = None,
    channel: Annotated[
        str | None, typer.Option(help="Only products visible on this channel (id or code)")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many products to show")] = 50,
) -> None:
    """List products (oldest first) with their SKUs."""
    try:
        with get_database().unit_of_work(write=False) as session:
            products, next_cursor = service.search_products(
                session, q=q, category=category, status=status, channel=channel, limit=limit
            )
            table = Table(title="Products")
            for column in ("ID", "Handle", "Title", "Status", "Version", "SKUs"):
                table.add_column(column, overflow="fold")
            for p in products:
                table.add_row(
                    p.id,
                    p.handle,
                    p.title,
                    p.status,
                    str(p.version),
                    ", ".join(v.sku for v in p.variants),
                )
    except AppError as e:
        _fail(e)
    console.print(table)
    if next_cursor:
        console.print(f"(more than {limit}; narrow the search or raise --limit)")


@app.command("channels")
def list_channels() -> None:
    """List sales channels."""
    with get_database().unit_of_work(write=False) as session:
        channels = service.list_channels(session)
    table = Table(title="Channels")
    for column in ("ID", "Code", "Name", "Type", "Currency", "Country", "Locale", "Active", "All"):
        table.add_column(column)
    for ch in channels:
        table.add_row(
            ch.id,
            ch.code,
            ch.name,
            ch.type,
            ch.currency,
            ch.country,
            ch.locale,
            "yes" if ch.active else "no",
            "yes" if ch.publish_all else "no",
        )
    console.print(table)


@app.command("create-channel")
def create_channel(
    code: Annotated[str, typer.Option(help="Stable lower-case code, e.g. web-uk")],
    name: Annotated[str, typer.Option(help="Display name")],
    type: Annotated[str, typer.Option("--type", help="web, app, store, social or marketplace")],
    currency: Annotated[str, typer.Option(help="ISO 4217 currency, e.g. GBP")],
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2 country, e.g. GB")],
    locale: Annotated[str, typer.Option(help="Locale, e.g. en-GB")] = "en",
    publish_all: Annotated[
        bool,
        typer.Option("--publish-all", help="Every product is visible without publishing it"),
    ] = False,
) -> None:
    """Create a sales channel."""
    try:
        with get_database().unit_of_work() as session:
            ch = service.create_channel(
                session,
                code=code,
                name=name,
                type=type,
                currency=currency,
                country=country,
                locale=locale,
                publish_all=publish_all,
            )
            channel_id = ch.id
    except AppError as e:
        _fail(e)
    console.print(f"created channel [bold]{code}[/bold] ({channel_id})")


@app.command("create-category")
def create_category(
    code: Annotated[str, typer.Option(help="Stable lower-case code, e.g. mens-shirts")],
    name: Annotated[str, typer.Option(help="Display name")],
    parent: Annotated[str | None, typer.Option(help="Code of the parent category")] = None,
) -> None:
    """Create a category, optionally below a parent."""
    try:
        with get_database().unit_of_work() as session:
            cat = service.create_category(session, code, name, parent)
            category_id = cat.id
    except AppError as e:
        _fail(e)
    console.print(f"created category [bold]{code}[/bold] ({category_id})")


@app.command("publish")
def publish(
    channel: Annotated[str, typer.Argument(help="Channel id or code")],
    product_ids: Annotated[list[str], typer.Argument(help="Product ids to publish")],
) -> None:
    """Publish products on a channel."""
    try:
        with get_database().unit_of_work() as session:
            count = service.publish_products(session, channel, product_ids)
    except AppError as e:
        _fail(e)
    console.print(f"published {count} new product(s) on {channel}")
