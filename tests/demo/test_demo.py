"""The demo retailer: a plausible omnichannel shop that the API serves."""

import pytest
from sqlalchemy import func, select

from omniretail.catalog.models import Channel, Variant
from omniretail.core.errors import AppError
from omniretail.demo.generator import generate_products, online_retail_csv_text
from omniretail.demo.load import ean13, load_demo
from omniretail.inventory.models import Location
from tests.conftest import auth_header


def test_ean13_check_digit_matches_gs1_example():
    assert ean13("400638133393") == "4006381333931"


def test_generator_is_deterministic_per_seed():
    assert generate_products(30, seed=3) == generate_products(30, seed=3)
    assert generate_products(30, seed=3) != generate_products(30, seed=4)


def test_generated_history_has_online_retail_columns_and_quirks():
    text = online_retail_csv_text(products=40, invoices=400, seed=5)
    header, *rows = [line.split(",") for line in text.strip().splitlines()]
    assert header == [
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ]
    assert any(r[0].startswith("C") and r[3].startswith("-") for r in rows)  # cancellations
    assert any(r[6] == "" for r in rows)  # guest orders


def test_demo_load_builds_every_channel_location_and_variant(session):
    result = load_demo(session, products=20, seed=7)
    types = dict(session.execute(select(Location.type, func.count()).group_by(Location.type)).all())
    assert types == {"warehouse": 3, "store": 12, "locker": 1}
    assert session.scalar(select(func.count()).select_from(Channel)) == 5
    assert session.scalar(select(func.count()).select_from(Variant)) == 60
    assert result.counts["promotions"] == 5


def test_demo_load_refuses_to_run_twice(session):
    load_demo(session, products=5)
    with pytest.raises(AppError) as exc:
        load_demo(session, products=5)
    assert exc.value.code == "demo_already_loaded"


def test_demo_admin_and_web_key_work_through_the_api(client, session):
    result = load_demo(session, products=10)
    session.commit()
    token = client.post(
        "/api/v1/auth/token",
        json={"email": result.admin_email, "password": result.admin_password},
    ).json()["access_token"]
    products = client.get("/api/v1/products?limit=5", headers=auth_header(token)).json()
    assert len(products["items"]) == 5
    storefront = client.get("/api/v1/products?limit=50", headers=auth_header(result.web_key))
    assert len(storefront.json()["items"]) == 10
