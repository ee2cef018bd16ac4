"""The real UCI Online Retail file (read from ../shared/data, never copied into the repo)."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMNI_PII_KEYS", "JhM0nDTN7n6vJ4Yt1r0t3cBm3zj0G3yW1m4Ck4v6b5E=")
os.environ.setdefault("OMNI_PII_INDEX_KEY", "test-blind-index-key-0123456789")
os.environ.setdefault("OMNI_PII_KEY_FILE", str(Path(tempfile.gettempdir()) / "omni-test-pii.keys"))

import pytest
from sqlalchemy import func, select

from omniretail.analytics import service
from omniretail.analytics.models import CustomerDim, OrderFact, ProductDim, SalesLine
from omniretail.order.models import Order, ReturnAuthorization
from tests.analytics.factories import REAL_FILE, REAL_FILE_MISSING
from tests.catalog.factories import create_channel

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REAL_FILE.exists(), reason=REAL_FILE_MISSING),
]

README_FIGURES = {
    "rows": 541_909,
    "invoices": 25_900,
    "credit_rows": 9_288,
    "negative_quantity_rows": 10_624,
    "customers": 4_372,
    "stock_codes": 4_070,
    "countries": 38,
}
README_SUM_PENCE = 974_774_793  # Σ Quantity × UnitPrice = 9,747,747.93 (4 rows at £0.001)


def _count(session, column):
    return session.scalar(select(func.count(func.distinct(column))))


def test_import_of_the_real_file_matches_the_readme_figures(session):
    # when
    report = service.import_online_retail(session, REAL_FILE.read_bytes(), file_name="real")
    # then the file is read as the README describes it
    assert report.file_figures == README_FIGURES
    # only the two negative-price bad-debt adjustments are rejected, each its own invoice
    assert report.rejected == {"negative_price": 2}
    assert (report.imported_rows, report.rejected_invoices) == (541_907, 2)
    # imported plus rejected value is the README's sum to the penny
    assert report.amount_minor_imported + report.amount_minor_rejected == README_SUM_PENCE
    assert session.scalar(select(func.sum(SalesLine.amount_minor))) == 976_987_205
    # and the store holds every invoice, customer and product of the accepted rows
    assert _count(session, OrderFact.order_ref) == 25_898
    assert session.scalar(select(func.count()).select_from(CustomerDim)) == 4_372
    assert session.scalar(select(func.count()).select_from(ProductDim)) == 4_070
    assert (
        session.scalar(
            select(func.count()).select_from(SalesLine).where(SalesLine.kind == "return")
        )
        == 9_288
    )


def test_import_of_the_real_file_with_orders_puts_every_invoice_in_the_order_context(session):
    # given a web channel for the orders
    create_channel(session, "web")
    # when
    report = service.import_online_retail(
        session, REAL_FILE.read_bytes(), file_name="real", create_orders=True
    )
    # then one profile per distinct CustomerID of the README
    assert report.customer_profiles_created == README_FIGURES["customers"]
    # every accepted invoice (25,900 less the 2 rejected) is an order, a return, a credit note
    # or a stock adjustment; every C invoice is a return or a credit note
    made = (
        report.orders_created,
        report.returns_created,
        report.credit_notes_created,
        report.invoices_without_order_lines,
    )
    assert made == (19_974, 3_077, 759, 2_088)
    assert sum(made) == README_FIGURES["invoices"] - 2
    assert report.returns_created + report.credit_notes_created == 3_836
    # the orders hold exactly the sales value of the analytics store, the returns and credit
    # notes exactly its returns
    sales = select(func.sum(SalesLine.amount_minor)).where(SalesLine.kind == "sale")
    returned = select(func.sum(SalesLine.amount_minor)).where(SalesLine.kind == "return")
    order_total = select(func.sum(Order.total))
    assert session.scalar(order_total.where(Order.source == "import")) == session.scalar(sales)
    assert session.scalar(select(func.sum(ReturnAuthorization.refund_total))) - session.scalar(
        order_total.where(Order.source == "import_credit")
    ) == -session.scalar(returned)
    assert report.timeline_facts_created == 22_190
    # and the analytics store knows the customers by their profile ids, as live orders do
    keys = session.scalars(
        select(OrderFact.customer_key).where(OrderFact.customer_key.is_not(None)).distinct()
    ).all()
    assert len(keys) == README_FIGURES["customers"]
    assert all(key.startswith("cus_") for key in keys)
    with_customer = select(func.count()).where(OrderFact.customer_key.is_not(None))
    assert report.facts_rekeyed == session.scalar(with_customer.select_from(OrderFact))
