"""HTTP routes of the pricing context: price books, prices, price resolution, promotions,
coupons, cart evaluation and the channel-consistency audit.

Writes need the merchandiser role (admin passes every check). Price resolution and cart
evaluation are storefront endpoints: publishable channel keys may call them for their own
channel only. Coupon redemption is for staff systems that place orders.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.catalog.domain import ChannelInfo
from omniretail.core.auth import STAFF_ROLES, Principal, Role
from omniretail.core.errors import AppError, invalid
from omniretail.core.web import (
    ERROR_RESPONSES,
    Idempotent,
    SessionDep,
    TransactionalRoute,
    error_doc,
    require,
    storefront,
)
from omniretail.pricing import service
from omniretail.pricing.domain import Evaluation, PriceResolution
from omniretail.pricing.models import ChannelPriceBook, Coupon, Price, PriceBook, Promotion
from omniretail.pricing.schemas import (
    AssignmentCreate,
    AssignmentOut,
    BulkResolveIn,
    BulkResolveOut,
    ConsistencyOut,
    CouponList,
    CouponOut,
    CouponsCreate,
    CouponUseOut,
    EvaluateIn,
    EvaluateOut,
    FindingOut,
    LineDiscountOut,
    LineOut,
    NoteOut,
    OfferOut,
    OrderDiscountOut,
    PriceBookCreate,
    PriceBookOut,
    PriceBookPage,
    PriceBookUpdate,
    PriceIn,
    PriceOut,
    PricePage,
    PriceSource,
    PricesUpsert,
    PricesUpserted,
    PromotionCreate,
    PromotionOut,
    PromotionPage,
    PromotionUpdate,
    RedemptionCreate,
    RedemptionOut,
    ResolvedPrice,
    ShippingOut,
    TargetsOut,
    VerdictOut,
)

router = APIRouter(prefix="/api/v1", route_class=TransactionalRoute, responses=ERROR_RESPONSES)

Staff = Annotated[Principal, Depends(require(*STAFF_ROLES))]
Shopper = Annotated[Principal, Depends(storefront(*STAFF_ROLES))]
Merchandiser = Annotated[Principal, Depends(require(Role.MERCHANDISER))]
Redeemer = Annotated[
    Principal,
    Depends(require(Role.MERCHANDISER, Role.STORE_ASSOCIATE, Role.SUPPORT_AGENT)),
]
Auditor = Annotated[Principal, Depends(require(Role.MERCHANDISER, Role.ANALYST))]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag you last read (e.g. '\"3\"'); a stale one is answered with 412 "
        "and changes nothing. Optional.",
    ),
]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Limit = Annotated[int | None, Query(description="Page size (default 50, at most 500)")]


Responses = dict[int | str, dict[str, Any]]


def _error(status: int, code: str, text: str) -> dict[str, Any]:
    return error_doc(code, text)


NOT_FOUND: Responses = {404: _error(404, "price_book_not_found", "Not found")}
COUPON_ERRORS: Responses = {
    404: _error(404, "coupon_not_found", "Unknown coupon code"),
    409: _error(409, "coupon_exhausted", "Usage limit or per-customer limit reached"),
    422: _error(422, "coupon_expired", "Expired, inactive or invalid input"),
}


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> set[int] | None:
    """Versions accepted by ``If-Match`` (``"3"``, ``W/"3"``, lists); ``None``: no check."""
    if header is None or header.strip() == "*":
        return None
    versions = set()
    for part in header.split(","):
        tag = part.strip().removeprefix("W/").strip('"')
        if tag.isdigit():
            versions.add(int(tag))
    return versions


def _channel_for(session: Session, principal: Principal, ref: str | None) -> ChannelInfo:
    """The channel of a storefront call: a channel key may only use its own channel."""
    if principal.role is Role.CHANNEL:
        own = catalog.get_channel(session, principal.channel_id or "")
        if ref is not None and ref not in (own.id, own.code):
            raise AppError(
                "channel_forbidden",
                "a channel key may only use its own channel",
                403,
                {"channel": ref},
            )
        return own
    if not ref:
        raise invalid("channel_required", "give the channel (id or code)")
    return catalog.get_channel(session, ref)


# --- price books ----------------------------------------------------------------------------


def _book_out(book: PriceBook, assignments: list[ChannelPriceBook]) -> PriceBookOut:
    return PriceBookOut(
        id=book.id,
        code=book.code,
        name=book.name,
        currency=book.currency,
        kind=book.kind,
        intended_override=book.intended_override,
        active=book.active,
        description=book.description or "",
        channels=[
            AssignmentOut(
                channel_id=a.channel_id, price_book_id=a.price_book_id, priority=a.priority
            )
            for a in assignments
        ],
        created_at=book.created_at,
        updated_at=book.updated_at,
    )


def _books_out(session: Session, books: list[PriceBook]) -> list[PriceBookOut]:
    assignments = service.book_assignments(session, [b.id for b in books])
    return [_book_out(b, assignments[b.id]) for b in books]


@router.post(
    "/price-books",
    tags=["pricing"],
    status_code=201,
    summary="Create a price book (one currency; shared or for one channel)",
    responses={409: _error(409, "price_book_exists", "The code is taken")},
    dependencies=[Idempotent],
)
def create_price_book(body: PriceBookCreate, session: SessionDep, _: Merchandiser) -> PriceBookOut:
    book = service.create_price_book(session, **body.model_dump())
    return _book_out(book, [])


@router.get("/price-books", tags=["pricing"], summary="List price books")
def list_price_books(
    session: SessionDep,
    _: Staff,
    channel: Annotated[str | None, Query(description="Only books this channel uses")] = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> PriceBookPage:
    books, next_cursor = service.list_price_books(session, channel, cursor, limit)
    return PriceBookPage(items=_books_out(session, list(books)), next_cursor=next_cursor)


@router.get(
    "/price-books/{book}",
    tags=["pricing"],
    summary="Get a price book (by id or code) with its channel assignments",
    responses=NOT_FOUND,
)
def get_price_book(book: str, session: SessionDep, _: Staff) -> PriceBookOut:
    return _books_out(session, [service.get_price_book(session, book)])[0]


@router.patch(
    "/price-books/{book}",
    tags=["pricing"],
    summary="Rename, (de)activate or flag a price book as an intended override",
    responses=NOT_FOUND,
)
def update_price_book(
    book: str, body: PriceBookUpdate, session: SessionDep, _: Merchandiser
) -> PriceBookOut:
    row = service.update_price_book(session, book, body.model_dump(exclude_unset=True))
    return _books_out(session, [row])[0]


@router.post(
    "/price-books/{book}/channels",
    tags=["pricing"],
    status_code=201,
    summary="Let a channel use a price book (or change its priority)",
    responses={
        **NOT_FOUND,
        409: _error(409, "price_book_already_assigned", "A channel book has one channel"),
    },
    dependencies=[Idempotent],
)
def assign_price_book(
    book: str, body: AssignmentCreate, session: SessionDep, _: Merchandiser
) -> AssignmentOut:
    row = service.assign_price_book(session, book, body.channel, body.priority)
    return AssignmentOut(
        channel_id=row.channel_id, price_book_id=row.price_book_id, priority=row.priority
    )


@router.delete(
    "/price-books/{book}/channels/{channel}",
    tags=["pricing"],
    status_code=204,
    summary="Stop a channel using a price book",
    responses=NOT_FOUND,
)
def unassign_price_book(book: str, channel: str, session: SessionDep, _: Merchandiser) -> None:
    service.unassign_price_book(session, book, channel)


def _price_out(p: Price, currency: str) -> PriceOut:
    return PriceOut(
        id=p.id,
        price_book_id=p.price_book_id,
        sku=p.sku,
        amount=p.amount,
        currency=currency,
        customer_group=p.customer_group,
        min_quantity=p.min_quantity,
        starts_at=p.starts_at,
        ends_at=p.ends_at,
    )


def _price_input(p: PriceIn) -> service.PriceInput:
    return service.PriceInput(
        sku=p.sku,
        amount=p.amount,
        customer_group=p.customer_group,
        min_quantity=p.min_quantity,
        starts_at=p.starts_at,
        ends_at=p.ends_at,
    )


@router.post(
    "/price-books/{book}/prices",
    tags=["pricing"],
    summary="Create or update prices in bulk (same sku, group, tier and window: update)",
    responses={**NOT_FOUND, 422: _error(422, "duplicate_price", "Invalid prices")},
    dependencies=[Idempotent],
)
def upsert_prices(
    book: str, body: PricesUpsert, session: SessionDep, _: Merchandiser
) -> PricesUpserted:
    row = service.get_price_book(session, book)
    result = service.upsert_prices(session, row.id, [_price_input(p) for p in body.prices])
    return PricesUpserted(
        created=result.created,
        updated=result.updated,
        prices=[_price_out(p, row.currency) for p in result.prices],
    )


@router.get("/price-books/{book}/prices", tags=["pricing"], summary="List a book's prices")
def list_prices(
    book: str,
    session: SessionDep,
    _: Staff,
    sku: str | None = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> PricePage:
    row = service.get_price_book(session, book)
    prices, next_cursor = service.list_prices(session, row.id, sku, cursor, limit)
    return PricePage(items=[_price_out(p, row.currency) for p in prices], next_cursor=next_cursor)


@router.delete(
    "/price-books/{book}/prices/{price_id}",
    tags=["pricing"],
    status_code=204,
    summary="Delete one price",
    responses=NOT_FOUND,
)
def delete_price(book: str, price_id: str, session: SessionDep, _: Merchandiser) -> None:
    service.delete_price(session, book, price_id)


# --- resolution -----------------------------------------------------------------------------


def _resolved(r: PriceResolution, channel: ChannelInfo) -> ResolvedPrice:
    winner = r.winner
    assert winner is not None
    return ResolvedPrice(
        sku=r.sku,
        channel=channel.code,
        quantity=r.quantity,
        customer_group=r.customer_group,
        at=r.at,
        amount=winner.amount,
        currency=winner.currency,
        price_id=winner.price_id,
        price_book=winner.book_code,
        rule=r.rule or "",
        explanation=[VerdictOut(**service.verdict_dict(v)) for v in r.explanation],
    )


@router.get(
    "/prices/resolve",
    tags=["pricing"],
    summary="The price of a SKU on a channel, which rule won and why every other lost",
    responses={404: _error(404, "price_not_found", "No applicable price")},
)
def resolve_price(
    session: SessionDep,
    principal: Shopper,
    sku: Annotated[str, Query(min_length=1, max_length=64, examples=["TEE-M"])],
    channel: Annotated[str | None, Query(description="Id or code; a channel key's own")] = None,
    quantity: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    customer_group: Annotated[str | None, Query(max_length=64)] = None,
    at: Annotated[AwareDatetime | None, Query(description="Default: now (UTC)")] = None,
) -> ResolvedPrice:
    info = _channel_for(session, principal, channel)
    resolution = service.resolve_price(session, info, sku, quantity, customer_group, at)
    return _resolved(resolution, info)


@router.post(
    "/prices/resolve",
    tags=["pricing"],
    summary="Resolve the prices of many SKUs at once (quantities per SKU are summed)",
)
def resolve_prices(body: BulkResolveIn, session: SessionDep, principal: Shopper) -> BulkResolveOut:
    info = _channel_for(session, principal, body.channel)
    quantities: dict[str, int] = {}
    for item in body.items:
        quantities[item.sku] = quantities.get(item.sku, 0) + item.quantity
    resolved = service.resolve_prices(session, info, quantities, body.customer_group, body.at)
    items = [_resolved(r, info) for sku in quantities if (r := resolved.get(sku)) and r.winner]
    unpriced = [s for s in quantities if s not in resolved or resolved[s].winner is None]
    return BulkResolveOut(items=items, unpriced=unpriced)


# --- promotions -----------------------------------------------------------------------------


def _promotion_out(p: Promotion) -> PromotionOut:
    targets = p.targets or {}
    return PromotionOut(
        id=p.id,
        name=p.name,
        description=p.description or "",
        kind=p.kind,
        active=p.active,
        priority=p.priority,
        stacking=p.stacking,
        percent=p.percent,
        amount=p.amount,
        currency=p.currency,
        buy_quantity=p.buy_quantity,
        get_quantity=p.get_quantity,
        targets=TargetsOut(
            skus=list(targets.get("skus", [])),
            product_ids=list(targets.get("product_ids", [])),
            category_codes=list(targets.get("category_codes", [])),
            category_ids=list(targets.get("category_ids", [])),
        ),
        cart_wide=p.cart_wide,
        channel_ids=list(p.channel_ids or []),
        customer_groups=list(p.customer_groups or []),
        requires_coupon=p.requires_coupon,
        min_subtotal=p.min_subtotal,
        min_quantity=p.min_quantity,
        starts_at=p.starts_at,
        ends_at=p.ends_at,
        version=p.version,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def _line_out(line: Any, price: PriceResolution | None) -> LineOut:
    source = None
    if price is not None and price.winner is not None:
        source = PriceSource(
            price_id=price.winner.price_id, price_book=price.winner.book_code, rule=price.rule or ""
        )
    return LineOut(
        sku=line.sku,
        quantity=line.quantity,
        unit_price=line.unit_price,
        price=source,
        subtotal=line.subtotal,
        discounts=[
            LineDiscountOut(
                promotion_id=d.promotion_id, name=d.name, level=d.level, amount=d.amount
            )
            for d in line.discounts
        ],
        discount_total=line.discount_total,
        total=line.total,
    )


def _evaluation_out(result: service.CartEvaluation, priced_lines: list[bool]) -> EvaluateOut:
    ev: Evaluation = result.evaluation
    notes = {n.promotion_id: n for n in ev.notes}
    applied = set(ev.applied)
    coupons = []
    for code, promotion_id in result.coupons:
        note = notes.get(promotion_id)
        reason = (
            note.reason
            if note is not None
            else "its promotion does not apply to this channel, currency or these items"
        )
        coupons.append(
            CouponUseOut(
                code=code,
                promotion_id=promotion_id,
                applied=promotion_id in applied,
                reason=reason,
            )
        )
    return EvaluateOut(
        channel=result.channel.code,
        currency=ev.currency,
        at=result.at,
        lines=[
            _line_out(line, result.prices.get(line.sku) if priced else None)
            for line, priced in zip(ev.lines, priced_lines, strict=True)
        ],
        order_discounts=[
            OrderDiscountOut(
                promotion_id=d.promotion_id,
                name=d.name,
                amount=d.amount,
                allocation=list(d.allocation),
            )
            for d in ev.order_discounts
        ],
        shipping=ShippingOut(
            amount=ev.shipping_amount,
            discount=ev.shipping_discount,
            total=ev.shipping_amount - ev.shipping_discount,
            free_shipping=ev.free_shipping,
        ),
        subtotal=ev.subtotal,
        item_discount_total=ev.item_discount_total,
        discount_total=ev.discount_total,
        total=ev.total,
        applied_promotions=list(ev.applied),
        coupons=coupons,
        explanations=[
            NoteOut(
                promotion_id=n.promotion_id,
                name=n.name,
                status=n.status,
                reason=n.reason,
                amount=n.amount,
                coupon_code=n.coupon_code,
            )
            for n in ev.notes
        ],
    )


@router.post(
    "/promotions/evaluate",
    tags=["promotions"],
    summary="Price a cart and apply the channel's promotions, with explanations",
    responses={**COUPON_ERRORS, 404: _error(404, "price_not_found", "Unknown SKU, coupon, ...")},
)
def evaluate_cart(body: EvaluateIn, session: SessionDep, principal: Shopper) -> EvaluateOut:
    info = _channel_for(session, principal, body.channel)
    if principal.role is Role.CHANNEL and any(line.unit_price is not None for line in body.lines):
        raise AppError(
            "unit_price_not_allowed",
            "a channel key cannot set prices: omit unit_price to use the price books",
            403,
        )
    result = service.evaluate_cart(
        session,
        channel=info,
        lines=[service.LineInput(line.sku, line.quantity, line.unit_price) for line in body.lines],
        customer_group=body.customer_group,
        customer_id=body.customer_id,
        coupon_codes=body.coupon_codes,
        shipping_amount=body.shipping_amount,
        at=body.at,
        strategy=body.exclusive_strategy,
    )
    return _evaluation_out(result, [line.unit_price is None for line in body.lines])


@router.post(
    "/promotions",
    tags=["promotions"],
    status_code=201,
    summary="Create a promotion",
    dependencies=[Idempotent],
)
def create_promotion(
    body: PromotionCreate, session: SessionDep, _: Merchandiser, response: Response
) -> PromotionOut:
    data = body.model_dump()
    data["percent"] = str(body.percent) if body.percent is not None else None
    promotion = service.create_promotion(session, service.PromotionSpec(**data))
    response.headers["ETag"] = etag(promotion.version)
    return _promotion_out(promotion)


@router.get("/promotions", tags=["promotions"], summary="List promotions")
def list_promotions(
    session: SessionDep,
    _: Staff,
    active: bool | None = None,
    channel: Annotated[str | None, Query(description="Promotions that apply there")] = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> PromotionPage:
    rows, next_cursor = service.list_promotions(session, active, channel, cursor, limit)
    return PromotionPage(items=[_promotion_out(p) for p in rows], next_cursor=next_cursor)


@router.get(
    "/promotions/{promotion_id}",
    tags=["promotions"],
    summary="Get a promotion; the ETag is its version",
    responses={404: _error(404, "promotion_not_found", "Not found")},
)
def get_promotion(
    promotion_id: str, session: SessionDep, _: Staff, response: Response
) -> PromotionOut:
    promotion = service.get_promotion(session, promotion_id)
    response.headers["ETag"] = etag(promotion.version)
    return _promotion_out(promotion)


@router.patch(
    "/promotions/{promotion_id}",
    tags=["promotions"],
    summary="Change a promotion (not its kind); If-Match guards against lost updates",
    responses={
        404: _error(404, "promotion_not_found", "Not found"),
        412: _error(412, "precondition_failed", "If-Match does not match the current version"),
    },
)
def update_promotion(
    promotion_id: str,
    body: PromotionUpdate,
    session: SessionDep,
    _: Merchandiser,
    response: Response,
    if_match: IfMatch = None,
) -> PromotionOut:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("percent") is not None:
        changes["percent"] = str(changes["percent"])
    promotion = service.update_promotion(session, promotion_id, changes, parse_if_match(if_match))
    response.headers["ETag"] = etag(promotion.version)
    return _promotion_out(promotion)


# --- coupons --------------------------------------------------------------------------------


def _coupon_out(c: Coupon) -> CouponOut:
    return CouponOut(
        id=c.id,
        code=c.code,
        promotion_id=c.promotion_id,
        usage_limit=c.usage_limit,
        per_customer_limit=c.per_customer_limit,
        used=c.used,
        remaining=None if c.usage_limit is None else max(c.usage_limit - c.used, 0),
        expires_at=c.expires_at,
        active=c.active,
    )


@router.post(
    "/promotions/{promotion_id}/coupons",
    tags=["promotions"],
    status_code=201,
    summary="Create coupon codes for a coupon-based promotion",
    responses={409: _error(409, "coupon_exists", "A code is taken")},
    dependencies=[Idempotent],
)
def create_coupons(
    promotion_id: str, body: CouponsCreate, session: SessionDep, _: Merchandiser
) -> CouponList:
    coupons = service.create_coupons(
        session,
        promotion_id,
        body.codes,
        usage_limit=body.usage_limit,
        per_customer_limit=body.per_customer_limit,
        expires_at=body.expires_at,
    )
    return CouponList(items=[_coupon_out(c) for c in coupons])


@router.get(
    "/promotions/{promotion_id}/coupons", tags=["promotions"], summary="List a promotion's coupons"
)
def list_coupons(
    promotion_id: str, session: SessionDep, _: Staff, cursor: Cursor = None, limit: Limit = None
) -> CouponList:
    coupons, next_cursor = service.list_coupons(session, promotion_id, cursor, limit)
    return CouponList(items=[_coupon_out(c) for c in coupons], next_cursor=next_cursor)


@router.get(
    "/coupons/{code}",
    tags=["promotions"],
    summary="Get a coupon and its usage",
    responses={404: _error(404, "coupon_not_found", "Unknown coupon code")},
)
def get_coupon(code: str, session: SessionDep, _: Staff) -> CouponOut:
    return _coupon_out(service.get_coupon(session, code))


def _redemption_out(r: Any, coupon: Coupon) -> RedemptionOut:
    return RedemptionOut(
        id=r.id,
        code=coupon.code,
        coupon_id=coupon.id,
        customer_id=r.customer_id,
        order_ref=r.order_ref,
        redeemed_at=r.redeemed_at,
        released_at=r.released_at,
        coupon_used=coupon.used,
    )


@router.post(
    "/coupons/{code}/redemptions",
    tags=["promotions"],
    status_code=201,
    summary="Redeem a coupon for an order (concurrency-safe; same order again: same result)",
    responses=COUPON_ERRORS,
    dependencies=[Idempotent],
)
def redeem_coupon(
    code: str, body: RedemptionCreate, session: SessionDep, _: Redeemer
) -> RedemptionOut:
    redemption = service.redeem_coupon(session, code, body.customer_id, body.order_ref)
    return _redemption_out(redemption, service.get_coupon(session, code))


@router.post(
    "/coupons/{code}/redemptions/{redemption_id}/release",
    tags=["promotions"],
    summary="Give a use back (the order was cancelled); releasing twice changes nothing",
    responses={404: _error(404, "redemption_not_found", "Unknown coupon or redemption")},
)
def release_redemption(
    code: str, redemption_id: str, session: SessionDep, _: Redeemer
) -> RedemptionOut:
    redemption = service.release_redemption(session, code, redemption_id=redemption_id)
    return _redemption_out(redemption, service.get_coupon(session, code))


# --- audit ----------------------------------------------------------------------------------


@router.get(
    "/pricing/consistency",
    tags=["pricing"],
    summary="SKUs whose price or promotions differ between channels sharing a currency",
)
def consistency(
    session: SessionDep,
    _: Auditor,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
    status: Literal["all", "unintended", "intended"] = "all",
    at: Annotated[AwareDatetime | None, Query(description="Default: now (UTC)")] = None,
) -> ConsistencyOut:
    report = service.audit_consistency(session, at, currency)
    findings = [f for f in report.findings if status == "all" or f.status == status]
    return ConsistencyOut(
        at=report.at,
        groups=report.groups,
        skus_compared=report.skus_compared,
        unintended=sum(1 for f in report.findings if f.status == "unintended"),
        intended=sum(1 for f in report.findings if f.status == "intended"),
        findings=[
            FindingOut(
                sku=f.sku,
                currency=f.currency,
                aspect=f.aspect,
                status=f.status,
                intended=f.status == "intended",
                channels=[
                    OfferOut(
                        channel=o.channel_code,
                        channel_id=o.channel_id,
                        amount=o.amount,
                        price_book=o.price_book,
                        intended=o.intended,
                        promotion_ids=list(o.promotion_ids),
                    )
                    for o in f.offers
                ],
            )
            for f in findings
        ],
    )
