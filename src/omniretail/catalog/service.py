"""Catalog use cases. Other contexts call the functions marked *public interface*.

Rules for errors: a resource named in the path that does not exist is a 404; a reference
inside the request (a category code in a body or a query filter, a product id in a
publication list) that does not exist is a 422 with the same ``<kind>_not_found`` code.
Every function validates before it writes, so a failure leaves the database unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import String, cast, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from omniretail.catalog.domain import (
    MAX_LENGTHS,
    MAX_WEIGHT_GRAMS,
    ChannelInfo,
    ChannelType,
    ProductStatus,
    VariantFacts,
    derive_options,
    gtin14,
    gtin_forms,
    option_problem,
    options_problem,
    search_terms,
    valid_attribute_key,
    valid_code,
    valid_gtin,
    valid_handle,
    valid_media_url,
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
from omniretail.core.events import emit
from omniretail.core.ids import new_id
from omniretail.core.pagination import paginate

PRODUCT_FIELDS = (
    "handle",
    "title",
    "description",
    "brand",
    "status",
    "categories",
    "attributes",
    "options",
    "media",
)
VARIANT_FIELDS = ("title", "barcode", "option_values", "attributes", "weight_grams")
STATUSES = frozenset(s.value for s in ProductStatus)
LOCALE_RE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:100] or "product"


def _search_text(product: Product) -> str:
    parts = [product.title, product.handle or "", product.description or "", product.brand or ""]
    parts += [str(v) for v in (product.attributes or {}).values()]
    for v in product.variants:
        parts += [v.sku, v.barcode or "", v.title]
        parts += [str(x) for x in (v.option_values or {}).values()]
        parts += [str(x) for x in (v.attributes or {}).values()]
    return " ".join(p for p in parts if p).lower()


def _product_loads() -> tuple[Any, ...]:
    return (selectinload(Product.variants), selectinload(Product.categories))


@contextmanager
def _unique_guard(session: Session) -> Iterator[None]:
    """Run the writes of the block in a savepoint; a unique-constraint violation from a
    concurrent writer (who passed the same checks first) becomes a 409 instead of a 500."""
    try:
        with session.begin_nested():
            yield
    except IntegrityError:
        raise conflict(
            "concurrent_update",
            "another request created or changed the same SKU, barcode, handle or code; retry",
        ) from None


# --- categories -----------------------------------------------------------------------------


def create_category(
    session: Session, code: str, name: str, parent_code: str | None = None
) -> Category:
    if not valid_code(code):
        raise invalid("invalid_code", f"category code {code!r} must be lower-case [a-z0-9_-]")
    if not name.strip():
        raise invalid("invalid_name", "a category needs a name")
    _check_length("name", name.strip())
    if session.scalar(select(Category.id).where(Category.code == code)):
        raise conflict("category_exists", f"category {code!r} already exists", code=code)
    parent_id = None
    if parent_code:
        parent = session.scalar(select(Category).where(Category.code == parent_code))
        if parent is None:
            raise invalid(
                "category_not_found", f"parent category {parent_code!r} not found", category=code
            )
        parent_id = parent.id
    category = Category(id=new_id("cat"), code=code, name=name.strip(), parent_id=parent_id)
    with _unique_guard(session):
        session.add(category)
    emit(session, "catalog.category.created", {"id": category.id, "code": code}, category.id)
    session.flush()
    return category


def list_categories(session: Session) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.code)))


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


def _referenced_categories(session: Session, codes: Iterable[str]) -> dict[str, Category]:
    """Like ``categories_by_code`` for codes given in a request: unknown codes are a 422."""
    try:
        return categories_by_code(session, codes)
    except AppError as e:
        e.status = 422
        raise


def category_ancestry(session: Session) -> dict[str, tuple[str, ...]]:
    """category id -> (itself, parent, grandparent, ...)."""
    parents = {
        cid: parent for cid, parent in session.execute(select(Category.id, Category.parent_id))
    }
    out: dict[str, tuple[str, ...]] = {}
    for cid in parents:
        chain: list[str] = []
        cur: str | None = cid
        while cur is not None and cur not in chain:
            chain.append(cur)
            cur = parents.get(cur)
        out[cid] = tuple(chain)
    return out


def descendant_category_ids(session: Session, ref: str) -> set[str]:
    """The category (by code or id) and every category below it; unknown is a 422."""
    rows = session.execute(select(Category.id, Category.code, Category.parent_id)).all()
    root = next((cid for cid, code, _ in rows if ref in (cid, code)), None)
    if root is None:
        raise invalid("category_not_found", f"category {ref!r} not found", category=ref)
    children: dict[str | None, list[str]] = {}
    for cid, _, parent in rows:
        children.setdefault(parent, []).append(cid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def category_codes(session: Session, category_ids: Iterable[str]) -> dict[str, str]:
    """category id -> code, in one query."""
    ids = set(category_ids)
    if not ids:
        return {}
    rows = session.execute(select(Category.id, Category.code).where(Category.id.in_(ids)))
    return {cid: code for cid, code in rows}


# --- validation helpers ---------------------------------------------------------------------


def validate_variant_input(sku: str, barcode: str | None) -> None:
    if not valid_sku(sku):
        raise invalid("invalid_sku", f"SKU {sku!r} is not valid", sku=sku)
    if barcode is not None and not valid_gtin(barcode):
        raise invalid(
            "invalid_barcode", f"barcode {barcode!r} is not a valid GTIN", barcode=barcode
        )


def _check_attributes(attributes: dict[str, Any], **where: Any) -> dict[str, Any]:
    if not isinstance(attributes, dict):
        raise invalid("invalid_attributes", "attributes must be an object", **where)
    for key, value in attributes.items():
        if not valid_attribute_key(key):
            raise invalid(
                "invalid_attributes",
                f"attribute name {key!r} must be letters, digits, '_' or '-'",
                attribute=key,
                **where,
            )
        if isinstance(value, dict):
            raise invalid(
                "invalid_attributes",
                f"attribute {key!r} must be a string, number, boolean or list",
                attribute=key,
                **where,
            )
    return dict(attributes)


def _normalize_media(media: Iterable[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in media:
        entry = {"url": item, "alt": None} if isinstance(item, str) else dict(item)
        url = str(entry.get("url") or "")
        if not valid_media_url(url):
            raise invalid("invalid_media_url", f"media URL {url!r} is not an http(s) URL", url=url)
        out.append({"url": url, "alt": entry.get("alt")})
    return out


def _check_options(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    problem = options_problem(options)
    if problem:
        raise invalid("invalid_options", problem)
    return [
        {"name": str(o["name"]).strip(), "values": [str(v) for v in o.get("values", [])]}
        for o in options
    ]


def _normalize_variant(data: dict[str, Any]) -> dict[str, Any]:
    """Validate one variant's fields (only those present) and return them cleaned."""
    out = dict(data)
    sku = str(data.get("sku") or "")
    if "sku" in data:
        validate_variant_input(sku, None)
    if data.get("barcode") is not None:
        barcode = out["barcode"] = str(data["barcode"]).strip()
        if not valid_gtin(barcode):
            raise invalid(
                "invalid_barcode",
                f"barcode {barcode!r} is not a valid GTIN",
                barcode=barcode,
                sku=sku,
            )
    weight = data.get("weight_grams")
    if weight is not None and (
        not isinstance(weight, int)
        or isinstance(weight, bool)
        or not 0 <= weight <= MAX_WEIGHT_GRAMS
    ):
        raise invalid(
            "invalid_weight",
            f"weight_grams must be a whole number from 0 to {MAX_WEIGHT_GRAMS}, not {weight!r}",
            sku=sku,
        )
    if data.get("title") is not None:
        _check_length("variant_title", str(data["title"]), sku=sku)
    if "attributes" in data:
        out["attributes"] = _check_attributes(data.get("attributes") or {}, sku=sku)
    if "option_values" in data:
        values = data.get("option_values") or {}
        if not isinstance(values, dict):
            raise invalid("invalid_option_values", "option_values must be an object", sku=sku)
        out["option_values"] = {str(k): str(v) for k, v in values.items()}
    return out


def _check_variant_list(variants: list[dict[str, Any]]) -> None:
    skus = [v["sku"] for v in variants]
    dupes = sorted({s for s in skus if skus.count(s) > 1})
    if dupes:
        raise invalid(
            "duplicate_sku", "the same SKU appears twice in this product", skus=dupes, sku=dupes[0]
        )
    seen: dict[str, str] = {}
    for v in variants:
        if v.get("barcode"):
            key = gtin14(v["barcode"])
            if key in seen:
                raise invalid(
                    "duplicate_barcode",
                    f"barcode {v['barcode']!r} is given to two variants of this product",
                    barcode=v["barcode"],
                    sku=v["sku"],
                )
            seen[key] = v["sku"]
    combos = [tuple(sorted(v.get("option_values", {}).items())) for v in variants]
    for v, combo in zip(variants, combos, strict=True):
        if combo and combos.count(combo) > 1:
            raise invalid(
                "duplicate_option_values",
                f"two variants have the same option values {dict(combo)}",
                sku=v["sku"],
            )


def _barcode_owners(session: Session, barcodes: Iterable[str]) -> dict[str, tuple[str, str]]:
    """GTIN-14 -> (stored barcode, SKU) for variants holding any spelling of ``barcodes``."""
    forms = {f for b in barcodes for f in gtin_forms(b)}
    if not forms:
        return {}
    rows = session.execute(select(Variant.barcode, Variant.sku).where(Variant.barcode.in_(forms)))
    return {gtin14(b): (b, sku) for b, sku in rows if b is not None}


def _check_barcodes_free(session: Session, variants: list[dict[str, Any]]) -> None:
    """Each barcode must be unused, or used by the variant with the same SKU."""
    owners = _barcode_owners(session, [v["barcode"] for v in variants if v.get("barcode")])
    for v in variants:
        if not v.get("barcode"):
            continue
        owner = owners.get(gtin14(v["barcode"]))
        if owner is not None and owner[1] != v["sku"]:
            raise conflict(
                "barcode_exists",
                f"barcode {v['barcode']!r} is already used by SKU {owner[1]!r}",
                barcode=v["barcode"],
                sku=v["sku"],
                used_by=owner[1],
            )


def _default_variant_title(title: str, option_values: dict[str, Any]) -> str:
    return " / ".join(str(v) for v in option_values.values()) or title


def _check_length(field: str, value: str | None, **where: Any) -> None:
    limit = MAX_LENGTHS[field]
    if value is not None and len(value) > limit:
        raise invalid(
            "value_too_long",
            f"{field.replace('_', ' ')} is longer than {limit} characters",
            field=field,
            **where,
        )


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise invalid(
            "invalid_status", f"unknown status {status!r}", allowed=sorted(STATUSES), status=status
        )
    return status


def _check_handle(session: Session, handle: Any, product_id: str | None = None) -> str:
    if not isinstance(handle, str) or not valid_handle(handle):
        raise invalid(
            "invalid_handle",
            f"handle {handle!r} must be lower-case letters, digits, '-' or '_'",
            handle=handle,
        )
    owner = session.scalar(select(Product.id).where(Product.handle == handle))
    if owner is not None and owner != product_id:
        raise conflict("handle_exists", f"product handle {handle!r} already exists", handle=handle)
    return handle


# --- products and variants ------------------------------------------------------------------


def _new_variant(product_title: str, v: dict[str, Any], position: int) -> Variant:
    option_values = dict(v.get("option_values") or {})
    return Variant(
        id=new_id("var"),
        sku=v["sku"],
        barcode=v.get("barcode") or None,
        title=(v.get("title") or "").strip()
        or _default_variant_title(product_title, option_values),
        option_values=option_values,
        attributes=dict(v.get("attributes") or {}),
        weight_grams=v.get("weight_grams"),
        position=position,
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
    media: list[Any] | None = None,
) -> Product:
    """Create a product with at least one variant (``{"sku", "title"?, "barcode"?, ...}``).

    ``options`` may be omitted: they are then derived from the variants' option values.
    ``media`` items are URLs or ``{"url", "alt"}`` objects."""
    if not title.strip():
        raise invalid("invalid_title", "a product needs a title")
    _check_length("title", title.strip())
    _check_length("brand", brand)
    _check_status(status)
    if not variants:
        raise invalid("variants_required", "a product needs at least one variant")
    if any(not v.get("sku") for v in variants):
        raise invalid("invalid_sku", "every variant needs a SKU")
    cleaned = [_normalize_variant(v) for v in variants]
    _check_variant_list(cleaned)
    declared = _check_options(options or [])
    for v in cleaned:
        problem = option_problem(declared, v.get("option_values", {})) if declared else None
        if problem:
            raise invalid("invalid_option_values", problem, sku=v["sku"])
    attrs = _check_attributes(attributes or {})
    media_items = _normalize_media(media or [])
    skus = [v["sku"] for v in cleaned]
    existing = list(session.scalars(select(Variant.sku).where(Variant.sku.in_(skus))))
    if existing:
        raise conflict(
            "sku_exists",
            f"SKU already exists: {', '.join(sorted(existing))}",
            skus=sorted(existing),
            sku=sorted(existing)[0],
        )
    _check_barcodes_free(session, cleaned)
    if handle:
        handle = _check_handle(session, handle)
    else:
        handle = _slug(title)
        if session.scalar(select(Product.id).where(Product.handle == handle)):
            handle = _check_handle(session, _slug(f"{handle}-{skus[0]}")[:120])
    cats = _referenced_categories(session, category_codes or [])
    product = Product(
        id=new_id("prd"),
        handle=handle,
        title=title.strip(),
        description=description or "",
        brand=brand or None,
        status=status,
        attributes=attrs,
        options=derive_options([v.get("option_values", {}) for v in cleaned], declared),
        media=media_items,
        version=1,
    )
    for pos, v in enumerate(cleaned):
        product.variants.append(_new_variant(product.title, v, pos))
    for cat in cats.values():
        product.categories.append(ProductCategory(category_id=cat.id))
    product.search_text = _search_text(product)
    with _unique_guard(session):
        session.add(product)
    emit(
        session,
        "catalog.product.created",
        {"product_id": product.id, "version": 1, "skus": skus},
        product.id,
    )
    session.flush()
    return product


def get_product(session: Session, product_id: str) -> Product:
    product = session.scalar(
        select(Product).where(Product.id == product_id).options(*_product_loads())
    )
    if product is None:
        raise not_found("product", product_id)
    return product


def _lock_product(session: Session, product_id: str) -> Product:
    """Load a product for change, holding its row lock until the transaction ends
    (PostgreSQL ``FOR UPDATE``; SQLite writers are already serialised by BEGIN IMMEDIATE)."""
    product = session.scalar(
        select(Product)
        .where(Product.id == product_id)
        .options(*_product_loads())
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if product is None:
        raise not_found("product", product_id)
    return product


def _check_version(product: Product, if_match: set[int] | None) -> None:
    if if_match is not None and product.version not in if_match:
        raise AppError(
            "precondition_failed",
            f"product {product.id!r} is at version {product.version}; "
            "read it again and re-apply your change",
            412,
            {"product_id": product.id, "current_version": product.version},
        )


def _set(obj: Any, name: str, value: Any) -> bool:
    if getattr(obj, name) == value:
        return False
    setattr(obj, name, value)
    return True


def _bump(session: Session, product: Product, what: str) -> None:
    product.version += 1
    product.search_text = _search_text(product)
    emit(
        session,
        "catalog.product.updated",
        {"product_id": product.id, "version": product.version, "change": what},
        product.id,
    )


def _apply_product_changes(session: Session, product: Product, changes: dict[str, Any]) -> bool:
    """Validate and apply product-level fields; returns whether anything changed."""
    changed = False
    if "title" in changes:
        title = str(changes["title"] or "").strip()
        if not title:
            raise invalid("invalid_title", "a product needs a title")
        _check_length("title", title)
        changed |= _set(product, "title", title)
    if "handle" in changes and changes["handle"] != product.handle:
        changed |= _set(product, "handle", _check_handle(session, changes["handle"], product.id))
    if "description" in changes:
        changed |= _set(product, "description", changes["description"] or "")
    if "brand" in changes:
        _check_length("brand", changes["brand"])
        changed |= _set(product, "brand", changes["brand"] or None)
    if changes.get("status") is not None:
        changed |= _set(product, "status", _check_status(changes["status"]))
    if "attributes" in changes:
        changed |= _set(product, "attributes", _check_attributes(changes["attributes"] or {}))
    if "media" in changes:
        changed |= _set(product, "media", _normalize_media(changes["media"] or []))
    if "options" in changes:
        declared = _check_options(changes["options"] or [])
        for v in product.variants:
            problem = option_problem(declared, v.option_values or {}) if declared else None
            if problem:
                raise invalid("invalid_option_values", problem, sku=v.sku)
        options = derive_options([v.option_values or {} for v in product.variants], declared)
        changed |= _set(product, "options", options)
    if changes.get("categories") is not None:
        cats = _referenced_categories(session, changes["categories"])
        wanted = {c.id for c in cats.values()}
        current = {pc.category_id for pc in product.categories}
        if wanted != current:
            product.categories[:] = [pc for pc in product.categories if pc.category_id in wanted]
            product.categories.extend(
                ProductCategory(category_id=cid) for cid in sorted(wanted - current)
            )
            changed = True
    return changed


def update_product(
    session: Session,
    product_id: str,
    changes: dict[str, Any],
    if_match: set[int] | None = None,
) -> Product:
    """Change product-level fields (keys of ``changes`` among ``PRODUCT_FIELDS``; categories
    by code). ``if_match``: the versions the caller last saw, or None for no precondition.
    The version goes up by one when anything changed."""
    unknown = sorted(set(changes) - set(PRODUCT_FIELDS))
    if unknown:
        raise invalid("unknown_fields", f"cannot change {', '.join(unknown)}", fields=unknown)
    product = _lock_product(session, product_id)
    _check_version(product, if_match)
    with _unique_guard(session):
        if _apply_product_changes(session, product, changes):
            _bump(session, product, "product")
    session.flush()
    return product


def _check_option_names(product: Product, option_values: dict[str, Any], sku: str) -> None:
    declared = {o["name"] for o in product.options or []}
    unknown = sorted(set(option_values) - declared)
    if declared and unknown:
        raise invalid(
            "invalid_option_values",
            f"option {unknown[0]!r} is not one of the product's options {sorted(declared)}",
            sku=sku,
        )


def add_variant(
    session: Session, product_id: str, data: dict[str, Any], if_match: set[int] | None = None
) -> Variant:
    """Add a variant to a product; new option values extend the product's options."""
    if not data.get("sku"):
        raise invalid("invalid_sku", "a variant needs a SKU")
    v = _normalize_variant(data)
    product = _lock_product(session, product_id)
    _check_version(product, if_match)
    if session.scalar(select(Variant.id).where(Variant.sku == v["sku"])):
        raise conflict("sku_exists", f"SKU already exists: {v['sku']}", skus=[v["sku"]])
    _check_barcodes_free(session, [v])
    option_values = v.get("option_values", {})
    _check_option_names(product, option_values, v["sku"])
    others = [tuple(sorted((x.option_values or {}).items())) for x in product.variants]
    if option_values and tuple(sorted(option_values.items())) in others:
        raise invalid(
            "duplicate_option_values",
            f"another variant already has the option values {option_values}",
            sku=v["sku"],
        )
    position = max((x.position for x in product.variants), default=-1) + 1
    variant = _new_variant(product.title, v, position)
    with _unique_guard(session):
        product.variants.append(variant)
        product.options = derive_options([option_values], product.options)
        _bump(session, product, "variant_added")
    session.flush()
    return variant


def _variant_query() -> Any:
    return select(Variant).options(selectinload(Variant.product))


def get_variant(session: Session, sku: str) -> Variant:
    variant = session.scalar(_variant_query().where(Variant.sku == sku))
    if variant is None:
        raise not_found("variant", sku)
    return variant


def find_variants(
    session: Session, *, skus: Iterable[str] = (), barcodes: Iterable[str] = ()
) -> list[Variant]:
    """Variants by SKU and/or barcode (any GTIN spelling of it), ordered by SKU."""
    skus, barcodes = list(skus), list(barcodes)
    for b in barcodes:
        if not valid_gtin(b):
            raise invalid("invalid_barcode", f"barcode {b!r} is not a valid GTIN", barcode=b)
    conditions: list[ColumnElement[bool]] = []
    if skus:
        conditions.append(Variant.sku.in_(skus))
    if barcodes:
        conditions.append(Variant.barcode.in_({f for b in barcodes for f in gtin_forms(b)}))
    if not conditions:
        return []
    return list(session.scalars(_variant_query().where(or_(*conditions)).order_by(Variant.sku)))


def update_variant(
    session: Session, sku: str, changes: dict[str, Any], if_match: set[int] | None = None
) -> Variant:
    """Change a variant (not its SKU). Variants share their product's version and ETag."""
    unknown = sorted(set(changes) - set(VARIANT_FIELDS))
    if unknown:
        raise invalid("unknown_fields", f"cannot change {', '.join(unknown)}", fields=unknown)
    variant = get_variant(session, sku)
    product = _lock_product(session, variant.product_id)
    _check_version(product, if_match)
    v = _normalize_variant({**changes, "sku": sku})
    if v.get("barcode"):
        _check_barcodes_free(session, [v])
    changed = False
    with _unique_guard(session):
        if "option_values" in changes:
            _check_option_names(product, v["option_values"], sku)
            others = [
                tuple(sorted((x.option_values or {}).items()))
                for x in product.variants
                if x.id != variant.id
            ]
            if v["option_values"] and tuple(sorted(v["option_values"].items())) in others:
                raise invalid(
                    "duplicate_option_values",
                    f"another variant already has the option values {v['option_values']}",
                    sku=sku,
                )
            changed |= _set(variant, "option_values", v["option_values"])
            options = derive_options(
                [x.option_values or {} for x in product.variants], list(product.options or [])
            )
            _set(product, "options", options)
        if "title" in changes:
            title = str(changes["title"] or "").strip()
            title = title or _default_variant_title(product.title, variant.option_values or {})
            changed |= _set(variant, "title", title)
        if "barcode" in changes:
            changed |= _set(variant, "barcode", v.get("barcode") or None)
        if "attributes" in changes:
            changed |= _set(variant, "attributes", v["attributes"])
        if "weight_grams" in changes:
            changed |= _set(variant, "weight_grams", v.get("weight_grams"))
        if changed:
            _bump(session, product, "variant_updated")
    session.flush()
    return variant


def upsert_product(session: Session, data: dict[str, Any]) -> tuple[Product, str]:
    """Create or update a product by SKU (then by handle); used by bulk import.

    The product is found by the SKUs in ``data["variants"]`` (all must belong to the same
    product), else by ``handle``; otherwise it is created. Keys absent from ``data`` keep
    their current value; variants missing from ``data`` are kept. Returns the product and
    ``"created"``, ``"updated"`` or ``"unchanged"`` (no version bump when nothing changed)."""
    variants = [_normalize_variant(v) for v in data.get("variants") or []]
    if not variants:
        raise invalid("variants_required", "a product needs at least one variant")
    if any(not v.get("sku") for v in variants):
        raise invalid("invalid_sku", "every variant needs a SKU")
    _check_variant_list(variants)
    handle = data.get("handle") or None
    skus = [v["sku"] for v in variants]
    rows = session.execute(select(Variant.sku, Variant.product_id).where(Variant.sku.in_(skus)))
    owners = {sku: product_id for sku, product_id in rows}
    by_handle = (
        session.scalar(select(Product.id).where(Product.handle == handle)) if handle else None
    )
    owner_ids = list(dict.fromkeys(owners[s] for s in skus if s in owners))
    if len(owner_ids) > 1:
        stray = next(s for s in skus if owners.get(s) == owner_ids[1])
        raise conflict(
            "sku_conflict",
            f"SKU {stray!r} belongs to another product than the other SKUs of this one",
            sku=stray,
        )
    if owner_ids and handle and by_handle != owner_ids[0]:
        sku = next(s for s in skus if s in owners)
        current = session.scalar(select(Product.handle).where(Product.id == owner_ids[0]))
        raise conflict(
            "handle_mismatch",
            f"SKU {sku!r} belongs to product {current!r}, not {handle!r}",
            sku=sku,
            handle=handle,
            existing_handle=current,
        )
    product_id = owner_ids[0] if owner_ids else by_handle
    if product_id is None:
        fields = {
            k: data[k]
            for k in ("handle", "description", "brand", "attributes", "options", "media")
            if data.get(k) is not None
        }
        product = create_product(
            session,
            title=str(data.get("title") or ""),
            variants=variants,
            status=data.get("status") or ProductStatus.ACTIVE.value,
            category_codes=data.get("categories") or [],
            **fields,
        )
        return product, "created"

    product = _lock_product(session, product_id)
    _check_barcodes_free(session, variants)
    changes = {k: data[k] for k in PRODUCT_FIELDS if k in data and k not in ("handle", "options")}
    by_sku = {v.sku: v for v in product.variants}
    with _unique_guard(session):
        changed = _apply_product_changes(session, product, changes)
        next_position = max((v.position for v in product.variants), default=-1) + 1
        for v in variants:
            existing = by_sku.get(v["sku"])
            if existing is None:
                product.variants.append(_new_variant(product.title, v, next_position))
                next_position += 1
                changed = True
                continue
            if "barcode" in v:
                changed |= _set(existing, "barcode", v["barcode"] or None)
            for name in ("option_values", "attributes", "weight_grams"):
                if name in v:
                    changed |= _set(existing, name, v[name])
            if "title" in v or "option_values" in v:
                title = (v.get("title") or "").strip() or _default_variant_title(
                    product.title, existing.option_values or {}
                )
                changed |= _set(existing, "title", title)
        _check_variant_list(
            [
                {"sku": x.sku, "barcode": x.barcode, "option_values": x.option_values or {}}
                for x in product.variants
            ]
        )
        if data.get("options") is not None:
            changed |= _apply_product_changes(session, product, {"options": data["options"]})
        else:
            options = derive_options(
                [x.option_values or {} for x in product.variants], list(product.options or [])
            )
            changed |= _set(product, "options", options)
        if changed:
            _bump(session, product, "import")
    session.flush()
    return product, "updated" if changed else "unchanged"


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


def require_products(session: Session, product_ids: Iterable[str]) -> list[str]:
    """*Public interface.* The ids, all of existing products (one query); unknown ids are a
    404 ``product_not_found`` listing them."""
    wanted = list(dict.fromkeys(product_ids))
    found = (
        set(session.scalars(select(Product.id).where(Product.id.in_(wanted)))) if wanted else set()
    )
    missing = [p for p in wanted if p not in found]
    if missing:
        raise AppError(
            "product_not_found",
            f"unknown product: {', '.join(missing)}",
            404,
            {"product_ids": missing},
        )
    return wanted


def category_ids_by_code(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """*Public interface.* category code -> id; unknown codes are a 404."""
    return {code: c.id for code, c in categories_by_code(session, codes).items()}


# --- search and storefront visibility -------------------------------------------------------


def _like_term(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _attribute_text(column: Any, key: str) -> Any:
    """An attribute's value as lower-case text (numbers as their decimal text)."""
    return func.lower(cast(column[key].as_string(), String))


def _attribute_condition(filters: dict[str, list[str]]) -> ColumnElement[bool]:
    """Some variant whose attributes, falling back to the product's, match every filter."""
    clauses = []
    for key, values in filters.items():
        if not valid_attribute_key(key):
            raise invalid("invalid_attribute_filter", f"attribute name {key!r} is not valid")
        wanted = [str(v).lower() for v in values]
        value = func.coalesce(
            _attribute_text(Variant.attributes, key), _attribute_text(Product.attributes, key)
        )
        clauses.append(value.in_(wanted))
    return exists(select(Variant.id).where(Variant.product_id == Product.id, *clauses))


def _visible_on(channel: Channel) -> ColumnElement[bool] | None:
    if channel.publish_all:
        return None
    return exists(
        select(ProductPublication.product_id).where(
            ProductPublication.product_id == Product.id,
            ProductPublication.channel_id == channel.id,
        )
    )


def storefront_channel(session: Session, channel_id: str) -> Channel:
    """The channel of a publishable key; an inactive channel sells nothing (403)."""
    channel = session.get(Channel, channel_id)
    if channel is None or not channel.active:
        raise AppError(
            "channel_inactive",
            "this channel is not active",
            403,
            {"channel_id": channel_id},
        )
    return channel


def search_products(
    session: Session,
    *,
    q: str | None = None,
    category: str | None = None,
    attributes: dict[str, list[str]] | None = None,
    status: str | None = None,
    channel: str | None = None,
    storefront_channel_id: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> tuple[list[Product], str | None]:
    """A page of products (variants and category links loaded in bulk) matching every filter.

    ``q``: every word occurs in title, description, brand, handle, SKUs, barcodes, option or
    attribute values. ``category``: code or id, descendants included. ``attributes``: key ->
    accepted values, matched case-insensitively against the variant's attribute or else the
    product's. ``channel``: products visible on that channel. ``storefront_channel_id``:
    the caller is that channel's publishable key (active, published products only)."""
    query = select(Product).options(*_product_loads())
    for term in search_terms(q):
        query = query.where(Product.search_text.like(_like_term(term), escape="\\"))
    if category:
        ids = descendant_category_ids(session, category)
        query = query.where(
            exists(
                select(ProductCategory.product_id).where(
                    ProductCategory.product_id == Product.id,
                    ProductCategory.category_id.in_(ids),
                )
            )
        )
    if status:
        query = query.where(Product.status == _check_status(status))
    if attributes:
        query = query.where(_attribute_condition(attributes))
    channels = []
    if channel:
        channels.append(_load_channel(session, channel, referenced=True))
    if storefront_channel_id:
        channels.append(storefront_channel(session, storefront_channel_id))
        query = query.where(Product.status == ProductStatus.ACTIVE.value)
    for ch in channels:
        visible = _visible_on(ch)
        if visible is not None:
            query = query.where(visible)
    rows, next_cursor = paginate(session, query, Product.id, cursor, limit)
    return list(rows), next_cursor


def is_visible(session: Session, product: Product, channel: Channel) -> bool:
    if product.status != ProductStatus.ACTIVE.value:
        return False
    if channel.publish_all:
        return True
    return (
        session.get(ProductPublication, {"channel_id": channel.id, "product_id": product.id})
        is not None
    )


def get_storefront_product(session: Session, product_id: str, channel_id: str) -> Product:
    """A product as a channel key sees it: unpublished or inactive products are a 404."""
    channel = storefront_channel(session, channel_id)
    product = get_product(session, product_id)
    if not is_visible(session, product, channel):
        raise not_found("product", product_id)
    return product


def visible_variants(session: Session, variants: list[Variant], channel_id: str) -> list[Variant]:
    channel = storefront_channel(session, channel_id)
    if not variants:
        return []
    visible = published_product_ids(session, channel.id, {v.product_id for v in variants})
    return [
        v
        for v in variants
        if v.product_id in visible and v.product.status == ProductStatus.ACTIVE.value
    ]


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
        publish_all=ch.publish_all,
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
    if not name.strip():
        raise invalid("invalid_name", "a channel needs a name")
    _check_length("name", name.strip())
    if type not in {t.value for t in ChannelType}:
        raise invalid(
            "invalid_channel_type",
            f"unknown channel type {type!r}",
            allowed=[t.value for t in ChannelType],
        )
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        raise invalid("invalid_currency", f"{currency!r} is not an ISO 4217 code")
    if len(country) != 2 or not country.isalpha() or not country.isascii():
        raise invalid("invalid_country", f"{country!r} is not an ISO 3166 alpha-2 code")
    if len(locale) > 20 or not LOCALE_RE.match(locale):
        raise invalid("invalid_locale", f"{locale!r} is not a locale such as 'en-GB'")
    if session.scalar(select(Channel.id).where(Channel.code == code)):
        raise conflict("channel_exists", f"channel {code!r} already exists", code=code)
    channel = Channel(
        id=new_id("chn"),
        code=code,
        name=name.strip(),
        type=type,
        currency=currency.upper(),
        country=country.upper(),
        locale=locale,
        active=True,
        publish_all=publish_all,
    )
    with _unique_guard(session):
        session.add(channel)
    emit(session, "catalog.channel.created", {"channel_id": channel.id, "code": code}, channel.id)
    session.flush()
    return channel


def _load_channel(session: Session, ref: str, referenced: bool = False) -> Channel:
    ch = session.get(Channel, ref) if ref.startswith("chn_") else None
    if ch is None:
        ch = session.scalar(select(Channel).where(Channel.code == ref))
    if ch is None:
        if referenced:
            raise invalid("channel_not_found", f"channel {ref!r} not found", channel=ref)
        raise not_found("channel", ref)
    return ch


def channel_row(session: Session, ref: str) -> Channel:
    """A channel by id or code; unknown is a 404."""
    return _load_channel(session, ref)


def list_channel_rows(session: Session) -> list[Channel]:
    return list(session.scalars(select(Channel).order_by(Channel.code)))


def get_channel(session: Session, ref: str) -> ChannelInfo:
    """*Public interface.* A channel by id or code; unknown is a 404."""
    return _channel_info(_load_channel(session, ref))


def list_channels(session: Session) -> list[ChannelInfo]:
    """*Public interface.*"""
    return [_channel_info(c) for c in list_channel_rows(session)]


def update_channel(
    session: Session,
    ref: str,
    *,
    name: str | None = None,
    active: bool | None = None,
    publish_all: bool | None = None,
) -> Channel:
    ch = _load_channel(session, ref)
    changed = False
    if name is not None:
        if not name.strip():
            raise invalid("invalid_name", "a channel needs a name")
        _check_length("name", name.strip())
        changed |= _set(ch, "name", name.strip())
    if active is not None:
        changed |= _set(ch, "active", active)
    if publish_all is not None:
        changed |= _set(ch, "publish_all", publish_all)
    if changed:
        emit(
            session,
            "catalog.channel.updated",
            {"channel_id": ch.id, "active": ch.active, "publish_all": ch.publish_all},
            ch.id,
        )
    session.flush()
    return ch


def publish_products(session: Session, channel_ref: str, product_ids: list[str]) -> int:
    """Make products visible on a channel; returns how many were not published before.
    Unknown product ids are a 422 and publish nothing."""
    ch = _load_channel(session, channel_ref)
    found = set(session.scalars(select(Product.id).where(Product.id.in_(product_ids))))
    missing = sorted(set(product_ids) - found)
    if missing:
        raise invalid(
            "product_not_found", f"unknown products: {', '.join(missing)}", products=missing
        )
    already = set(
        session.scalars(
            select(ProductPublication.product_id).where(
                ProductPublication.channel_id == ch.id,
                ProductPublication.product_id.in_(product_ids),
            )
        )
    )
    new = [pid for pid in dict.fromkeys(product_ids) if pid not in already]
    with _unique_guard(session):
        session.add_all(ProductPublication(channel_id=ch.id, product_id=pid) for pid in new)
    if new:
        emit(
            session,
            "catalog.publication.changed",
            {"channel_id": ch.id, "published": new, "unpublished": []},
            ch.id,
        )
    session.flush()
    return len(new)


def unpublish_product(session: Session, channel_ref: str, product_id: str) -> None:
    ch = _load_channel(session, channel_ref)
    row = session.get(ProductPublication, {"channel_id": ch.id, "product_id": product_id})
    if row is None:
        raise AppError(
            "publication_not_found",
            f"product {product_id!r} is not published on channel {ch.code!r}",
            404,
            {"channel_id": ch.id, "product_id": product_id},
        )
    session.delete(row)
    emit(
        session,
        "catalog.publication.changed",
        {"channel_id": ch.id, "published": [], "unpublished": [product_id]},
        ch.id,
    )
    session.flush()


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
