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
    if not barcode.isdigit() or len(barcode) not in (8, 12, 13, 14):
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
