"""Request and response models of the order API (carts, checkout, orders, payments, returns,
store registers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Sku = Field(min_length=1, max_length=64, examples=["TEE-BLK-M"])


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- carts ----------------------------------------------------------------------------------


class LineIn(In):
    sku: str = Sku
    quantity: int = Field(ge=1, le=999, examples=[2])


class CartIn(In):
    channel: str | None = Field(
        default=None, description="Staff only: the channel (storefront keys use their own)"
    )
    customer_id: str | None = Field(
        default=None, description="A known customer: their active cart is returned (and added to)"
    )
    email: str | None = None
    anonymous_id: str | None = Field(
        default=None,
        max_length=200,
        description="The storefront's tracking anonymousId (Segment/RudderStack): a guest's "
        "order then converts the visit it was tracked in",
        examples=["6f1c2a9e-3b7d-4d3e-9f0a-2b5c8d7e1a44"],
    )
    lines: list[LineIn] = Field(default_factory=list, max_length=100)


class LinesIn(In):
    lines: list[LineIn] = Field(min_length=1, max_length=100)


class QuantityIn(In):
    quantity: int = Field(ge=0, le=999, description="0 removes the line")


class CouponsIn(In):
    codes: list[str] = Field(max_length=10, examples=[["WELCOME10"]])


class AddressIn(In):
    name: str | None = Field(default=None, examples=["Ada Lovelace"])
    line1: str | None = Field(default=None, examples=["12 Market Street"])
    line2: str | None = None
    city: str | None = Field(default=None, examples=["London"])
    region: str | None = Field(default=None, description="State or province (US, CA)")
    postal_code: str | None = Field(default=None, examples=["EC1A 1BB"])
    country: str | None = Field(default=None, examples=["GB"])
    phone: str | None = None


class VehicleIn(In):
    plate: str | None = Field(default=None, examples=["AB12 CDE"])
    color: str | None = Field(default=None, examples=["blue"])
    model: str | None = Field(default=None, examples=["Golf"])
    make: str | None = None


class DeliveryGroupIn(In):
    method: str = Field(
        description="standard, express, same_day, bopis, curbside, locker, ship_from_store",
        examples=["bopis"],
    )
    skus: list[str] | None = Field(
        default=None, description="The lines of this group (a single group may leave it out)"
    )
    location_id: str | None = Field(
        default=None, description="Store (bopis, curbside, ship_from_store, same_day) or locker"
    )
    address: AddressIn | None = Field(default=None, description="Overrides the shipping address")
    vehicle: VehicleIn | None = Field(
        default=None, description="Curbside: how to recognise the car"
    )


class CheckoutIn(In):
    email: str | None = None
    shipping_address: AddressIn | None = None
    billing_address: AddressIn | None = None
    delivery: list[DeliveryGroupIn] | None = Field(default=None, max_length=20)


class TenderIn(In):
    type: str = Field(
        description="card, gift_card, store_credit (online); cash, card_terminal (stores)",
        examples=["card"],
    )
    amount: int | None = Field(
        default=None, ge=1, description="Minor units; leave out on one tender to take the rest"
    )
    token: str | None = Field(
        default=None,
        max_length=64,
        description="Card token (tok_visa), gift-card code or terminal approval code",
    )


class CompleteIn(In):
    tenders: list[TenderIn] = Field(min_length=1, max_length=5)
    client_ip: str | None = Field(
        default=None, max_length=64, description="The shopper's IP (fraud velocity)"
    )


class LoginIn(In):
    customer_id: str = Field(min_length=1, max_length=64)
    cart_id: str | None = Field(
        default=None, description="An anonymous cart to merge (send its X-Cart-Token)"
    )
    channel: str | None = Field(default=None, description="Staff only")


class CartLineOut(BaseModel):
    sku: str
    title: str = ""
    quantity: int
    group_id: str | None = None
    unit_price: int | None = None
    subtotal: int | None = None
    discount: int | None = None
    tax: int | None = None
    total: int | None = None


class HoldOut(BaseModel):
    group: str
    reservation_id: str
    expires_at: datetime


class TotalsOut(BaseModel):
    subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int
    total: int


class CartOut(BaseModel):
    id: str
    status: str
    customer_id: str | None
    channel_id: str
    currency: str
    lines: list[CartLineOut]
    coupon_codes: list[str]
    email: str | None
    shipping_address: dict[str, Any] | None
    billing_address: dict[str, Any] | None
    delivery: list[dict[str, Any]]
    holds: list[HoldOut]
    totals: TotalsOut
    promotions: list[dict[str, Any]]
    notices: list[dict[str, Any]] = Field(default_factory=list)
    order_id: str | None
    merged_into: str | None
    version: int
    updated_at: datetime
    cart_token: str | None = Field(
        default=None, description="Shown once (create, login): send it back as X-Cart-Token"
    )


# --- orders ---------------------------------------------------------------------------------


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    title: str
    quantity: int
    group_id: str
    unit_price: int
    subtotal: int
    discount: int
    tax: int
    total: int
    allocations: list[dict[str, Any]]


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    status: str
    amount: int
    captured: int
    refunded: int
    voided: int
    currency: str
    details: dict[str, Any]


class PaymentTotalsOut(BaseModel):
    authorized: int
    captured: int
    voided: int
    refunded: int


class OrderOut(BaseModel):
    id: str
    status: str
    source: str
    channel_id: str
    customer_id: str | None
    email: str | None
    currency: str
    subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int
    total: int
    shipping_address: dict[str, Any] | None
    billing_address: dict[str, Any] | None
    delivery: list[dict[str, Any]]
    coupons: list[dict[str, Any]]
    fraud: dict[str, Any]
    lines: list[OrderLineOut]
    payments: list[PaymentOut]
    payment_totals: PaymentTotalsOut
    history: list[dict[str, Any]]
    register_id: str | None = None
    parent_return_id: str | None = None
    placed_at: datetime
    fulfilled_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    order_token: str | None = Field(
        default=None, description="Shown once at checkout: opens the order as X-Order-Token"
    )


class OrderSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str
    source: str
    channel_id: str
    customer_id: str | None
    currency: str
    total: int
    placed_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummaryOut]
    next_cursor: str | None = None


class StatusIn(In):
    status: str = Field(examples=["shipped"])
    note: str | None = Field(default=None, max_length=500)


class ReviewIn(In):
    decision: Literal["approve", "reject"]
    note: str | None = Field(default=None, max_length=500)


class CancelIn(In):
    reason: str | None = Field(default=None, max_length=500)


class CaptureIn(In):
    amount: int | None = Field(default=None, ge=1)


class RefundIn(In):
    amount: int = Field(ge=1)
    destination: Literal["original", "store_credit"] = "original"
    reason: str | None = Field(default=None, max_length=200)


class RefundLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    payment_id: str
    amount: int
    destination: str


class RefundOut(BaseModel):
    amount: int
    refunds: list[RefundLineOut]
    gift_card_code: str | None = Field(
        default=None, description="Store credit for a guest went to this new gift card (once)"
    )


class EditIn(In):
    lines: list[QuantityLineIn] | None = Field(default=None, max_length=100)
    shipping_address: AddressIn | None = None
    tenders: list[TenderIn] = Field(default_factory=list, max_length=5)


class QuantityLineIn(In):
    sku: str = Sku
    quantity: int = Field(ge=0, le=999)


class CheckInIn(In):
    vehicle: VehicleIn | None = None
    bay: str | None = Field(default=None, max_length=20, examples=["3"])


# --- returns --------------------------------------------------------------------------------


class ReturnLineIn(In):
    sku: str = Sku
    quantity: int = Field(ge=1)
    reason: str | None = Field(default=None, max_length=200, examples=["too small"])


class ExchangeIn(In):
    sku: str = Sku
    new_sku: str = Sku
    quantity: int = Field(ge=1)


class ReturnIn(In):
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=100)
    refund_method: Literal["original", "store_credit"] = "original"
    exchanges: list[ExchangeIn] = Field(default_factory=list, max_length=100)
    channel: str | None = Field(default=None, description="Staff: where the return is opened")


class ReceiveLineIn(In):
    sku: str = Sku
    quantity: int = Field(ge=1)
    condition: Literal["sellable", "damaged"] = "sellable"


class ReceiveIn(In):
    location_id: str
    lines: list[ReceiveLineIn] | None = Field(
        default=None, description="Default: every authorised unit, sellable"
    )
    tenders: list[TenderIn] = Field(
        default_factory=list, description="Pays an exchange that costs more"
    )


class ReturnOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    order_id: str
    customer_id: str | None
    channel_id: str
    status: str
    refund_method: str
    lines: list[dict[str, Any]]
    exchanges: list[dict[str, Any]]
    received_location_id: str | None
    received_lines: list[dict[str, Any]]
    refund_total: int
    exchange_order_id: str | None
    created_at: datetime
    received_at: datetime | None


class ReceivedOut(BaseModel):
    return_: ReturnOut = Field(alias="return")
    refund_amount: int
    refunds: list[RefundLineOut]
    gift_card_code: str | None = None
    exchange_order: OrderOut | None = None
    charged: int = 0
    notes: list[str] = Field(default_factory=list)

    model_config = ConfigDict(populate_by_name=True)


# --- settings, gift cards, store credit ----------------------------------------------------


class TaxRateIn(In):
    country: str = Field(min_length=2, max_length=2, examples=["GB"])
    region: str | None = Field(default=None, max_length=40, examples=["CA"])
    rate_bp: int = Field(ge=0, le=10_000, description="Basis points: 2000 = 20 %")
    inclusive: bool = Field(description="Prices include the tax (EU/UK) or not (US)")


class TaxRateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    country: str
    region: str
    rate_bp: int
    inclusive: bool


class ShippingRateIn(In):
    method: str = Field(examples=["standard"])
    amount: int = Field(ge=0, examples=[495])
    channel: str | None = Field(default=None, description="Only for this channel")
    country: str | None = Field(default=None, min_length=2, max_length=2)
    free_over: int | None = Field(default=None, ge=0, description="Free from this goods total")


class ShippingRateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    method: str
    amount: int
    channel_id: str
    country: str
    free_over: int | None


class ReturnPolicyIn(In):
    window_days: int = Field(ge=0, le=3650, examples=[30])


class ReturnPolicyOut(BaseModel):
    channel_id: str
    window_days: int


class GiftCardIn(In):
    amount: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3, examples=["GBP"])
    code: str | None = Field(default=None, min_length=8, max_length=40)


class GiftCardCodeIn(In):
    code: str = Field(min_length=8, max_length=40)


class GiftCardOut(BaseModel):
    id: str
    last4: str | None
    currency: str
    balance: int
    active: bool
    code: str | None = Field(default=None, description="Shown once, when issued")


class StoreCreditOut(BaseModel):
    customer_id: str
    currency: str
    balance: int


# --- POS ------------------------------------------------------------------------------------


class RegisterIn(In):
    code: str = Field(min_length=1, max_length=64, examples=["paris-rivoli-1"])
    location_id: str
    channel: str = Field(description="The store channel the register sells on")


class RegisterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    location_id: str
    channel_id: str
    contiguous_through: int
    active: bool


class LookupItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    barcode: str | None
    title: str
    product_id: str
    price: int | None
    currency: str
    available_here: int
    on_hand_here: int


class SaleLineIn(In):
    sku: str = Sku
    quantity: int = Field(ge=1, le=999)
    unit_price: int | None = Field(
        default=None, ge=0, description="Offline sales: the price the register charged"
    )
    discount: int = Field(default=0, ge=0, description="Offline sales: line discount given")


class SaleTenderIn(In):
    type: str = Field(examples=["cash"])
    amount: int | None = Field(default=None, ge=1, description="Leave out to take the rest")
    tendered: int | None = Field(default=None, ge=0, description="Cash handed over")
    reference: str | None = Field(
        default=None, max_length=64, description="Terminal approval code or gift-card code"
    )


class SaleIn(In):
    register_id: str
    lines: list[SaleLineIn] = Field(min_length=1, max_length=100)
    tenders: list[SaleTenderIn] = Field(min_length=1, max_length=5)
    customer_id: str | None = None
    client_id: str | None = Field(default=None, max_length=64)


class OfflineSaleIn(In):
    client_id: str = Field(min_length=1, max_length=64, description="The register's id (UUID)")
    sequence: int = Field(ge=1, description="Per-register sequence number")
    sold_at: datetime
    lines: list[SaleLineIn] = Field(min_length=1, max_length=100)
    tenders: list[SaleTenderIn] = Field(min_length=1, max_length=5)
    customer_id: str | None = None
    total: int | None = Field(default=None, ge=0, description="What the register charged")


class SyncIn(In):
    register_id: str
    sales: list[OfflineSaleIn] = Field(max_length=500)


class ReceiptOut(BaseModel):
    sale_id: str
    order_id: str | None
    receipt_number: str
    register_id: str
    location_id: str
    sold_at: datetime
    currency: str | None
    lines: list[OrderLineOut]
    subtotal: int
    discount_total: int
    tax_total: int
    total: int
    tenders: list[dict[str, Any]]
    change_due: int
    stock_discrepancies: list[dict[str, Any]]
    status: str
    duplicate: bool = False


class SyncItemOut(BaseModel):
    client_id: str
    sequence: int | None
    status: str
    sale_id: str
    order_id: str | None
    stock_discrepancies: list[dict[str, Any]]
    error: dict[str, Any] | None = None


class SyncOut(BaseModel):
    register_id: str
    created: int
    duplicates: int
    needs_review: int
    items: list[SyncItemOut]
    contiguous_through: int
    missing_sequences: list[int]


class DiscrepancyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    register_id: str
    location_id: str
    sale_id: str
    order_id: str | None
    sku: str | None
    quantity: int
    status: str
    detail: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class ResolveIn(In):
    resolution: str = Field(min_length=1, max_length=500)


EditIn.model_rebuild()
