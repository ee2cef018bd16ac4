"""Tables of the pricing context.

Channels are referenced by id only (no foreign key into the catalog's tables): the catalog owns
channels, pricing owns which price books a channel uses (``channel_price_books``).
``promotion_channels`` and ``promotion_targets`` are derived index tables kept in step with the
promotion row, so the promotions that can touch a cart are found by an indexed query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from omniretail.core.db import Base
from omniretail.core.timeutil import utcnow


class PriceBook(Base):
    """A list of prices in one currency; ``kind`` is ``channel`` (one channel) or ``shared``."""

    __tablename__ = "price_books"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(16), default="shared")
    # Differences this book causes between channels are deliberate (the audit reports them
    # as intended, not as problems).
    intended_override: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChannelPriceBook(Base):
    """A channel uses a price book; higher ``priority`` wins among books of the same kind."""

    __tablename__ = "channel_price_books"

    channel_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    price_book_id: Mapped[str] = mapped_column(
        ForeignKey("price_books.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Price(Base):
    """The price of a SKU in a book, optionally for a customer group, a quantity tier and a
    validity window ``[starts_at, ends_at)``."""

    __tablename__ = "prices"
    __table_args__ = (
        Index("ix_prices_book_sku", "price_book_id", "sku"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("min_quantity >= 1", name="min_quantity_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    price_book_id: Mapped[str] = mapped_column(ForeignKey("price_books.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    customer_group: Mapped[str | None] = mapped_column(String(64), default=None)
    min_quantity: Mapped[int] = mapped_column(Integer, default=1)
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Promotion(Base):
    """A promotion; ``targets`` (skus, product_ids, category_ids) empty means cart-wide."""

    __tablename__ = "promotions"
    __table_args__ = (Index("ix_promotions_active_window", "active", "starts_at", "ends_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    stacking: Mapped[str] = mapped_column(String(16), default="stackable")
    percent: Mapped[str | None] = mapped_column(String(16), default=None)  # decimal string
    amount: Mapped[int | None] = mapped_column(Integer, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    buy_quantity: Mapped[int | None] = mapped_column(Integer, default=None)
    get_quantity: Mapped[int | None] = mapped_column(Integer, default=None)
    targets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cart_wide: Mapped[bool] = mapped_column(default=True)
    all_channels: Mapped[bool] = mapped_column(default=True)
    channel_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    customer_groups: Mapped[list[Any]] = mapped_column(JSON, default=list)
    requires_coupon: Mapped[bool] = mapped_column(default=False)
    min_subtotal: Mapped[int] = mapped_column(Integer, default=0)
    min_quantity: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PromotionChannel(Base):
    """Index: a promotion limited to listed channels has one row per channel."""

    __tablename__ = "promotion_channels"

    promotion_id: Mapped[str] = mapped_column(
        ForeignKey("promotions.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class PromotionTarget(Base):
    """Index: one row per targeted SKU, product or category of a promotion."""

    __tablename__ = "promotion_targets"
    __table_args__ = (Index("ix_promotion_targets_lookup", "target_type", "target_value"),)

    promotion_id: Mapped[str] = mapped_column(
        ForeignKey("promotions.id", ondelete="CASCADE"), primary_key=True
    )
    target_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    target_value: Mapped[str] = mapped_column(String(64), primary_key=True)


class Coupon(Base):
    """A code that unlocks a promotion; ``used`` only changes by conditional updates."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("used >= 0", name="used_not_negative"),
        CheckConstraint("usage_limit IS NULL OR used <= usage_limit", name="used_within_limit"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    promotion_id: Mapped[str] = mapped_column(
        ForeignKey("promotions.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(64), unique=True)
    usage_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    used: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CouponRedemption(Base):
    """One use of a coupon by an order; ``released_at`` is set when the order is cancelled."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        UniqueConstraint("coupon_id", "order_ref"),
        Index("ix_coupon_redemptions_customer", "coupon_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    coupon_id: Mapped[str] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"))
    customer_id: Mapped[str | None] = mapped_column(String(64), default=None)
    order_ref: Mapped[str] = mapped_column(String(120))
    redeemed_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(default=None)
