"""Small factories for pricing tests: every value a test depends on is passed explicitly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.pricing import service
from omniretail.pricing.service import PriceInput

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 0, month: int = 6) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def make_channel(session: Session, code: str, currency: str = "EUR") -> str:
    channel = catalog.create_channel(
        session,
        code=code,
        name=code.title(),
        type="web",
        currency=currency,
        country="DE" if currency == "EUR" else "GB",
        locale="en-GB",
    )
    return channel.id


def make_category(session: Session, code: str, parent: str | None = None) -> str:
    return catalog.create_category(session, code, code.title(), parent).id


def make_product(session: Session, *skus: str, categories: list[str] | None = None) -> str:
    product = catalog.create_product(
        session,
        title=f"Product {skus[0]}",
        variants=[{"sku": s} for s in skus],
        category_codes=categories or [],
    )
    return product.id


def make_book(
    session: Session,
    code: str,
    currency: str = "EUR",
    kind: str = "shared",
    intended_override: bool = False,
) -> str:
    book = service.create_price_book(
        session,
        code=code,
        name=code.title(),
        currency=currency,
        kind=kind,
        intended_override=intended_override,
    )
    return book.id


def set_price(session: Session, book: str, sku: str, amount: int, **kw: object) -> str:
    result = service.upsert_prices(session, book, [PriceInput(sku=sku, amount=amount, **kw)])  # type: ignore[arg-type]
    return result.prices[0].id


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def commit(session: Session) -> None:
    """Make test data visible to API requests (they share the test's outer transaction)."""
    session.commit()


@contextmanager
def counting_statements(session: Session) -> Iterator[list[str]]:
    """Collect the SQL statements the session's engine executes inside the block."""
    engine = session.get_bind().engine
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
