"""HTTP routes of the order context: carts and checkout (storefront keys and staff), orders,
payments, returns, checkout settings and the store registers (POS). Thin wrappers over
``order.service``, ``order.returns`` and ``order.pos``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.core import ratelimit
from omniretail.core.auth import Principal, Role
from omniretail.core.config import get_settings
from omniretail.core.errors import not_found
from omniretail.core.timeutil import as_utc
from omniretail.core.web import (
    ERROR_RESPONSES,
    Idempotent,
    SessionDep,
    TransactionalRoute,
    check_locations,
    error_doc,
    require,
    storefront,
)
from omniretail.order import payments as pay
from omniretail.order import pos, rates, returns, service, subscribers
from omniretail.order.domain import TenderRequest
from omniretail.order.models import Cart, Order, PosDiscrepancy, Register, ReturnAuthorization
from omniretail.order.schemas import (
    CancelIn,
    CaptureIn,
    CartIn,
    CartLineOut,
    CartOut,
    CheckInIn,
    CheckoutIn,
    CompleteIn,
    CouponsIn,
    DiscrepancyOut,
    EditIn,
    GiftCardCodeIn,
    GiftCardIn,
    GiftCardOut,
    HoldOut,
    LinesIn,
    LoginIn,
    LookupItemOut,
    OrderLineOut,
    OrderOut,
    OrderPage,
    OrderSummaryOut,
    PaymentOut,
    PaymentTotalsOut,
    QuantityIn,
    ReceiptOut,
    ReceivedOut,
    ReceiveIn,
    RefundIn,
    RefundLineOut,
    RefundOut,
    RegisterIn,
    RegisterOut,
    ResolveIn,
    ReturnIn,
    ReturnOut,
    ReturnPolicyIn,
    ReturnPolicyOut,
    ReviewIn,
    SaleIn,
    SaleTenderIn,
    ShippingRateIn,
    ShippingRateOut,
    StatusIn,
    StoreCreditOut,
    SyncIn,
    SyncItemOut,
    SyncOut,
    TaxRateIn,
    TaxRateOut,
    TenderIn,
    TotalsOut,
)


def _example(code: str, text: str, details: dict[str, Any]) -> dict[str, Any]:
    return error_doc(code, text, details)


RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    402: _example("payment_declined", "A tender was declined", {"decline_code": "card_declined"}),
    404: _example("cart_not_found", "Unknown cart, order or token", {"cart": "crt_01J..."}),
    409: _example(
        "insufficient_stock",
        "Not enough stock (or the cart's hold expired)",
        {"sku": "TEE-BLK-M", "requested": 2, "available": 1},
    ),
}

router = APIRouter(prefix="/api/v1", route_class=TransactionalRoute, responses=RESPONSES)
subscribers.register()
ORDERS: list[str | Any] = ["orders"]
POS: list[str | Any] = ["pos"]

Shopper = Annotated[Principal, Depends(storefront(Role.STORE_ASSOCIATE, Role.SUPPORT_AGENT))]
Support = Annotated[Principal, Depends(require(Role.SUPPORT_AGENT, Role.STORE_ASSOCIATE))]
Reader = Annotated[
    Principal, Depends(require(Role.SUPPORT_AGENT, Role.STORE_ASSOCIATE, Role.ANALYST))
]
Fulfiller = Annotated[Principal, Depends(require(Role.STORE_ASSOCIATE))]
Money = Annotated[Principal, Depends(require(Role.SUPPORT_AGENT))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Associate = Annotated[Principal, Depends(require(Role.STORE_ASSOCIATE))]
CartTokenHeader = Annotated[
    str | None,
    Header(alias="X-Cart-Token", description="Storefront keys: the cart's token (from create)"),
]
OrderTokenHeader = Annotated[
    str | None,
    Header(alias="X-Order-Token", description="Storefront keys: the order's token (checkout)"),
]


def _access(principal: Principal, token: str | None) -> service.Access:
    if principal.role is Role.CHANNEL:
        return service.Access(staff=False, channel_id=principal.channel_id, token=token)
    return service.Access.staff_member()


def _at(principal: Principal, location_id: str) -> None:
    check_locations(principal, [location_id])


def _tenders(tenders: list[TenderIn]) -> list[TenderRequest]:
    return [TenderRequest(t.type, t.amount, t.token) for t in tenders]


# --- output builders ------------------------------------------------------------------------


def cart_out(cart: Cart, token: str | None = None) -> CartOut:
    snapshot = cart.pricing or {}
    priced = {line["sku"]: line for line in snapshot.get("lines", [])}
    lines = []
    for line in cart.lines:
        p = priced.get(line["sku"], {})
        lines.append(
            CartLineOut(
                sku=line["sku"],
                title=line.get("title", ""),
                quantity=line["quantity"],
                group_id=p.get("group_id"),
                unit_price=p.get("unit_price"),
                subtotal=p.get("subtotal"),
                discount=p.get("discount"),
                tax=p.get("tax"),
                total=p.get("total"),
            )
        )
    shipping = {g["id"]: g for g in snapshot.get("groups", [])}
    return CartOut(
        id=cart.id,
        status=cart.status,
        customer_id=cart.customer_id,
        channel_id=cart.channel_id,
        currency=cart.currency,
        lines=lines,
        coupon_codes=list(cart.coupon_codes or []),
        email=cart.email,
        shipping_address=cart.shipping_address,
        billing_address=cart.billing_address,
        delivery=[
            {**g, "shipping": shipping.get(g["id"], {}).get("shipping")} for g in cart.delivery
        ],
        holds=[
            HoldOut(
                group=h["group"],
                reservation_id=h["reservation_id"],
                expires_at=datetime.fromisoformat(h["expires_at"]),
            )
            for h in cart.holds
        ],
        totals=TotalsOut(
            subtotal=snapshot.get("subtotal", 0),
            discount_total=snapshot.get("discount_total", 0),
            shipping_total=snapshot.get("shipping_total", 0),
            tax_total=snapshot.get("tax_total", 0),
            total=snapshot.get("total", 0),
        ),
        promotions=snapshot.get("promotions", []),
        notices=snapshot.get("notices", []),
        order_id=cart.order_id,
        merged_into=cart.merged_into,
        version=cart.version,
        updated_at=as_utc(cart.updated_at),
        cart_token=token,
    )


def order_out(
    session: Session,
    order: Order,
    token: str | None = None,
    lines: list[Any] | None = None,
    payments: list[Any] | None = None,
) -> OrderOut:
    lines = lines if lines is not None else service.order_lines(session, order.id)
    payments = payments if payments is not None else pay.order_payments(session, order.id)
    return OrderOut(
        id=order.id,
        status=order.status,
        source=order.source,
        channel_id=order.channel_id,
        customer_id=order.customer_id,
        email=order.email,
        currency=order.currency,
        subtotal=order.subtotal,
        discount_total=order.discount_total,
        shipping_total=order.shipping_total,
        tax_total=order.tax_total,
        total=order.total,
        shipping_address=order.shipping_address,
        billing_address=order.billing_address,
        delivery=list(order.delivery),
        coupons=list(order.coupons),
        fraud={"score": order.fraud_score, "reasons": list(order.fraud_reasons)},
        lines=[OrderLineOut.model_validate(line) for line in lines],
        payments=[PaymentOut.model_validate(p) for p in payments],
        payment_totals=PaymentTotalsOut(**pay.totals(payments)),
        history=list(order.history),
        register_id=order.register_id,
        parent_return_id=order.parent_return_id,
        placed_at=as_utc(order.placed_at),
        fulfilled_at=as_utc(order.fulfilled_at) if order.fulfilled_at else None,
        delivered_at=as_utc(order.delivered_at) if order.delivered_at else None,
        cancelled_at=as_utc(order.cancelled_at) if order.cancelled_at else None,
        order_token=token,
    )


def return_out(rma: ReturnAuthorization) -> ReturnOut:
    out = ReturnOut.model_validate(rma)
    out.created_at = as_utc(out.created_at)
    return out


# --- carts ----------------------------------------------------------------------------------


@router.post(
    "/carts",
    status_code=201,
    tags=ORDERS,
    summary="Start a cart",
    description="Anonymous by default: the answer carries `cart_token`, shown once; send it "
    "back as `X-Cart-Token`. With `customer_id` the customer's active cart (from any channel) "
    "is returned, with the lines added.",
)
def create_cart(body: CartIn, session: SessionDep, principal: Shopper) -> CartOut:
    cart, token = service.create_cart(
        session,
        _access(principal, None),
        channel=body.channel,
        customer_id=body.customer_id,
        email=body.email,
        lines=[(line.sku, line.quantity) for line in body.lines],
        anonymous_id=body.anonymous_id,
    )
    return cart_out(cart, token)


@router.get("/carts/{cart_id}", tags=ORDERS, summary="A cart with its prices and holds")
def get_cart(
    cart_id: str, session: SessionDep, principal: Shopper, x_cart_token: CartTokenHeader = None
) -> CartOut:
    return cart_out(service.get_cart(session, cart_id, _access(principal, x_cart_token)))


@router.post(
    "/carts/{cart_id}/lines",
    tags=ORDERS,
    summary="Add lines (quantities are summed); stock is held and the cart re-priced",
)
def add_lines(
    cart_id: str,
    body: LinesIn,
    session: SessionDep,
    principal: Shopper,
    x_cart_token: CartTokenHeader = None,
    _: None = Idempotent,
) -> CartOut:
    cart = service.add_items(
        session,
        cart_id,
        _access(principal, x_cart_token),
        [(line.sku, line.quantity) for line in body.lines],
    )
    return cart_out(cart)


@router.put("/carts/{cart_id}/lines/{sku}", tags=ORDERS, summary="Set a line's quantity")
def set_line(
    cart_id: str,
    sku: str,
    body: QuantityIn,
    session: SessionDep,
    principal: Shopper,
    x_cart_token: CartTokenHeader = None,
) -> CartOut:
    cart = service.set_quantity(
        session, cart_id, _access(principal, x_cart_token), sku, body.quantity
    )
    return cart_out(cart)


@router.delete("/carts/{cart_id}/lines/{sku}", tags=ORDERS, summary="Remove a line")
def delete_line(
    cart_id: str,
    sku: str,
    session: SessionDep,
    principal: Shopper,
    x_cart_token: CartTokenHeader = None,
) -> CartOut:
    return cart_out(
        service.set_quantity(session, cart_id, _access(principal, x_cart_token), sku, 0)
    )


@router.put("/carts/{cart_id}/coupons", tags=ORDERS, summary="Replace the cart's coupon codes")
def set_coupons(
    cart_id: str,
    body: CouponsIn,
    session: SessionDep,
    principal: Shopper,
    x_cart_token: CartTokenHeader = None,
) -> CartOut:
    cart = service.set_coupons(session, cart_id, _access(principal, x_cart_token), body.codes)
    return cart_out(cart)


@router.put(
    "/carts/{cart_id}/checkout",
    tags=ORDERS,
    summary="Contact, addresses and a delivery method per group of lines",
    description="Fields left out are kept. Methods: standard, express, same_day (home "
    "delivery), bopis and curbside (a store with pickup/curbside), locker (a locker location), "
    "ship_from_store (a store that ships). The cart is re-priced with shipping and taxes.",
)
def set_checkout(
    cart_id: str,
    body: CheckoutIn,
    session: SessionDep,
    principal: Shopper,
    x_cart_token: CartTokenHeader = None,
) -> CartOut:
    given = body.model_fields_set
    kwargs: dict[str, Any] = {}
    if "email" in given:
        kwargs["email"] = body.email
    if "shipping_address" in given:
        kwargs["shipping_address"] = (
            body.shipping_address.model_dump(exclude_none=True) if body.shipping_address else None
        )
    if "billing_address" in given:
        kwargs["billing_address"] = (
            body.billing_address.model_dump(exclude_none=True) if body.billing_address else None
        )
    if body.delivery is not None:
        kwargs["delivery"] = [g.model_dump(exclude_none=True) for g in body.delivery]
    cart = service.set_checkout(session, cart_id, _access(principal, x_cart_token), **kwargs)
    return cart_out(cart)


@router.post(
    "/carts/login",
    tags=ORDERS,
    summary="The shopper signed in: continue their cart here (merging an anonymous one)",
    description="Returns the customer's active cart, whichever channel it was started on, with "
    "a new `cart_token` for this channel. With `cart_id` (and its `X-Cart-Token`) the anonymous "
    "cart is merged in: quantities of the same SKU are summed (kept within available stock).",
)
def login(
    body: LoginIn, session: SessionDep, principal: Shopper, x_cart_token: CartTokenHeader = None
) -> CartOut:
    cart, token = service.login(
        session,
        _access(principal, x_cart_token),
        customer_id=body.customer_id,
        cart_id=body.cart_id,
        channel=body.channel,
    )
    return cart_out(cart, token)


@router.post(
    "/carts/{cart_id}/complete",
    status_code=201,
    tags=ORDERS,
    summary="Place the order: exactly one order per cart, payment authorised",
    description="One transaction: re-price, fraud check, holds become allocations, coupons are "
    "redeemed, tenders authorised (split tender: fixed amounts first, one tender without an "
    "amount takes the rest). Send an `Idempotency-Key`: a repeat returns the first answer. "
    "Completing a cart that is already an order answers 200 with that order.",
    responses={201: {"description": "The new order (with `order_token`, shown once)"}},
)
def complete(
    cart_id: str,
    body: CompleteIn,
    session: SessionDep,
    principal: Shopper,
    response: Response,
    x_cart_token: CartTokenHeader = None,
    _: None = Idempotent,
) -> OrderOut:
    done = service.complete(
        session,
        cart_id,
        _access(principal, x_cart_token),
        tenders=_tenders(body.tenders),
        client_ip=body.client_ip,
    )
    if not done.created:
        response.status_code = 200
    return order_out(session, done.order, done.order_token, done.lines, done.payments)


# --- orders ---------------------------------------------------------------------------------


@router.get("/orders", tags=ORDERS, summary="Orders, newest first")
def list_orders(
    session: SessionDep,
    _: Reader,
    status: str | None = None,
    channel: str | None = None,
    customer_id: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OrderPage:
    rows, next_cursor = service.list_orders(
        session,
        status=status,
        channel_id=channel,
        customer_id=customer_id,
        cursor=cursor,
        limit=limit,
    )
    return OrderPage(
        items=[OrderSummaryOut.model_validate(o) for o in rows], next_cursor=next_cursor
    )


@router.get(
    "/customers/{customer_id}/orders",
    tags=ORDERS,
    summary="One order history per customer, across every channel",
    description="Web, app, marketplace and store-register orders of the person (merged "
    "profiles included), newest first. Storefront keys send the X-Cart-Token of a cart of "
    "this customer.",
)
def customer_orders(
    customer_id: str,
    session: SessionDep,
    principal: Shopper,
    x_cart_token: CartTokenHeader = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OrderPage:
    if principal.role is Role.CHANNEL:
        root = service.customers.resolve_customer_ref(session, customer_id)
        if x_cart_token is None or service.customer_of_token(session, x_cart_token) != root:
            raise not_found("customer", customer_id)
    rows, next_cursor = service.customer_orders(session, customer_id, cursor=cursor, limit=limit)
    return OrderPage(
        items=[OrderSummaryOut.model_validate(o) for o in rows], next_cursor=next_cursor
    )


@router.get("/orders/{order_id}", tags=ORDERS, summary="An order with lines and payments")
def get_order(
    order_id: str,
    session: SessionDep,
    principal: Shopper,
    x_order_token: OrderTokenHeader = None,
) -> OrderOut:
    order = service.open_order(session, order_id, _access(principal, x_order_token))
    return order_out(session, order)


@router.patch(
    "/orders/{order_id}",
    tags=ORDERS,
    summary="Edit an order before fulfilment (quantities, shipping address)",
)
def edit_order(
    order_id: str,
    body: EditIn,
    session: SessionDep,
    principal: Shopper,
    x_order_token: OrderTokenHeader = None,
) -> OrderOut:
    order = service.edit_order(
        session,
        order_id,
        _access(principal, x_order_token),
        lines=[(line.sku, line.quantity) for line in body.lines] if body.lines else None,
        shipping_address=body.shipping_address.model_dump(exclude_none=True)
        if body.shipping_address
        else None,
        tenders=_tenders(body.tenders),
    )
    return order_out(session, order)


@router.post("/orders/{order_id}/cancel", tags=ORDERS, summary="Cancel an order")
def cancel_order(
    order_id: str,
    body: CancelIn,
    session: SessionDep,
    principal: Shopper,
    x_order_token: OrderTokenHeader = None,
    _: None = Idempotent,
) -> OrderOut:
    service.open_order(session, order_id, _access(principal, x_order_token))
    order = service.cancel_order(session, order_id, reason=body.reason, by=principal.id)
    return order_out(session, order)


@router.post(
    "/orders/{order_id}/status",
    tags=ORDERS,
    summary="Move an order along its lifecycle",
    description="fulfilling, ready_for_pickup, shipped, picked_up, delivered, completed. "
    "Shipping or handing over captures the payment.",
)
def set_status(
    order_id: str, body: StatusIn, session: SessionDep, principal: Fulfiller
) -> OrderOut:
    order = service.transition(session, order_id, body.status, by=principal.id, note=body.note)
    return order_out(session, order)


@router.post("/orders/{order_id}/review", tags=ORDERS, summary="Decide a fraud hold")
def review(order_id: str, body: ReviewIn, session: SessionDep, principal: Money) -> OrderOut:
    order = service.review(
        session, order_id, approve=body.decision == "approve", by=principal.id, note=body.note
    )
    return order_out(session, order)


@router.post("/orders/{order_id}/capture", tags=ORDERS, summary="Capture the payment")
def capture(
    order_id: str, body: CaptureIn, session: SessionDep, _: Admin, __: None = Idempotent
) -> OrderOut:
    return order_out(session, service.capture_order(session, order_id, body.amount))


@router.post(
    "/orders/{order_id}/refunds",
    status_code=201,
    tags=ORDERS,
    summary="Refund (never more than captured and not yet refunded)",
)
def refund(
    order_id: str, body: RefundIn, session: SessionDep, _: Money, __: None = Idempotent
) -> RefundOut:
    result = service.refund_order(
        session, order_id, body.amount, destination=body.destination, reason=body.reason
    )
    return RefundOut(
        amount=result.amount,
        refunds=[RefundLineOut.model_validate(r) for r in result.refunds],
        gift_card_code=result.gift_card_code,
    )


@router.post(
    "/orders/{order_id}/check-in",
    tags=ORDERS,
    summary="Curbside: the customer is here",
)
def check_in(
    order_id: str,
    body: CheckInIn,
    session: SessionDep,
    principal: Shopper,
    x_order_token: OrderTokenHeader = None,
) -> OrderOut:
    order = service.check_in(
        session,
        order_id,
        _access(principal, x_order_token),
        vehicle=body.vehicle.model_dump(exclude_none=True) if body.vehicle else None,
        bay=body.bay,
    )
    return order_out(session, order)


# --- returns --------------------------------------------------------------------------------


@router.post(
    "/orders/{order_id}/returns",
    status_code=201,
    tags=ORDERS,
    summary="Open a return (any channel, for an order of any channel)",
)
def create_return(
    order_id: str,
    body: ReturnIn,
    session: SessionDep,
    principal: Shopper,
    x_order_token: OrderTokenHeader = None,
    _: None = Idempotent,
) -> ReturnOut:
    rma = returns.create_return(
        session,
        order_id,
        _access(principal, x_order_token),
        lines=[(line.sku, line.quantity, line.reason) for line in body.lines],
        refund_method=body.refund_method,
        exchanges=[(e.sku, e.new_sku, e.quantity) for e in body.exchanges],
        channel=body.channel,
    )
    return return_out(rma)


@router.get("/orders/{order_id}/returns", tags=ORDERS, summary="The returns of an order")
def list_returns(
    order_id: str,
    session: SessionDep,
    principal: Shopper,
    x_order_token: OrderTokenHeader = None,
) -> list[ReturnOut]:
    service.open_order(session, order_id, _access(principal, x_order_token))
    return [return_out(r) for r in returns.order_returns(session, order_id)]


@router.get("/returns/{return_id}", tags=ORDERS, summary="A return")
def get_return(return_id: str, session: SessionDep, _: Support) -> ReturnOut:
    return return_out(returns.get_return(session, return_id))


@router.post(
    "/returns/{return_id}/receive",
    tags=ORDERS,
    summary="Receive a return at a location: restock or write off, refund, exchange",
)
def receive_return(
    return_id: str,
    body: ReceiveIn,
    session: SessionDep,
    principal: Associate,
    _: None = Idempotent,
) -> ReceivedOut:
    _at(principal, body.location_id)
    got = returns.receive_return(
        session,
        return_id,
        location_id=body.location_id,
        lines=[(line.sku, line.quantity, line.condition) for line in body.lines]
        if body.lines
        else None,
        tenders=_tenders(body.tenders),
        by=principal.id,
    )
    return ReceivedOut(
        return_=return_out(got.rma),
        refund_amount=got.refund_amount,
        refunds=[RefundLineOut.model_validate(r) for r in got.refund.refunds] if got.refund else [],
        gift_card_code=got.refund.gift_card_code if got.refund else None,
        exchange_order=order_out(session, got.exchange_order) if got.exchange_order else None,
        charged=got.charged,
        notes=got.notes,
    )


# --- settings, gift cards, store credit ----------------------------------------------------


@router.put("/tax-rates", tags=ORDERS, summary="Set the tax rate of a country or region")
def set_tax_rate(body: TaxRateIn, session: SessionDep, _: Admin) -> TaxRateOut:
    row = rates.set_tax_rate(
        session,
        country=body.country,
        region=body.region,
        rate_bp=body.rate_bp,
        inclusive=body.inclusive,
    )
    return TaxRateOut.model_validate(row)


@router.get("/tax-rates", tags=ORDERS, summary="Tax rates")
def list_tax_rates(session: SessionDep, _: Reader) -> list[TaxRateOut]:
    return [TaxRateOut.model_validate(r) for r in rates.list_tax_rates(session)]


@router.put("/shipping-rates", tags=ORDERS, summary="Set a shipping rate")
def set_shipping_rate(body: ShippingRateIn, session: SessionDep, _: Admin) -> ShippingRateOut:
    row = rates.set_shipping_rate(
        session,
        method=body.method,
        amount=body.amount,
        channel_id=body.channel,
        country=body.country,
        free_over=body.free_over,
    )
    return ShippingRateOut.model_validate(row)


@router.get("/shipping-rates", tags=ORDERS, summary="Shipping rates")
def list_shipping_rates(session: SessionDep, _: Reader) -> list[ShippingRateOut]:
    return [ShippingRateOut.model_validate(r) for r in rates.list_shipping_rates(session)]


@router.put(
    "/return-policies/{channel}", tags=ORDERS, summary="Set a channel's return window (days)"
)
def set_return_policy(
    channel: str, body: ReturnPolicyIn, session: SessionDep, _: Admin
) -> ReturnPolicyOut:
    row = rates.set_return_window(session, channel, body.window_days)
    return ReturnPolicyOut(channel_id=row.channel_id, window_days=row.window_days)


@router.get("/return-policies/{channel}", tags=ORDERS, summary="A channel's return window")
def get_return_policy(channel: str, session: SessionDep, _: Reader) -> ReturnPolicyOut:
    info = catalog.get_channel(session, channel)
    return ReturnPolicyOut(channel_id=info.id, window_days=rates.return_window(session, info.id))


@router.post("/gift-cards", status_code=201, tags=ORDERS, summary="Issue a gift card")
def issue_gift_card(
    body: GiftCardIn, session: SessionDep, _: Admin, __: None = Idempotent
) -> GiftCardOut:
    code, account = pay.issue_gift_card(
        session, amount=body.amount, currency=body.currency.upper(), code=body.code
    )
    return GiftCardOut(
        id=account.id,
        last4=account.last4,
        currency=account.currency,
        balance=account.balance,
        active=account.active,
        code=code,
    )


@router.post(
    "/gift-cards/balance",
    tags=ORDERS,
    summary="A gift card's balance (by code)",
    description="Rate limited per caller and client address (OMNI_GIFT_CARD_LOOKUP_RATE, "
    "default 10/minute): beyond it 429 `rate_limited` with Retry-After.",
)
def gift_card_balance(
    body: GiftCardCodeIn, session: SessionDep, principal: Shopper, request: Request
) -> GiftCardOut:
    address = request.client.host if request.client else "unknown"
    rate = get_settings().gift_card_lookup_rate
    ratelimit.check("gift_card_balance", rate, principal.id, address)
    account = pay.gift_card_by_code(session, body.code)
    return GiftCardOut(
        id=account.id,
        last4=account.last4,
        currency=account.currency,
        balance=account.balance,
        active=account.active,
    )


@router.get(
    "/customers/{customer_id}/store-credit", tags=ORDERS, summary="A customer's store credit"
)
def store_credit(
    customer_id: str, session: SessionDep, _: Support, currency: str = "GBP"
) -> StoreCreditOut:
    root = service.customers.resolve_customer_ref(session, customer_id)
    balance = pay.store_credit_balance(session, root, currency.upper())
    return StoreCreditOut(customer_id=root, currency=currency.upper(), balance=balance)


# --- POS ------------------------------------------------------------------------------------


@router.post("/pos/registers", status_code=201, tags=POS, summary="Create a register")
def create_register(body: RegisterIn, session: SessionDep, _: Admin) -> RegisterOut:
    register = pos.create_register(
        session, code=body.code, location_id=body.location_id, channel=body.channel
    )
    return RegisterOut.model_validate(register)


@router.get("/pos/registers", tags=POS, summary="Registers")
def list_registers(
    session: SessionDep, principal: Associate, location_id: str | None = None
) -> list[RegisterOut]:
    rows = pos.list_registers(session, location_id)
    return [RegisterOut.model_validate(r) for r in rows if principal.can_act_at(r.location_id)]


def _register(session: Session, principal: Principal, ref: str) -> Register:
    register = pos.get_register(session, ref)
    _at(principal, register.location_id)
    return register


@router.get(
    "/pos/lookup",
    tags=POS,
    summary="Scan: a barcode (or SKU) with this register's price and the store's stock",
)
def lookup(
    session: SessionDep,
    principal: Associate,
    register_id: str,
    barcode: str | None = None,
    sku: str | None = None,
) -> list[LookupItemOut]:
    register = _register(session, principal, register_id)
    items = pos.lookup(
        session,
        register,
        barcodes=[barcode] if barcode else [],
        skus=[sku] if sku else [],
    )
    return [LookupItemOut.model_validate(i) for i in items]


def _sale_tenders(tenders: list[SaleTenderIn]) -> list[pos.SaleTender]:
    return [pos.SaleTender(t.type, t.amount, t.tendered, t.reference) for t in tenders]


def receipt_out(session: Session, booked: pos.Booked) -> ReceiptOut:
    sale, order = booked.sale, booked.order
    register = session.get(Register, sale.register_id)
    assert register is not None
    number = (
        f"{register.code}-{sale.sequence}" if sale.sequence else f"{register.code}-{sale.id[-8:]}"
    )
    return ReceiptOut(
        sale_id=sale.id,
        order_id=sale.order_id,
        receipt_number=number,
        register_id=register.id,
        location_id=register.location_id,
        sold_at=as_utc(sale.sold_at),
        currency=order.currency if order else None,
        lines=[OrderLineOut.model_validate(line) for line in booked.lines],
        subtotal=order.subtotal if order else 0,
        discount_total=order.discount_total if order else 0,
        tax_total=order.tax_total if order else 0,
        total=order.total if order else 0,
        tenders=[
            {
                "type": p.type,
                "amount": p.amount,
                **({"reference": p.reference} if p.reference and p.type == "card_terminal" else {}),
            }
            for p in booked.payments
        ],
        change_due=booked.change_due,
        stock_discrepancies=[
            {"sku": d.sku, "quantity": d.quantity}
            for d in booked.discrepancies
            if d.kind == "stock_shortfall"
        ],
        status=sale.status,
        duplicate=booked.duplicate,
    )


@router.post(
    "/pos/sales",
    status_code=201,
    tags=POS,
    summary="Ring up a sale (online register): stock, tenders, receipt",
    description="Priced by the register's channel (promotions included). Cash: give "
    "`tendered` and the change comes back in `change_due`.",
)
def sell(
    body: SaleIn, session: SessionDep, principal: Associate, _: None = Idempotent
) -> ReceiptOut:
    register = _register(session, principal, body.register_id)
    booked = pos.sell(
        session,
        register.id,
        pos.SaleInput(
            lines=[pos.SaleLine(line.sku, line.quantity) for line in body.lines],
            tenders=_sale_tenders(body.tenders),
            client_id=body.client_id,
            customer_id=body.customer_id,
            raw=body.model_dump(mode="json"),
        ),
    )
    return receipt_out(session, booked)


@router.get("/pos/sales/{sale_id}", tags=POS, summary="A register sale (receipt)")
def get_sale(sale_id: str, session: SessionDep, principal: Associate) -> ReceiptOut:
    booked = pos.get_sale(session, sale_id)
    _register(session, principal, booked.sale.register_id)
    return receipt_out(session, booked)


@router.post(
    "/pos/sync",
    tags=POS,
    summary="Sync sales rung up offline (replays are no-ops)",
    description="Each sale carries the register's `client_id` and `sequence`. Sales already "
    "synced come back as `duplicate`. A sale of stock the store no longer had is accepted and "
    "flagged as a stock discrepancy (a task); a sale that cannot be booked is kept for review. "
    "`missing_sequences` lists gaps the register should resend.",
)
def sync(body: SyncIn, session: SessionDep, principal: Associate) -> SyncOut:
    register = _register(session, principal, body.register_id)
    result = pos.sync(
        session,
        register.id,
        [
            pos.SaleInput(
                lines=[
                    pos.SaleLine(line.sku, line.quantity, line.unit_price, line.discount)
                    for line in s.lines
                ],
                tenders=_sale_tenders(s.tenders),
                client_id=s.client_id,
                sequence=s.sequence,
                sold_at=s.sold_at,
                customer_id=s.customer_id,
                total=s.total,
                raw=s.model_dump(mode="json"),
            )
            for s in body.sales
        ],
    )
    return SyncOut(
        register_id=result.register_id,
        created=result.count("created"),
        duplicates=result.count("duplicate"),
        needs_review=result.count("needs_review"),
        items=[SyncItemOut.model_validate(i, from_attributes=True) for i in result.items],
        contiguous_through=result.contiguous_through,
        missing_sequences=result.missing_sequences,
    )


@router.get(
    "/pos/discrepancies",
    tags=POS,
    summary="Stock discrepancies and sales to review (store tasks)",
)
def list_discrepancies(
    session: SessionDep,
    principal: Associate,
    location_id: str | None = None,
    status: str | None = "open",
) -> list[DiscrepancyOut]:
    locations: list[str] | None = None
    if location_id:
        _at(principal, location_id)
        locations = [location_id]
    elif principal.role is Role.STORE_ASSOCIATE:
        locations = list(principal.location_ids)
    rows = pos.list_discrepancies(session, location_ids=locations, status=status or None)
    return [DiscrepancyOut.model_validate(d) for d in rows]


@router.post(
    "/pos/discrepancies/{discrepancy_id}/resolve", tags=POS, summary="Close a discrepancy task"
)
def resolve_discrepancy(
    discrepancy_id: str, body: ResolveIn, session: SessionDep, principal: Associate
) -> DiscrepancyOut:
    found = session.get(PosDiscrepancy, discrepancy_id)
    if found is None:
        raise not_found("discrepancy", discrepancy_id)
    _at(principal, found.location_id)
    d = pos.resolve_discrepancy(
        session, discrepancy_id, resolution=body.resolution, by=principal.id
    )
    return DiscrepancyOut.model_validate(d)
