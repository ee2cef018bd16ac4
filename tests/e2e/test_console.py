"""The console in a real browser (Debian's chromium driven by Playwright) against a live server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from omniretail.catalog import service as catalog
from omniretail.core import auth
from omniretail.inventory import service as inventory
from tests.support.live_server import LiveServer, temp_sqlite_database

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")

PASSWORD = "console-pass-123"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    database = temp_sqlite_database()
    with database.unit_of_work() as s:
        store = inventory.create_location(
            s,
            code="st-leeds",
            name="Leeds Briggate",
            type="store",
            timezone="Europe/London",
            latitude=53.7973,
            longitude=-1.5418,
            capabilities=["pickup", "ship"],
        )
        other = inventory.create_location(
            s,
            code="st-york",
            name="York Coney Street",
            type="store",
            timezone="Europe/London",
            latitude=53.9590,
            longitude=-1.0815,
            capabilities=["pickup", "ship"],
        )
        auth.create_user(s, "admin@example.com", PASSWORD, "admin")
        auth.create_user(s, "ana@example.com", PASSWORD, "store_associate", [store.id])
        catalog.create_product(
            s,
            title="Blue enamel mug",
            description="A sturdy camping mug.",
            variants=[{"sku": "MUG-BLUE", "barcode": "4006381333931"}],
        )
        catalog.create_product(s, title="Red lantern", variants=[{"sku": "LANTERN-RED"}])
        inventory.record_movement(
            s, location_id=store.id, reason="receipt", lines=[("MUG-BLUE", 7)]
        )
        inventory.record_movement(
            s, location_id=other.id, reason="receipt", lines=[("MUG-BLUE", 3)]
        )
    live = LiveServer(database).start()
    yield live
    live.stop()


@pytest.fixture()
def page(server: LiveServer):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        pg = browser.new_page()
        pg.set_default_timeout(10_000)
        yield pg
        browser.close()


def sign_in(page, server: LiveServer, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server.url}/console")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button")
    page.wait_for_selector("#nav:not([hidden])")


def test_wrong_password_shows_error_and_stays_on_sign_in(page, server):
    page.goto(f"{server.url}/console")
    page.fill("input[name=email]", "admin@example.com")
    page.fill("input[name=password]", "not the password")
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_have_text("email or password is wrong")
    assert page.locator("#nav").is_hidden()


def test_admin_searches_products_and_sees_stock_by_location(page, server):
    sign_in(page, server, "admin@example.com")
    page.fill("#product-search input[name=q]", "mug")
    page.click("#product-search button")
    expect(page.locator("#product-table tbody tr")).to_have_count(1)
    expect(page.locator("#product-table tbody tr td").first).to_have_text("Blue enamel mug")
    page.click("#product-table tbody tr")
    detail = page.locator("#product-detail table tbody tr").first
    expect(detail.locator("td").nth(1)).to_have_text("10")


def test_associate_scans_barcode_and_sees_nearby_store(page, server):
    sign_in(page, server, "ana@example.com")
    page.goto(f"{server.url}/console#store")
    page.fill("#store-form input[name=code]", "4006381333931")
    page.click("#store-form button")
    expect(page.locator("#here-qty strong")).to_have_text("7")
    nearby = page.locator("#store-result tbody tr td")
    expect(nearby.nth(0)).to_have_text("York Coney Street")
    expect(nearby.nth(2)).to_have_text("3")
