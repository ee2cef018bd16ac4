"""`omni catalog ...` through typer's CliRunner against the test database."""

import pytest
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

from omniretail.catalog import cli as catalog_cli
from omniretail.catalog.models import Channel, Product, Variant
from omniretail.cli import app
from tests.catalog.factories import count, create_category, create_channel, create_product
from tests.catalog.test_import import MIXED, csv_bytes, jsonl_bytes

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """A wide console so table cells are not folded."""
    monkeypatch.setattr(catalog_cli, "console", Console(width=200))


@pytest.fixture()
def csv_file(tmp_path, session):
    create_category(session, "tees")
    create_category(session, "kitchen")
    path = tmp_path / "products.csv"
    path.write_bytes(csv_bytes(MIXED))
    return path


def test_import_command_imports_good_products_and_lists_bad_rows(csv_file, session, db):
    # when
    result = runner.invoke(app, ["catalog", "import", str(csv_file)])
    # then exit status 1 tells a script that some rows were rejected
    assert result.exit_code == 1, result.output
    assert "imported 2 (created 2, updated 0, unchanged 0), failed 3" in result.output
    assert "invalid_barcode" in result.output
    assert "barcode '123' is not a valid GTIN" in result.output
    assert {"TEE-M", "TEE-L", "BAG-1"} <= set(session.scalars(select(Variant.sku)))
    assert session.scalar(select(Product.id).where(Product.handle == "mug")) is None


def test_import_command_twice_creates_no_duplicates(csv_file, session, db):
    runner.invoke(app, ["catalog", "import", str(csv_file)])
    products = count(session, Product)
    result = runner.invoke(app, ["catalog", "import", str(csv_file)])
    assert "imported 2 (created 0, updated 0, unchanged 2), failed 3" in result.output
    assert count(session, Product) == products


def test_import_command_dry_run_writes_nothing(csv_file, session, db):
    before = count(session, Product)
    result = runner.invoke(app, ["catalog", "import", str(csv_file), "--dry-run"])
    assert "dry run: nothing written" in result.output
    assert count(session, Product) == before


def test_import_command_reads_jsonl_and_exits_0_when_all_rows_import(tmp_path, session, db):
    path = tmp_path / "products.jsonl"
    path.write_bytes(jsonl_bytes({"title": "Tee", "variants": [{"sku": "CLI-1"}]}))
    result = runner.invoke(app, ["catalog", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "jsonl: 1 rows, 1 products" in result.output
    assert session.scalar(select(Variant.sku).where(Variant.sku == "CLI-1")) == "CLI-1"


def test_import_command_with_unreadable_file_exits_2(tmp_path, db):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"handle,title\n")
    result = runner.invoke(app, ["catalog", "import", str(path)])
    assert result.exit_code == 2


def test_create_channel_command_and_channels_listing(session, db):
    before = count(session, Channel)
    created = runner.invoke(
        app,
        [
            "catalog",
            "create-channel",
            "--code",
            "web-uk",
            "--name",
            "UK web",
            "--type",
            "web",
            "--currency",
            "GBP",
            "--country",
            "GB",
            "--locale",
            "en-GB",
        ],
    )
    assert created.exit_code == 0, created.output
    assert count(session, Channel) == before + 1
    listed = runner.invoke(app, ["catalog", "channels"])
    assert "web-uk" in listed.output and "UK web" in listed.output


def test_create_channel_command_with_bad_currency_fails(session, db):
    before = count(session, Channel)
    result = runner.invoke(
        app,
        [
            *("catalog", "create-channel", "--code", "x", "--name", "X", "--type", "web"),
            *("--currency", "POUND", "--country", "GB"),
        ],
    )
    assert result.exit_code == 2
    assert count(session, Channel) == before


def test_products_command_lists_matching_products(session, db):
    create_product(session, "LIST-1", title="Listed tee")
    create_product(session, "LIST-2", title="Other mug")
    result = runner.invoke(app, ["catalog", "products", "--q", "tee"])
    assert result.exit_code == 0, result.output
    assert "LIST-1" in result.output and "LIST-2" not in result.output


def test_publish_command(session, db):
    channel = create_channel(session, "web-uk")
    product = create_product(session, "PUB-1")
    result = runner.invoke(app, ["catalog", "publish", channel.code, product.id])
    assert result.exit_code == 0, result.output
    assert "published 1 new product(s) on web-uk" in result.output


@pytest.mark.parametrize(
    "command",
    ["import", "products", "channels", "create-channel", "create-category", "publish"],
)
def test_every_command_has_help(command):
    result = runner.invoke(app, ["catalog", command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output
