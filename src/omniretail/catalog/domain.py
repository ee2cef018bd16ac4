"""Catalog rules and value objects (no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ChannelType(StrEnum):
    WEB = "web"
    APP = "app"
    STORE = "store"
    SOCIAL = "social"
    MARKETPLACE = "marketplace"


class ProductStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/ ]{0,63}$")
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


def valid_sku(sku: str) -> bool:
    return bool(SKU_RE.match(sku)) and sku == sku.strip()


def valid_code(code: str) -> bool:
    return bool(CODE_RE.match(code))


def valid_gtin(barcode: str) -> bool:
    """GTIN-8/12/13/14 with a correct check digit (EAN/UPC barcodes)."""
    if not (barcode.isascii() and barcode.isdigit()) or len(barcode) not in (8, 12, 13, 14):
        return False
    digits = [int(c) for c in barcode]
    body, check = digits[:-1], digits[-1]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


@dataclass(frozen=True)
class VariantFacts:
    """What other contexts need to know about a variant (pricing, inventory, orders)."""

    sku: str
    variant_id: str
    product_id: str
    title: str
    category_ids: tuple[str, ...] = ()  # the product's categories and all their ancestors
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = ProductStatus.ACTIVE.value


@dataclass(frozen=True)
class ChannelInfo:
    id: str
    code: str
    name: str
    type: str
    currency: str
    country: str
    locale: str
    active: bool = True
    publish_all: bool = False


HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,119}$")
ATTRIBUTE_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
MAX_SEARCH_TERMS = 10
MAX_WEIGHT_GRAMS = 10_000_000
MAX_LENGTHS = {"title": 300, "brand": 120, "variant_title": 300, "name": 200}


def valid_handle(handle: str) -> bool:
    return bool(HANDLE_RE.match(handle))


def valid_attribute_key(key: str) -> bool:
    return bool(ATTRIBUTE_KEY_RE.match(key))


def valid_media_url(url: str) -> bool:
    """An absolute http(s) URL with a host and no whitespace."""
    match = re.match(r"^https?://([^/?#\s]+)[^\s]*$", url)
    return bool(match) and len(url) <= 2000


def gtin14(barcode: str) -> str:
    """The GTIN-14 form of a GTIN: GS1 treats a UPC-A ``012345678905`` and the EAN-13
    ``0012345678905`` as the same number, zero-padded to 14 digits."""
    return barcode.zfill(14)


def gtin_forms(barcode: str) -> list[str]:
    """Every valid spelling of the same GTIN (8, 12, 13 or 14 digits, leading zeros added or
    removed), so a scanner that reads a UPC-A as EAN-13 still finds the variant."""
    full = gtin14(barcode)
    forms = [full[14 - n :] for n in (8, 12, 13, 14) if set(full[: 14 - n]) <= {"0"}]
    return [f for f in forms if valid_gtin(f)]


def search_terms(q: str | None) -> list[str]:
    """Lower-cased words of a search query; every word must occur (AND)."""
    if not q:
        return []
    return [w for w in q.lower().split() if w][:MAX_SEARCH_TERMS]


def derive_options(
    option_values: list[dict[str, Any]], base: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Product options (``[{"name", "values"}]``) covering every variant's option values, in
    first-seen order, keeping the order of ``base`` where given."""
    options: dict[str, list[str]] = {}

    def add(name: Any, value: Any) -> None:
        seen = options.setdefault(str(name), [])
        if str(value) not in seen:
            seen.append(str(value))

    for opt in base or []:
        options.setdefault(str(opt["name"]), [])
        for value in opt.get("values", []):
            add(opt["name"], value)
    for values in option_values:
        for name, value in values.items():
            add(name, value)
    return [{"name": name, "values": values} for name, values in options.items()]


def option_problem(options: list[dict[str, Any]], option_values: dict[str, Any]) -> str | None:
    """Why a variant's option values do not fit the product's declared options, or None."""
    declared = {str(o["name"]): [str(v) for v in o.get("values", [])] for o in options}
    for name, value in option_values.items():
        if name not in declared:
            return f"option {name!r} is not one of the product's options {sorted(declared)}"
        if str(value) not in declared[name]:
            return f"{value!r} is not a value of option {name!r} {declared[name]}"
    return None


def options_problem(options: list[dict[str, Any]]) -> str | None:
    """Why a list of product options is malformed, or None."""
    names: set[str] = set()
    for opt in options:
        name = str(opt.get("name", "")).strip()
        if not name:
            return "an option needs a name"
        if name in names:
            return f"option {name!r} is declared twice"
        names.add(name)
        values = [str(v) for v in opt.get("values", [])]
        if len(set(values)) != len(values):
            return f"option {name!r} lists a value twice"
    return None


def parse_if_match(header: str | None) -> set[int] | None:
    """Versions accepted by an ``If-Match`` header (``"3"``, ``W/"3"``, ``3``, lists).

    ``None`` means no precondition (header absent or ``*``); an empty set matches nothing."""
    if header is None or header.strip() == "*":
        return None
    versions: set[int] = set()
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tag = tag.strip('"')
        if tag.isdigit():
            versions.add(int(tag))
    return versions


def etag(version: int) -> str:
    return f'"{version}"'


def split_shared_attributes(
    per_variant: list[dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Split variant attribute maps into those every variant shares with the same value
    (product attributes) and the rest (variant attributes)."""
    if not per_variant:
        return {}, []
    first = per_variant[0]
    shared = {
        k: v for k, v in first.items() if all(k in other and other[k] == v for other in per_variant)
    }
    rest = [{k: v for k, v in attrs.items() if k not in shared} for attrs in per_variant]
    return shared, rest
