"""Helpers for fulfilment tests: small networks for the pure solvers and database factories
with visible defaults."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.core.models import OutboxEvent
from omniretail.fulfillment.domain import (
    Constraints,
    CostModel,
    SourceLocation,
    SourcingProblem,
    build_problem,
)
from omniretail.fulfillment.models import CapacityUsage, SourcingDecision, SourcingPackage
from omniretail.inventory import service as inventory

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday
LONDON = (51.5074, -0.1278)
_seq = itertools.count(1)

# --- pure networks -----------------------------------------------------------------------------


def loc(
    id: str,
    type: str = "warehouse",
    lat: float = 52.0,
    lon: float = -1.0,
    caps: tuple[str, ...] = ("ship",),
) -> SourceLocation:
    return SourceLocation(id, id, type, lat, lon, frozenset(caps), name=id.upper())


# Real places around London, distances from LONDON in km (haversine):
WH_DAVENTRY = loc("wh-daventry", "warehouse", 52.2568, -1.1553)  # 109.2 km
WH_DONCASTER = loc("wh-doncaster", "warehouse", 53.5228, -1.1285)  # 234.1 km
ST_OXFORD_ST = loc(
    "st-oxford-st", "store", 51.5154, -0.1419, ("pickup", "ship_from_store")
)  # 1.3 km
ST_COVENT = loc("st-covent", "store", 51.5117, -0.1240, ("pickup", "ship_from_store"))  # 0.5 km
ST_BRIGHTON = loc("st-brighton", "store", 50.8240, -0.1460, ("pickup",))  # 76.0 km, no shipping
DARK_ISLINGTON = loc("dk-islington", "dark_store", 51.5362, -0.1033, ("ship", "same_day"))  # 3.6 km


def problem(
    locations: list[SourceLocation],
    lines: list[tuple[str, int]],
    atp: dict[tuple[str, str], int],
    **kwargs: Any,
) -> SourcingProblem:
    kwargs.setdefault("destination", LONDON if "pickup_location_id" not in kwargs else None)
    return build_problem(locations, lines, atp, **kwargs)


def random_problem(rng: random.Random, **overrides: Any) -> SourcingProblem:
    """A random instance: 3-40 locations in southern England, 1-8 lines, sparse or dense
    stock, some tight capacities, sometimes a package limit, groups or unsplittable lines."""
    n_locations = overrides.pop("locations", rng.randint(3, 40))
    density = overrides.pop("density", rng.choice([0.15, 0.35, 0.8]))
    locations = []
    for i in range(n_locations):
        kind = rng.choice(["warehouse", "store", "store", "store", "dark_store"])
        caps = {
            "warehouse": ("ship",),
            "store": ("pickup", "ship_from_store") if rng.random() < 0.85 else ("pickup",),
            "dark_store": ("ship", "same_day"),
        }[kind]
        locations.append(
            loc(f"l{i:02d}", kind, 50.8 + rng.random() * 2.5, -3.0 + rng.random() * 3.2, caps)
        )
    n = overrides.pop("lines", rng.randint(1, 8))
    lines = [(f"S{k}", rng.choice([1, 1, 1, 2, 3])) for k in range(n)]
    atp = {
        (x.id, sku): rng.randint(1, 5)
        for x in locations
        for sku, _ in lines
        if rng.random() < density
    }
    capacity = {x.id: rng.choice([None, None, None, 2, 5, 12]) for x in locations}
    groups: tuple[tuple[str, ...], ...] = ()
    if n >= 2 and rng.random() < 0.2:
        groups = ((lines[0][0], lines[1][0]),)
    constraints = Constraints(
        max_packages=rng.choice([None, None, None, 2, 3]),
        ship_together=groups,
        split_lines=rng.random() < 0.85,
        allow_partial=overrides.pop("allow_partial", rng.random() < 0.3),
    )
    return build_problem(
        locations,
        lines,
        atp,
        capacity=capacity,
        destination=(51.0 + rng.random() * 2, -2.5 + rng.random() * 2.6),
        constraints=constraints,
        cost_model=CostModel(),
        **overrides,
    )


# --- database ----------------------------------------------------------------------------------


def make_skus(session: Session, *skus: str) -> list[str]:
    catalog.create_product(
        session, title=f"Product {next(_seq)}", variants=[{"sku": sku} for sku in skus]
    )
    return list(skus)


def make_location(
    session: Session,
    code: str,
    type: str = "warehouse",
    capabilities: tuple[str, ...] = ("ship",),
    latitude: float | None = 52.2568,
    longitude: float | None = -1.1553,
    **kwargs: Any,
) -> Any:
    return inventory.create_location(
        session,
        code=code,
        name=kwargs.pop("name", code.upper()),
        type=type,
        timezone=kwargs.pop("timezone", "Europe/London"),
        capabilities=list(capabilities),
        latitude=latitude,
        longitude=longitude,
        **kwargs,
    )


def receive(session: Session, sku: str, location_id: str, quantity: int) -> None:
    inventory.record_movement(
        session, location_id=location_id, reason="receipt", lines=[(sku, quantity)], now=T0
    )


def make_channel(session: Session, code: str = "web") -> Any:
    return catalog.create_channel(
        session,
        code=code,
        name=code.title(),
        type="web",
        currency="GBP",
        country="GB",
        locale="en-GB",
    )


def counts(session: Session) -> dict[str, int]:
    """Row counts a failed call must leave unchanged."""

    def count(model: Any) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0

    return {
        "decisions": count(SourcingDecision),
        "packages": count(SourcingPackage),
        "usage": count(CapacityUsage),
        "events": count(OutboxEvent),
    }


def usage(session: Session, location_id: str) -> int:
    return (
        session.scalar(
            select(func.coalesce(func.sum(CapacityUsage.units), 0)).where(
                CapacityUsage.location_id == location_id
            )
        )
        or 0
    )
