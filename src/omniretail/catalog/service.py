"""Catalog use cases. Other contexts call the functions marked *public interface*."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from omniretail.catalog.domain import (
    ChannelInfo,
    ChannelType,
    ProductStatus,
    VariantFacts,
    valid_code,
    valid_gtin,
    valid_sku,
)
from omniretail.catalog.models import (
    Category,
    Channel,
    Product,
    ProductCategory,
    ProductPublication,
    Variant,
)
from omniretail.core.errors import AppError, conflict, invalid, not_found
from omniretail.core.ids import new_id


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:100] or "product"


def _search_text(product: Product) -> str:
    parts = [product.title, product.description or "", product.brand or ""]
    parts += [v.sku for v in product.variants]
    parts += [str(v) for v in (product.attributes or {}).values()]
    return " ".join(parts).lower()


# --- categories -----------------------------------------------------------------------------


def create_category(
    session: Session, code: str, name: str, parent_code: str | None = None
) -> Category:
    if not valid_code(code):
        raise invalid("invalid_code", f"category code {code!r} must be lower-case [a-z0-9_-]")
    if session.scalar(select(Category.id).where(Category.code == code)):
        raise conflict("category_exists", f"category {code!r} already exists", code=code)
    parent_id = None
    if parent_code:
        parent = session.scalar(select(Category).where(Category.code == parent_code))
        if parent is None:
            raise not_found("category", parent_code)
        parent_id = parent.id
    category = Category(id=new_id("cat"), code=code, name=name, parent_id=parent_id)
    session.add(category)
    session.flush()
    return category


def categories_by_code(session: Session, codes: Iterable[str]) -> dict[str, Category]:
    wanted = set(codes)
    if not wanted:
        return {}
    rows = session.scalars(select(Category).where(Category.code.in_(wanted)))
    found = {c.code: c for c in rows}
    missing = sorted(wanted - set(found))
    if missing:
        raise AppError(
            "category_not_found",
            f"unknown categories: {', '.join(missing)}",
            404,
            {"categories": missing},
        )
    return found


def category_ancestry(session: Session) -> dict[str, tuple[str, ...]]:
    """category id -> (itself, parent, grandparent, ...)."""
    parents = dict(session.execute(select(Category.id, Category.parent_id)).tuples().all())
    out: dict[str, tuple[str, ...]] = {}
    for cid in parents:
        chain: list[str] = []
        cur: str | None = cid
        while cur is not None and cur not in chain:
            chain.append(cur)
            cur = parents.get(cur)
        out[cid] = tuple(chain)
    return out


# --- products and variants ------------------------------------------------------------------


def validate_variant_input(sku: str, barcode: str | None) -> None:
    if not valid_sku(sku):
        raise invalid("invalid_sku", f"SKU {sku!r} is not valid", sku=sku)
    if barcode is not None and not valid_gtin(barcode):
        raise invalid(
            "invalid_barcode", f"barcode {barcode!r} is not a valid GTIN", barcode=barcode
        )


def create_product(
    session: Session,
    *,
    title: str,
    variants: list[dict[str, Any]],
    handle: str | None = None,
    description: str = "",
    brand: str | None = None,
    status: str = ProductStatus.ACTIVE.value,
    category_codes: list[str] | None = None,
    attributes: dict[str, Any] | None = None,
    options: list[dict[str, Any]] | None = None,
    media: list[dict[str, Any]] | None = None,
) -> Product:
    """Create a product with at least one variant (``{"sku", "title"?, "barcode"?, ...}``)."""
    if not title.strip():
        raise invalid("invalid_title", "a product needs a title")
    if status not in {s.value for s in ProductStatus}:
        raise invalid("invalid_status", f"unknown status {status!r}")
    if not variants:
        raise invalid("variants_required", "a product needs at least one variant")
    skus = [v["sku"] for v in variants]
    if len(set(skus)) != len(skus):
        raise invalid("duplicate_sku", "the same SKU appears twice in this product")
    for v in variants:
        validate_variant_input(v["sku"], v.get("barcode"))
    existing = list(session.scalars(select(Variant.sku).where(Variant.sku.in_(skus))))
    if existing:
        raise conflict("sku_exists", f"SKU already exists: {', '.join(existing)}", skus=existing)
    barcodes = [v["barcode"] for v in variants if v.get("barcode")]
    if barcodes:
        taken = list(session.scalars(select(Variant.barcode).where(Variant.barcode.in_(barcodes))))
        if taken:
            raise conflict("barcode_exists", f"barcode already used: {', '.join(map(str, taken))}")
    handle = handle or _slug(title)
    if session.scalar(select(Product.id).where(Product.handle == handle)):
        handle = f"{handle}-{skus[0].lower()}"[:120]
        if session.scalar(select(Product.id).where(Product.handle == handle)):
            raise conflict("handle_exists", f"product handle {handle!r} already exists")
    cats = categories_by_code(session, category_codes or [])
    product = Product(
        id=new_id("prd"),
        handle=handle,
        title=title.strip(),
        description=description,
        brand=brand,
        status=status,
        attributes=dict(attributes or {}),
        options=list(options or []),
        media=list(media or []),
    )
    for pos, v in enumerate(variants):
        product.variants.append(
            Variant(
                id=new_id("var"),
                sku=v["sku"],
                barcode=v.get("barcode"),
                title=v.get("title") or title.strip(),
                option_values=dict(v.get("option_values") or {}),
                attributes=dict(v.get("attributes") or {}),
                weight_grams=v.get("weight_grams"),
                position=pos,
            )
        )
    for cat in cats.values():
        product.categories.append(ProductCategory(category_id=cat.id))
    product.search_text = _search_text(product)
    session.add(product)
    session.flush()
    return product


def get_product(session: Session, product_id: str) -> Product:
    product = session.scalar(
        select(Product)
        .where(Product.id == product_id)
        .options(selectinload(Product.variants), selectinload(Product.categories))
    )
    if product is None:
        raise not_found("product", product_id)
    return product


def variant_facts(session: Session, skus: Iterable[str]) -> dict[str, VariantFacts]:
    """*Public interface.* Facts for the given SKUs (unknown SKUs are simply absent)."""
    wanted = list(dict.fromkeys(skus))
    if not wanted:
        return {}
    rows = session.execute(
        select(Variant, Product.status, Product.attributes)
        .join(Product, Product.id == Variant.product_id)
        .where(Variant.sku.in_(wanted))
    ).all()
    if not rows:
        return {}
    product_ids = {v.product_id for v, _, _ in rows}
    links = session.execute(
        select(ProductCategory.product_id, ProductCategory.category_id).where(
            ProductCategory.product_id.in_(product_ids)
        )
    ).all()
    ancestry = category_ancestry(session) if links else {}
    cats: dict[str, set[str]] = {}
    for pid, cid in links:
        cats.setdefault(pid, set()).update(ancestry.get(cid, (cid,)))
    return {
        v.sku: VariantFacts(
            sku=v.sku,
            variant_id=v.id,
            product_id=v.product_id,
            title=v.title,
            category_ids=tuple(sorted(cats.get(v.product_id, ()))),
            attributes={**(pattrs or {}), **(v.attributes or {})},
            status=status,
        )
        for v, status, pattrs in rows
    }


def require_variants(session: Session, skus: Iterable[str]) -> dict[str, VariantFacts]:
    """*Public interface.* Like ``variant_facts`` but unknown SKUs are a 404."""
    wanted = list(dict.fromkeys(skus))
    facts = variant_facts(session, wanted)
    missing = [s for s in wanted if s not in facts]
    if missing:
        raise AppError(
            "sku_not_found", f"unknown SKU: {', '.join(missing)}", 404, {"skus": missing}
        )
    return facts


def category_ids_by_code(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """*Public interface.* category code -> id; unknown codes are a 404."""
    return {code: c.id for code, c in categories_by_code(session, codes).items()}


# --- channels -------------------------------------------------------------------------------


def _channel_info(ch: Channel) -> ChannelInfo:
    return ChannelInfo(
        id=ch.id,
        code=ch.code,
        name=ch.name,
        type=ch.type,
        currency=ch.currency,
        country=ch.country,
        locale=ch.locale,
        active=ch.active,
    )


def create_channel(
    session: Session,
    *,
    code: str,
    name: str,
    type: str,
    currency: str,
    country: str,
    locale: str,
    publish_all: bool = False,
) -> Channel:
    if not valid_code(code):
        raise invalid("invalid_code", f"channel code {code!r} must be lower-case [a-z0-9_-]")
    if type not in {t.value for t in ChannelType}:
        raise invalid(
            "invalid_channel_type",
            f"unknown channel type {type!r}",
            allowed=[t.value for t in ChannelType],
        )
    if len(currency) != 3 or not currency.isalpha():
        raise invalid("invalid_currency", f"{currency!r} is not an ISO 4217 code")
    if len(country) != 2 or not country.isalpha():
        raise invalid("invalid_country", f"{country!r} is not an ISO 3166 alpha-2 code")
    if session.scalar(select(Channel.id).where(Channel.code == code)):
        raise conflict("channel_exists", f"channel {code!r} already exists", code=code)
    channel = Channel(
        id=new_id("chn"),
        code=code,
        name=name,
        type=type,
        currency=currency.upper(),
        country=country.upper(),
        locale=locale,
        active=True,
        publish_all=publish_all,
    )
    session.add(channel)
    session.flush()
    return channel


def _load_channel(session: Session, ref: str) -> Channel:
    ch = session.get(Channel, ref) if ref.startswith("chn_") else None
    if ch is None:
        ch = session.scalar(select(Channel).where(Channel.code == ref))
    if ch is None:
        raise not_found("channel", ref)
    return ch


def get_channel(session: Session, ref: str) -> ChannelInfo:
    """*Public interface.* A channel by id or code; unknown is a 404."""
    return _channel_info(_load_channel(session, ref))


def list_channels(session: Session) -> list[ChannelInfo]:
    """*Public interface.*"""
    return [_channel_info(c) for c in session.scalars(select(Channel).order_by(Channel.code))]


def publish_products(session: Session, channel_ref: str, product_ids: list[str]) -> int:
    ch = _load_channel(session, channel_ref)
    found = set(session.scalars(select(Product.id).where(Product.id.in_(product_ids))))
    missing = sorted(set(product_ids) - found)
    if missing:
        raise AppError("product_not_found", "unknown products", 404, {"products": missing})
    already = set(
        session.scalars(
            select(ProductPublication.product_id).where(
                ProductPublication.channel_id == ch.id,
                ProductPublication.product_id.in_(product_ids),
            )
        )
    )
    new = [pid for pid in dict.fromkeys(product_ids) if pid not in already]
    session.add_all(ProductPublication(channel_id=ch.id, product_id=pid) for pid in new)
    session.flush()
    return len(new)


def published_product_ids(
    session: Session, channel_ref: str, product_ids: Iterable[str]
) -> set[str]:
    """*Public interface.* Which of ``product_ids`` are visible on the channel."""
    ch = _load_channel(session, channel_ref)
    ids = list(product_ids)
    if ch.publish_all:
        return set(session.scalars(select(Product.id).where(Product.id.in_(ids))))
    return set(
        session.scalars(
            select(ProductPublication.product_id).where(
                ProductPublication.channel_id == ch.id, ProductPublication.product_id.in_(ids)
            )
        )
    )
