"""`omni fulfillment` commands: store queues, pick lists, timers and SLA settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from omniretail.core.cli import fail
from omniretail.core.db import get_database
from omniretail.core.errors import AppError
from omniretail.fulfillment import tasks
from omniretail.inventory import service as inventory

app = typer.Typer(
    help="Store and warehouse fulfilment: task queues, pick lists, SLA timers.",
    no_args_is_help=True,
)
console = Console()
T = TypeVar("T")


def _run(fn: Callable[[Session], T], write: bool = True) -> T:
    try:
        with get_database().unit_of_work(write=write) as session:
            return fn(session)
    except AppError as e:
        fail(e)


@app.command("tasks")
def list_tasks(
    location: Annotated[str | None, typer.Option(help="Location code or id")] = None,
    state: Annotated[str | None, typer.Option(help="assigned, picking, ..., cancelled")] = None,
    all_states: Annotated[
        bool, typer.Option("--all", help="Include handed-over and cancelled tasks")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """A location's task queue, most urgent first."""

    def run(session: Session) -> list[tasks.TaskView]:
        loc = inventory.get_location(session, location).id if location else None
        return tasks.list_tasks(
            session, location_id=loc, state=state, open_only=not all_states, limit=limit
        )

    views = _run(run, write=False)
    table = Table("task", "order", "kind", "method", "state", "due", "units", "assignee")
    for v in views:
        due = v.due_at.strftime("%Y-%m-%d %H:%M") + (" LATE" if v.overdue else "")
        units = sum(x.quantity for x in v.lines)
        table.add_row(v.id, v.order_id, v.kind, v.method, v.state, due, str(units), v.assignee)
    console.print(table)


@app.command("pick-list")
def pick_list(location: Annotated[str, typer.Argument(help="Location code or id")]) -> None:
    """What to fetch from the shelves: the units of open tasks, one line per SKU."""

    def run(session: Session) -> tasks.PickList:
        return tasks.pick_list(session, inventory.get_location(session, location).id)

    result = _run(run, write=False)
    table = Table(
        "sku", "title", "units", "orders", title=f"{result.units} units, {result.tasks} tasks"
    )
    for line in result.lines:
        table.add_row(
            line.sku, line.title, str(line.quantity), ", ".join(t["order_id"] for t in line.tasks)
        )
    console.print(table)


@app.command("timers")
def timers() -> None:
    """Send late-pick alerts and pickup reminders; cancel orders not collected in time
    (the worker does this every 5 minutes)."""
    report = _run(lambda s: tasks.check_timers(s))
    console.print(
        f"overdue {len(report.overdue)}, reminded {len(report.reminded)}, "
        f"expired {len(report.expired)}"
    )


@app.command("sla")
def sla(
    pickup_hold_hours: Annotated[
        int | None, typer.Option(help="How long a ready pickup waits for the customer")
    ] = None,
    reminder_hours: Annotated[
        int | None, typer.Option(help="Remind the customer this long before the hold ends")
    ] = None,
    pick: Annotated[
        list[str] | None,
        typer.Option(help="METHOD=MINUTES pick deadline, e.g. bopis=90 (repeatable)"),
    ] = None,
) -> None:
    """Show the SLA settings, or change them with the options."""
    changes: dict[str, object] = {}
    if pickup_hold_hours is not None:
        changes["pickup_hold_hours"] = pickup_hold_hours
    if reminder_hours is not None:
        changes["reminder_hours"] = reminder_hours
    if pick:
        minutes: dict[str, int] = {}
        for value in pick:
            method, sep, number = value.partition("=")
            if not sep or not number.strip().lstrip("-").isdigit():
                raise typer.BadParameter(f"expected METHOD=MINUTES, got {value!r}")
            minutes[method] = int(number)
        changes["pick_minutes"] = minutes
    result = _run(lambda s: tasks.set_sla(s, changes) if changes else tasks.get_sla(s))
    console.print_json(data=result)
