"""Entry points: every `omni` command has help, and the worker delivers outbox events to
every context's subscribers."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from omniretail.cli import app
from omniretail.core import events
from omniretail.core.db import set_database
from omniretail.core.models import OutboxEvent
from omniretail.customer.subscribers import on_commerce_event
from tests.support.live_server import temp_sqlite_database


def _command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        paths.append(path)
        if hasattr(command, "commands"):  # a group of subcommands
            paths.extend(_command_paths(command, path))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def test_the_cli_has_the_commands_the_docs_name():
    names = {" ".join(p) for p in COMMANDS}
    for documented in (
        "db upgrade",
        "users create-admin",
        "catalog import",
        "pricing audit",
        "inventory verify",
        "demo load",
        "serve",
        "worker",
        "pos simulate",
        "sourcing plan",
        "import online-retail",
        "forecast run",
        "gdpr export",
    ):
        assert documented in names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help(path):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_serve_can_start_the_worker_beside_the_api():
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert "--with-worker" in result.output


def test_worker_dispatch_reaches_subscribers_registered_by_the_worker():
    from omniretail import jobs

    events.unsubscribe("order.placed", on_commerce_event)
    database = temp_sqlite_database()
    set_database(database)
    try:
        with database.unit_of_work() as s:
            event_id = events.emit(s, "order.placed", {"id": "ord-x", "lines": []}).id
        delivered = jobs.run_dispatch()
        assert delivered == 1
        assert on_commerce_event in events._subscribers["order.placed"]
        with database.unit_of_work(write=False) as s:
            stored = s.scalar(select(OutboxEvent).where(OutboxEvent.id == event_id))
            assert stored is not None and stored.published_at is not None
    finally:
        set_database(None)
        events.subscribe("order.placed")(on_commerce_event)


def test_with_dispatch_on_commit_an_event_reaches_its_subscriber_without_a_tick():
    # Given the API's dispatch-on-commit hook and huey running tasks at once (its own
    # immediate mode: the task runs where a worker would run it)
    from omniretail import jobs

    seen: list[str] = []

    def handler(_session, event):
        seen.append(event.payload["n"])

    events.subscribe("test.dispatched_on_commit")(handler)
    database = temp_sqlite_database()
    set_database(database)
    jobs.huey.immediate = True
    jobs.enable_dispatch_on_commit()
    try:
        # When a unit of work emits an event and commits
        with database.unit_of_work() as s:
            events.emit(s, "test.dispatched_on_commit", {"n": 7})
        # Then the subscriber has it, and the outbox row is marked published
        assert seen == [7]
        with database.unit_of_work(write=False) as s:
            row = s.scalar(
                select(OutboxEvent).where(OutboxEvent.topic == "test.dispatched_on_commit")
            )
            assert row is not None and row.published_at is not None
    finally:
        events.clear_after_commit_callbacks()
        jobs.huey.immediate = False
        events.unsubscribe("test.dispatched_on_commit", handler)
        set_database(None)
