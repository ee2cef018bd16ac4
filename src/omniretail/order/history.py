"""Historic orders and returns imported in bulk (sales history of another system).

:func:`import_order_history` is the set-based counterpart of checkout and of receiving a
return, for history that happened elsewhere: tens of thousands of invoices with hundreds of
thousands of lines in one transaction, written with Core ``executemany`` (SQLite) or ``COPY``
(PostgreSQL), never one unit of work per order. Nothing is priced, reserved, allocated or
paid: the invoice says what was sold at which price.

* A **sale** becomes an order of source ``import``, status ``completed``, placed at the
  invoice time, on the channel of the invoice, for its customer (``None``: a guest). Its lines
  are the invoice lines (SKU, title, quantity, unit price) in their order; subtotal and total
  are Σ quantity × unit price (no discount, shipping or tax is derived; postage and fees
  stay lines as the invoice has them). It has no payments.
* A **credit** (a return) is linked to its original order when one can be found: an order of
  the same customer placed at or before the credit that holds one of the credited merchandise
  SKUs (most SKUs in common first, then the latest). It becomes a return of that order,
  status ``received`` at the credit time, ``refund_total`` = Σ quantity × unit price. When no
  original is found (a guest credit, a customer whose purchase predates the history, a
  credit of fees only) it becomes a **credit note**: an order of source ``import_credit``,
  status ``completed``, with negative quantities and a negative total.
* Every order and return of a customer is a fact on the customer's timeline
  (``customer.history.record_history_facts``).

Ids are derived from the system and the invoice number (a ULID whose time is the invoice
time, so historic orders sort by their date among live ones), so a re-run finds what it
wrote and skips it: **idempotent by invoice number**. No outbox event is emitted: the history
is not news for the subscribers of live orders (analytics would count the importer's facts
twice, the timeline gets its facts from here). Services flush, never commit."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import JSON, Boolean, DateTime, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from ulid import ULID

from omniretail.catalog import service as catalog
from omniretail.core.errors import AppError, invalid
from omniretail.core.timeutil import as_utc, utcnow
from omniretail.customer import history as customer_history
from omniretail.order.domain import OrderStatus
from omniretail.order.models import Order, OrderLine, ReturnAuthorization

SOURCE_SALE = "import"  # Order.source of a historic sale
SOURCE_CREDIT = "import_credit"  # Order.source of a credit whose original is unknown
GROUP = "g1"  # the one (historic) delivery group of an imported order
CHUNK_ROWS = 50_000
QUERY_CHUNK = 500
Progress = Callable[[str, int, int], None]

_ORDERS = cast(Table, Order.__table__)
_LINES = cast(Table, OrderLine.__table__)
_RETURNS = cast(Table, ReturnAuthorization.__table__)


class HistoricLine(NamedTuple):
    """One invoice line. ``quantity`` is in units (> 0; on a credit the units credited),
    ``unit_price`` in minor units (≥ 0). ``merchandise`` is false for postage, fees and other
    service lines: they are kept, but never used to find the original of a credit."""

    sku: str
    title: str
    quantity: int
    unit_price: int
    merchandise: bool = True


class HistoricInvoice(NamedTuple):
    """A sale or a credit of the history. ``reference`` (the invoice number) is unique within
    the system; ``channel`` is a catalog channel code; ``occurred_at`` is timezone-aware."""

    reference: str
    credit: bool
    customer_id: str | None
    channel: str
    currency: str
    occurred_at: datetime
    lines: Sequence[HistoricLine]


@dataclass
class HistoryImported:
    orders: int = 0  # sales written as orders
    returns: int = 0  # credits written as returns of their original order
    credit_notes: int = 0  # credits without a known original, written as credit-note orders
    lines: int = 0  # order lines written (sales and credit notes)
    skipped: int = 0  # invoices imported before (by invoice number)
    empty: int = 0  # invoices without lines (nothing to write)
    timeline_facts: int = 0
    order_total_minor: int = 0  # Σ totals of the new orders
    refund_total_minor: int = 0  # Σ refunds of the new returns and credit notes (positive)


# --- ids ------------------------------------------------------------------------------------


def historic_ulid(system: str, reference: str, occurred_at: datetime) -> str:
    """The ULID of an invoice of ``system``: the invoice time and 80 bits of
    SHA-256(system, reference). The same invoice always gets the same id."""
    millis = max(0, int(as_utc(occurred_at).timestamp() * 1000))
    digest = hashlib.sha256(f"{system}\x1f{reference}".encode()).digest()
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10]))


def historic_order_id(system: str, reference: str, occurred_at: datetime) -> str:
    """The id of the order (sale or credit note) imported for an invoice."""
    return f"ord_{historic_ulid(system, reference, occurred_at)}"


def historic_return_id(system: str, reference: str, occurred_at: datetime) -> str:
    """The id of the return imported for a credit linked to its original order."""
    return f"ret_{historic_ulid(system, reference, occurred_at)}"


# --- channels -------------------------------------------------------------------------------


def channel_ids(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """Catalog channel id of each code; 422 ``unknown_channel`` naming every code the catalog
    does not know (create them first with ``omni catalog create-channel``)."""
    found: dict[str, str] = {}
    unknown: list[str] = []
    for code in sorted(set(codes)):
        try:
            found[code] = catalog.get_channel(session, code).id
        except AppError as exc:
            if exc.status != 404:
                raise
            unknown.append(code)
    if unknown:
        raise invalid(
            "unknown_channel",
            f"channel(s) {', '.join(map(repr, unknown))} are not catalog channels; create them "
            "first (omni catalog create-channel) or map the rows to a known channel. "
            "Nothing was imported.",
            unknown=unknown,
        )
    return found


# --- bulk writing ---------------------------------------------------------------------------


class _Bulk:
    """``INSERT ... ON CONFLICT (id) DO NOTHING`` of many rows into one table: SQLite through
    the driver's ``executemany``, PostgreSQL through ``COPY`` into a temporary table and one
    ``INSERT ... SELECT`` per chunk. Rows are tuples in the order of ``given``; every other
    column that needs a value gets its model default."""

    def __init__(self, session: Session, table: Table, given: Sequence[str]) -> None:
        self.conn = session.connection()
        self.dialect = self.conn.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise AppError("unsupported_database", f"history import: {self.dialect}", 500)
        self.table = table
        constants: dict[str, Any] = {}
        for column in table.columns:
            if column.name in given:
                continue
            default = column.default
            value = None
            if default is not None and getattr(default, "is_scalar", False):
                value = cast(Any, default).arg
            elif default is not None and getattr(default, "is_callable", False):
                value = cast(Any, default).arg(None)
            if value is None:
                if not column.nullable and column.server_default is None:
                    raise AppError(
                        "history_column_without_value",
                        f"{table.name}.{column.name} needs a value",
                        500,
                    )
                continue
            constants[column.name] = self.value(column.type, value)
        self.columns = [*given, *constants]
        self.constants = tuple(constants.values())

    def value(self, kind: Any, value: Any) -> Any:
        """A driver value (SQLite) or COPY text (PostgreSQL) for a column type."""
        if value is None:
            return None
        if isinstance(kind, JSON):
            return json.dumps(value)
        if isinstance(value, datetime) or isinstance(kind, DateTime):
            return self.stamp(value)
        if isinstance(kind, Boolean):
            return int(bool(value)) if self.dialect == "sqlite" else str(bool(value)).lower()
        return value

    def stamp(self, value: datetime) -> str:
        """A UTC time as SQLite stores it (naive text) or as PostgreSQL reads it."""
        utc = as_utc(value)
        if self.dialect == "sqlite":
            return utc.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        return utc.isoformat()

    def write(
        self, rows: Sequence[tuple[Any, ...]], progress: Callable[[int], None] | None = None
    ) -> None:
        if not rows:
            return
        names = ", ".join(self.columns)
        table = self.table.name
        conflict = "ON CONFLICT (id) DO NOTHING"
        staging = f"_history_{table}"
        if self.dialect == "postgresql":
            self.conn.exec_driver_sql(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging} ON COMMIT DROP AS "
                f"SELECT {names} FROM {table} WITH NO DATA"
            )
        marks = ", ".join(["?"] * len(self.columns))
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}"
        for start in range(0, len(rows), CHUNK_ROWS):
            part = [row + self.constants for row in rows[start : start + CHUNK_ROWS]]
            if self.dialect == "postgresql":
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerows(part)
                not_null = ", ".join(c for c in self.columns if not self.table.columns[c].nullable)
                cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                statement = (
                    f"COPY {staging} ({names}) FROM STDIN (FORMAT csv, FORCE_NOT_NULL ({not_null}))"
                )
                with cursor.copy(statement) as copy:
                    copy.write(buffer.getvalue())
                self.conn.exec_driver_sql(
                    f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {conflict}"
                )
                self.conn.exec_driver_sql(f"TRUNCATE {staging}")
            else:
                self.conn.exec_driver_sql(sql, part)
            if progress is not None:
                progress(start + len(part))


def _insert_returns(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(_RETURNS).on_conflict_do_nothing(index_elements=["id"])
    return sqlite.insert(_RETURNS).on_conflict_do_nothing(index_elements=["id"])


# --- finding the original order of a credit ---------------------------------------------------


class _Candidate(NamedTuple):
    placed_at: datetime
    order_id: str
    skus: frozenset[str]


def best_original(
    candidates: Iterable[_Candidate], at: datetime, skus: frozenset[str]
) -> str | None:
    """The order a credit of ``skus`` at ``at`` most likely returns: placed at or before it,
    with the most of those SKUs, then the latest, then the highest id; ``None`` if no order
    holds any of them."""
    best: tuple[int, datetime, str] | None = None
    for c in candidates:
        if c.placed_at > at:
            continue
        shared = len(skus & c.skus)
        if shared and (best is None or (shared, c.placed_at, c.order_id) > best):
            best = (shared, c.placed_at, c.order_id)
    return best[2] if best else None


def _candidates(session: Session, wanted: dict[str, set[str]]) -> dict[str, list[_Candidate]]:
    """Orders (not credit notes, not cancelled) of these customers with any of their
    credited SKUs: customer id -> candidates."""
    out: dict[str, list[_Candidate]] = {}
    customers = sorted(wanted)
    for start in range(0, len(customers), QUERY_CHUNK):
        chunk = customers[start : start + QUERY_CHUNK]
        skus = sorted(set().union(*(wanted[c] for c in chunk)))
        placed: dict[str, tuple[str | None, datetime]] = {}
        for oid, cid, at in session.execute(
            select(Order.id, Order.customer_id, Order.placed_at).where(
                Order.customer_id.in_(chunk),
                Order.source != SOURCE_CREDIT,
                Order.status != OrderStatus.CANCELLED.value,
            )
        ):
            placed[oid] = (cid, at)
        held: dict[str, set[str]] = {}
        for sku_start in range(0, len(skus), QUERY_CHUNK * 4):
            for oid, sku in session.execute(
                select(OrderLine.order_id, OrderLine.sku)
                .join(Order, Order.id == OrderLine.order_id)
                .where(
                    Order.customer_id.in_(chunk),
                    OrderLine.sku.in_(skus[sku_start : sku_start + QUERY_CHUNK * 4]),
                )
            ):
                if oid in placed:
                    held.setdefault(oid, set()).add(sku)
        for oid, order_skus in held.items():
            cid, at = placed[oid]
            if cid is None:
                continue
            out.setdefault(cid, []).append(_Candidate(as_utc(at), oid, frozenset(order_skus)))
    return out


# --- the import -----------------------------------------------------------------------------


def _check(invoice: HistoricInvoice) -> None:
    if not invoice.reference or len(invoice.reference) > 64:
        raise invalid("invalid_reference", "an invoice needs a reference of 1–64 characters")
    if invoice.occurred_at.tzinfo is None:
        raise invalid("naive_time", f"invoice {invoice.reference}: occurred_at needs a time zone")
    if len(invoice.currency) != 3:
        raise invalid("invalid_currency", f"invoice {invoice.reference}: {invoice.currency!r}")
    for line in invoice.lines:
        if not 1 <= len(line.sku) <= 64 or line.quantity <= 0 or line.unit_price < 0:
            raise invalid(
                "invalid_history_line",
                f"invoice {invoice.reference}: a line needs a SKU of 1–64 characters, a "
                "quantity > 0 and a unit price ≥ 0",
                reference=invoice.reference,
                sku=line.sku,
            )


def _existing(session: Session, model: Any, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), QUERY_CHUNK):
        found.update(
            session.scalars(select(model.id).where(model.id.in_(ids[start : start + QUERY_CHUNK])))
        )
    return found


def _variants(session: Session, skus: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(skus))
    out: dict[str, str] = {}
    for start in range(0, len(wanted), 1_000):
        facts = catalog.variant_facts(session, wanted[start : start + 1_000])
        out.update({sku: f.variant_id for sku, f in facts.items()})
    return out


def import_order_history(
    session: Session,
    system: str,
    invoices: Sequence[HistoricInvoice],
    *,
    progress: Progress | None = None,
) -> HistoryImported:
    """Write the sales of ``invoices`` as completed orders and their credits as returns (or
    credit notes), idempotently by ``(system, reference)``, with the customers' timeline facts.
    Channels must be catalog channels (422 ``unknown_channel`` before anything is written);
    customer ids must be customer ids (``customer.history.import_customers`` answers them)."""
    if not system or len(system) > 32:
        raise invalid("invalid_system", "the system name must be 1–32 characters")
    notify = progress or (lambda _stage, _done, _total: None)
    notify("orders", 0, 0)  # preparing
    for invoice in invoices:
        _check(invoice)
    channels = channel_ids(session, (i.channel for i in invoices))
    result = HistoryImported()
    ulids = [historic_ulid(system, i.reference, i.occurred_at) for i in invoices]
    orders_seen = _existing(session, Order, [f"ord_{u}" for u in ulids])
    returns_seen = _existing(
        session,
        ReturnAuthorization,
        [f"ret_{u}" for u, i in zip(ulids, invoices, strict=True) if i.credit],
    )
    sales: list[tuple[str, HistoricInvoice]] = []
    credits: list[tuple[str, HistoricInvoice]] = []
    for ulid, invoice in zip(ulids, invoices, strict=True):
        if f"ord_{ulid}" in orders_seen or f"ret_{ulid}" in returns_seen:
            result.skipped += 1
        elif not invoice.lines:
            result.empty += 1
        else:
            (credits if invoice.credit else sales).append((ulid, invoice))
    variants = _variants(session, (ln.sku for _, i in sales + credits for ln in i.lines))
    now = utcnow()
    facts: list[customer_history.HistoricFact] = []

    orders = _Bulk(session, _ORDERS, _ORDER_COLUMNS)
    lines = _Bulk(session, _LINES, _LINE_COLUMNS)

    def order_rows(
        batch: Sequence[tuple[str, HistoricInvoice]], source: str, sign: int, note: str
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        order_out: list[tuple[Any, ...]] = []
        line_out: list[tuple[Any, ...]] = []
        stamp_now = orders.stamp(now)
        for ulid, invoice in batch:
            oid = f"ord_{ulid}"
            total = 0
            for position, ln in enumerate(invoice.lines):
                quantity = sign * ln.quantity
                amount = quantity * ln.unit_price
                total += amount
                line_out.append(
                    (
                        f"oln_{ulid}_{position}",
                        oid,
                        position,
                        GROUP,
                        ln.sku,
                        variants.get(ln.sku),
                        ln.title[:300],
                        quantity,
                        ln.unit_price,
                        amount,
                        0,
                        0,
                        amount,
                    )
                )
            at = as_utc(invoice.occurred_at)
            history = [
                {
                    "status": OrderStatus.COMPLETED.value,
                    "at": at.isoformat(),
                    "by": f"import:{system}",
                    "note": note.format(reference=invoice.reference),
                }
            ]
            order_out.append(
                (
                    oid,
                    source,
                    channels[invoice.channel],
                    invoice.customer_id,
                    OrderStatus.COMPLETED.value,
                    invoice.currency.upper(),
                    total,
                    0,
                    0,
                    0,
                    total,
                    json.dumps(history),
                    orders.stamp(at),
                    stamp_now,
                )
            )
            if invoice.customer_id:
                kind = "order_placed" if sign > 0 else "return_received"
                facts.append(
                    customer_history.HistoricFact(
                        kind=kind,
                        ref=oid,
                        customer_id=invoice.customer_id,
                        order_id=oid,
                        channel=invoice.channel,
                        amount_minor=total if sign > 0 else -total,
                        currency=invoice.currency.upper(),
                        occurred_at=at,
                        properties={
                            "order_id": oid,
                            "source": source,
                            "system": system,
                            "reference": invoice.reference,
                            ("total_minor" if sign > 0 else "amount_minor"): sign * total,
                            "lines": len(invoice.lines),
                        },
                    )
                )
            if sign > 0:
                result.order_total_minor += total
            else:
                result.refund_total_minor -= total
        return order_out, line_out

    def write(order_out: list[tuple[Any, ...]], line_out: list[tuple[Any, ...]]) -> None:
        orders.write(order_out)
        notify("orders", 0, len(line_out))
        lines.write(line_out, progress=lambda done: notify("orders", done, len(line_out)))
        result.lines += len(line_out)

    # sales first: the credits look for their originals among them
    order_out, line_out = order_rows(
        sales, SOURCE_SALE, 1, f"imported from {system}: invoice {{reference}}"
    )
    write(order_out, line_out)
    result.orders = len(order_out)

    notify("returns", 0, len(credits))
    wanted: dict[str, set[str]] = {}
    for _, invoice in credits:
        if invoice.customer_id:
            merchandise = {ln.sku for ln in invoice.lines if ln.merchandise}
            if merchandise:
                wanted.setdefault(invoice.customer_id, set()).update(merchandise)
    candidates = _candidates(session, wanted)
    return_rows: list[dict[str, Any]] = []
    notes: list[tuple[str, HistoricInvoice]] = []
    for ulid, invoice in credits:
        original = None
        if invoice.customer_id:
            original = best_original(
                candidates.get(invoice.customer_id, ()),
                as_utc(invoice.occurred_at),
                frozenset(ln.sku for ln in invoice.lines if ln.merchandise),
            )
        if original is None:
            notes.append((ulid, invoice))
            continue
        rid = f"ret_{ulid}"
        at = as_utc(invoice.occurred_at)
        refund = sum(ln.quantity * ln.unit_price for ln in invoice.lines)
        return_rows.append(
            {
                "id": rid,
                "order_id": original,
                "customer_id": invoice.customer_id,
                "channel_id": channels[invoice.channel],
                "status": "received",
                "refund_method": "original",
                "lines": [
                    {
                        "sku": ln.sku,
                        "quantity": ln.quantity,
                        "unit_price": ln.unit_price,
                        "reason": f"imported from {system}: credit {invoice.reference}",
                    }
                    for ln in invoice.lines
                ],
                "exchanges": [],
                "received_lines": [],
                "refund_total": refund,
                "created_at": at,
                "received_at": at,
            }
        )
        result.refund_total_minor += refund
        if invoice.customer_id:
            facts.append(
                customer_history.HistoricFact(
                    kind="return_received",
                    ref=rid,
                    customer_id=invoice.customer_id,
                    order_id=original,
                    channel=invoice.channel,
                    amount_minor=refund,
                    currency=invoice.currency.upper(),
                    occurred_at=at,
                    properties={
                        "return_id": rid,
                        "order_id": original,
                        "system": system,
                        "reference": invoice.reference,
                        "amount_minor": refund,
                    },
                )
            )
    for start in range(0, len(return_rows), 5_000):
        session.execute(_insert_returns(session), return_rows[start : start + 5_000])
    result.returns = len(return_rows)
    notify("returns", len(credits), len(credits))

    order_out, line_out = order_rows(
        notes,
        SOURCE_CREDIT,
        -1,
        f"imported from {system}: credit {{reference}} (no original order found)",
    )
    write(order_out, line_out)
    result.credit_notes = len(order_out)

    facts.sort(key=lambda f: (f.occurred_at, f.ref))
    result.timeline_facts = customer_history.record_history_facts(session, facts, progress=progress)
    session.flush()
    return result


_ORDER_COLUMNS = [
    "id",
    "source",
    "channel_id",
    "customer_id",
    "status",
    "currency",
    "subtotal",
    "discount_total",
    "shipping_total",
    "tax_total",
    "total",
    "history",
    "placed_at",
    "updated_at",
]
_LINE_COLUMNS = [
    "id",
    "order_id",
    "position",
    "group_id",
    "sku",
    "variant_id",
    "title",
    "quantity",
    "unit_price",
    "subtotal",
    "discount",
    "tax",
    "total",
]
