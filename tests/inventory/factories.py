"""Test helpers for the inventory context: small factories with visible defaults."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.core.models import OutboxEvent
from omniretail.inventory import service
from omniretail.inventory.models import LedgerEntry, Location, ReservationLine, StockLevel

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
_seq = itertools.count(1)


def make_skus(session: Session, *skus: str) -> list[str]:
    catalog.create_product(
        session,
        title=f"Product {next(_seq)}",
        variants=[{"sku": sku} for sku in skus],
    )
    return list(skus)


def make_location(
    session: Session,
    code: str,
    type: str = "warehouse",
    capabilities: tuple[str, ...] = ("ship",),
    latitude: float | None = None,
    longitude: float | None = None,
    **kwargs: Any,
) -> Location:
    return service.create_location(
        session,
        code=code,
        name=code.upper(),
        type=type,
        timezone=kwargs.pop("timezone", "Europe/Paris"),
        capabilities=list(capabilities),
        latitude=latitude,
        longitude=longitude,
        **kwargs,
    )


def receive(session: Session, sku: str, location_id: str, quantity: int) -> None:
    service.record_movement(
        session,
        location_id=location_id,
        reason="receipt",
        lines=[(sku, quantity)],
        now=T0,
    )


def balance(session: Session, sku: str, location_id: str, now: datetime = T0) -> dict[str, int]:
    b = service.stock_balance(session, sku, location_id, now)
    return {
        "on_hand": b.on_hand,
        "allocated": b.allocated,
        "held": b.held,
        "safety_stock": b.safety_stock,
        "incoming": b.incoming,
        "available": b.available,
    }


def counts(session: Session) -> dict[str, int]:
    """Row counts that a failed call must leave unchanged."""
    return {
        "ledger": session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        "stock": session.scalar(select(func.count()).select_from(StockLevel)) or 0,
        "lines": session.scalar(select(func.count()).select_from(ReservationLine)) or 0,
        "events": session.scalar(select(func.count()).select_from(OutboxEvent)) or 0,
    }


def snapshot(session: Session) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    rows = session.execute(
        select(
            StockLevel.sku,
            StockLevel.location_id,
            StockLevel.on_hand,
            StockLevel.allocated,
            StockLevel.held,
            StockLevel.safety_stock,
            StockLevel.incoming,
        ).order_by(StockLevel.id)
    ).all()
    return [tuple(r) for r in rows], counts(session)
