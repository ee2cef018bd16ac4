"""The store associate's picking view in a real browser (Debian's chromium) against a live
server: a click & collect order placed over HTTP shows up in the store's pick list, and the
associate takes it through pick, pack, ready and hand-over."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

os.environ.setdefault("OMNI_PII_KEYS", "JhM0nDTN7n6vJ4Yt1r0t3cBm3zj0G3yW1m4Ck4v6b5E=")
os.environ.setdefault("OMNI_PII_INDEX_KEY", "test-blind-index-key-0123456789")
os.environ.setdefault("OMNI_PII_KEY_FILE", str(Path(tempfile.gettempdir()) / "omni-test-pii.keys"))

from omniretail.core import auth
from omniretail.core.events import dispatch_pending
from omniretail.order.service import get_order
from tests.e2e.test_console import CHROMIUM, PASSWORD, sign_in
from tests.order.helpers import Shop, build_shop
from tests.support.live_server import LiveServer, temp_sqlite_database

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[LiveServer, Shop, str]]:
    database = temp_sqlite_database()
    with database.unit_of_work() as s:

        def make_key(role, channel_id=None, location_ids=None):  # type: ignore[no-untyped-def]
            plaintext, _ = auth.create_api_key(s, f"e2e {role}", role, channel_id, location_ids)
            return {"Authorization": f"Bearer {plaintext}"}

        shop = build_shop(s, make_key)
        auth.create_user(s, "sam@example.com", PASSWORD, "store_associate", [shop.store])
    live = LiveServer(database).start()
    with httpx.Client(base_url=live.url, timeout=30) as http:
        cart = http.post(
            "/api/v1/carts",
            json={"lines": [{"sku": "MUG", "quantity": 2}]},
            headers=shop.web_key,
        ).json()
        headers = {**shop.web_key, "X-Cart-Token": cart["cart_token"]}
        details = {
            "email": "ada@example.com",
            "delivery": [{"method": "bopis", "location_id": shop.store}],
        }
        assert http.put(f"/api/v1/carts/{cart['id']}/checkout", json=details, headers=headers)
        placed = http.post(
            f"/api/v1/carts/{cart['id']}/complete",
            json={"tenders": [{"type": "card", "token": "tok_visa"}]},
            headers=headers,
        )
        assert placed.status_code == 201, placed.text
    with database.unit_of_work() as s:
        dispatch_pending(s)  # what the worker does every minute: the order becomes a task
    yield live, shop, placed.json()["id"]
    live.stop()


@pytest.fixture()
def page(world):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        pg = browser.new_page()
        pg.set_default_timeout(10_000)
        yield pg
        browser.close()


def test_associate_picks_and_hands_over_a_click_and_collect_order(page, world):
    live, shop, order_id = world
    # Given the associate of Soho signed in, on the picking view
    sign_in(page, live, "sam@example.com")
    page.goto(f"{live.url}/console#picking")
    page.select_option("#picking-form select", shop.store)
    page.click("#picking-form button")

    # Then the pick list shows the order's two mugs
    row = page.locator("#pick-list tbody tr").first
    expect(row.locator("td").nth(0)).to_have_text("MUG")
    expect(row.locator("td").nth(2)).to_have_text("2")
    task = page.locator("#task-table tbody tr").first
    expect(task.locator("td.state")).to_have_text("assigned")

    # When they start, confirm the pick, pack and put it on the counter
    for step, state in (
        ("Start picking", "picking"),
        ("Confirm pick", "picked"),
        ("Packed", "packed"),
        ("Ready for pickup", "ready"),
    ):
        task.locator("button", has_text=step).click()
        expect(task.locator("td.state")).to_have_text(state)

    # Then the order is ready for pickup, and after the hand-over it is picked up
    with live.database.unit_of_work(write=False) as s:
        assert get_order(s, order_id).status == "ready_for_pickup"
    task.locator("button", has_text="Handed over").click()
    expect(page.locator("#task-table tbody tr td").first).to_have_text("No open tasks.")
    with live.database.unit_of_work(write=False) as s:
        assert get_order(s, order_id).status == "picked_up"
