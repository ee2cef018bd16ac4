"""Returns and exchanges, anywhere: a return authorisation (RMA) for an order of any channel
can be opened on any channel and received at any location that takes returns.

* Opening checks the order was handed over, the return window of the channel it was bought on
  (``return_window_closed`` 422 when past) and that no more units come back than were bought.
* Receiving restocks per unit condition at the receiving location (``sellable``: a ``return``
  movement, back on that location's shelf; ``damaged``: a ``return`` then a ``damage``
  movement, written off there), refunds the value of the returned units (their share of what
  was paid, rounded so all units add up to the line total) to the original tenders or as
  store credit, and settles exchanges: the returned units pay for the new variant, the
  difference is charged (tenders needed) or refunded.
"""

from __future__ import annotations

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
from omniretail.inventory import service as inventory
from omniretail.order import payments as pay
from omniretail.order import rates
from omniretail.order import service as orders
from omniretail.order.domain import (
    RETURNABLE_STATUSES,
    Condition,
    DeliveryMethod,
    OrderStatus,
    TenderRequest,
    allocate_tenders,
    check_return_window,
    refund_share,
)
from omniretail.order.models import Order, ReturnAuthorization

S = OrderStatus


def _now(now: datetime | None) -> datetime:
    return utcnow() if now is None else as_utc(now)


def get_return(session: Session, return_id: str) -> ReturnAuthorization:
    rma = session.get(ReturnAuthorization, return_id)
    if rma is None:
        raise not_found("return", return_id)
    return rma


def order_returns(session: Session, order_id: str) -> list[ReturnAuthorization]:
    return list(
        session.scalars(
            select(ReturnAuthorization)
            .where(ReturnAuthorization.order_id == order_id)
            .order_by(ReturnAuthorization.id)
        )
    )


def _counted(rmas: Sequence[ReturnAuthorization]) -> tuple[dict[str, int], dict[str, int]]:
    """Units per SKU already on a return (open or received) and already received."""
    claimed: dict[str, int] = {}
    received: dict[str, int] = {}
    for rma in rmas:
        if rma.status == "authorized":
            for line in rma.lines:
                claimed[line["sku"]] = claimed.get(line["sku"], 0) + line["quantity"]
        elif rma.status == "received":
            for line in rma.received_lines:
                claimed[line["sku"]] = claimed.get(line["sku"], 0) + line["quantity"]
                received[line["sku"]] = received.get(line["sku"], 0) + line["quantity"]
    return claimed, received


def _window_start(order: Order) -> datetime:
    return as_utc(order.delivered_at or order.fulfilled_at or order.placed_at)


def create_return(
    session: Session,
    order_id: str,
    access: orders.Access,
    *,
    lines: Sequence[tuple[str, int, str | None]],
    refund_method: str = "original",
    exchanges: Sequence[tuple[str, str, int]] = (),
    channel: str | None = None,
    now: datetime | None = None,
) -> ReturnAuthorization:
    """Open a return for ``lines`` = [(sku, quantity, reason)] of an order, from any channel.
    ``exchanges`` = [(sku, new_sku, quantity)] swaps returned units for another variant."""
    at = _now(now)
    orders.open_order(session, order_id, access)
    order = orders.lock_order(session, order_id)
    if S(order.status) not in RETURNABLE_STATUSES:
        raise conflict(
            "order_not_returnable",
            f"an order that is {order.status} cannot be returned",
            status=order.status,
        )
    if refund_method not in ("original", "store_credit"):
        raise invalid("invalid_refund_method", "refund to 'original' or 'store_credit'")
    days = rates.return_window(session, order.channel_id)
    check_return_window(_window_start(order), at, days)
    bought = {line.sku: line for line in orders.order_lines(session, order.id)}
    claimed, _ = _counted(order_returns(session, order.id))
    wanted: dict[str, dict[str, Any]] = {}
    for sku, quantity, reason in lines:
        if sku not in bought:
            raise invalid("sku_not_in_order", f"{sku!r} is not on order {order.id}", sku=sku)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise invalid("invalid_quantity", "return at least one unit", sku=sku)
        entry = wanted.setdefault(sku, {"sku": sku, "quantity": 0, "reason": reason})
        entry["quantity"] += quantity
    if not wanted:
        raise invalid("lines_required", "a return needs at least one line")
    for sku, entry in wanted.items():
        left = bought[sku].quantity - claimed.get(sku, 0)
        if entry["quantity"] > left:
            raise invalid(
                "return_exceeds_purchased",
                f"only {left} unit(s) of {sku!r} can still be returned",
                sku=sku,
                requested=entry["quantity"],
                returnable=left,
            )
    swaps = _check_exchanges(session, exchanges, wanted)
    rma = ReturnAuthorization(
        id=new_id("ret"),
        order_id=order.id,
        customer_id=order.customer_id,
        channel_id=catalog.get_channel(
            session, access.channel_id or channel or order.channel_id
        ).id,
        status="authorized",
        refund_method=refund_method,
        lines=list(wanted.values()),
        exchanges=swaps,
        received_lines=[],
        refund_total=0,
        created_at=at,
    )
    session.add(rma)
    session.flush()
    emit(
        session,
        "return.authorized",
        {
            "id": rma.id,
            "return_id": rma.id,
            "order_id": order.id,
            "customer_id": order.customer_id,
            "order_channel_id": order.channel_id,
            "channel_id": rma.channel_id,
            "lines": rma.lines,
            "exchanges": swaps,
            "refund_method": refund_method,
            "occurred_at": at.isoformat(),
        },
        aggregate_id=order.id,
    )
    return rma


def _check_exchanges(
    session: Session,
    exchanges: Sequence[tuple[str, str, int]],
    wanted: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    swaps: dict[str, dict[str, Any]] = {}
    for sku, new_sku, quantity in exchanges:
        if sku not in wanted:
            raise invalid("exchange_not_returned", f"{sku!r} is not on this return", sku=sku)
        entry = swaps.setdefault(
            f"{sku}>{new_sku}", {"sku": sku, "new_sku": new_sku, "quantity": 0}
        )
        entry["quantity"] += quantity
    per_sku: dict[str, int] = {}
    for s in swaps.values():
        per_sku[s["sku"]] = per_sku.get(s["sku"], 0) + s["quantity"]
        if s["quantity"] < 1:
            raise invalid("invalid_quantity", "exchange at least one unit", sku=s["sku"])
    for sku, n in per_sku.items():
        if n > wanted[sku]["quantity"]:
            raise invalid(
                "exchange_exceeds_return",
                f"more units of {sku!r} exchanged than returned",
                sku=sku,
            )
    if swaps:
        orders.describe(session, [{"sku": s["new_sku"], "quantity": 1} for s in swaps.values()])
    return list(swaps.values())


@dataclass
class Received:
    rma: ReturnAuthorization
    refund: pay.RefundResult | None
    refund_amount: int
    exchange_order: Order | None = None
    charged: int = 0
    notes: list[str] = field(default_factory=list)


def receive_return(
    session: Session,
    return_id: str,
    *,
    location_id: str,
    lines: Sequence[tuple[str, int, str]] | None = None,
    tenders: Sequence[TenderRequest] = (),
    by: str | None = None,
    now: datetime | None = None,
) -> Received:
    """The goods arrived at ``location_id``: restock or write off each line by condition,
    refund, and settle exchanges. ``lines`` = [(sku, quantity, condition)] (default: all
    authorised units, sellable)."""
    at = _now(now)
    rma = session.get(ReturnAuthorization, return_id, with_for_update=True, populate_existing=True)
    if rma is None:
        raise not_found("return", return_id)
    order = orders.lock_order(session, rma.order_id)
    if rma.status != "authorized":
        raise conflict("return_not_open", f"return {return_id} is {rma.status}", status=rma.status)
    location = inventory.get_location(session, location_id)
    if not location.active:
        raise conflict("location_inactive", f"location {location.code!r} is not active")
    if "returns" not in (location.capabilities or []):
        raise invalid(
            "location_not_eligible",
            f"location {location.code!r} does not take returns",
            capability="returns",
        )
    authorised = {line["sku"]: line["quantity"] for line in rma.lines}
    got = _received_lines(lines, authorised)
    # Stock: everything comes back in at the receiving location; damaged units are written off.
    back = [(sku, q) for sku, (q, _) in _by_sku(got).items()]
    inventory.record_movement(
        session, location_id=location.id, reason="return", lines=back, reference=rma.id, now=at
    )
    damaged = [(g["sku"], g["quantity"]) for g in got if g["condition"] == Condition.DAMAGED.value]
    if damaged:
        inventory.record_movement(
            session,
            location_id=location.id,
            reason="damage",
            lines=damaged,
            reference=rma.id,
            note="returned damaged: written off",
            now=at,
        )
    # Value of the returned units: their share of what was paid for each line.
    bought = {line.sku: line for line in orders.order_lines(session, order.id)}
    _, already = _counted(order_returns(session, order.id))
    received_units = {sku: q for sku, (q, _) in _by_sku(got).items()}
    value: dict[str, int] = {
        sku: refund_share(
            bought[sku].total, bought[sku].quantity, already.get(sku, 0), received_units[sku]
        )
        for sku in received_units
    }
    swaps = [s for s in rma.exchanges if received_units.get(s["sku"], 0) > 0]
    exchange_credit = 0
    exchange_lines: list[dict[str, Any]] = []
    for s in swaps:
        units = min(s["quantity"], received_units[s["sku"]])
        per_unit_value = value[s["sku"]] * units // received_units[s["sku"]]
        exchange_credit += per_unit_value
        exchange_lines.append({"sku": s["new_sku"], "quantity": units})
    refund_amount = sum(value.values()) - exchange_credit
    result = Received(rma, None, 0)
    exchange_order: Order | None = None
    if exchange_lines:
        exchange_order, difference = _exchange_order(
            session, order, rma, location, exchange_lines, exchange_credit, tenders, at
        )
        result.exchange_order = exchange_order
        if difference > 0:
            result.charged = difference
        else:
            refund_amount += -difference
    payments = pay.order_payments(session, order.id)
    refundable = sum(p.captured - p.refunded for p in payments)
    if refund_amount > refundable:
        result.notes.append(
            f"refund capped at the {refundable} still refundable (asked {refund_amount})"
        )
        refund_amount = refundable
    if refund_amount > 0:
        result.refund = pay.refund(
            session,
            order,
            refund_amount,
            destination=rma.refund_method,
            reason="return",
            return_id=rma.id,
            now=at,
        )
    result.refund_amount = refund_amount
    rma.status = "received"
    rma.received_location_id = location.id
    rma.received_lines = got
    rma.received_at = at
    rma.refund_total = refund_amount
    rma.exchange_order_id = exchange_order.id if exchange_order else None
    order.updated_at = at
    session.flush()
    emit(
        session,
        "return.received",
        {
            "id": rma.id,
            "return_id": rma.id,
            "order_id": order.id,
            "customer_id": order.customer_id,
            "order_channel_id": order.channel_id,
            "channel_id": rma.channel_id,
            "location_id": location.id,
            "lines": got,
            "amount_minor": refund_amount,
            "currency": order.currency,
            "refund_method": rma.refund_method,
            "exchange_order_id": rma.exchange_order_id,
            "received_by": by,
            "occurred_at": at.isoformat(),
        },
        aggregate_id=order.id,
    )
    return result


def _by_sku(got: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, list[str]]]:
    out: dict[str, tuple[int, list[str]]] = {}
    for g in got:
        q, conditions = out.get(g["sku"], (0, []))
        out[g["sku"]] = (q + g["quantity"], [*conditions, g["condition"]])
    return out


def _received_lines(
    lines: Sequence[tuple[str, int, str]] | None, authorised: Mapping[str, int]
) -> list[dict[str, Any]]:
    if lines is None:
        return [
            {"sku": s, "quantity": q, "condition": Condition.SELLABLE.value}
            for s, q in authorised.items()
        ]
    got: list[dict[str, Any]] = []
    counted: dict[str, int] = {}
    for sku, quantity, condition in lines:
        try:
            cond = Condition(condition)
        except ValueError:
            raise invalid(
                "invalid_condition",
                f"condition is one of {', '.join(c.value for c in Condition)}",
                sku=sku,
            ) from None
        if sku not in authorised:
            raise invalid("sku_not_on_return", f"{sku!r} is not on this return", sku=sku)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise invalid("invalid_quantity", "receive at least one unit", sku=sku)
        counted[sku] = counted.get(sku, 0) + quantity
        if counted[sku] > authorised[sku]:
            raise invalid(
                "receipt_exceeds_return",
                f"more units of {sku!r} than the return authorises",
                sku=sku,
                authorised=authorised[sku],
            )
        got.append({"sku": sku, "quantity": quantity, "condition": cond.value})
    if not got:
        raise invalid("lines_required", "receive at least one line")
    return got


def _exchange_order(
    session: Session,
    order: Order,
    rma: ReturnAuthorization,
    location: Any,
    lines: list[dict[str, Any]],
    credit: int,
    tenders: Sequence[TenderRequest],
    at: datetime,
) -> tuple[Order, int]:
    """The replacement goods as an order of their own, paid by the returned units' value
    (``exchange_credit``) plus tenders for any difference. At a store the customer takes them
    on the spot; elsewhere they are held and allocated for shipping."""
    channel = catalog.get_channel(session, order.channel_id)
    described = orders.describe(session, lines)
    on_the_spot = location.type == "store"
    address = dict(location.address or {})
    group: dict[str, Any] = {
        "id": "g1",
        "method": DeliveryMethod.IN_STORE.value if on_the_spot else None,
        "skus": [line["sku"] for line in described],
        "location": {
            "id": location.id,
            "code": location.code,
            "name": location.name,
            "type": location.type,
            "country": str(address.get("country") or "").upper() or None,
            "region": address.get("region"),
        },
    }
    quote = orders.make_quote(
        session,
        channel=channel,
        lines=described,
        groups=[{**group, "method": None}],
        customer_id=order.customer_id,
        coupons=[],
        shipping_address=None if on_the_spot else order.shipping_address,
        now=at,
        shipping_rates=[],
    )
    difference = quote.total - credit
    exchange_id = new_id("ord")
    allocated: dict[str, list[Any]] = {}
    if on_the_spot:
        inventory.record_movement(
            session,
            location_id=location.id,
            reason="sale",
            lines=[(line["sku"], line["quantity"]) for line in described],
            reference=exchange_id,
            now=at,
        )
        allocated["g1"] = [_Piece(line["sku"], location.id, line["quantity"]) for line in described]
        status = S.COMPLETED
    else:
        view = inventory.reserve(
            session,
            [(line["sku"], line["quantity"]) for line in described],
            channel=channel.id,
            reference=exchange_id,
            kind="order",
            now=at,
        )
        view = inventory.allocate_reservation(session, view.id, order_reference=exchange_id, now=at)
        group["reservation_id"] = view.id
        group["method"] = DeliveryMethod.STANDARD.value
        allocated["g1"] = list(view.lines)
        status = S.ALLOCATED
    allocations: list[tuple[TenderRequest, int]] = []
    paid_by_credit = min(credit, quote.total)
    if paid_by_credit > 0:
        allocations.append((TenderRequest("exchange_credit", paid_by_credit), paid_by_credit))
    if difference > 0:
        if not tenders:
            raise AppError(
                "payment_required",
                "the new items cost more than the returned ones: give tenders for the difference",
                402,
                {"difference": difference},
            )
        allocations += allocate_tenders(difference, list(tenders))
    payments = pay.authorize_tenders(
        session,
        order_id=exchange_id,
        currency=order.currency,
        allocations=allocations,
        customer_id=order.customer_id,
        allowed=pay.STORE_TENDERS | {"exchange_credit"},
        now=at,
    )
    exchange = Order(
        id=exchange_id,
        source="exchange",
        channel_id=channel.id,
        customer_id=order.customer_id,
        email=order.email,
        status=status.value,
        currency=order.currency,
        subtotal=quote.subtotal,
        discount_total=quote.discount_total,
        shipping_total=0,
        tax_total=quote.tax_total,
        total=quote.total,
        shipping_address=order.shipping_address,
        billing_address=order.billing_address,
        delivery=[{**group, "shipping": 0, "shipping_tax": 0}],
        coupons=[],
        fraud_score=0,
        fraud_reasons=[],
        parent_return_id=rma.id,
        history=[
            {"status": S.PLACED.value, "at": at.isoformat(), "note": f"exchange for {rma.id}"},
            {"status": status.value, "at": at.isoformat()},
        ],
        version=1,
        placed_at=at,
        updated_at=at,
        fulfilled_at=at if on_the_spot else None,
    )
    session.add(exchange)
    session.flush()
    rows = orders.line_rows(exchange_id, quote.lines, allocated)
    session.add_all(rows)
    session.add_all(payments)
    session.flush()
    if on_the_spot:
        pay.capture(session, exchange, now=at)
    payload = orders.order_payload(exchange, rows, channel.code)
    payload["return_id"] = rma.id
    payload["original_order_id"] = order.id
    emit(session, "order.placed", payload, aggregate_id=exchange_id)
    return exchange, difference


@dataclass(frozen=True)
class _Piece:
    sku: str
    location_id: str
    quantity: int
