"""HTTP routes of the catalog context: categories, products, variants, search, channels,
publication and bulk import.

Writes need the merchandiser role (admin passes every check). Reads are open to every staff
role and to publishable channel keys; a channel key sees only active products published on
its own channel, and only its own channel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from omniretail.catalog import importer, service
from omniretail.catalog.domain import etag, parse_if_match
from omniretail.catalog.models import Category, Channel, Product, Variant
from omniretail.catalog.schemas import (
    CategoryCreate,
    CategoryOut,
    ChannelCreate,
    ChannelList,
    ChannelOut,
    ChannelUpdate,
    ImportReport,
    MediaOut,
    OptionOut,
    ProductCreate,
    ProductOut,
    ProductPage,
    ProductSummary,
    ProductUpdate,
    PublicationRequest,
    PublicationResult,
    VariantDetail,
    VariantIn,
    VariantList,
    VariantOut,
    VariantUpdate,
)
from omniretail.core.auth import STAFF_ROLES, Principal, Role
from omniretail.core.errors import AppError, not_found
from omniretail.core.web import (
    ERROR_RESPONSES,
    Idempotent,
    SessionDep,
    TransactionalRoute,
    error_doc,
    require,
    storefront,
)

router = APIRouter(prefix="/api/v1", route_class=TransactionalRoute, responses=ERROR_RESPONSES)

Reader = Annotated[Principal, Depends(storefront(*STAFF_ROLES))]
Merchandiser = Annotated[Principal, Depends(require(Role.MERCHANDISER))]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag you last read (e.g. '\"3\"'); a stale one is answered with 412 "
        "and changes nothing. Optional: without it the change is applied unconditionally.",
    ),
]

MAX_IMPORT_BYTES = 50 * 1024 * 1024


def _error(status: int, code: str, text: str) -> dict[str, Any]:
    return error_doc(code, text)


Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: _error(404, "product_not_found", "Not found")}
CONFLICT: Responses = {
    409: _error(409, "sku_exists", "A unique value (SKU, barcode, code) is taken")
}
STALE: Responses = {
    412: _error(412, "precondition_failed", "If-Match does not match the current version")
}


# --- mapping --------------------------------------------------------------------------------


def _variant_out(v: Variant) -> VariantOut:
    return VariantOut(
        id=v.id,
        product_id=v.product_id,
        sku=v.sku,
        barcode=v.barcode,
        title=v.title,
        option_values=dict(v.option_values or {}),
        attributes=dict(v.attributes or {}),
        weight_grams=v.weight_grams,
        position=v.position,
    )


def _variant_detail(v: Variant) -> VariantDetail:
    p = v.product
    return VariantDetail(
        **_variant_out(v).model_dump(),
        product=ProductSummary(
            id=p.id,
            handle=p.handle,
            title=p.title,
            brand=p.brand,
            status=p.status,
            attributes=dict(p.attributes or {}),
        ),
    )


def _products_out(session: SessionDep, products: list[Product]) -> list[ProductOut]:
    codes = service.category_codes(
        session, {pc.category_id for p in products for pc in p.categories}
    )
    return [
        ProductOut(
            id=p.id,
            handle=p.handle,
            title=p.title,
            description=p.description or "",
            brand=p.brand,
            status=p.status,
            categories=sorted(codes[pc.category_id] for pc in p.categories),
            attributes=dict(p.attributes or {}),
            options=[OptionOut(**o) for o in p.options or []],
            media=[MediaOut(**m) for m in p.media or []],
            variants=[_variant_out(v) for v in sorted(p.variants, key=lambda v: v.position)],
            version=p.version,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )
        for p in products
    ]


def _product_response(session: SessionDep, product: Product, response: Response) -> ProductOut:
    response.headers["ETag"] = etag(product.version)
    return _products_out(session, [product])[0]


def _channel_out(ch: Channel) -> ChannelOut:
    return ChannelOut(
        id=ch.id,
        code=ch.code,
        name=ch.name,
        type=ch.type,
        currency=ch.currency,
        country=ch.country,
        locale=ch.locale,
        active=ch.active,
        publish_all=ch.publish_all,
    )


# --- categories -----------------------------------------------------------------------------


@router.post(
    "/categories",
    tags=["catalog"],
    status_code=201,
    summary="Create a category (merchandiser)",
    responses=CONFLICT,
)
def create_category(body: CategoryCreate, session: SessionDep, _: Merchandiser) -> CategoryOut:
    cat = service.create_category(session, body.code, body.name, body.parent_code)
    by_id = {c.id: c for c in service.list_categories(session)}
    return _categories_out([cat], by_id, tree=False)[0]


def _categories_out(
    roots: list[Category], by_id: dict[str, Category], tree: bool
) -> list[CategoryOut]:
    def path(cat: Category) -> list[str]:
        chain: list[str] = []
        cur: Category | None = cat
        while cur is not None and cur.code not in chain:
            chain.append(cur.code)
            cur = by_id.get(cur.parent_id) if cur.parent_id else None
        return chain[::-1]

    children: dict[str | None, list[Category]] = {}
    for cat in by_id.values():
        children.setdefault(cat.parent_id, []).append(cat)

    def node(cat: Category) -> CategoryOut:
        parts = path(cat)
        return CategoryOut(
            id=cat.id,
            code=cat.code,
            name=cat.name,
            parent_id=cat.parent_id,
            parent_code=parts[-2] if len(parts) > 1 else None,
            path=parts,
            children=[node(c) for c in children.get(cat.id, [])] if tree else [],
        )

    return [node(c) for c in roots]


@router.get("/categories", tags=["catalog"], summary="List categories, flat or as a tree")
def list_categories(
    session: SessionDep,
    _: Reader,
    view: Annotated[
        str,
        Query(
            pattern="^(flat|tree)$",
            description="'flat': every category ordered by code; 'tree': roots with children",
        ),
    ] = "flat",
) -> list[CategoryOut]:
    cats = service.list_categories(session)
    by_id = {c.id: c for c in cats}
    roots = [c for c in cats if c.parent_id is None] if view == "tree" else cats
    return _categories_out(roots, by_id, tree=view == "tree")


# --- products -------------------------------------------------------------------------------


@router.post(
    "/products",
    tags=["catalog"],
    status_code=201,
    summary="Create a product with its variants (merchandiser)",
    responses=CONFLICT,
    dependencies=[Idempotent],
)
def create_product(
    body: ProductCreate, session: SessionDep, response: Response, _: Merchandiser
) -> ProductOut:
    product = service.create_product(session, **body.service_fields())
    response.headers["Location"] = f"/api/v1/products/{product.id}"
    return _product_response(session, product, response)


def _attribute_filters(request: Request) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key.startswith("attr.") and len(key) > 5:
            filters.setdefault(key[5:], []).append(value)
    return filters


@router.get(
    "/products",
    tags=["catalog"],
    summary="Search products (text, category with descendants, attributes, status, channel)",
    description="Attribute filters are query parameters named `attr.<name>`, e.g. "
    "`attr.color=red&attr.size=M` (repeat one to accept several values). A product matches "
    "when one of its variants has every attribute, falling back to the product's attributes. "
    "Channel keys see only active products published on their channel.",
)
def search_products(
    request: Request,
    session: SessionDep,
    principal: Reader,
    q: Annotated[str | None, Query(max_length=200, description="Words to find")] = None,
    category: Annotated[str | None, Query(description="Category code or id")] = None,
    status: Annotated[str | None, Query(description="draft, active or archived")] = None,
    channel: Annotated[str | None, Query(description="Only products on this channel")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int | None, Query(description="Page size (default 50, max 500)")] = None,
) -> ProductPage:
    storefront_channel = None
    if principal.role is Role.CHANNEL:
        storefront_channel = principal.channel_id or ""
        own = service.storefront_channel(session, storefront_channel)
        if channel is not None and channel not in (own.id, own.code):
            raise AppError("forbidden", "a channel key sees only its own channel", 403)
        channel = None
    products, next_cursor = service.search_products(
        session,
        q=q,
        category=category,
        attributes=_attribute_filters(request),
        status=status,
        channel=channel,
        storefront_channel_id=storefront_channel,
        cursor=cursor,
        limit=limit,
    )
    return ProductPage(items=_products_out(session, products), next_cursor=next_cursor)


def _readable_product(session: SessionDep, principal: Principal, product_id: str) -> Product:
    if principal.role is Role.CHANNEL:
        return service.get_storefront_product(session, product_id, principal.channel_id or "")
    return service.get_product(session, product_id)


@router.get(
    "/products/{product_id}",
    tags=["catalog"],
    summary="Get a product with its variants; the ETag is its version",
    response_model=ProductOut,
    responses={**NOT_FOUND, 304: {"description": "If-None-Match matches the current ETag"}},
)
def get_product(
    product_id: str,
    session: SessionDep,
    response: Response,
    principal: Reader,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Any:
    product = _readable_product(session, principal, product_id)
    versions = parse_if_match(if_none_match)
    if versions and product.version in versions:
        return Response(status_code=304, headers={"ETag": etag(product.version)})
    return _product_response(session, product, response)


@router.patch(
    "/products/{product_id}",
    tags=["catalog"],
    summary="Change product fields (merchandiser); If-Match guards against lost updates",
    responses={**NOT_FOUND, **CONFLICT, **STALE},
)
def update_product(
    product_id: str,
    body: ProductUpdate,
    session: SessionDep,
    response: Response,
    _: Merchandiser,
    if_match: IfMatch = None,
) -> ProductOut:
    changes = body.model_dump(mode="json", exclude_unset=True)
    product = service.update_product(session, product_id, changes, parse_if_match(if_match))
    return _product_response(session, product, response)


@router.post(
    "/products/{product_id}/variants",
    tags=["catalog"],
    status_code=201,
    summary="Add a variant to a product (merchandiser)",
    responses={**NOT_FOUND, **CONFLICT, **STALE},
)
def add_variant(
    product_id: str,
    body: VariantIn,
    session: SessionDep,
    response: Response,
    _: Merchandiser,
    if_match: IfMatch = None,
) -> VariantDetail:
    variant = service.add_variant(
        session,
        product_id,
        body.model_dump(mode="json", exclude_unset=True),
        parse_if_match(if_match),
    )
    response.headers["ETag"] = etag(variant.product.version)
    response.headers["Location"] = f"/api/v1/variants/{variant.sku}"
    return _variant_detail(variant)


def _readable_variants(
    session: SessionDep, principal: Principal, variants: list[Variant]
) -> list[Variant]:
    if principal.role is Role.CHANNEL:
        return service.visible_variants(session, variants, principal.channel_id or "")
    return variants


@router.get(
    "/variants",
    tags=["catalog"],
    summary="Look variants up by barcode (POS scans) or SKU",
    description="Give `barcode` and/or `sku`, each repeatable (up to 100 values). A UPC-A, "
    "its EAN-13 form with a leading zero, and its GTIN-14 form all find the same variant. "
    "Unknown codes are simply absent from `items`.",
)
def find_variants(
    session: SessionDep,
    principal: Reader,
    barcode: Annotated[list[str] | None, Query(max_length=100)] = None,
    sku: Annotated[list[str] | None, Query(max_length=100)] = None,
) -> VariantList:
    if not barcode and not sku:
        raise AppError("filter_required", "give at least one barcode or sku", 422)
    variants = service.find_variants(session, skus=sku or [], barcodes=barcode or [])
    return VariantList(
        items=[_variant_detail(v) for v in _readable_variants(session, principal, variants)]
    )


@router.get(
    "/variants/{sku}", tags=["catalog"], summary="Get a variant by SKU", responses=NOT_FOUND
)
def get_variant(sku: str, session: SessionDep, principal: Reader) -> VariantDetail:
    variant = service.get_variant(session, sku)
    if not _readable_variants(session, principal, [variant]):
        raise not_found("variant", sku)
    return _variant_detail(variant)


@router.patch(
    "/variants/{sku}",
    tags=["catalog"],
    summary="Change a variant (merchandiser); shares its product's ETag",
    responses={**NOT_FOUND, **CONFLICT, **STALE},
)
def update_variant(
    sku: str,
    body: VariantUpdate,
    session: SessionDep,
    response: Response,
    _: Merchandiser,
    if_match: IfMatch = None,
) -> VariantDetail:
    changes = body.model_dump(mode="json", exclude_unset=True)
    variant = service.update_variant(session, sku, changes, parse_if_match(if_match))
    response.headers["ETag"] = etag(variant.product.version)
    return _variant_detail(variant)


# --- import ---------------------------------------------------------------------------------


@router.post(
    "/products/import",
    tags=["catalog"],
    summary="Bulk import products from CSV or JSON Lines (merchandiser)",
    description="Send the file as multipart form field `file`, or as the raw request body "
    "(`Content-Type: text/csv` or `application/x-ndjson`). Each product is imported "
    "all-or-nothing; the report lists every rejected row. Products are matched by SKU, then "
    "handle: existing ones are updated, identical ones are counted as unchanged.",
    dependencies=[Idempotent],
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "handle,title,sku,barcode\ntee,Tee,TEE-1,4006381333931\n",
                },
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"title": "Tee", "variants": [{"sku": "TEE-1"}]}\n',
                },
            }
        }
    },
)
async def import_products(
    request: Request,
    session: SessionDep,
    _: Merchandiser,
    format: Annotated[
        str | None, Query(description="csv or jsonl; guessed from the file when omitted")
    ] = None,
    dry_run: Annotated[bool, Query(description="Check everything, write nothing")] = False,
) -> ImportReport:
    # The body is read here (not as a File parameter) so that the Idempotency-Key check,
    # which hashes the raw body, and the multipart parser share one buffered copy.
    data = await request.body()
    name, ctype = None, request.headers.get("content-type", "")
    if len(data) > MAX_IMPORT_BYTES:
        raise AppError(
            "file_too_large", f"import files are limited to {MAX_IMPORT_BYTES} bytes", 413
        )
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise AppError("file_required", "send the file in the multipart field 'file'", 422)
        data = await upload.read()
        name, ctype = upload.filename, upload.content_type or ""
    if not data.strip():
        raise AppError("empty_file", "the import file is empty", 422)
    fmt = importer.detect_format(format, name, ctype, data)
    return await run_in_threadpool(importer.import_products, session, data, fmt, dry_run=dry_run)


# --- channels -------------------------------------------------------------------------------


@router.post(
    "/channels",
    tags=["channels"],
    status_code=201,
    summary="Create a sales channel (merchandiser)",
    responses=CONFLICT,
)
def create_channel(body: ChannelCreate, session: SessionDep, _: Merchandiser) -> ChannelOut:
    ch = service.create_channel(session, **body.model_dump(mode="json"))
    return _channel_out(ch)


def _own_channel_only(principal: Principal, ch: Channel, ref: str) -> None:
    if principal.role is Role.CHANNEL and ch.id != principal.channel_id:
        raise not_found("channel", ref)


@router.get("/channels", tags=["channels"], summary="List sales channels")
def list_channels(session: SessionDep, principal: Reader) -> ChannelList:
    rows = service.list_channel_rows(session)
    if principal.role is Role.CHANNEL:
        rows = [ch for ch in rows if ch.id == principal.channel_id]
    return ChannelList(items=[_channel_out(ch) for ch in rows])


@router.get(
    "/channels/{ref}",
    tags=["channels"],
    summary="Get a sales channel by id or code",
    responses={404: _error(404, "channel_not_found", "Not found")},
)
def get_channel(ref: str, session: SessionDep, principal: Reader) -> ChannelOut:
    ch = service.channel_row(session, ref)
    _own_channel_only(principal, ch, ref)
    return _channel_out(ch)


@router.patch(
    "/channels/{ref}",
    tags=["channels"],
    summary="Change a channel's name, active flag or publish_all (merchandiser)",
    responses={404: _error(404, "channel_not_found", "Not found")},
)
def update_channel(
    ref: str, body: ChannelUpdate, session: SessionDep, _: Merchandiser
) -> ChannelOut:
    ch = service.update_channel(session, ref, **body.model_dump(exclude_unset=True))
    return _channel_out(ch)


@router.post(
    "/channels/{ref}/publications",
    tags=["channels"],
    summary="Publish products on a channel (merchandiser); already published ones are kept",
    responses={404: _error(404, "channel_not_found", "Not found")},
)
def publish_products(
    ref: str, body: PublicationRequest, session: SessionDep, _: Merchandiser
) -> PublicationResult:
    ch = service.channel_row(session, ref)
    count = service.publish_products(session, ch.id, body.product_ids)
    return PublicationResult(
        channel_id=ch.id, published=count, product_ids=list(dict.fromkeys(body.product_ids))
    )


@router.delete(
    "/channels/{ref}/publications/{product_id}",
    tags=["channels"],
    status_code=204,
    summary="Withdraw a product from a channel (merchandiser)",
    responses={404: _error(404, "publication_not_found", "Not published there")},
)
def unpublish_product(ref: str, product_id: str, session: SessionDep, _: Merchandiser) -> None:
    service.unpublish_product(session, ref, product_id)
