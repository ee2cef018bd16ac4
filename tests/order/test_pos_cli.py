"""The reference offline register (`omni pos simulate --offline`, `omni pos sync`) against a
real server: sales queue up while the server is unreachable, sync when it is back, and a
replayed batch is booked once."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from omniretail.cli import app as cli
from omniretail.core import auth
from omniretail.order import pos
from omniretail.order.models import Order, PosSale
from tests.order.helpers import build_shop
from tests.support.live_server import LiveServer, free_port, temp_sqlite_database

runner = CliRunner()


@pytest.fixture()
def live() -> Iterator[tuple[LiveServer, str, str]]:
    database = temp_sqlite_database()
    with database.unit_of_work() as s:

        def make_key(role, channel_id=None, location_ids=None):  # type: ignore[no-untyped-def]
            plaintext, _ = auth.create_api_key(s, f"live {role}", role, channel_id, location_ids)
            return {"Authorization": f"Bearer {plaintext}"}

        shop = build_shop(s, make_key)
        register = pos.create_register(
            s, code="soho-1", location_id=shop.store, channel="shop-floor"
        ).id
        key = shop.associate["Authorization"].removeprefix("Bearer ")
    server = LiveServer(database).start()
    try:
        yield server, register, key
    finally:
        server.stop()


def _count(server: LiveServer, model: type) -> int:
    with server.database.unit_of_work(write=False) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _run(*args: str):  # type: ignore[no-untyped-def]
    result = runner.invoke(cli, ["pos", *args])
    return result


def test_offline_sales_queue_up_and_a_batch_synced_three_times_is_booked_once(live, tmp_path):
    server, register, key = live
    queue = tmp_path / "queue.json"

    # Given a register that rings up 6 sales while offline
    rung = _run(
        "simulate",
        "--offline",
        "--no-sync",
        "--register",
        register,
        "--sales",
        "6",
        "--item",
        "TEE-M:2000",
        "--item",
        "MUG:1200",
        "--queue",
        str(queue),
    )
    assert rung.exit_code == 0, rung.output
    assert json.loads(rung.output)["queued"] == 6
    assert _count(server, PosSale) == 0

    # When the batch is synced three times (the last two resend everything)
    outputs = [
        _run("sync", "--queue", str(queue), "--server", server.url, "--api-key", key, *extra)
        for extra in ([], ["--all"], ["--all"])
    ]

    # Then the server booked the 6 sales exactly once
    assert [o.exit_code for o in outputs] == [0, 0, 0], [o.output for o in outputs]
    reports = [json.loads(o.output) for o in outputs]
    assert [(r["sent"], r["created"], r["duplicates"]) for r in reports] == [
        (6, 6, 0),
        (6, 0, 6),
        (6, 0, 6),
    ]
    assert _count(server, PosSale) == 6
    with server.database.unit_of_work(write=False) as s:
        assert s.scalar(select(func.count()).where(Order.source == "pos")) == 6
    assert json.loads(queue.read_text())["next_sequence"] == 7


def test_an_unreachable_server_keeps_the_sales_queued(live, tmp_path):
    server, register, key = live
    queue = tmp_path / "queue.json"
    down = f"http://127.0.0.1:{free_port()}"
    result = _run(
        "simulate",
        "--offline",
        "--register",
        register,
        "--sales",
        "3",
        "--item",
        "MUG:1200",
        "--queue",
        str(queue),
        "--server",
        down,
        "--api-key",
        key,
    )
    assert result.exit_code == 3
    state = json.loads(queue.read_text())
    assert (len(state["sales"]), state["acknowledged"]) == (3, [])

    back = _run("sync", "--queue", str(queue), "--server", server.url, "--api-key", key)
    assert back.exit_code == 0, back.output
    assert json.loads(back.output)["created"] == 3
    assert _count(server, PosSale) == 3
