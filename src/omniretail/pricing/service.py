"""Pricing use cases. Other contexts call the functions marked *public interface*.

Services flush and never commit: the API route or the CLI's unit of work owns the transaction.
Every check runs before the first write, so a failure leaves nothing behind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.catalog.domain import ChannelInfo, VariantFacts
from omniretail.core.db import is_postgres
from omniretail.core.errors import AppError, conflict, invalid, not_found
from omniretail.core.events import emit
from omniretail.core.ids import new_id
from omniretail.core.pagination import paginate
from omniretail.core.timeutil import as_utc, utcnow
from omniretail.pricing.domain import (
    COUPON_STATUS,
    AppliedCoupon,
    BookKind,
    Cart,
    CartLine,
    ChannelOffer,
    CouponState,
    Evaluation,
    ExclusiveStrategy,
    Finding,
    PriceCandidate,
    PriceResolution,
    PromotionIndex,
    PromotionKind,
    Stacking,
    compare_offers,
    coupon_problem,
    evaluate,
    normalize_coupon_code,
    promotion_problem,
    valid_coupon_code,
)
from omniretail.pricing.domain import Promotion as PromotionRule
from omniretail.pricing.domain import (
    resolve_price as resolve_from_candidates,
)
from omniretail.pricing.models import (
    ChannelPriceBook,
    Coupon,
    CouponRedemption,
    Price,
    PriceBook,
    Promotion,
    PromotionChannel,
    PromotionTarget,
)

MAX_PRICES_PER_REQUEST = 1000
MAX_CART_LINES = 500


def _code_ok(code: str) -> bool:
    return bool(code) and len(code) <= 64 and code.replace("-", "").replace("_", "").isalnum()


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise invalid("invalid_currency", f"{value!r} is not an ISO 4217 code", currency=value)
    return value.upper()


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise invalid("naive_datetime", f"{name} needs a timezone (UTC offset)", field=name)
    return as_utc(value)


# --- price books ----------------------------------------------------------------------------


def create_price_book(
    session: Session,
    *,
    code: str,
    name: str,
    currency: str,
    kind: str = BookKind.SHARED.value,
    intended_override: bool = False,
    description: str = "",
) -> PriceBook:
    code = code.strip().lower()
    if not _code_ok(code):
        raise invalid("invalid_code", f"price book code {code!r} must be [a-z0-9_-], 1-64 chars")
    if not name.strip():
        raise invalid("invalid_name", "a price book needs a name")
    if kind not in {k.value for k in BookKind}:
        raise invalid(
            "invalid_kind", f"unknown price book kind {kind!r}", allowed=[k.value for k in BookKind]
        )
    currency = _currency(currency)
    if session.scalar(select(PriceBook.id).where(PriceBook.code == code)):
        raise conflict("price_book_exists", f"price book {code!r} already exists", code=code)
    book = PriceBook(
        id=new_id("pbk"),
        code=code,
        name=name.strip(),
        currency=currency,
        kind=kind,
        intended_override=intended_override,
        active=True,
        description=description,
    )
    session.add(book)
    emit(session, "pricing.price_book.created", {"price_book_id": book.id, "code": code}, book.id)
    session.flush()
    return book


def get_price_book(session: Session, ref: str) -> PriceBook:
    """A price book by id or code; unknown is a 404."""
    book = session.get(PriceBook, ref) if ref.startswith("pbk_") else None
    if book is None:
        book = session.scalar(select(PriceBook).where(PriceBook.code == ref))
    if book is None:
        raise not_found("price_book", ref)
    return book


def list_price_books(
    session: Session,
    channel: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> tuple[Sequence[PriceBook], str | None]:
    query = select(PriceBook)
    if channel:
        channel_id = catalog.get_channel(session, channel).id
        query = query.where(
            PriceBook.id.in_(
                select(ChannelPriceBook.price_book_id).where(
                    ChannelPriceBook.channel_id == channel_id
                )
            )
        )
    return paginate(session, query, PriceBook.id, cursor, limit)


def update_price_book(session: Session, ref: str, changes: Mapping[str, Any]) -> PriceBook:
    """Change ``name``, ``description``, ``active`` or ``intended_override``."""
    book = get_price_book(session, ref)
    allowed = {"name", "description", "active", "intended_override"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise invalid("invalid_field", f"cannot change: {', '.join(unknown)}", fields=unknown)
    if "name" in changes and not str(changes["name"] or "").strip():
        raise invalid("invalid_name", "a price book needs a name")
    for key, value in changes.items():
        if value is None:
            raise invalid("invalid_field", f"{key} cannot be null", field=key)
        setattr(book, key, value.strip() if key == "name" else value)
    emit(session, "pricing.price_book.updated", {"price_book_id": book.id}, book.id)
    session.flush()
    return book


def book_assignments(
    session: Session, book_ids: Iterable[str]
) -> dict[str, list[ChannelPriceBook]]:
    ids = list(book_ids)
    out: dict[str, list[ChannelPriceBook]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = session.scalars(
        select(ChannelPriceBook)
        .where(ChannelPriceBook.price_book_id.in_(ids))
        .order_by(ChannelPriceBook.channel_id)
    )
    for row in rows:
        out[row.price_book_id].append(row)
    return out


def assign_price_book(
    session: Session, book_ref: str, channel_ref: str, priority: int = 0
) -> ChannelPriceBook:
    """Let a channel use a book (or change the priority of an existing assignment)."""
    book = get_price_book(session, book_ref)
    channel = catalog.get_channel(session, channel_ref)
    if book.currency != channel.currency:
        raise invalid(
            "currency_mismatch",
            f"price book {book.code!r} is in {book.currency}, channel {channel.code!r} sells "
            f"in {channel.currency}",
            price_book=book.code,
            channel=channel.code,
        )
    if book.kind == BookKind.CHANNEL:
        others = session.scalars(
            select(ChannelPriceBook.channel_id).where(
                ChannelPriceBook.price_book_id == book.id,
                ChannelPriceBook.channel_id != channel.id,
            )
        ).first()
        if others is not None:
            raise conflict(
                "price_book_already_assigned",
                f"channel price book {book.code!r} already belongs to another channel",
                price_book=book.code,
                channel_id=others,
            )
    row = session.get(ChannelPriceBook, (channel.id, book.id))
    if row is None:
        row = ChannelPriceBook(channel_id=channel.id, price_book_id=book.id, priority=priority)
        session.add(row)
    else:
        row.priority = priority
    emit(
        session,
        "pricing.price_book.assigned",
        {"price_book_id": book.id, "channel_id": channel.id, "priority": priority},
        book.id,
    )
    session.flush()
    return row


def unassign_price_book(session: Session, book_ref: str, channel_ref: str) -> None:
    book = get_price_book(session, book_ref)
    channel = catalog.get_channel(session, channel_ref)
    row = session.get(ChannelPriceBook, (channel.id, book.id))
    if row is None:
        raise AppError(
            "assignment_not_found",
            f"channel {channel.code!r} does not use price book {book.code!r}",
            404,
            {"price_book": book.code, "channel": channel.code},
        )
    session.delete(row)
    emit(
        session,
        "pricing.price_book.unassigned",
        {"price_book_id": book.id, "channel_id": channel.id},
        book.id,
    )
    session.flush()


# --- prices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceInput:
    sku: str
    amount: int
    customer_group: str | None = None
    min_quantity: int = 1
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def key(self) -> tuple[str, str | None, int, datetime | None, datetime | None]:
        return (self.sku, self.customer_group, self.min_quantity, self.starts_at, self.ends_at)


def _price_key(p: Price) -> tuple[str, str | None, int, datetime | None, datetime | None]:
    return (
        p.sku,
        p.customer_group,
        p.min_quantity,
        as_utc(p.starts_at) if p.starts_at else None,
        as_utc(p.ends_at) if p.ends_at else None,
    )


def _clean_price(item: PriceInput, index: int) -> PriceInput:
    where = {"index": index, "sku": item.sku}
    if isinstance(item.amount, bool) or not isinstance(item.amount, int) or item.amount < 0:
        raise invalid("invalid_amount", "amount must be an integer >= 0 (minor units)", **where)
    if item.min_quantity < 1:
        raise invalid("invalid_min_quantity", "min_quantity must be at least 1", **where)
    group = item.customer_group.strip() if item.customer_group else None
    if group is not None and not _code_ok(group.replace(" ", "")):
        raise invalid("invalid_customer_group", f"customer group {group!r} is not valid", **where)
    starts_at = _aware(item.starts_at, "starts_at")
    ends_at = _aware(item.ends_at, "ends_at")
    if starts_at is not None and ends_at is not None and starts_at >= ends_at:
        raise invalid("invalid_window", "starts_at must be before ends_at", **where)
    return PriceInput(item.sku, item.amount, group or None, item.min_quantity, starts_at, ends_at)


@dataclass
class UpsertResult:
    prices: list[Price]
    created: int = 0
    updated: int = 0


def upsert_prices(session: Session, book_ref: str, items: Sequence[PriceInput]) -> UpsertResult:
    """Create or update prices in one book. A price is identified by (sku, customer_group,
    min_quantity, starts_at, ends_at): the same key again updates its amount. All items are
    checked before anything is written."""
    book = get_price_book(session, book_ref)
    if not items:
        raise invalid("prices_required", "send at least one price")
    if len(items) > MAX_PRICES_PER_REQUEST:
        raise invalid("too_many_prices", f"at most {MAX_PRICES_PER_REQUEST} prices per request")
    cleaned = [_clean_price(item, i) for i, item in enumerate(items)]
    seen: dict[tuple[Any, ...], int] = {}
    for i, item in enumerate(cleaned):
        if item.key() in seen:
            raise invalid(
                "duplicate_price",
                f"prices {seen[item.key()]} and {i} have the same sku, customer group, tier "
                "and window",
                sku=item.sku,
            )
        seen[item.key()] = i
    skus = sorted({item.sku for item in cleaned})
    catalog.require_variants(session, skus)
    existing = {
        _price_key(p): p
        for p in session.scalars(
            select(Price).where(Price.price_book_id == book.id, Price.sku.in_(skus))
        )
    }
    result = UpsertResult(prices=[])
    for item in cleaned:
        row = existing.get(item.key())
        if row is None:
            row = Price(
                id=new_id("prc"),
                price_book_id=book.id,
                sku=item.sku,
                amount=item.amount,
                customer_group=item.customer_group,
                min_quantity=item.min_quantity,
                starts_at=item.starts_at,
                ends_at=item.ends_at,
            )
            session.add(row)
            result.created += 1
        else:
            if row.amount != item.amount:
                result.updated += 1
            row.amount = item.amount
        result.prices.append(row)
    emit(
        session,
        "pricing.prices.changed",
        {"price_book_id": book.id, "skus": skus},
        book.id,
    )
    session.flush()
    return result


def list_prices(
    session: Session,
    book_ref: str,
    sku: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> tuple[Sequence[Price], str | None]:
    book = get_price_book(session, book_ref)
    query = select(Price).where(Price.price_book_id == book.id)
    if sku:
        query = query.where(Price.sku == sku)
    return paginate(session, query, Price.id, cursor, limit)


def delete_price(session: Session, book_ref: str, price_id: str) -> None:
    book = get_price_book(session, book_ref)
    row = session.get(Price, price_id)
    if row is None or row.price_book_id != book.id:
        raise not_found("price", price_id, price_book=book.code)
    session.delete(row)
    emit(
        session,
        "pricing.prices.changed",
        {"price_book_id": book.id, "skus": [row.sku]},
        book.id,
    )
    session.flush()


# --- price resolution -----------------------------------------------------------------------


def _channel(session: Session, channel: str | ChannelInfo) -> ChannelInfo:
    return channel if isinstance(channel, ChannelInfo) else catalog.get_channel(session, channel)


def _channel_books(session: Session, channel_id: str) -> list[tuple[PriceBook, int]]:
    rows = session.execute(
        select(PriceBook, ChannelPriceBook.priority)
        .join(ChannelPriceBook, ChannelPriceBook.price_book_id == PriceBook.id)
        .where(ChannelPriceBook.channel_id == channel_id, PriceBook.active.is_(True))
    ).all()
    return [(book, priority) for book, priority in rows]


def _candidate(price: Price, book: PriceBook, priority: int) -> PriceCandidate:
    return PriceCandidate(
        price_id=price.id,
        sku=price.sku,
        amount=price.amount,
        currency=book.currency,
        book_id=book.id,
        book_code=book.code,
        book_kind=book.kind,
        book_priority=priority,
        intended_override=book.intended_override,
        customer_group=price.customer_group,
        min_quantity=price.min_quantity,
        starts_at=price.starts_at,
        ends_at=price.ends_at,
    )


def _quantities(skus_with_qty: Mapping[str, int] | Iterable[tuple[str, int]]) -> dict[str, int]:
    items = skus_with_qty.items() if isinstance(skus_with_qty, Mapping) else skus_with_qty
    out: dict[str, int] = {}
    for sku, qty in items:
        if qty < 1:
            raise invalid("invalid_quantity", "quantity must be at least 1", sku=sku)
        out[sku] = out.get(sku, 0) + qty
    return out


def resolve_prices(
    session: Session,
    channel: str | ChannelInfo,
    skus_with_qty: Mapping[str, int] | Iterable[tuple[str, int]],
    customer_group: str | None = None,
    at: datetime | None = None,
) -> dict[str, PriceResolution]:
    """*Public interface.* The price of each SKU on a channel, with the rule that won.

    ``skus_with_qty`` maps SKU to quantity (pairs are summed per SKU, since quantity tiers
    count the SKU's total). Three queries whatever the number of SKUs. SKUs with no
    applicable price map to a resolution whose ``winner`` is ``None``; SKUs with no price at
    all are absent.
    """
    at = _aware(at, "at") or utcnow()
    info = _channel(session, channel)
    quantities = _quantities(skus_with_qty)
    books = {book.id: (book, priority) for book, priority in _channel_books(session, info.id)}
    if not quantities or not books:
        return {}
    candidates: dict[str, list[PriceCandidate]] = defaultdict(list)
    skus = list(quantities)
    for start in range(0, len(skus), 900):
        rows = session.scalars(
            select(Price).where(
                Price.price_book_id.in_(list(books)), Price.sku.in_(skus[start : start + 900])
            )
        )
        for price in rows:
            book, priority = books[price.price_book_id]
            candidates[price.sku].append(_candidate(price, book, priority))
    return {
        sku: resolve_from_candidates(sku, candidates[sku], quantities[sku], customer_group, at)
        for sku in skus
        if sku in candidates
    }


def resolve_price(
    session: Session,
    channel: str | ChannelInfo,
    sku: str,
    quantity: int = 1,
    customer_group: str | None = None,
    at: datetime | None = None,
) -> PriceResolution:
    """*Public interface.* The price of one SKU; no applicable price is a 404 that explains
    why each stored price did not apply."""
    info = _channel(session, channel)
    resolution = resolve_prices(session, info, {sku: quantity}, customer_group, at).get(sku)
    if resolution is None or resolution.winner is None:
        explanation = (
            [verdict_dict(v) for v in resolution.explanation] if resolution is not None else []
        )
        raise AppError(
            "price_not_found",
            f"no applicable price for SKU {sku!r} on channel {info.code!r}",
            404,
            {"sku": sku, "channel": info.code, "explanation": explanation},
        )
    return resolution


def verdict_dict(v: Any) -> dict[str, Any]:
    c: PriceCandidate = v.candidate
    return {
        "price_id": c.price_id,
        "price_book": c.book_code,
        "amount": c.amount,
        "customer_group": c.customer_group,
        "min_quantity": c.min_quantity,
        "starts_at": c.starts_at.isoformat() if c.starts_at else None,
        "ends_at": c.ends_at.isoformat() if c.ends_at else None,
        "status": v.status,
        "reason": v.reason,
    }


# --- promotions -----------------------------------------------------------------------------


@dataclass
class PromotionSpec:
    """What a promotion is made of (the API's create body, in service terms)."""

    name: str
    kind: str
    description: str = ""
    active: bool = True
    priority: int = 0
    stacking: str = Stacking.STACKABLE.value
    percent: str | None = None
    amount: int | None = None
    currency: str | None = None
    buy_quantity: int | None = None
    get_quantity: int | None = None
    skus: list[str] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)
    category_codes: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)  # ids or codes; empty: all channels
    customer_groups: list[str] = field(default_factory=list)
    requires_coupon: bool = False
    min_subtotal: int = 0
    min_quantity: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None


PROMOTION_FIELDS = frozenset(PromotionSpec.__dataclass_fields__)
NULLABLE_FIELDS = frozenset(
    {"percent", "amount", "currency", "buy_quantity", "get_quantity", "starts_at", "ends_at"}
)


def _percent(value: Any) -> str | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise invalid("invalid_percent", f"{value!r} is not a number") from None
    if not number.is_finite() or number.as_tuple().exponent < -4:  # type: ignore[operator]
        raise invalid("invalid_percent", "percent takes at most 4 decimals")
    return format(number.normalize(), "f")


def _rule_from_row(row: Promotion) -> PromotionRule:
    targets = row.targets or {}
    return PromotionRule(
        id=row.id,
        name=row.name,
        kind=PromotionKind(row.kind),
        priority=row.priority,
        stacking=Stacking(row.stacking),
        percent=Fraction(row.percent) if row.percent is not None else None,
        amount=row.amount or 0,
        currency=row.currency,
        buy_quantity=row.buy_quantity or 0,
        get_quantity=row.get_quantity or 0,
        skus=frozenset(targets.get("skus", ())),
        product_ids=frozenset(targets.get("product_ids", ())),
        category_ids=frozenset(targets.get("category_ids", ())),
        channel_ids=frozenset(row.channel_ids or ()) if not row.all_channels else frozenset(),
        customer_groups=frozenset(row.customer_groups or ()),
        requires_coupon=row.requires_coupon,
        min_subtotal=row.min_subtotal,
        min_quantity=row.min_quantity,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )


def _check_spec(session: Session, spec: PromotionSpec) -> dict[str, Any]:
    """Validate a spec and return the column values of the promotion row."""
    if not spec.name.strip():
        raise invalid("invalid_name", "a promotion needs a name")
    if spec.kind not in {k.value for k in PromotionKind}:
        raise invalid(
            "invalid_kind",
            f"unknown promotion kind {spec.kind!r}",
            allowed=[k.value for k in PromotionKind],
        )
    if spec.stacking not in {s.value for s in Stacking}:
        raise invalid(
            "invalid_stacking",
            f"unknown stacking {spec.stacking!r}",
            allowed=[s.value for s in Stacking],
        )
    percent = _percent(spec.percent)
    if spec.kind == PromotionKind.BUY_X_GET_Y and percent is None:
        percent = "100"
    currency = _currency(spec.currency) if spec.currency else None
    starts_at = _aware(spec.starts_at, "starts_at")
    ends_at = _aware(spec.ends_at, "ends_at")
    skus = sorted(set(spec.skus))
    if skus:
        catalog.require_variants(session, skus)
    product_ids = sorted(set(spec.product_ids))
    bad_products = [p for p in product_ids if not p or len(p) > 40]
    if bad_products:
        raise invalid("invalid_product_id", "product ids are 1-40 characters", ids=bad_products)
    if product_ids:
        catalog.require_products(session, product_ids)
    codes = sorted(set(spec.category_codes))
    category_ids = catalog.category_ids_by_code(session, codes) if codes else {}
    channel_ids: list[str] = []
    if spec.channels:
        known = {c.id: c for c in catalog.list_channels(session)}
        known.update({c.code: c for c in known.values()})
        missing = sorted({ref for ref in spec.channels if ref not in known})
        if missing:
            raise AppError(
                "channel_not_found",
                f"unknown channels: {', '.join(missing)}",
                404,
                {"channels": missing},
            )
        infos = {known[ref].id: known[ref] for ref in spec.channels}
        if currency is not None:
            wrong = sorted(c.code for c in infos.values() if c.currency != currency)
            if wrong:
                raise invalid(
                    "currency_mismatch",
                    f"the promotion is in {currency}, channels {', '.join(wrong)} are not",
                    channels=wrong,
                )
        channel_ids = sorted(infos)
    groups = sorted({g.strip() for g in spec.customer_groups if g.strip()})
    for name, value in (
        ("priority", spec.priority),
        ("min_subtotal", spec.min_subtotal),
        ("min_quantity", spec.min_quantity),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid("invalid_field", f"{name} must be an integer", field=name)
    values: dict[str, Any] = {
        "name": spec.name.strip(),
        "description": spec.description or "",
        "kind": spec.kind,
        "active": spec.active,
        "priority": spec.priority,
        "stacking": spec.stacking,
        "percent": percent,
        "amount": spec.amount,
        "currency": currency,
        "buy_quantity": spec.buy_quantity,
        "get_quantity": spec.get_quantity,
        "targets": {
            "skus": skus,
            "product_ids": product_ids,
            "category_ids": sorted(category_ids.values()),
            "category_codes": codes,
        },
        "cart_wide": not (skus or product_ids or category_ids),
        "all_channels": not channel_ids,
        "channel_ids": channel_ids,
        "customer_groups": groups,
        "requires_coupon": spec.requires_coupon,
        "min_subtotal": spec.min_subtotal,
        "min_quantity": spec.min_quantity,
        "starts_at": starts_at,
        "ends_at": ends_at,
    }
    rule = _rule_from_row(Promotion(id="pro_check", **values))
    problem = promotion_problem(rule)
    if problem:
        raise invalid(*problem)
    return values


def _sync_index(session: Session, promotion: Promotion) -> None:
    session.execute(delete(PromotionChannel).where(PromotionChannel.promotion_id == promotion.id))
    session.execute(delete(PromotionTarget).where(PromotionTarget.promotion_id == promotion.id))
    session.add_all(
        PromotionChannel(promotion_id=promotion.id, channel_id=cid)
        for cid in promotion.channel_ids or []
    )
    targets = promotion.targets or {}
    session.add_all(
        PromotionTarget(promotion_id=promotion.id, target_type=kind, target_value=value)
        for kind, key in (("sku", "skus"), ("product", "product_ids"), ("category", "category_ids"))
        for value in targets.get(key, [])
    )


def create_promotion(session: Session, spec: PromotionSpec) -> Promotion:
    values = _check_spec(session, spec)
    promotion = Promotion(id=new_id("pro"), version=1, **values)
    session.add(promotion)
    session.flush()
    _sync_index(session, promotion)
    emit(session, "pricing.promotion.created", {"promotion_id": promotion.id}, promotion.id)
    session.flush()
    return promotion


def get_promotion(session: Session, promotion_id: str) -> Promotion:
    promotion = session.get(Promotion, promotion_id)
    if promotion is None:
        raise not_found("promotion", promotion_id)
    return promotion


def _spec_of(row: Promotion) -> PromotionSpec:
    targets = row.targets or {}
    return PromotionSpec(
        name=row.name,
        kind=row.kind,
        description=row.description,
        active=row.active,
        priority=row.priority,
        stacking=row.stacking,
        percent=row.percent,
        amount=row.amount,
        currency=row.currency,
        buy_quantity=row.buy_quantity,
        get_quantity=row.get_quantity,
        skus=list(targets.get("skus", [])),
        product_ids=list(targets.get("product_ids", [])),
        category_codes=list(targets.get("category_codes", [])),
        channels=list(row.channel_ids or []),
        customer_groups=list(row.customer_groups or []),
        requires_coupon=row.requires_coupon,
        min_subtotal=row.min_subtotal,
        min_quantity=row.min_quantity,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )


def update_promotion(
    session: Session,
    promotion_id: str,
    changes: Mapping[str, Any],
    if_match: set[int] | None = None,
) -> Promotion:
    """Change any field but ``kind``. ``if_match``: the versions the caller last saw (from
    ``If-Match``), ``None`` for no precondition; a stale version is a 412."""
    promotion = get_promotion(session, promotion_id)
    if if_match is not None and promotion.version not in if_match:
        raise AppError(
            "precondition_failed",
            f"promotion {promotion.id!r} is at version {promotion.version}",
            412,
            {"version": promotion.version},
        )
    unknown = sorted(set(changes) - PROMOTION_FIELDS)
    if unknown:
        raise invalid("invalid_field", f"unknown fields: {', '.join(unknown)}", fields=unknown)
    nulled = sorted(k for k, v in changes.items() if v is None and k not in NULLABLE_FIELDS)
    if nulled:
        raise invalid("invalid_field", f"cannot be null: {', '.join(nulled)}", fields=nulled)
    if "kind" in changes and changes["kind"] != promotion.kind:
        raise invalid("kind_immutable", "the kind of a promotion cannot change; create another")
    spec = _spec_of(promotion)
    for key, value in changes.items():
        setattr(spec, key, value)
    values = _check_spec(session, spec)
    for key, value in values.items():
        setattr(promotion, key, value)
    promotion.version += 1
    session.flush()
    _sync_index(session, promotion)
    emit(
        session,
        "pricing.promotion.updated",
        {"promotion_id": promotion.id, "version": promotion.version},
        promotion.id,
    )
    session.flush()
    return promotion


def list_promotions(
    session: Session,
    active: bool | None = None,
    channel: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> tuple[Sequence[Promotion], str | None]:
    query = select(Promotion)
    if active is not None:
        query = query.where(Promotion.active.is_(active))
    if channel:
        channel_id = catalog.get_channel(session, channel).id
        query = query.where(
            or_(
                Promotion.all_channels.is_(True),
                Promotion.id.in_(
                    select(PromotionChannel.promotion_id).where(
                        PromotionChannel.channel_id == channel_id
                    )
                ),
            )
        )
    return paginate(session, query, Promotion.id, cursor, limit)


def _live(at: datetime) -> Any:
    return and_(
        Promotion.active.is_(True),
        or_(Promotion.starts_at.is_(None), Promotion.starts_at <= at),
        or_(Promotion.ends_at.is_(None), Promotion.ends_at > at),
    )


def candidate_promotions(
    session: Session,
    channel: ChannelInfo,
    facts: Iterable[VariantFacts],
    coupon_promotion_ids: Iterable[str],
    at: datetime,
) -> list[PromotionRule]:
    """Live promotions that can touch a cart of these variants on this channel, found through
    the channel and target index tables (never a scan of every promotion)."""
    facts = list(facts)
    skus = sorted({f.sku for f in facts})
    products = sorted({f.product_id for f in facts})
    categories = sorted({c for f in facts for c in f.category_ids})
    target_match = exists().where(
        PromotionTarget.promotion_id == Promotion.id,
        or_(
            and_(PromotionTarget.target_type == "sku", PromotionTarget.target_value.in_(skus)),
            and_(
                PromotionTarget.target_type == "product",
                PromotionTarget.target_value.in_(products),
            ),
            and_(
                PromotionTarget.target_type == "category",
                PromotionTarget.target_value.in_(categories),
            ),
        ),
    )
    channel_match = exists().where(
        PromotionChannel.promotion_id == Promotion.id, PromotionChannel.channel_id == channel.id
    )
    rows = session.scalars(
        select(Promotion)
        .where(
            _live(at),
            or_(Promotion.currency.is_(None), Promotion.currency == channel.currency),
            or_(Promotion.all_channels.is_(True), channel_match),
            or_(
                Promotion.requires_coupon.is_(False),
                Promotion.id.in_(sorted(set(coupon_promotion_ids))),
            ),
            or_(Promotion.cart_wide.is_(True), target_match),
        )
        .order_by(Promotion.id)
    )
    return [_rule_from_row(row) for row in rows]


# --- coupons --------------------------------------------------------------------------------


def _coupon_error(code: str, message: str, coupon: str) -> AppError:
    return AppError(code, message, COUPON_STATUS.get(code, 422), {"code": coupon})


def _coupon_state(coupon: Coupon, promotion: Promotion) -> CouponState:
    return CouponState(
        code=coupon.code,
        promotion_id=coupon.promotion_id,
        active=coupon.active,
        usage_limit=coupon.usage_limit,
        per_customer_limit=coupon.per_customer_limit,
        used=coupon.used,
        expires_at=coupon.expires_at,
        promotion_active=promotion.active,
        promotion_starts_at=promotion.starts_at,
        promotion_ends_at=promotion.ends_at,
    )


def create_coupons(
    session: Session,
    promotion_id: str,
    codes: Sequence[str],
    usage_limit: int | None = None,
    per_customer_limit: int | None = None,
    expires_at: datetime | None = None,
) -> list[Coupon]:
    promotion = get_promotion(session, promotion_id)
    if not promotion.requires_coupon:
        raise invalid(
            "promotion_not_coupon_based",
            "this promotion applies automatically; create it with requires_coupon=true to "
            "give it coupons",
            promotion_id=promotion.id,
        )
    if not codes:
        raise invalid("codes_required", "send at least one code")
    if len(codes) > 10_000:
        raise invalid("too_many_codes", "at most 10000 codes per request")
    normalized = [normalize_coupon_code(c) for c in codes]
    bad = [c for c in normalized if not valid_coupon_code(c)]
    if bad:
        raise invalid(
            "invalid_coupon_code",
            "codes are 3-64 characters of A-Z, 0-9, '-' and '_'",
            codes=bad[:20],
        )
    if len(set(normalized)) != len(normalized):
        raise invalid("duplicate_coupon_code", "the same code appears twice")
    for name, limit in (("usage_limit", usage_limit), ("per_customer_limit", per_customer_limit)):
        if limit is not None and limit < 1:
            raise invalid("invalid_limit", f"{name} must be at least 1", field=name)
    expires_at = _aware(expires_at, "expires_at")
    taken: list[str] = []
    for start in range(0, len(normalized), 900):
        taken += session.scalars(
            select(Coupon.code).where(Coupon.code.in_(normalized[start : start + 900]))
        )
    if taken:
        raise conflict(
            "coupon_exists", f"codes already exist: {', '.join(sorted(taken)[:20])}", codes=taken
        )
    coupons = [
        Coupon(
            id=new_id("cpn"),
            promotion_id=promotion.id,
            code=code,
            usage_limit=usage_limit,
            per_customer_limit=per_customer_limit,
            used=0,
            expires_at=expires_at,
            active=True,
        )
        for code in normalized
    ]
    session.add_all(coupons)
    emit(
        session,
        "pricing.coupons.created",
        {"promotion_id": promotion.id, "count": len(coupons)},
        promotion.id,
    )
    session.flush()
    return coupons


def get_coupon(session: Session, code: str, lock: bool = False) -> Coupon:
    """A coupon by code (case-insensitive); unknown is a 404 ``coupon_not_found``.
    ``lock`` takes a row lock on PostgreSQL (SQLite writers are already serialised)."""
    query = select(Coupon).where(Coupon.code == normalize_coupon_code(code))
    if lock:
        query = query.execution_options(populate_existing=True)
        if is_postgres(session):
            query = query.with_for_update()
    coupon = session.scalar(query)
    if coupon is None:
        raise not_found("coupon", normalize_coupon_code(code))
    return coupon


def list_coupons(
    session: Session, promotion_id: str, cursor: str | None = None, limit: int | None = None
) -> tuple[Sequence[Coupon], str | None]:
    get_promotion(session, promotion_id)
    query = select(Coupon).where(Coupon.promotion_id == promotion_id)
    return paginate(session, query, Coupon.id, cursor, limit)


def _customer_uses(session: Session, coupon_id: str, customer_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(CouponRedemption)
            .where(
                CouponRedemption.coupon_id == coupon_id,
                CouponRedemption.customer_id == customer_id,
                CouponRedemption.released_at.is_(None),
            )
        )
        or 0
    )


def check_coupons(
    session: Session,
    codes: Iterable[str],
    customer_id: str | None = None,
    at: datetime | None = None,
) -> list[tuple[Coupon, Promotion]]:
    """*Public interface.* Coupons that can be used now; the first problem is an error
    (``coupon_not_found`` 404, ``coupon_expired`` 422, ``coupon_exhausted`` 409,
    ``coupon_customer_limit`` 409 when ``customer_id`` is given)."""
    at = _aware(at, "at") or utcnow()
    wanted = list(dict.fromkeys(normalize_coupon_code(c) for c in codes if c.strip()))
    if not wanted:
        return []
    rows = session.execute(
        select(Coupon, Promotion)
        .join(Promotion, Promotion.id == Coupon.promotion_id)
        .where(Coupon.code.in_(wanted))
    ).all()
    found = {coupon.code: (coupon, promotion) for coupon, promotion in rows}
    out = []
    for code in wanted:
        if code not in found:
            raise not_found("coupon", code)
        coupon, promotion = found[code]
        uses = None
        if customer_id is not None and coupon.per_customer_limit is not None:
            uses = _customer_uses(session, coupon.id, customer_id)
        problem = coupon_problem(_coupon_state(coupon, promotion), at, uses)
        if problem:
            raise _coupon_error(*problem, code)
        out.append((coupon, promotion))
    return out


def redeem_coupon(
    session: Session,
    code: str,
    customer_id: str | None,
    order_ref: str,
    at: datetime | None = None,
) -> CouponRedemption:
    """*Public interface.* Use a coupon for an order, safely under concurrency.

    The coupon row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises
    writers with ``BEGIN IMMEDIATE``), the per-customer limit is counted under that lock, and
    the global limit is enforced by a conditional ``UPDATE ... SET used = used + 1 WHERE
    used < usage_limit``. Redeeming again for the same order returns the same redemption.
    Nothing is written when a check fails.
    """
    at = _aware(at, "at") or utcnow()
    order_ref = order_ref.strip()
    if not order_ref or len(order_ref) > 120:
        raise invalid("invalid_order_ref", "order_ref is 1-120 characters")
    if customer_id is not None and (not customer_id.strip() or len(customer_id) > 64):
        raise invalid("invalid_customer_id", "customer_id is 1-64 characters")
    coupon = get_coupon(session, code, lock=True)
    existing = session.scalar(
        select(CouponRedemption).where(
            CouponRedemption.coupon_id == coupon.id, CouponRedemption.order_ref == order_ref
        )
    )
    if existing is not None and existing.released_at is None:
        if existing.customer_id != customer_id:
            raise conflict(
                "order_ref_conflict",
                f"order {order_ref!r} already redeemed this coupon for another customer",
                code=coupon.code,
            )
        return existing
    promotion = get_promotion(session, coupon.promotion_id)
    if coupon.per_customer_limit is not None and customer_id is None:
        raise invalid(
            "customer_required",
            f"coupon {coupon.code!r} has a per-customer limit: send customer_id",
            code=coupon.code,
        )
    uses = None
    if customer_id is not None and coupon.per_customer_limit is not None:
        uses = _customer_uses(session, coupon.id, customer_id)
    problem = coupon_problem(_coupon_state(coupon, promotion), at, uses)
    if problem:
        raise _coupon_error(*problem, coupon.code)
    taken = session.execute(
        update(Coupon)
        .where(
            Coupon.id == coupon.id,
            or_(Coupon.usage_limit.is_(None), Coupon.used < Coupon.usage_limit),
        )
        .values(used=Coupon.used + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise _coupon_error(
            "coupon_exhausted", f"coupon {coupon.code!r} has reached its usage limit", coupon.code
        )
    if existing is not None:  # released earlier, used again by the same order
        existing.released_at = None
        existing.redeemed_at = at
        existing.customer_id = customer_id
        redemption = existing
    else:
        redemption = CouponRedemption(
            id=new_id("rdm"),
            coupon_id=coupon.id,
            customer_id=customer_id,
            order_ref=order_ref,
            redeemed_at=at,
        )
        session.add(redemption)
    emit(
        session,
        "pricing.coupon.redeemed",
        {
            "coupon_id": coupon.id,
            "code": coupon.code,
            "promotion_id": coupon.promotion_id,
            "redemption_id": redemption.id,
            "order_ref": order_ref,
        },
        coupon.id,
    )
    session.flush()
    session.refresh(coupon)
    return redemption


def release_redemption(
    session: Session,
    code: str,
    redemption_id: str | None = None,
    order_ref: str | None = None,
    at: datetime | None = None,
) -> CouponRedemption:
    """*Public interface.* Give a use back (the order was cancelled). Releasing twice is a
    no-op: only the first release decrements ``used``."""
    at = _aware(at, "at") or utcnow()
    coupon = get_coupon(session, code, lock=True)
    query = select(CouponRedemption).where(CouponRedemption.coupon_id == coupon.id)
    if redemption_id is not None:
        query = query.where(CouponRedemption.id == redemption_id)
    elif order_ref is not None:
        query = query.where(CouponRedemption.order_ref == order_ref.strip())
    else:
        raise invalid("redemption_required", "give a redemption id or an order reference")
    redemption = session.scalar(query)
    if redemption is None:
        raise not_found("redemption", redemption_id or order_ref or "", code=coupon.code)
    released = session.execute(
        update(CouponRedemption)
        .where(CouponRedemption.id == redemption.id, CouponRedemption.released_at.is_(None))
        .values(released_at=at)
        .execution_options(synchronize_session=False)
    )
    if released.rowcount == 1:  # type: ignore[attr-defined]
        session.execute(
            update(Coupon)
            .where(Coupon.id == coupon.id, Coupon.used > 0)
            .values(used=Coupon.used - 1)
            .execution_options(synchronize_session=False)
        )
        emit(
            session,
            "pricing.coupon.released",
            {"coupon_id": coupon.id, "code": coupon.code, "redemption_id": redemption.id},
            coupon.id,
        )
    session.flush()
    session.refresh(redemption)
    session.refresh(coupon)
    return redemption


# --- cart evaluation ------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    sku: str
    quantity: int
    unit_price: int | None = None


@dataclass
class CartEvaluation:
    channel: ChannelInfo
    evaluation: Evaluation
    prices: dict[str, PriceResolution]
    coupons: list[tuple[str, str]]  # (code, promotion id) of the coupons the caller gave
    at: datetime


def evaluate_cart(
    session: Session,
    *,
    channel: str | ChannelInfo,
    lines: Sequence[LineInput],
    customer_group: str | None = None,
    customer_id: str | None = None,
    coupon_codes: Sequence[str] = (),
    shipping_amount: int = 0,
    at: datetime | None = None,
    strategy: ExclusiveStrategy = ExclusiveStrategy.BEST_WINS,
) -> CartEvaluation:
    """*Public interface.* Price a cart (price books unless a line gives ``unit_price``) and
    apply the channel's promotions. Reads only; about eight queries whatever the cart size."""
    at = _aware(at, "at") or utcnow()
    info = _channel(session, channel)
    if not lines:
        raise invalid("lines_required", "a cart needs at least one line")
    if len(lines) > MAX_CART_LINES:
        raise invalid("too_many_lines", f"at most {MAX_CART_LINES} lines")
    for line in lines:
        if line.quantity < 1:
            raise invalid("invalid_quantity", "quantity must be at least 1", sku=line.sku)
        if line.unit_price is not None and line.unit_price < 0:
            raise invalid("invalid_unit_price", "unit_price cannot be negative", sku=line.sku)
    if shipping_amount < 0:
        raise invalid("invalid_shipping_amount", "shipping_amount cannot be negative")
    facts = catalog.require_variants(session, [line.sku for line in lines])
    coupons = check_coupons(session, coupon_codes, customer_id, at)
    to_price: dict[str, int] = {}
    for line in lines:
        if line.unit_price is None:
            to_price[line.sku] = to_price.get(line.sku, 0) + line.quantity
    prices = resolve_prices(session, info, to_price, customer_group, at) if to_price else {}
    unpriced = sorted(s for s in to_price if s not in prices or prices[s].winner is None)
    if unpriced:
        raise AppError(
            "price_not_found",
            f"no applicable price on channel {info.code!r} for: {', '.join(unpriced)}",
            404,
            {"skus": unpriced, "channel": info.code},
        )
    cart_lines = []
    for line in lines:
        unit_price = line.unit_price
        if unit_price is None:
            winner = prices[line.sku].winner
            assert winner is not None
            unit_price = winner.amount
        f = facts[line.sku]
        cart_lines.append(
            CartLine(line.sku, line.quantity, unit_price, f.product_id, frozenset(f.category_ids))
        )
    applied = tuple(AppliedCoupon(c.code, c.promotion_id) for c, _ in coupons)
    cart = Cart(
        lines=tuple(cart_lines),
        currency=info.currency,
        channel_id=info.id,
        customer_group=customer_group,
        coupons=applied,
        shipping_amount=shipping_amount,
    )
    promotions = candidate_promotions(
        session, info, facts.values(), [c.promotion_id for c in applied], at
    )
    result = evaluate(cart, PromotionIndex(promotions), at, strategy)
    return CartEvaluation(
        channel=info,
        evaluation=result,
        prices=prices,
        coupons=[(c.code, c.promotion_id) for c in applied],
        at=at,
    )


# --- consistency audit ----------------------------------------------------------------------


@dataclass
class AuditReport:
    at: datetime
    findings: list[Finding]
    channels: dict[str, ChannelInfo]
    skus_compared: int
    groups: dict[str, list[str]]  # currency -> channel codes compared

    @property
    def unintended(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "unintended"]


def audit_consistency(
    session: Session, at: datetime | None = None, currency: str | None = None
) -> AuditReport:
    """*Public interface.* SKUs whose effective public price (quantity 1, no customer group)
    or item promotions differ between active channels that share a currency, and cart-wide
    promotions that differ. Differences owned by an intended-override price book are reported
    as ``intended``; every other difference is ``unintended``."""
    at = _aware(at, "at") or utcnow()
    wanted = _currency(currency) if currency else None
    by_currency: dict[str, list[ChannelInfo]] = defaultdict(list)
    for ch in catalog.list_channels(session):
        if ch.active and (wanted is None or ch.currency == wanted):
            by_currency[ch.currency].append(ch)
    groups = {cur: chs for cur, chs in sorted(by_currency.items()) if len(chs) > 1}
    channel_ids = [c.id for chs in groups.values() for c in chs]
    report = AuditReport(at, [], {c.id: c for chs in groups.values() for c in chs}, 0, {})
    if not channel_ids:
        return report
    assignments = session.execute(
        select(ChannelPriceBook.channel_id, ChannelPriceBook.priority, PriceBook)
        .join(PriceBook, PriceBook.id == ChannelPriceBook.price_book_id)
        .where(ChannelPriceBook.channel_id.in_(channel_ids), PriceBook.active.is_(True))
    ).all()
    books_of: dict[str, list[tuple[PriceBook, int]]] = defaultdict(list)
    for channel_id, priority, book in assignments:
        books_of[channel_id].append((book, priority))
    book_ids = sorted({book.id for _, _, book in assignments})
    prices_by_book: dict[str, list[Price]] = defaultdict(list)
    if book_ids:
        for price in session.scalars(select(Price).where(Price.price_book_id.in_(book_ids))):
            prices_by_book[price.price_book_id].append(price)
    all_skus = sorted({p.sku for rows in prices_by_book.values() for p in rows})
    facts = catalog.variant_facts(session, all_skus)
    index = PromotionIndex(
        _rule_from_row(row) for row in session.scalars(select(Promotion).where(_live(at)))
    )
    for cur, chs in groups.items():
        report.groups[cur] = [c.code for c in chs]
        resolved: dict[str, dict[str, PriceResolution]] = {}
        skus: set[str] = set()
        for ch in chs:
            candidates: dict[str, list[PriceCandidate]] = defaultdict(list)
            for book, priority in books_of.get(ch.id, []):
                for price in prices_by_book.get(book.id, []):
                    candidates[price.sku].append(_candidate(price, book, priority))
            resolved[ch.id] = {
                sku: resolve_from_candidates(sku, cands, 1, None, at)
                for sku, cands in candidates.items()
            }
            skus.update(candidates)
        for sku in sorted(skus):
            f = facts.get(sku)
            offers = []
            for ch in chs:
                res = resolved[ch.id].get(sku)
                winner = res.winner if res is not None else None
                promos = (
                    index.targeting_item(ch.id, sku, f.product_id, f.category_ids)
                    if f is not None
                    else []
                )
                offers.append(
                    ChannelOffer(
                        channel_id=ch.id,
                        channel_code=ch.code,
                        amount=winner.amount if winner else None,
                        price_book=winner.book_code if winner else None,
                        intended=bool(winner and winner.intended_override),
                        promotion_ids=tuple(
                            sorted(p.id for p in promos if p.currency in (None, cur))
                        ),
                    )
                )
            report.findings += compare_offers(sku, cur, offers)
        report.skus_compared += len(skus)
        cart_offers = [
            ChannelOffer(
                channel_id=ch.id,
                channel_code=ch.code,
                amount=None,
                price_book=None,
                intended=any(book.intended_override for book, _ in books_of.get(ch.id, [])),
                promotion_ids=tuple(
                    sorted(p.id for p in index.cart_wide(ch.id) if p.currency in (None, cur))
                ),
            )
            for ch in chs
        ]
        report.findings += compare_offers(None, cur, cart_offers)
    return report
