"""Request and response models of the pricing API. Amounts are integers in minor units."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from omniretail.pricing.domain import ExclusiveStrategy


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- price books and prices -----------------------------------------------------------------


class PriceBookCreate(StrictModel):
    code: str = Field(min_length=1, max_length=64, examples=["web-eu"])
    name: str = Field(min_length=1, max_length=200, examples=["Web EU"])
    currency: str = Field(min_length=3, max_length=3, examples=["EUR"])
    kind: Literal["shared", "channel"] = Field(
        default="shared",
        description="'channel': belongs to one channel and ranks before shared books",
    )
    intended_override: bool = Field(
        default=False,
        description="Differences this book causes between channels are deliberate "
        "(the consistency audit reports them as intended)",
    )
    description: str = Field(default="", max_length=2000)


class PriceBookUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    active: bool | None = None
    intended_override: bool | None = None


class AssignmentOut(BaseModel):
    channel_id: str
    price_book_id: str
    priority: int


class PriceBookOut(BaseModel):
    id: str
    code: str
    name: str
    currency: str
    kind: str
    intended_override: bool
    active: bool
    description: str
    channels: list[AssignmentOut]
    created_at: datetime
    updated_at: datetime


class PriceBookPage(BaseModel):
    items: list[PriceBookOut]
    next_cursor: str | None = None


class AssignmentCreate(StrictModel):
    channel: str = Field(description="Channel id or code", examples=["web-eu"])
    priority: int = Field(
        default=0, description="Higher wins among books of the same kind", examples=[10]
    )


class PriceIn(StrictModel):
    sku: str = Field(min_length=1, max_length=64, examples=["TEE-M"])
    amount: int = Field(ge=0, description="Minor units", examples=[1299])
    customer_group: str | None = Field(default=None, max_length=64, examples=[None])
    min_quantity: int = Field(default=1, ge=1, description="Quantity tier", examples=[1])
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class PricesUpsert(StrictModel):
    prices: list[PriceIn] = Field(min_length=1, max_length=1000)


class PriceOut(BaseModel):
    id: str
    price_book_id: str
    sku: str
    amount: int
    currency: str
    customer_group: str | None
    min_quantity: int
    starts_at: datetime | None
    ends_at: datetime | None


class PricesUpserted(BaseModel):
    created: int
    updated: int
    prices: list[PriceOut]


class PricePage(BaseModel):
    items: list[PriceOut]
    next_cursor: str | None = None


# --- resolution -----------------------------------------------------------------------------


class VerdictOut(BaseModel):
    price_id: str
    price_book: str
    amount: int
    customer_group: str | None
    min_quantity: int
    starts_at: str | None
    ends_at: str | None
    status: str = Field(description="won, lost or not_applicable")
    reason: str


class ResolvedPrice(BaseModel):
    sku: str
    channel: str
    quantity: int
    customer_group: str | None
    at: datetime
    amount: int
    currency: str
    price_id: str
    price_book: str
    rule: str = Field(
        description="public, customer_group, with _tier and/or _scheduled", examples=["public"]
    )
    explanation: list[VerdictOut]


class ResolveItem(StrictModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1)


class BulkResolveIn(StrictModel):
    channel: str | None = Field(default=None, description="Id or code; a channel key's own")
    items: list[ResolveItem] = Field(min_length=1, max_length=1000)
    customer_group: str | None = None
    at: AwareDatetime | None = None


class BulkResolveOut(BaseModel):
    items: list[ResolvedPrice]
    unpriced: list[str] = Field(description="SKUs without an applicable price")


# --- promotions -----------------------------------------------------------------------------

Kind = Literal["percent_off", "amount_off", "buy_x_get_y", "free_shipping"]


class PromotionCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200, examples=["10% off tees"])
    kind: Kind = Field(examples=["percent_off"])
    description: str = Field(default="", max_length=2000)
    active: bool = True
    priority: int = Field(default=0, description="Higher is evaluated first")
    stacking: Literal["stackable", "exclusive"] = "stackable"
    percent: Decimal | None = Field(
        default=None,
        description="percent_off and buy_x_get_y (default 100 = free), 0 < p <= 100",
        examples=["10"],
    )
    amount: int | None = Field(
        default=None, gt=0, description="amount_off: per targeted unit, or once per cart"
    )
    currency: str | None = Field(default=None, min_length=3, max_length=3, examples=["EUR"])
    buy_quantity: int | None = Field(default=None, ge=1)
    get_quantity: int | None = Field(default=None, ge=1)
    skus: list[str] = Field(default_factory=list, max_length=10000)
    product_ids: list[str] = Field(default_factory=list, max_length=10000)
    category_codes: list[str] = Field(default_factory=list, max_length=1000)
    channels: list[str] = Field(
        default_factory=list, description="Channel ids or codes; empty means every channel"
    )
    customer_groups: list[str] = Field(default_factory=list, description="Empty means everybody")
    requires_coupon: bool = False
    min_subtotal: int = Field(default=0, ge=0, description="On targeted items (or the cart)")
    min_quantity: int = Field(default=0, ge=0)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class PromotionUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    active: bool | None = None
    priority: int | None = None
    stacking: Literal["stackable", "exclusive"] | None = None
    percent: Decimal | None = None
    amount: int | None = Field(default=None, gt=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    buy_quantity: int | None = Field(default=None, ge=1)
    get_quantity: int | None = Field(default=None, ge=1)
    skus: list[str] | None = None
    product_ids: list[str] | None = None
    category_codes: list[str] | None = None
    channels: list[str] | None = None
    customer_groups: list[str] | None = None
    requires_coupon: bool | None = None
    min_subtotal: int | None = Field(default=None, ge=0)
    min_quantity: int | None = Field(default=None, ge=0)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class TargetsOut(BaseModel):
    skus: list[str]
    product_ids: list[str]
    category_codes: list[str]
    category_ids: list[str]


class PromotionOut(BaseModel):
    id: str
    name: str
    description: str
    kind: str
    active: bool
    priority: int
    stacking: str
    percent: str | None
    amount: int | None
    currency: str | None
    buy_quantity: int | None
    get_quantity: int | None
    targets: TargetsOut
    cart_wide: bool
    channel_ids: list[str] = Field(description="Empty means every channel")
    customer_groups: list[str]
    requires_coupon: bool
    min_subtotal: int
    min_quantity: int
    starts_at: datetime | None
    ends_at: datetime | None
    version: int = Field(description="Goes up on every change; the ETag")
    created_at: datetime
    updated_at: datetime


class PromotionPage(BaseModel):
    items: list[PromotionOut]
    next_cursor: str | None = None


class CouponsCreate(StrictModel):
    codes: list[str] = Field(min_length=1, max_length=10000, examples=[["SUMMER10"]])
    usage_limit: int | None = Field(default=None, ge=1, description="Total uses; none: no limit")
    per_customer_limit: int | None = Field(default=None, ge=1)
    expires_at: AwareDatetime | None = None


class CouponOut(BaseModel):
    id: str
    code: str
    promotion_id: str
    usage_limit: int | None
    per_customer_limit: int | None
    used: int
    remaining: int | None
    expires_at: datetime | None
    active: bool


class CouponList(BaseModel):
    items: list[CouponOut]
    next_cursor: str | None = None


class RedemptionCreate(StrictModel):
    order_ref: str = Field(min_length=1, max_length=120, examples=["ord_01J..."])
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)


class RedemptionOut(BaseModel):
    id: str
    code: str
    coupon_id: str
    customer_id: str | None
    order_ref: str
    redeemed_at: datetime
    released_at: datetime | None
    coupon_used: int


# --- evaluation -----------------------------------------------------------------------------


class CartLineIn(StrictModel):
    sku: str = Field(min_length=1, max_length=64, examples=["TEE-M"])
    quantity: int = Field(ge=1, le=1_000_000, examples=[3])
    unit_price: int | None = Field(
        default=None, ge=0, description="Minor units; omitted: resolved through the price books"
    )


class EvaluateIn(StrictModel):
    channel: str | None = Field(default=None, description="Id or code; a channel key's own")
    lines: list[CartLineIn] = Field(min_length=1, max_length=500)
    customer_id: str | None = Field(default=None, max_length=64)
    customer_group: str | None = Field(default=None, max_length=64)
    coupon_codes: list[str] = Field(default_factory=list, max_length=20)
    shipping_amount: int = Field(default=0, ge=0)
    at: AwareDatetime | None = None
    exclusive_strategy: ExclusiveStrategy = ExclusiveStrategy.BEST_WINS


class PriceSource(BaseModel):
    price_id: str
    price_book: str
    rule: str


class LineDiscountOut(BaseModel):
    promotion_id: str
    name: str
    level: str = Field(description="line (item promotion) or order (share of a cart discount)")
    amount: int


class LineOut(BaseModel):
    sku: str
    quantity: int
    unit_price: int
    price: PriceSource | None = Field(description="Null when the caller gave unit_price")
    subtotal: int
    discounts: list[LineDiscountOut]
    discount_total: int
    total: int


class OrderDiscountOut(BaseModel):
    promotion_id: str
    name: str
    amount: int
    allocation: list[int] = Field(description="Per line, summing exactly to amount")


class ShippingOut(BaseModel):
    amount: int
    discount: int
    total: int
    free_shipping: bool


class CouponUseOut(BaseModel):
    code: str
    promotion_id: str
    applied: bool
    reason: str


class NoteOut(BaseModel):
    promotion_id: str
    name: str
    status: str = Field(description="applied, not_applicable, no_effect or lost")
    reason: str
    amount: int
    coupon_code: str | None


class EvaluateOut(BaseModel):
    channel: str
    currency: str
    at: datetime
    lines: list[LineOut]
    order_discounts: list[OrderDiscountOut]
    shipping: ShippingOut
    subtotal: int
    item_discount_total: int
    discount_total: int
    total: int
    applied_promotions: list[str]
    coupons: list[CouponUseOut]
    explanations: list[NoteOut]


# --- audit ----------------------------------------------------------------------------------


class OfferOut(BaseModel):
    channel: str
    channel_id: str
    amount: int | None
    price_book: str | None
    intended: bool
    promotion_ids: list[str]


class FindingOut(BaseModel):
    sku: str | None
    currency: str
    aspect: str = Field(description="price, promotions (item) or cart_promotions")
    status: str = Field(description="unintended or intended")
    intended: bool = Field(description="status == 'intended'")
    channels: list[OfferOut]


class ConsistencyOut(BaseModel):
    at: datetime
    groups: dict[str, list[str]] = Field(description="currency -> channel codes compared")
    skus_compared: int
    unintended: int
    intended: int
    findings: list[FindingOut]
