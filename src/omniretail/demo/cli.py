"""`omni demo` commands."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from omniretail.core.db import get_database
from omniretail.core.errors import AppError
from omniretail.demo.load import load_demo

app = typer.Typer(help="The demo retailer.", no_args_is_help=True)
console = Console()


@app.command("load")
def load(
    products: Annotated[int, typer.Option(min=1, max=5000, help="Products (3 sizes each)")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same shop")] = 7,
) -> None:
    """Load the demo retailer into the configured database and print how to sign in."""
    total = 4 + products // 50 + 2 + 16
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("loading demo", total=total)

        def step(label: str, _n: int) -> None:
            bar.update(task, advance=1, description=f"loading {label}")

        try:
            with get_database().unit_of_work() as session:
                result = load_demo(session, products=products, seed=seed, progress=step)
        except AppError as error:
            console.print(f"[red]error[/red] {error.code}: {error.message}")
            raise typer.Exit(1) from None
        bar.update(task, completed=total, description="demo loaded")
    table = Table(title="demo retailer", show_header=False)
    for key, value in result.counts.items():
        table.add_row(key, str(value))
    console.print(table)
    console.print(
        f"admin:      [bold]{result.admin_email}[/bold]  password: "
        f"[bold]{result.admin_password}[/bold]"
    )
    console.print(f"associate:  {result.associate_email}  password: {result.associate_password}")
    console.print(f"web channel publishable key: {result.web_key}")
    console.print("console: http://127.0.0.1:8000/console   API docs: http://127.0.0.1:8000/docs")
