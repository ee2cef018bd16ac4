"""The real UCI Online Retail file (read from ../shared/data, never copied into the repo)."""

import pytest
from sqlalchemy import func, select

from omniretail.analytics import service
from omniretail.analytics.models import CustomerDim, OrderFact, ProductDim, SalesLine
from tests.analytics.factories import REAL_FILE, REAL_FILE_MISSING

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
