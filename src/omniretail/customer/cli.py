"""`omni customers` and `omni gdpr` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from cryptography.fernet import Fernet
from fastapi.encoders import jsonable_encoder
from rich.console import Console
from sqlalchemy import select

from omniretail.core.cli import fail
from omniretail.core.db import get_database
from omniretail.core.errors import AppError
from omniretail.customer import service, tracking
from omniretail.customer.keys import rotate_master_keys
from omniretail.customer.models import Source, TrackingReject

app = typer.Typer(help="Customer profiles, identity and consent.", no_args_is_help=True)
gdpr_app = typer.Typer(help="GDPR export and erasure.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(error: AppError) -> NoReturn:
    fail(error, 1)


@app.command("create-source")
def create_source(
    name: Annotated[str, typer.Option(help="What the source is, e.g. 'Web storefront'")],
    kind: Annotated[str, typer.Option(help="web, app, pos or server")] = "web",
) -> None:
    """Create a tracking source and print its write key (shown once)."""
    try:
        with get_database().unit_of_work() as session:
            key, source = tracking.create_source(session, name, kind)
    except AppError as e:
        _fail(e)
    console.print(f"{source.id} {source.kind} [bold]{key}[/bold]  (write key, shown once)")


@app.command("sources")
def list_sources() -> None:
    """List tracking sources."""
    with get_database().unit_of_work(write=False) as session:
        for s in session.scalars(select(Source).order_by(Source.id)):
            state = "active" if s.active else "inactive"
            console.print(f"{s.id} {s.kind:7} {s.key_prefix}… {state}  {s.name}")


@app.command("rejects")
def list_rejects(
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 50,
) -> None:
    """Events refused inside accepted tracking batches."""
    with get_database().unit_of_work(write=False) as session:
        rows = session.scalars(
            select(TrackingReject).order_by(TrackingReject.id.desc()).limit(limit)
        )
        for r in rows:
            console.print(
                f"{r.received_at:%Y-%m-%d %H:%M:%S} {r.source_id} #{r.position} "
                f"{r.code}: {r.message} (messageId={r.message_id})"
            )


@app.command("show")
def show(
    customer: Annotated[str, typer.Argument(help="Customer id or email")],
) -> None:
    """Print the customer 360 as JSON (with personal data: operators only)."""
    try:
        with get_database().unit_of_work(write=False) as session:
            cid = service.resolve_customer_ref(session, customer)
            view = service.customer_view(session, cid, pii=True)
    except AppError as e:
        _fail(e)
    console.print_json(json.dumps(jsonable_encoder(view)))


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-wrap every person's data key with the first key of OMNI_PII_KEYS."""
    with get_database().unit_of_work() as session:
        count = rotate_master_keys(session)
    console.print(f"re-wrapped {count} data keys with the newest master key")


@app.command("generate-key")
def generate_key() -> None:
    """Print a new random key for OMNI_PII_KEYS or OMNI_PII_INDEX_KEY."""
    console.print(Fernet.generate_key().decode())


@gdpr_app.command("export")
def export(
    customer: Annotated[str, typer.Argument(help="Customer id or email")],
    output: Annotated[Path | None, typer.Option(help="Write to this file, not stdout")] = None,
) -> None:
    """Everything stored about a person as one JSON bundle."""
    try:
        with get_database().unit_of_work(write=False) as session:
            cid = service.resolve_customer_ref(session, customer)
            bundle = service.export_customer(session, cid)
    except AppError as e:
        _fail(e)
    text = json.dumps(jsonable_encoder(bundle), indent=2, ensure_ascii=False)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text)
        err.print(f"wrote {output}")


@gdpr_app.command("erase")
def erase(
    customer: Annotated[str, typer.Argument(help="Customer id or email")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit record)")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase a person: crypto-shred personal data, keep financial records, write an audit."""
    if not yes:
        typer.confirm(f"Erase {customer}? This cannot be undone", abort=True)
    db = get_database()
    try:
        with db.unit_of_work() as session:
            cid = service.resolve_customer_ref(session, customer)
            erasure = service.erase_customer(session, cid, "cli", reason)
    except AppError as e:
        _fail(e)
    service.scrub_storage(db)
    console.print(f"erased {erasure.customer_id} ({erasure.id}): {erasure.counts}")
