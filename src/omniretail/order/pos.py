"""Store registers (POS): lookup by barcode, online sales, and the sync of sales rung up while
the network was down.

Offline policy (docs/pos.md):

* Each sale carries the register's own id for it (``client_id``, a UUID) and a per-register
  sequence number. ``(register, client_id)`` is unique: a replayed batch finds its sales and
  changes nothing. Sequence gaps are reported back (``missing_sequences``) so the register
  resends what is missing.
* A sale is booked as the register rang it up: its lines and prices, its total, its tenders.
  It becomes an order (source ``pos``, status ``completed``) in the customer's history.
* Stock: the units the store still has available are sold with a ``sale`` movement. Units the
  system no longer had (sold meanwhile online or at another register) are **not** dropped and
  do not drive stock below zero: the sale is accepted, the short quantity is recorded as a
  ``stock_shortfall`` discrepancy (a task for the store: count the shelf, check the orders
  that hold that stock) and a ``pos.stock_discrepancy`` event is emitted.
* A sale that cannot be booked as sent (unknown SKU, tenders that do not add up, a gift card
  without balance) is kept with its payload as ``needs_review`` plus a ``sale_needs_review``
  discrepancy. Nothing a register sends is lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.core.errors import AppError, conflict, invalid, not_found
from omniretail.core.events import emit
from omniretail.core.ids import new_id
from omniretail.core.timeutil import as_utc, utcnow
from omniretail.customer import service as customers
from omniretail.inventory import service as inventory
from omniretail.order import payments as pay
from omniretail.order import rates
from omniretail.order import service as orders
from omniretail.order.domain import (
    DeliveryMethod,
    OrderStatus,
    TenderRequest,
    advance_contiguous,
    allocate_tenders,
    cash_change,
    missing_sequences,
    pick_tax_rule,
    taxed,
)
from omniretail.order.models import Order, OrderLine, Payment, PosDiscrepancy, PosSale, Register
from omniretail.pricing import service as pricing

MAX_BATCH = 500


def _now(now: datetime | None) -> datetime:
    return utcnow() if now is None else as_utc(now)


# --- registers ------------------------------------------------------------------------------


def create_register(session: Session, *, code: str, location_id: str, channel: str) -> Register:
    """A register at a store location, selling on a (store) channel."""
    code = code.strip()
    if not code or len(code) > 64:
        raise invalid("invalid_code", "a register code is 1-64 characters")
    location = inventory.get_location(session, location_id)
    if location.type not in ("store", "dark_store"):
        raise invalid("location_not_a_store", "registers belong to a store", type=location.type)
    info = catalog.get_channel(session, channel)
    if session.scalar(select(Register.id).where(Register.code == code)):
        raise conflict("register_exists", f"register {code!r} already exists", code=code)
    register = Register(
        id=new_id("reg"),
        code=code,
        location_id=location.id,
        channel_id=info.id,
        contiguous_through=0,
        active=True,
        created_at=utcnow(),
    )
    session.add(register)
    session.flush()
    return register


def get_register(session: Session, ref: str, lock: bool = False) -> Register:
    query = select(Register).where(
        Register.id == ref if ref.startswith("reg_") else Register.code == ref
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    register = session.scalar(query)
    if register is None:
        raise not_found("register", ref)
    if not register.active:
        raise conflict("register_inactive", f"register {register.code!r} is not active")
    return register


def list_registers(session: Session, location_id: str | None = None) -> list[Register]:
    query = select(Register).order_by(Register.code)
    if location_id:
        query = query.where(Register.location_id == location_id)
    return list(session.scalars(query))


# --- lookup ---------------------------------------------------------------------------------


@dataclass
class LookupItem:
    sku: str
    barcode: str | None
    title: str
    product_id: str
    price: int | None
    currency: str
    available_here: int
    on_hand_here: int


def lookup(
    session: Session,
    register: Register,
    *,
    barcodes: Sequence[str] = (),
    skus: Sequence[str] = (),
    now: datetime | None = None,
) -> list[LookupItem]:
    """Scan: the variants for barcodes (any GTIN spelling) or SKUs, with this register's price
    and the stock at this store."""
    if not barcodes and not skus:
        raise invalid("filter_required", "give a barcode or a sku")
    variants = catalog.find_variants(session, skus=list(skus), barcodes=list(barcodes))
    if not variants:
        raise AppError(
            "variant_not_found",
            "nothing matches this barcode or SKU",
            404,
            {"barcodes": list(barcodes), "skus": list(skus)},
        )
    channel = catalog.get_channel(session, register.channel_id)
    found = [v.sku for v in variants]
    prices = pricing_for(session, channel.id, found, now)
    stock = {
        b.sku: b
        for b in inventory.stock_balances(
            session, skus=found, location_id=register.location_id, now=now
        )
    }
    return [
        LookupItem(
            sku=v.sku,
            barcode=v.barcode,
            title=v.title,
            product_id=v.product_id,
            price=prices.get(v.sku),
            currency=channel.currency,
            available_here=stock[v.sku].available if v.sku in stock else 0,
            on_hand_here=stock[v.sku].on_hand if v.sku in stock else 0,
        )
        for v in variants
    ]


def pricing_for(
    session: Session, channel_id: str, skus: Sequence[str], now: datetime | None
) -> dict[str, int]:
    resolved = pricing.resolve_prices(session, channel_id, {s: 1 for s in skus}, at=now)
    return {s: r.winner.amount for s, r in resolved.items() if r.winner is not None}


# --- sales ----------------------------------------------------------------------------------


@dataclass
class SaleLine:
    sku: str
    quantity: int
    unit_price: int | None = None  # offline sales: the price the register charged
    discount: int = 0


@dataclass
class SaleTender:
    type: str  # cash | card_terminal | gift_card | store_credit | card
    amount: int | None = None  # None: the rest
    tendered: int | None = None  # cash handed over (change is given back)
    reference: str | None = None  # terminal approval code, gift-card code, card token


@dataclass
class SaleInput:
    lines: list[SaleLine]
    tenders: list[SaleTender]
    client_id: str | None = None
    sequence: int | None = None
    sold_at: datetime | None = None
    customer_id: str | None = None
    total: int | None = None  # offline: the total the register charged
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Booked:
    sale: PosSale
    order: Order | None
    lines: list[OrderLine]
    payments: list[Payment]
    change_due: int
    discrepancies: list[PosDiscrepancy]
    duplicate: bool = False


def _tenders(total: int, tenders: Sequence[SaleTender]) -> tuple[list[Any], int]:
    """Spread the total over the tenders (cash without an amount takes the rest) and work out
    the change from the cash handed over."""
    requests = []
    cash_given: int | None = None
    for t in tenders:
        if t.type == "cash" and t.tendered is not None:
            if cash_given is not None:
                raise invalid("ambiguous_tenders", "one cash tender per sale")
            cash_given = t.tendered
        requests.append(TenderRequest(t.type, t.amount, t.reference))
    allocations = allocate_tenders(total, requests)
    change = 0
    if cash_given is not None:
        cash_due = sum(a for t, a in allocations if t.type == "cash")
        change = cash_change(cash_due, cash_given)
    return allocations, change


def _price_lines(
    session: Session,
    register: Register,
    sale: SaleInput,
    offline: bool,
    now: datetime,
) -> tuple[list[dict[str, Any]], orders.Quote]:
    """Lines with titles and their prices: online through the pricing service (promotions
    included), offline as the register charged them (taxes worked out here)."""
    described = orders.describe(
        session,
        orders.clean_lines(
            [
                {
                    "sku": line.sku,
                    "quantity": line.quantity,
                    **({"unit_price": line.unit_price} if line.unit_price is not None else {}),
                    **({"discount": line.discount} if line.discount else {}),
                }
                for line in sale.lines
            ]
        ),
    )
    location = inventory.get_location(session, register.location_id)
    channel = catalog.get_channel(session, register.channel_id)
    address = dict(location.address or {})
    country = str(address.get("country") or channel.country).upper()
    group = {
        "id": "g1",
        "method": None,
        "skus": [line["sku"] for line in described],
        "location": {
            "id": location.id,
            "code": location.code,
            "name": location.name,
            "type": location.type,
            "country": country,
            "region": address.get("region"),
        },
    }
    if not offline:
        quote = orders.make_quote(
            session,
            channel=channel,
            lines=described,
            groups=[group],
            customer_id=sale.customer_id,
            coupons=[],
            shipping_address=None,
            now=now,
            shipping_rates=[],
        )
        return described, quote
    missing = [line["sku"] for line in described if "unit_price" not in line]
    if missing:
        raise invalid("unit_price_required", "offline sales carry their prices", skus=missing)
    rule = pick_tax_rule(rates.tax_rules(session, [country]), country, address.get("region"))
    quote_lines = []
    subtotal = discount = tax = total = 0
    for line in described:
        line_subtotal = line["unit_price"] * line["quantity"]
        line_discount = int(line.get("discount", 0))
        if line["unit_price"] < 0 or not 0 <= line_discount <= line_subtotal:
            raise invalid("invalid_price", "prices and discounts are >= 0", sku=line["sku"])
        t = taxed(line_subtotal - line_discount, rule)
        subtotal += line_subtotal
        discount += line_discount
        tax += t.tax
        total += t.gross
        quote_lines.append(
            orders.QuoteLine(
                sku=line["sku"],
                title=line.get("title", ""),
                variant_id=line.get("variant_id"),
                group_id="g1",
                quantity=line["quantity"],
                unit_price=line["unit_price"],
                subtotal=line_subtotal,
                discount=line_discount,
                tax=t.tax,
                total=t.gross,
            )
        )
    if sale.total is not None and sale.total != total:
        raise invalid(
            "total_mismatch",
            "the register's total does not match its lines",
            register_total=sale.total,
            lines_total=total,
        )
    quote = orders.Quote(
        currency=channel.currency,
        lines=quote_lines,
        groups=[orders.GroupQuote("g1", DeliveryMethod.IN_STORE.value, 0, 0, country)],
        subtotal=subtotal,
        discount_total=discount,
        shipping_total=0,
        tax_total=tax,
        total=total,
    )
    return described, quote


def _take_stock(
    session: Session,
    register: Register,
    lines: Sequence[Mapping[str, Any]],
    order_id: str,
    now: datetime,
) -> dict[str, int]:
    """Sell what the store has available; returns the units it did not have, per SKU."""
    wanted = {line["sku"]: line["quantity"] for line in lines}
    for _ in range(3):
        balances = {
            b.sku: b.available
            for b in inventory.stock_balances(
                session, skus=list(wanted), location_id=register.location_id, now=now
            )
        }
        selling = {sku: min(q, balances.get(sku, 0)) for sku, q in wanted.items()}
        to_sell = [(sku, q) for sku, q in selling.items() if q > 0]
        try:
            if to_sell:
                inventory.record_movement(
                    session,
                    location_id=register.location_id,
                    reason="sale",
                    lines=to_sell,
                    reference=order_id,
                    note=f"register {register.code}",
                    now=now,
                )
        except AppError as exc:
            if exc.code != "insufficient_stock":
                raise
            continue  # sold meanwhile: read again
        return {sku: q - selling[sku] for sku, q in wanted.items() if q > selling[sku]}
    raise conflict("stock_busy", "the store's stock kept changing; sync again")


def _customer(session: Session, customer_id: str | None) -> str | None:
    if not customer_id:
        return None
    return customers.resolve_customer_ref(session, customer_id)


def book_sale(
    session: Session,
    register: Register,
    sale: SaleInput,
    *,
    offline: bool,
    now: datetime | None = None,
) -> Booked:
    """Book one register sale: stock, payments, an order, events. Idempotent per
    ``(register, client_id)``."""
    at = _now(now)
    client_id = sale.client_id or str(uuid.uuid4())
    existing = session.scalar(
        select(PosSale).where(PosSale.register_id == register.id, PosSale.client_id == client_id)
    )
    if existing is not None:
        return _booked(session, existing, duplicate=True)
    sold_at = as_utc(sale.sold_at) if sale.sold_at else at
    described, quote = _price_lines(session, register, sale, offline, at)
    customer_id = _customer(session, sale.customer_id)
    allocations, change = _tenders(quote.total, sale.tenders)
    order_id = new_id("ord")
    sale_row = PosSale(
        id=new_id("psl"),
        register_id=register.id,
        client_id=client_id,
        sequence=sale.sequence,
        offline=offline,
        status="recorded",
        order_id=order_id,
        payload=sale.raw,
        sold_at=sold_at,
        received_at=at,
    )
    session.add(sale_row)
    session.flush()
    short = _take_stock(session, register, described, order_id, at)
    payments = pay.authorize_tenders(
        session,
        order_id=order_id,
        currency=quote.currency,
        allocations=allocations,
        customer_id=customer_id,
        allowed=pay.STORE_TENDERS,
        now=at,
    )
    for p in payments:
        if p.type == "cash":
            p.details = {**p.details, "change_due": change}
    location = inventory.get_location(session, register.location_id)
    group = {
        "id": "g1",
        "method": DeliveryMethod.IN_STORE.value,
        "skus": [line["sku"] for line in described],
        "location": {"id": location.id, "code": location.code, "name": location.name},
        "shipping": 0,
        "shipping_tax": 0,
    }
    order = Order(
        id=order_id,
        source="pos",
        channel_id=register.channel_id,
        customer_id=customer_id,
        status=OrderStatus.COMPLETED.value,
        currency=quote.currency,
        subtotal=quote.subtotal,
        discount_total=quote.discount_total,
        shipping_total=0,
        tax_total=quote.tax_total,
        total=quote.total,
        delivery=[group],
        coupons=[],
        fraud_score=0,
        fraud_reasons=[],
        register_id=register.id,
        history=[
            {
                "status": OrderStatus.COMPLETED.value,
                "at": sold_at.isoformat(),
                "note": f"register {register.code}" + (" (offline)" if offline else ""),
            }
        ],
        version=1,
        placed_at=sold_at,
        updated_at=at,
        fulfilled_at=sold_at,
    )
    session.add(order)
    session.flush()
    allocated = {
        "g1": [
            _Piece(line["sku"], register.location_id, line["quantity"] - short.get(line["sku"], 0))
            for line in described
            if line["quantity"] > short.get(line["sku"], 0)
        ]
    }
    rows = orders.line_rows(order_id, quote.lines, allocated)
    session.add_all(rows)
    captured_later = [p for p in payments if p.captured < p.amount]
    session.add_all(payments)
    session.flush()
    if captured_later:  # card or stored value: taken now, the goods leave with the customer
        pay.capture(session, order, now=at)
    discrepancies = [
        PosDiscrepancy(
            id=new_id("dsc"),
            kind="stock_shortfall",
            register_id=register.id,
            location_id=register.location_id,
            sale_id=sale_row.id,
            order_id=order_id,
            sku=sku,
            quantity=q,
            status="open",
            detail={
                "message": f"sold {q} unit(s) of {sku} the system did not have available; "
                "count the shelf and check orders holding this stock",
                "offline": offline,
                "sold_at": sold_at.isoformat(),
            },
            created_at=at,
        )
        for sku, q in short.items()
    ]
    session.add_all(discrepancies)
    channel = catalog.get_channel(session, register.channel_id)
    payload = orders.order_payload(order, rows, channel.code)
    payload.update(
        {
            "sale_id": sale_row.id,
            "register_id": register.id,
            "location_id": register.location_id,
            "client_id": client_id,
            "sequence": sale.sequence,
            "offline": offline,
            "occurred_at": sold_at.isoformat(),
            "tenders": [{"type": p.type, "amount_minor": p.amount} for p in payments],
            "change_due_minor": change,
            "stock_discrepancies": [{"sku": d.sku, "quantity": d.quantity} for d in discrepancies],
        }
    )
    emit(session, "pos.sale", payload, aggregate_id=order_id)
    for d in discrepancies:
        emit(
            session,
            "pos.stock_discrepancy",
            {
                "discrepancy_id": d.id,
                "register_id": register.id,
                "location_id": register.location_id,
                "order_id": order_id,
                "sale_id": sale_row.id,
                "sku": d.sku,
                "quantity": d.quantity,
                "offline": offline,
                "occurred_at": sold_at.isoformat(),
            },
            aggregate_id=d.sku,
        )
    session.flush()
    return Booked(sale_row, order, rows, payments, change, discrepancies)


@dataclass(frozen=True)
class _Piece:
    sku: str
    location_id: str
    quantity: int


def _booked(session: Session, sale: PosSale, duplicate: bool) -> Booked:
    order = session.get(Order, sale.order_id) if sale.order_id else None
    lines = orders.order_lines(session, order.id) if order else []
    payments = pay.order_payments(session, order.id) if order else []
    change = sum(int(p.details.get("change_due", 0)) for p in payments)
    discrepancies = list(
        session.scalars(
            select(PosDiscrepancy)
            .where(PosDiscrepancy.sale_id == sale.id)
            .order_by(PosDiscrepancy.id)
        )
    )
    return Booked(sale, order, lines, payments, change, discrepancies, duplicate)


def sell(
    session: Session, register_ref: str, sale: SaleInput, now: datetime | None = None
) -> Booked:
    """An online register sale (priced by the pricing service)."""
    register = get_register(session, register_ref)
    if not sale.lines:
        raise invalid("lines_required", "a sale needs at least one line")
    return book_sale(session, register, sale, offline=False, now=now)


def get_sale(session: Session, sale_id: str) -> Booked:
    sale = session.get(PosSale, sale_id)
    if sale is None:
        raise not_found("sale", sale_id)
    return _booked(session, sale, duplicate=False)


# --- sync -----------------------------------------------------------------------------------


@dataclass
class SyncItem:
    client_id: str
    sequence: int | None
    status: str  # created | duplicate | needs_review
    sale_id: str
    order_id: str | None
    stock_discrepancies: list[dict[str, Any]]
    error: dict[str, Any] | None = None


@dataclass
class SyncResult:
    register_id: str
    items: list[SyncItem]
    contiguous_through: int
    missing_sequences: list[int]

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)


def sync(
    session: Session, register_ref: str, sales: Sequence[SaleInput], now: datetime | None = None
) -> SyncResult:
    """Book a batch of offline sales in sequence order. Replays are no-ops; a sale that cannot
    be booked is kept for review; the register row is locked so two syncs of one register do
    not interleave."""
    at = _now(now)
    if len(sales) > MAX_BATCH:
        raise invalid("batch_too_large", f"at most {MAX_BATCH} sales per sync")
    ids = [s.client_id for s in sales]
    if any(not i for i in ids):
        raise invalid("client_id_required", "every offline sale carries its client id")
    register = get_register(session, register_ref, lock=True)
    known = {
        row.client_id: row
        for row in session.scalars(
            select(PosSale).where(PosSale.register_id == register.id, PosSale.client_id.in_(ids))
        )
    }
    items: list[SyncItem] = []
    for sale in sorted(sales, key=lambda s: (s.sequence is None, s.sequence or 0)):
        assert sale.client_id is not None
        row = known.get(sale.client_id)
        if row is not None:
            items.append(_item(session, row, "duplicate"))
            continue
        try:
            with session.begin_nested():
                booked = book_sale(session, register, sale, offline=True, now=at)
            items.append(_item(session, booked.sale, "created", booked.discrepancies))
            known[sale.client_id] = booked.sale
        except AppError as exc:
            row = _needs_review(session, register, sale, exc, at)
            known[sale.client_id] = row
            items.append(_item(session, row, "needs_review"))
    sequences = list(
        session.scalars(
            select(PosSale.sequence).where(
                PosSale.register_id == register.id,
                PosSale.sequence > register.contiguous_through,
            )
        )
    )
    seen = [s for s in sequences if s is not None]
    register.contiguous_through = advance_contiguous(register.contiguous_through, seen)
    session.flush()
    return SyncResult(
        register.id,
        items,
        register.contiguous_through,
        missing_sequences(register.contiguous_through, seen),
    )


def _item(
    session: Session,
    row: PosSale,
    status: str,
    discrepancies: Sequence[PosDiscrepancy] | None = None,
) -> SyncItem:
    if discrepancies is None:
        discrepancies = list(
            session.scalars(select(PosDiscrepancy).where(PosDiscrepancy.sale_id == row.id))
        )
    return SyncItem(
        client_id=row.client_id,
        sequence=row.sequence,
        status=status,
        sale_id=row.id,
        order_id=row.order_id,
        stock_discrepancies=[
            {"sku": d.sku, "quantity": d.quantity}
            for d in discrepancies
            if d.kind == "stock_shortfall"
        ],
        error=row.error,
    )


def _needs_review(
    session: Session, register: Register, sale: SaleInput, exc: AppError, at: datetime
) -> PosSale:
    assert sale.client_id is not None
    row = PosSale(
        id=new_id("psl"),
        register_id=register.id,
        client_id=sale.client_id,
        sequence=sale.sequence,
        offline=True,
        status="needs_review",
        order_id=None,
        payload=sale.raw,
        error=exc.to_dict()["error"],
        sold_at=as_utc(sale.sold_at) if sale.sold_at else at,
        received_at=at,
    )
    session.add(row)
    session.flush()
    d = PosDiscrepancy(
        id=new_id("dsc"),
        kind="sale_needs_review",
        register_id=register.id,
        location_id=register.location_id,
        sale_id=row.id,
        order_id=None,
        sku=None,
        quantity=0,
        status="open",
        detail={"message": f"the sale could not be booked: {exc.message}", "error": row.error},
        created_at=at,
    )
    session.add(d)
    emit(
        session,
        "pos.sale_needs_review",
        {
            "discrepancy_id": d.id,
            "register_id": register.id,
            "location_id": register.location_id,
            "sale_id": row.id,
            "client_id": row.client_id,
            "error": row.error,
        },
        aggregate_id=register.id,
    )
    session.flush()
    return row


# --- discrepancies --------------------------------------------------------------------------


def list_discrepancies(
    session: Session,
    *,
    location_ids: Sequence[str] | None = None,
    status: str | None = "open",
    limit: int = 200,
) -> list[PosDiscrepancy]:
    query = select(PosDiscrepancy).order_by(PosDiscrepancy.id).limit(limit)
    if status:
        query = query.where(PosDiscrepancy.status == status)
    if location_ids is not None:
        query = query.where(PosDiscrepancy.location_id.in_(list(location_ids)))
    return list(session.scalars(query))


def resolve_discrepancy(
    session: Session,
    discrepancy_id: str,
    *,
    resolution: str,
    by: str | None = None,
    now: datetime | None = None,
) -> PosDiscrepancy:
    d = session.get(PosDiscrepancy, discrepancy_id, with_for_update=True)
    if d is None:
        raise not_found("discrepancy", discrepancy_id)
    if d.status != "open":
        raise conflict("discrepancy_resolved", f"discrepancy {discrepancy_id} is {d.status}")
    if not resolution.strip():
        raise invalid("resolution_required", "say how the discrepancy was resolved")
    d.status = "resolved"
    d.resolution = resolution.strip()[:500]
    d.resolved_at = _now(now)
    d.detail = {**d.detail, "resolved_by": by}
    session.flush()
    return d
