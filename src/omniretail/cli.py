"""The ``omni`` command line: one Typer app mounting each context's commands."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from omniretail.analytics.cli import app as analytics_app
from omniretail.analytics.cli import forecast_app, import_app
from omniretail.catalog.cli import app as catalog_app
from omniretail.core import auth
from omniretail.core.cli import fail
from omniretail.core.config import get_settings
from omniretail.core.db import get_database
from omniretail.core.errors import AppError
from omniretail.customer.cli import app as customer_app
from omniretail.customer.cli import gdpr_app
from omniretail.demo.cli import app as demo_app
from omniretail.fulfillment.cli import app as fulfillment_app
from omniretail.fulfillment.tasks_cli import app as tasks_app
from omniretail.inventory.cli import app as inventory_app
from omniretail.order.cli import app as order_app
from omniretail.order.cli import pos_app
from omniretail.pricing.cli import app as pricing_app

console = Console()

app = typer.Typer(
    help="omniretail: one headless retail platform behind every channel.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
users_app = typer.Typer(help="Console users and API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(catalog_app, name="catalog")
app.add_typer(pricing_app, name="pricing")
app.add_typer(inventory_app, name="inventory")
app.add_typer(customer_app, name="customers")
app.add_typer(gdpr_app, name="gdpr")
app.add_typer(demo_app, name="demo")
app.add_typer(order_app, name="orders")
app.add_typer(pos_app, name="pos")
app.add_typer(fulfillment_app, name="sourcing")
app.add_typer(tasks_app, name="fulfillment")
app.add_typer(analytics_app, name="analytics")
app.add_typer(forecast_app, name="forecast")
app.add_typer(import_app, name="import")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from omniretail.core.migrate import upgrade

    db = get_database()
    upgrade(db.engine, revision)
    console.print(f"[green]database at {revision}[/green] ({db.engine.url.render_as_string()})")


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Option("--message", "-m", help="Summary")]) -> None:
    """Autogenerate a migration from the models (for developers)."""
    from omniretail.core.migrate import revision

    revision(get_database().engine, message)


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="Sign-in email")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="10+ chars")
    ],
) -> None:
    """Create an admin console user."""
    try:
        with get_database().unit_of_work() as session:
            user = auth.create_user(session, email, password, "admin")
    except AppError as e:
        fail(e)
    console.print(f"created admin [bold]{user.email}[/bold] ({user.id})")


@users_app.command("create")
def create_user(
    email: Annotated[str, typer.Option(help="Sign-in email")],
    role: Annotated[str, typer.Option(help="admin, merchandiser, store_associate, ...")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="10+ chars")
    ],
    location: Annotated[
        list[str] | None, typer.Option(help="Location id (store associates); repeatable")
    ] = None,
) -> None:
    """Create a console user with a role."""
    try:
        with get_database().unit_of_work() as session:
            user = auth.create_user(session, email, password, role, location or [])
    except AppError as e:
        fail(e)
    console.print(f"created {user.role} [bold]{user.email}[/bold] ({user.id})")


@users_app.command("create-key")
def create_key(
    name: Annotated[str, typer.Option(help="What the key is for")],
    role: Annotated[str, typer.Option(help="Role, or 'channel' for a publishable key")],
    channel: Annotated[str | None, typer.Option(help="Channel id (publishable keys)")] = None,
) -> None:
    """Create an API key; the key is printed once."""
    try:
        with get_database().unit_of_work() as session:
            plaintext, row = auth.create_api_key(session, name, role, channel)
    except AppError as e:
        fail(e)
    console.print(f"{row.id} [bold]{plaintext}[/bold]  (shown once)")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    with_worker: Annotated[
        bool, typer.Option("--with-worker/--no-worker", help="Also run `omni worker` beside it")
    ] = False,
) -> None:
    """Serve the API and console (optionally with the background worker beside it)."""
    import subprocess
    import sys

    import uvicorn

    worker_proc = None
    if with_worker:
        worker_proc = subprocess.Popen([sys.executable, "-m", "omniretail.cli", "worker"])
        # a worker runs: requests that commit events ask it to dispatch them at once
        os.environ["OMNI_DISPATCH_ON_COMMIT"] = "true"
        get_settings.cache_clear()
    try:
        uvicorn.run("omniretail.asgi:app", host=host, port=port, workers=workers, log_level="info")
    finally:
        if worker_proc is not None:
            worker_proc.terminate()
            worker_proc.wait(timeout=10)


@app.command()
def worker() -> None:
    """Run background jobs: outbox dispatch and periodic maintenance."""
    from omniretail.jobs import run_worker

    run_worker()


if __name__ == "__main__":
    app()
