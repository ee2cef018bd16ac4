"""Tables of the order context: carts, orders, payments, stored value (gift cards and store
credit), the built-in test gateway, checkout settings (tax, shipping, return policies),
returns and the store registers (POS) with their offline sales and discrepancies.

Carts keep their lines, delivery groups, holds and price snapshot as JSON on one row: a cart
is read and written whole, and the checkout reads it with one statement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from omniretail.core.db import Base
from omniretail.core.timeutil import utcnow

# --- carts ----------------------------------------------------------------------------------


class Cart(Base):
    __tablename__ = "carts"
    __table_args__ = (
        # One active cart per customer, whatever the channel: the cart follows the customer.
        Index(
            "uq_carts_active_customer",
            "customer_id",
            unique=True,
            sqlite_where=text("status = 'active' AND customer_id IS NOT NULL"),
            postgresql_where=text("status = 'active' AND customer_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))  # active | merged | ordered
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    channel_id: Mapped[str] = mapped_column(String(40))  # the channel that touched it last
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[Any]] = mapped_column(default=list)  # [{sku, quantity}]
    coupon_codes: Mapped[list[Any]] = mapped_column(default=list)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    # the storefront's tracking anonymousId: a guest's order converts their tracked visit
    anonymous_id: Mapped[str | None] = mapped_column(String(200), default=None)
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    billing_address: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    delivery: Mapped[list[Any]] = mapped_column(default=list)  # delivery groups
    holds: Mapped[list[Any]] = mapped_column(default=list)  # one reservation per group
    pricing: Mapped[dict[str, Any]] = mapped_column(default=dict)  # last price snapshot
    order_id: Mapped[str | None] = mapped_column(String(40), default=None)
    merged_into: Mapped[str | None] = mapped_column(String(40), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CartToken(Base):
    """Secret tokens that open an anonymous (or logged-in) cart from a storefront; only their
    SHA-256 is stored. A cart has one token per channel session that touched it."""

    __tablename__ = "cart_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- orders ---------------------------------------------------------------------------------


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_placed", "customer_id", "placed_at"),
        Index("ix_orders_card_placed", "card_fingerprint", "placed_at"),
        Index("ix_orders_ip_placed", "client_ip", "placed_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    cart_id: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    source: Mapped[str] = mapped_column(String(20))  # online | pos | exchange
    channel_id: Mapped[str] = mapped_column(String(40), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    anonymous_id: Mapped[str | None] = mapped_column(String(200), default=None)  # tracking
    status: Mapped[str] = mapped_column(String(20), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(Integer)
    discount_total: Mapped[int] = mapped_column(Integer)
    shipping_total: Mapped[int] = mapped_column(Integer)
    tax_total: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    billing_address: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    delivery: Mapped[list[Any]] = mapped_column(default=list)
    coupons: Mapped[list[Any]] = mapped_column(default=list)  # [{code, redemption_id}]
    fraud_score: Mapped[int] = mapped_column(Integer, default=0)
    fraud_reasons: Mapped[list[Any]] = mapped_column(default=list)
    client_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    card_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    register_id: Mapped[str | None] = mapped_column(String(40), default=None)
    parent_return_id: Mapped[str | None] = mapped_column(String(40), default=None)
    access_token_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    history: Mapped[list[Any]] = mapped_column(default=list)  # [{status, at, by, note}]
    version: Mapped[int] = mapped_column(Integer, default=1)
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    fulfilled_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    group_id: Mapped[str] = mapped_column(String(20))
    sku: Mapped[str] = mapped_column(String(64))
    variant_id: Mapped[str | None] = mapped_column(String(40), default=None)
    title: Mapped[str] = mapped_column(String(300), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(Integer)
    subtotal: Mapped[int] = mapped_column(Integer)  # unit price x quantity
    discount: Mapped[int] = mapped_column(Integer)  # item discounts and share of order ones
    tax: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)  # what the customer pays for the line
    allocations: Mapped[list[Any]] = mapped_column(default=list)  # [{location_id, quantity}]
    # units fulfilment could not source anywhere: [{quantity, amount, reason, at}]
    unavailable: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")


# --- payments -------------------------------------------------------------------------------


class Payment(Base):
    """One tender of an order. ``amount`` is authorised; captured <= amount; refunded <=
    captured (also enforced by the database)."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(
            "captured >= 0 AND voided >= 0 AND captured + voided <= amount",
            name="captured_within_amount",
        ),
        CheckConstraint("refunded >= 0 AND refunded <= captured", name="refunded_within_captured"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(20))  # card | gift_card | store_credit | cash | ...
    reference: Mapped[str | None] = mapped_column(String(64), default=None)
    fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(Integer)
    captured: Mapped[int] = mapped_column(Integer, default=0)
    refunded: Mapped[int] = mapped_column(Integer, default=0)
    voided: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"))
    return_id: Mapped[str | None] = mapped_column(String(40), default=None)
    amount: Mapped[int] = mapped_column(Integer)
    destination: Mapped[str] = mapped_column(String(20))  # original | store_credit | gift_card
    destination_reference: Mapped[str | None] = mapped_column(String(64), default=None)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GatewayCharge(Base):
    """The built-in test gateway's own book of authorisations (what a real gateway would hold):
    counting these rows counts charges."""

    __tablename__ = "test_gateway_charges"
    __table_args__ = (
        CheckConstraint(
            "captured >= 0 AND voided >= 0 AND captured + voided <= amount",
            name="captured_within_amount",
        ),
        CheckConstraint("refunded >= 0 AND refunded <= captured", name="refunded_within_captured"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    token: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(Integer)
    captured: Mapped[int] = mapped_column(Integer, default=0)
    refunded: Mapped[int] = mapped_column(Integer, default=0)
    voided: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredValueAccount(Base):
    """Gift cards (a bearer code, stored hashed) and store credit (one account per customer).
    The balance never goes below zero: debits are conditional updates and the database checks
    it too. Every change is also an entry, so balances can be rebuilt."""

    __tablename__ = "stored_value_accounts"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        Index(
            "uq_stored_value_customer_credit",
            "customer_id",
            "currency",
            unique=True,
            sqlite_where=text("kind = 'store_credit'"),
            postgresql_where=text("kind = 'store_credit'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # gift_card | store_credit
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    last4: Mapped[str | None] = mapped_column(String(4), default=None)
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredValueEntry(Base):
    __tablename__ = "stored_value_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("stored_value_accounts.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(Integer)  # signed: + credit, - debit
    kind: Mapped[str] = mapped_column(String(20))  # issue | debit | void | refund | adjust
    reference: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- checkout settings ----------------------------------------------------------------------


class TaxRate(Base):
    __tablename__ = "tax_rates"
    __table_args__ = (UniqueConstraint("country", "region"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(40), default="")  # "" = the whole country
    rate_bp: Mapped[int] = mapped_column(Integer)
    inclusive: Mapped[bool] = mapped_column()


class ShippingRateRow(Base):
    __tablename__ = "shipping_rates"
    __table_args__ = (UniqueConstraint("method", "channel_id", "country"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    method: Mapped[str] = mapped_column(String(20))
    channel_id: Mapped[str] = mapped_column(String(40), default="")  # "" = every channel
    country: Mapped[str] = mapped_column(String(2), default="")  # "" = every country
    amount: Mapped[int] = mapped_column(Integer)
    free_over: Mapped[int | None] = mapped_column(Integer, default=None)


class ReturnPolicy(Base):
    __tablename__ = "return_policies"

    channel_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    window_days: Mapped[int] = mapped_column(Integer)


# --- returns --------------------------------------------------------------------------------


class ReturnAuthorization(Base):
    __tablename__ = "returns"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    channel_id: Mapped[str] = mapped_column(String(40))  # where the return was opened
    status: Mapped[str] = mapped_column(String(20))  # authorized | received | cancelled
    refund_method: Mapped[str] = mapped_column(String(20))  # original | store_credit
    lines: Mapped[list[Any]] = mapped_column(default=list)  # [{sku, quantity, reason}]
    exchanges: Mapped[list[Any]] = mapped_column(default=list)  # [{sku, new_sku, quantity}]
    received_location_id: Mapped[str | None] = mapped_column(String(40), default=None)
    received_lines: Mapped[list[Any]] = mapped_column(default=list)  # + condition
    refund_total: Mapped[int] = mapped_column(Integer, default=0)
    exchange_order_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_at: Mapped[datetime | None] = mapped_column(default=None)


# --- store registers (POS) ------------------------------------------------------------------


class Register(Base):
    __tablename__ = "pos_registers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    location_id: Mapped[str] = mapped_column(String(40), index=True)
    channel_id: Mapped[str] = mapped_column(String(40))
    contiguous_through: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PosSale(Base):
    """A register sale as the register sent it. ``(register_id, client_id)`` is unique, so a
    replayed sync finds the sale and does nothing."""

    __tablename__ = "pos_sales"
    __table_args__ = (
        UniqueConstraint("register_id", "client_id"),
        Index("ix_pos_sales_register_sequence", "register_id", "sequence"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    register_id: Mapped[str] = mapped_column(ForeignKey("pos_registers.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int | None] = mapped_column(Integer, default=None)
    offline: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20))  # recorded | needs_review
    order_id: Mapped[str | None] = mapped_column(String(40), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    sold_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class PosDiscrepancy(Base):
    """A task for the store: stock sold that the system did not have, or a sale that could not
    be booked as sent. Resolved by a person (count the shelf, fix the sale)."""

    __tablename__ = "pos_discrepancies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # stock_shortfall | sale_needs_review
    register_id: Mapped[str] = mapped_column(String(40))
    location_id: Mapped[str] = mapped_column(String(40), index=True)
    sale_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str | None] = mapped_column(String(40), default=None)
    sku: Mapped[str | None] = mapped_column(String(64), default=None)
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), index=True)  # open | resolved
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolution: Mapped[str | None] = mapped_column(String(500), default=None)
