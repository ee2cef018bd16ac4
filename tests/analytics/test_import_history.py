"""Import with --customers / --orders: the history also becomes customer profiles (customer
360), orders and returns (order API, console) and timeline facts, idempotently."""

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMNI_PII_KEYS", "JhM0nDTN7n6vJ4Yt1r0t3cBm3zj0G3yW1m4Ck4v6b5E=")
os.environ.setdefault("OMNI_PII_INDEX_KEY", "test-blind-index-key-0123456789")
os.environ.setdefault("OMNI_PII_KEY_FILE", str(Path(tempfile.gettempdir()) / "omni-test-pii.keys"))

import pytest
from rich.console import Console
from sqlalchemy import func, select
from typer.testing import CliRunner

from omniretail.analytics import cli as analytics_cli
from omniretail.analytics import service
from omniretail.analytics.models import CustomerDim, OrderFact, SalesLine
from omniretail.cli import app
from omniretail.core import events
from omniretail.core.errors import AppError
from omniretail.core.models import OutboxEvent
from omniretail.customer import service as customers
from omniretail.customer.models import CustomerEvent, Identifier, Profile
from omniretail.order import history
from omniretail.order.models import Order, OrderLine, ReturnAuthorization
from tests.analytics.factories import counts, csv_text, generated_rows, row
from tests.catalog.factories import create_channel

runner = CliRunner()
SYSTEM = "online_retail"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(analytics_cli, "console", Console(width=200))


@pytest.fixture()
def web(session):
    return create_channel(session, "web")


def customer_id(session, number: str) -> str | None:
    return customers.find_customer_id(session, f"external:{SYSTEM}", number)


def history_counts(session) -> dict[str, int]:
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for name, model in [
            ("profiles", Profile),
            ("identifiers", Identifier),
            ("facts", CustomerEvent),
            ("orders", Order),
            ("order_lines", OrderLine),
            ("returns", ReturnAuthorization),
        ]
    }


# A customer's sale with postage, the credit of two of its mugs, a guest sale, a guest credit
# nobody's order holds, and a stock adjustment.
SHOP = [
    row("700001", "20001A", "6", "2011-01-10 10:00:00", "2.55", customer="17850"),
    row("700001", "POST", "1", "2011-01-10 10:00:00", "18.00", customer="17850"),
    row("C700002", "20001A", "-2", "2011-01-12 11:00:00", "2.55", customer="17850"),
    row("700003", "22633", "3", "2011-01-11 09:00:00", "1.85", customer="", country="France"),
    row("C700004", "22633", "-1", "2011-01-13 09:00:00", "1.85", customer=""),
    row("700005", "22139", "-10", "2011-01-14 09:00:00", "0", customer=""),
]


def import_shop(session, **options):
    options = {"create_orders": True} | options
    report = service.import_online_retail(session, csv_text(SHOP), **options)
    session.commit()
    return report


# --- customers ------------------------------------------------------------------------------


def test_customers_option_creates_a_profile_per_customer_id_with_its_external_id(session):
    # given two customers in the file and a guest
    data = csv_text(
        [
            row("700001", "20001A", "1", "2011-01-10 10:00:00", "2.55", customer="17850"),
            row("700002", "20001A", "1", "2011-01-10 11:00:00", "2.55", customer="13047",
                country="France"),
            row("700003", "20001A", "1", "2011-01-10 12:00:00", "2.55", customer=""),
        ]
    )  # fmt: skip
    # when
    report = service.import_online_retail(session, data, create_customers=True)
    # then
    assert (report.customer_profiles_created, report.customer_profiles_existing) == (2, 0)
    view = customers.customer_view(session, customer_id(session, "13047"), pii=False)
    assert view["traits"] == {"country": "France"}
    assert [(i["type"], i["value"]) for i in view["identifiers"]] == [
        ("external:online_retail", "13047")
    ]
    assert history_counts(session)["orders"] == 0


def test_a_customer_known_by_its_external_id_keeps_its_profile(session, web):
    # given the customer was created before with the same external id
    known = customers.create_customer(
        session, customers.NewCustomer(external_ids={SYSTEM: "17850"}), actor="test"
    )
    # when
    report = import_shop(session)
    # then no second profile, and the order belongs to the known customer
    assert (report.customer_profiles_created, report.customer_profiles_existing) == (0, 1)
    assert session.scalars(select(Order.customer_id).where(Order.source == "import")).all() == [
        known,
        None,
    ]


# --- orders ---------------------------------------------------------------------------------


def test_orders_option_creates_completed_orders_with_exact_totals(session, web, client, admin):
    # given
    import_shop(session)
    cid = customer_id(session, "17850")
    # when
    page = client.get(f"/api/v1/orders?customer_id={cid}", headers=admin).json()
    # then one completed order of 6 × 2.55 + postage 18.00 on the web channel
    [summary] = page["items"]
    assert (summary["source"], summary["status"], summary["channel_id"]) == (
        "import",
        "completed",
        web.id,
    )
    assert (summary["total"], summary["currency"]) == (3330, "GBP")
    order = client.get(f"/api/v1/orders/{summary['id']}", headers=admin).json()
    assert [
        (ln["sku"], ln["quantity"], ln["unit_price"], ln["total"]) for ln in order["lines"]
    ] == [
        ("20001A", 6, 255, 1530),
        ("POST", 1, 1800, 1800),
    ]
    assert order["placed_at"] == "2011-01-10T10:00:00Z"
    assert order["history"][0]["note"] == "imported from online_retail: invoice 700001"


def test_a_guest_invoice_is_an_order_without_customer(session, web):
    # given / when
    import_shop(session)
    # then
    guest = session.scalars(
        select(Order).where(Order.id == ord_id("700003", "2011-01-11 09"))
    ).one()
    assert (guest.customer_id, guest.total, guest.status) == (None, 555, "completed")


def test_a_credit_is_a_return_of_the_customers_order_that_holds_its_skus(
    session, web, client, admin
):
    # given / when
    import_shop(session)
    # then
    original = ord_id("700001", "2011-01-10 10")
    [credit] = client.get(f"/api/v1/orders/{original}/returns", headers=admin).json()
    assert (credit["status"], credit["refund_total"], credit["customer_id"]) == (
        "received",
        510,
        customer_id(session, "17850"),
    )
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in credit["lines"]] == [
        ("20001A", 2, 255)
    ]
    assert credit["received_at"] == "2011-01-12T11:00:00Z"


def test_a_credit_without_an_original_order_is_a_credit_note(session, web):
    # given a guest credit: no order can be found for it
    # when
    report = import_shop(session)
    # then it is an order of source import_credit with negative quantities and total
    note = session.get(Order, ord_id("C700004", "2011-01-13 09"))
    assert (note.source, note.status, note.total, note.customer_id) == (
        "import_credit",
        "completed",
        -185,
        None,
    )
    lines = session.scalars(select(OrderLine).where(OrderLine.order_id == note.id)).all()
    assert [(ln.sku, ln.quantity, ln.unit_price, ln.total) for ln in lines] == [
        ("22633", -1, 185, -185)
    ]
    assert (report.returns_created, report.credit_notes_created) == (1, 1)


def test_stock_adjustments_are_not_orders(session, web):
    # given invoice 700005: a zero-price negative quantity (stock adjustment)
    # when
    report = import_shop(session)
    # then
    assert session.get(Order, ord_id("700005", "2011-01-14 09")) is None
    assert (report.orders_created, report.invoices_without_order_lines) == (2, 1)


def test_the_customer_timeline_and_360_show_the_imported_order_and_return(
    session, web, client, admin
):
    # given
    import_shop(session)
    cid = customer_id(session, "17850")
    # when
    items = client.get(f"/api/v1/customers/{cid}/timeline", headers=admin).json()["items"]
    # then newest first: the return (of the order), then the order
    original = ord_id("700001", "2011-01-10 10")
    assert [(i["kind"], i["order_id"], i["amount_minor"], i["occurred_at"]) for i in items] == [
        ("return", original, 510, "2011-01-12T11:00:00Z"),
        ("order", original, 3330, "2011-01-10T10:00:00Z"),
    ]
    view = client.get(f"/api/v1/customers/{cid}", headers=admin).json()
    assert view["orders"] == {"count": 1, "revenue_minor": {"GBP": 3330}}
    assert (view["first_seen_at"], view["last_seen_at"], view["event_count"]) == (
        "2011-01-10T10:00:00Z",
        "2011-01-12T11:00:00Z",
        2,
    )


def test_rerunning_with_orders_creates_nothing_new(session, web):
    # given
    import_shop(session)
    before = history_counts(session)
    # when
    again = import_shop(session)
    # then
    assert history_counts(session) == before
    assert (again.orders_created, again.returns_created, again.credit_notes_created) == (0, 0, 0)
    assert (again.invoices_already_ordered, again.customer_profiles_existing) == (4, 1)


def test_orders_can_be_added_to_an_earlier_plain_import(session, web):
    # given the file was imported into the analytics store only
    service.import_online_retail(session, csv_text(SHOP))
    # when it is imported again with --orders
    report = import_shop(session)
    # then the analytics store skips it and the order context gets everything
    assert report.imported_rows == 0
    assert (report.orders_created, report.returns_created, report.credit_notes_created) == (2, 1, 1)


def test_historic_orders_emit_no_order_events_and_facts_are_not_counted_twice(session, web):
    # given
    events_before = session.scalar(select(func.count()).select_from(OutboxEvent))
    import_shop(session)
    lines_before = counts(session)["lines"]
    # when the outbox is dispatched (analytics and customer subscribers registered)
    from omniretail.analytics import subscribers as analytics_subscribers
    from omniretail.customer import subscribers as customer_subscribers

    analytics_subscribers.register()
    customer_subscribers.register()
    events.dispatch_pending(session)
    # then no event was emitted for the history, the facts are the importer's only
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == events_before
    assert counts(session)["lines"] == lines_before == 6
    assert session.scalar(select(func.count()).select_from(SalesLine)) == 6


def test_a_rejected_invoice_creates_no_customer_and_no_order(session, web):
    # given the only invoice of customer 13047 has a row with a bad date
    data = csv_text(
        [
            row("700001", "20001A", "6", "2011-01-10 10:00:00", "2.55", customer="13047"),
            row("700001", "22633", "6", "2011-01-10 8:28", "1.85", customer="13047"),
        ]
    )
    # when
    report = service.import_online_retail(session, data, create_orders=True)
    # then
    assert report.rejected == {"invalid_date": 1, "invoice_rejected": 1}
    assert customer_id(session, "13047") is None
    assert set(history_counts(session).values()) == {0}


def test_an_unknown_channel_refuses_the_file_before_anything_is_written(session):
    # given no catalog channel "web"
    # when
    with pytest.raises(AppError) as caught:
        service.import_online_retail(session, csv_text(SHOP), create_orders=True)
    # then
    assert (caught.value.code, caught.value.details["unknown"]) == ("unknown_channel", ["web"])
    assert set(counts(session).values()) == {0}
    assert set(history_counts(session).values()) == {0}


def test_a_generated_file_gives_one_order_per_sale_and_one_return_per_credit(session, web):
    # given a seeded file (customers' credits of their own earlier lines; no adjustments)
    rows = generated_rows()
    sales = {r[0] for r in rows if not r[0].startswith("C")}
    credits = {r[0] for r in rows if r[0].startswith("C")}
    value = sum(int(r[3]) * round(float(r[5]) * 100) for r in rows if not r[0].startswith("C"))
    # when
    report = service.import_online_retail(session, csv_text(rows), create_orders=True)
    # then
    assert report.orders_created == len(sales)
    assert (report.returns_created, report.credit_notes_created) == (len(credits), 0)
    assert report.order_lines_created == len(rows) - len(credits)
    assert session.scalar(select(func.sum(Order.total))) == value
    assert report.customer_profiles_created == len({r[6] for r in rows if r[6]})


# --- CLI ------------------------------------------------------------------------------------


def test_cli_orders_option_reports_what_it_created(tmp_path, db, session, web):
    # given
    path = tmp_path / "retail.csv"
    path.write_bytes(csv_text(SHOP))
    # when
    result = runner.invoke(app, ["import", "online-retail", str(path), "--orders"])
    # then
    assert result.exit_code == 0, result.output
    assert "customer profiles: 1 created, 0 already known" in result.output
    assert (
        "order context: 2 orders (4 lines), 1 returns, 1 credit notes without original order, "
        "2 timeline facts; 0 invoices there already, 1 stock adjustments (not orders)"
    ) in result.output


def test_cli_help_describes_the_history_options():
    result = runner.invoke(app, ["import", "online-retail", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--customers" in result.output
    assert "--orders" in result.output


# --- finding the original of a credit -------------------------------------------------------


def _candidate(day: int, oid: str, *skus: str):
    return history._Candidate(datetime(2011, 1, day, tzinfo=UTC), oid, frozenset(skus))


def test_the_original_of_a_credit_shares_the_most_skus_then_is_the_latest():
    # given three earlier orders and one after the credit
    orders = [
        _candidate(1, "ord_a", "A", "B"),
        _candidate(2, "ord_b", "A"),
        _candidate(3, "ord_c", "B", "C"),
        _candidate(9, "ord_later", "A", "B", "C"),
    ]
    at = datetime(2011, 1, 5, tzinfo=UTC)
    # when / then
    assert history.best_original(orders, at, frozenset({"A", "B"})) == "ord_a"
    assert history.best_original(orders, at, frozenset({"A"})) == "ord_b"
    assert history.best_original(orders, at, frozenset({"D"})) is None


# --- helpers --------------------------------------------------------------------------------


def ord_id(invoice: str, local_hour: str) -> str:
    """The id of an imported invoice (January: UK local time is UTC)."""
    at = datetime.strptime(local_hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return history.historic_order_id(SYSTEM, invoice, at)


def _analytics_keys(session) -> dict[str, set]:
    return {
        "orders": set(session.scalars(select(OrderFact.customer_key).distinct())),
        "lines": set(session.scalars(select(SalesLine.customer_key).distinct())),
        "customers": set(session.scalars(select(CustomerDim.customer_key))),
    }


def test_with_customers_the_analytics_facts_are_keyed_by_the_profile_id(session, web):
    # given the shop file (customer 17850 and guests)
    # when it is imported with --customers
    report = import_shop(session, create_orders=False, create_customers=True)
    # then the customer's two invoices, their lines and the dimension use the profile id
    cid = customer_id(session, "17850")
    assert cid is not None and cid.startswith("cus_")
    assert _analytics_keys(session) == {
        "orders": {cid, None},
        "lines": {cid, None},
        "customers": {cid},
    }
    assert report.facts_rekeyed == 2


def test_a_plain_import_is_keyed_by_profile_once_customers_are_added(session, web):
    # given the file was imported into the analytics store only (raw CustomerIDs)
    service.import_online_retail(session, csv_text(SHOP))
    assert _analytics_keys(session)["customers"] == {"17850"}
    first_seen = session.scalar(select(CustomerDim.first_seen_at))
    # when it is imported again with --customers
    report = import_shop(session, create_orders=False, create_customers=True)
    # then nothing is imported twice and the earlier facts now carry the profile id
    cid = customer_id(session, "17850")
    assert (report.imported_rows, report.facts_rekeyed) == (0, 2)
    assert _analytics_keys(session) == {
        "orders": {cid, None},
        "lines": {cid, None},
        "customers": {cid},
    }
    assert session.scalar(select(CustomerDim.first_seen_at)) == first_seen


def test_an_erased_customer_is_not_brought_back_by_a_later_import(session, web):
    # given the shop was imported with its orders and customer 17850 was then erased
    import_shop(session)
    cid = customer_id(session, "17850")
    customers.erase_customer(session, cid, actor="test", reason="customer request")
    session.commit()
    profiles_before = history_counts(session)["profiles"]
    # when a later file with a new invoice of 17850 is imported with --orders
    later = [row("700009", "20001A", "2", "2011-02-01 10:00:00", "2.55", customer="17850")]
    report = service.import_online_retail(session, csv_text(later), create_orders=True)
    session.commit()
    # then no profile comes back: the number is left out, its invoice is a guest order
    assert (report.customer_profiles_created, report.customer_ids_suppressed) == (0, 1)
    assert customer_id(session, "17850") is None
    assert history_counts(session)["profiles"] == profiles_before
    orders = session.scalars(select(Order).where(Order.source == "import")).all()
    assert [o.customer_id for o in orders if o.total == 510] == [None]
    fact = session.scalar(select(OrderFact).where(OrderFact.order_ref == "700009"))
    assert fact is not None and fact.customer_key is None
    assert session.scalars(
        select(SalesLine.customer_key).where(SalesLine.order_ref == "700009")
    ).all() == [None]
