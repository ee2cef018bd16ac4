"""Import of Online Retail files: generated files, bad input, idempotent re-runs."""

import gzip
import json
from datetime import UTC, datetime

import pytest
from rich.console import Console
from sqlalchemy import func, select
from typer.testing import CliRunner

from omniretail.analytics import cli as analytics_cli
from omniretail.analytics import service
from omniretail.analytics.models import CustomerDim, OrderFact, ProductDim, SalesLine
from omniretail.catalog import service as catalog
from omniretail.cli import app
from omniretail.core.errors import AppError
from tests.analytics.factories import counts, csv_text, generated_rows, row

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(analytics_cli, "console", Console(width=200))


def test_generated_file_imports_every_row(session):
    # given a seeded file in the Online Retail format
    rows = generated_rows()
    # when
    report = service.import_online_retail(session, csv_text(rows))
    # then
    invoices = {r[0] for r in rows}
    assert (report.rows, report.imported_rows, report.rejected_rows) == (len(rows), len(rows), 0)
    assert counts(session)["lines"] == len(rows)
    assert counts(session)["orders"] == len(invoices)
    assert report.imported_returns == len({i for i in invoices if i.startswith("C")})
    assert counts(session)["customers"] == len({r[6] for r in rows if r[6]})


def test_gzip_files_are_read_too(session):
    rows = generated_rows(invoices=10)
    report = service.import_online_retail(session, gzip.compress(csv_text(rows)))
    assert report.imported_rows == len(rows)


def test_rerunning_the_same_file_imports_nothing_twice(session):
    # given
    data = csv_text(generated_rows())
    service.import_online_retail(session, data)
    before = counts(session)
    # when
    again = service.import_online_retail(session, data)
    # then
    assert (again.imported_rows, again.skipped_rows) == (0, again.rows)
    assert counts(session) == {**before, "runs": before["runs"] + 1}


def test_unknown_columns_reject_the_whole_file_before_writing(session):
    # given
    data = csv_text([[*row("700001", "20001A", "6", "2010-12-01 08:26:00", "2.55"), "x"]],
                    header=["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                            "UnitPrice", "CustomerID", "Country", "Discount"])  # fmt: skip
    # when
    with pytest.raises(AppError) as caught:
        service.import_online_retail(session, data)
    # then
    assert caught.value.code == "unknown_columns"
    assert caught.value.details["unknown"] == ["Discount"]
    assert "Nothing was imported" in caught.value.message
    assert set(counts(session).values()) == {0}


def test_missing_columns_reject_the_whole_file(session):
    data = b"InvoiceNo,StockCode,Quantity\n700001,TEST-1,6\n"
    with pytest.raises(AppError) as caught:
        service.import_online_retail(session, data)
    assert caught.value.code == "missing_columns"
    assert caught.value.details["missing"] == ["Description", "InvoiceDate", "UnitPrice",
                                               "CustomerID", "Country"]  # fmt: skip


def test_a_file_in_another_date_format_is_refused_with_the_expected_format(session):
    # given the dates of the original spreadsheet export
    data = csv_text([row("700001", "TEST-1", "6", "12/1/2010 8:26", "2.55")])
    # when
    with pytest.raises(AppError) as caught:
        service.import_online_retail(session, data)
    # then
    assert caught.value.code == "invalid_date_format"
    assert caught.value.details == {"expected": "YYYY-MM-DD HH:MM:SS", "example": "12/1/2010 8:26"}
    assert set(counts(session).values()) == {0}


def test_a_bad_date_rejects_its_invoice_and_nothing_of_it_is_written(session):
    # given invoice 536366 has one good row and one with a bad date
    data = csv_text(
        [
            row("700001", "20001A", "6", "2010-12-01 08:26:00", "2.55"),
            row("700002", "22633", "6", "2010-12-01 08:28:00", "1.85", customer="17850"),
            row("700002", "22632", "6", "2010-12-01 8:28", "1.85", customer="17850"),
        ]
    )
    # when
    report = service.import_online_retail(session, data)
    # then
    assert report.rejected == {"invalid_date": 1, "invoice_rejected": 1}
    assert [(i.row, i.code, i.value) for i in report.issues] == [
        (2, "invoice_rejected", None),
        (3, "invalid_date", "2010-12-01 8:28"),
    ]
    assert session.scalars(select(OrderFact.order_ref)).all() == ["700001"]
    assert session.scalar(select(func.count()).select_from(CustomerDim)) == 1


def test_negative_prices_are_rejected_with_their_value(session):
    # given the bad-debt adjustment of the real file
    data = csv_text(
        [
            row("700001", "20001A", "6", "2010-12-01 08:26:00", "2.55"),
            row("A563186", "B", "1", "2011-08-12 14:51:00", "-11062.06", customer=""),
        ]
    )
    # when
    report = service.import_online_retail(session, data)
    # then
    issue = next(i for i in report.issues if i.code == "negative_price")
    assert (issue.row, issue.invoice, issue.value) == (2, "A563186", "-11062.06")
    assert (report.rejected_rows, report.amount_minor_rejected) == (1, -1106206)
    assert session.scalars(select(SalesLine.order_ref)).all() == ["700001"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"qty": "six"}, "invalid_quantity"),
        ({"qty": "0"}, "invalid_quantity"),
        ({"price": "2,55"}, "invalid_price"),
        ({"invoice": "INV-1"}, "invalid_invoice"),
        ({"customer": "17 850"}, "invalid_customer"),
        ({"invoice": "C700001"}, "positive_quantity_on_return"),
        ({"qty": "-2"}, "negative_quantity_on_sale"),
    ],
)
def test_bad_rows_are_rejected_with_a_code(session, fields, code):
    good = {"invoice": "700001", "code": "20001A", "qty": "6", "when": "2010-12-01 08:26:00"}
    values = good | {"price": "2.55", "customer": "17850"} | fields
    report = service.import_online_retail(session, csv_text([row(**values)]))
    assert report.rejected == {code: 1}
    assert counts(session)["lines"] == 0


def test_returns_guests_and_service_codes(session):
    # given a sale, its credit, a guest order with postage and a zero-price adjustment
    data = csv_text(
        [
            row("700001", "20001A", "6", "2010-12-01 08:26:00", "2.55"),
            row("C700015", "20001A", "-2", "2010-12-02 09:41:00", "2.55"),
            row("536380", "22633", "3", "2010-12-02 10:00:00", "1.85", customer=""),
            row("536380", "POST", "1", "2010-12-02 10:00:00", "18.00", customer=""),
            row("536381", "22139", "-10", "2010-12-02 11:00:00", "0", customer=""),
        ]
    )
    # when
    report = service.import_online_retail(session, data)
    # then
    assert report.reinterpreted == {"service_code": 1, "zero_price_adjustment": 1}
    lines = session.execute(
        select(SalesLine.order_ref, SalesLine.kind, SalesLine.line_type, SalesLine.customer_key,
               SalesLine.quantity, SalesLine.amount_minor).order_by(SalesLine.id)
    ).all()  # fmt: skip
    assert [tuple(r) for r in lines] == [
        ("700001", "sale", "product", "12346", 6, 1530),
        ("C700015", "return", "product", "12346", -2, -510),
        ("536380", "sale", "product", None, 3, 555),
        ("536380", "sale", "service", None, 1, 1800),
        ("536381", "sale", "adjustment", None, -10, 0),
    ]
    products = dict(session.execute(select(ProductDim.sku, ProductDim.line_type)).all())
    assert products["POST"] == "service"


def test_uk_local_times_are_stored_in_utc(session):
    # given a winter (GMT) and a summer (BST, UTC+1) invoice
    data = csv_text(
        [
            row("540001", "20001A", "1", "2011-01-10 10:00:00", "2.55"),
            row("560001", "20001A", "1", "2011-06-01 10:00:00", "2.55"),
        ]
    )
    # when
    service.import_online_retail(session, data)
    # then
    stamps = session.scalars(select(OrderFact.occurred_at).order_by(OrderFact.order_ref)).all()
    assert stamps == [datetime(2011, 1, 10, 10, tzinfo=UTC), datetime(2011, 6, 1, 9, tzinfo=UTC)]


def test_an_ambiguous_autumn_hour_is_read_as_summer_time_and_reported(session):
    data = csv_text([row("570001", "20001A", "1", "2011-10-30 01:30:00", "2.55")])
    report = service.import_online_retail(session, data)
    assert report.reinterpreted == {"local_time_adjusted": 1}
    assert session.scalar(select(OrderFact.occurred_at)) == datetime(
        2011, 10, 30, 0, 30, tzinfo=UTC
    )


def test_prices_become_pence_rounded_half_up(session):
    data = csv_text(
        [
            row("700001", "PADS", "1", "2011-01-10 10:00:00", "0.001"),
            row("700002", "PADS", "1", "2011-01-10 10:00:00", "0.005"),
            row("536367", "20001A", "1", "2011-01-10 10:00:00", "2.5"),
        ]
    )
    report = service.import_online_retail(session, data)
    prices = session.scalars(select(SalesLine.unit_price_minor).order_by(SalesLine.id)).all()
    assert prices == [0, 1, 250]
    assert report.reinterpreted["sub_penny_price"] == 2


def test_an_invoice_naming_two_customers_is_rejected(session):
    data = csv_text(
        [
            row("700001", "20001A", "1", "2011-01-10 10:00:00", "2.55", customer="17850"),
            row("700001", "22633", "1", "2011-01-10 10:00:00", "1.85", customer="13047"),
        ]
    )
    report = service.import_online_retail(session, data)
    assert report.rejected == {"inconsistent_invoice": 2}
    assert counts(session)["lines"] == 0


def test_dry_run_writes_nothing(session):
    report = service.import_online_retail(session, csv_text(generated_rows()), dry_run=True)
    assert report.imported_rows == report.rows
    assert set(counts(session).values()) == {0}


def test_channel_and_location_columns_are_optional_extensions(session):
    header = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
              "CustomerID", "Country", "Channel", "Location"]  # fmt: skip
    data = csv_text(
        [[*row("700001", "20001A", "1", "2011-01-10 10:00:00", "2.55"), "store", "leeds"],
         [*row("700002", "20001A", "1", "2011-01-10 10:00:00", "2.55"), "", ""]],
        header=header,
    )  # fmt: skip
    service.import_online_retail(session, data, channel="web", location="uk-dc")
    rows = session.execute(
        select(OrderFact.order_ref, OrderFact.channel, OrderFact.location).order_by(
            OrderFact.order_ref
        )
    ).all()
    assert [tuple(r) for r in rows] == [("700001", "store", "leeds"), ("700002", "web", "uk-dc")]


def test_catalog_option_creates_catalog_products_for_new_merchandise_codes(session):
    data = csv_text(
        [
            row("700001", "20001A", "1", "2011-01-10 10:00:00", "2.55",
                description="WHITE STAR ENAMEL T-LIGHT HOLDER"),
            row("700001", "POST", "1", "2011-01-10 10:00:00", "18.00", description="POSTAGE"),
        ]
    )  # fmt: skip
    report = service.import_online_retail(session, data, create_catalog_products=True)
    assert report.catalog_products == 1
    facts = catalog.variant_facts(session, ["20001A", "POST"])
    assert list(facts) == ["20001A"]


def test_cli_import_reports_rejected_rows_and_writes_the_json_report(tmp_path, db, session):
    # given
    path = tmp_path / "retail.csv"
    path.write_bytes(
        csv_text(
            [
                row("700001", "20001A", "6", "2010-12-01 08:26:00", "2.55"),
                row("700002", "22633", "6", "2010-12-01 08:28:00", "-1.85"),
            ]
        )
    )
    report_file = tmp_path / "report.json"
    # when
    result = runner.invoke(
        app, ["import", "online-retail", str(path), "--report-json", str(report_file)]
    )
    # then exit status 1: some rows rejected
    assert result.exit_code == 1, result.output
    assert "negative_price" in result.output
    assert "imported 1 rows" in result.output
    saved = json.loads(report_file.read_text())
    assert saved["rejected"] == {"negative_price": 1}
    assert saved["issues"][0]["row"] == 2


def test_cli_refuses_a_file_with_unknown_columns_with_status_2(tmp_path, db):
    path = tmp_path / "retail.csv"
    path.write_text("InvoiceNo,Sku\n1,2\n")
    result = runner.invoke(app, ["import", "online-retail", str(path)])
    assert result.exit_code == 2
    assert "unknown_columns" in result.output
