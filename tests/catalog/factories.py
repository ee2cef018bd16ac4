"""Small builders for catalog tests: every value a test depends on is passed explicitly."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omniretail.catalog import service
from omniretail.catalog.models import Category, Channel, Product


def count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def create_category(session: Session, code: str, parent: str | None = None) -> Category:
    category = service.create_category(session, code, code.title(), parent)
    session.commit()
    return category


def create_product(session: Session, sku: str, **overrides: Any) -> Product:
    """A product with one variant ``sku``; ``variants`` replaces that default."""
    fields: dict[str, Any] = {"title": f"Product {sku}", "variants": [{"sku": sku}]}
    fields.update(overrides)
    product = service.create_product(session, **fields)
    session.commit()
    return product


def create_channel(session: Session, code: str, **overrides: Any) -> Channel:
    fields: dict[str, Any] = {
        "code": code,
        "name": code.upper(),
        "type": "web",
        "currency": "GBP",
        "country": "GB",
        "locale": "en-GB",
    }
    fields.update(overrides)
    channel = service.create_channel(session, **fields)
    session.commit()
    return channel


def product_body(sku: str = "TEE-BLK-M", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"title": "Organic tee", "variants": [{"sku": sku}]}
    body.update(overrides)
    return body
