"""Inventory rules and value objects (no I/O): location kinds, opening hours, distances,
available-to-promise and how a quantity is split across locations."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

MAX_AVAILABILITY_SKUS = 100
DEFAULT_CART_TTL_SECONDS = 15 * 60
MAX_TTL_SECONDS = 7 * 24 * 3600
EARTH_RADIUS_KM = 6371.0088


class LocationType(StrEnum):
    WAREHOUSE = "warehouse"
    STORE = "store"
    DARK_STORE = "dark_store"
    LOCKER = "locker"
    DROPSHIP = "dropship"


class Capability(StrEnum):
    SHIP = "ship"
    PICKUP = "pickup"
    CURBSIDE = "curbside"
    SAME_DAY = "same_day"
    SHIP_FROM_STORE = "ship_from_store"
    RETURNS = "returns"


class Reason(StrEnum):
    """Why a ledger entry exists. Every change to a stock balance carries one."""

    RECEIPT = "receipt"
    ADJUSTMENT = "adjustment"
    SALE = "sale"
    RETURN = "return"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    CYCLE_COUNT = "cycle_count"
    DAMAGE = "damage"
    RESERVATION = "reservation"
    RELEASE = "release"
    EXPIRY = "expiry"
    ALLOCATION = "allocation"
    SAFETY_STOCK = "safety_stock"
    PURCHASE_ORDER = "purchase_order"


class Floor(StrEnum):
    """The quantity that must stay at or above zero after a change (checked in the database).

    * ``atp``: on hand − allocated − held − safety stock − channel buffer (sell, reserve)
    * ``unreserved``: on hand − allocated − held (transfer out: safety stock may move)
    * ``on_hand``: on hand (damage, write-offs: reserved units can break too)
    """

    ATP = "atp"
    UNRESERVED = "unreserved"
    ON_HAND = "on_hand"


class ReservationStatus(StrEnum):
    ACTIVE = "active"  # a hold with a deadline (cart or order line)
    ALLOCATED = "allocated"  # converted when the order was placed; no deadline
    RELEASED = "released"
    EXPIRED = "expired"
    FULFILLED = "fulfilled"


class LineStatus(StrEnum):
    HELD = "held"
    ALLOCATED = "allocated"
    RELEASED = "released"
    EXPIRED = "expired"
    FULFILLED = "fulfilled"


class SplitStrategy(StrEnum):
    PREFERRED = "preferred"  # fill from the first location, then the next, in the given order
    ANY = "any"  # any of these: one location if one can fill it, else fewest locations


class TransferStatus(StrEnum):
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    DISCREPANCY = "received_with_discrepancy"


class PurchaseOrderStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"


MOVEMENT_REASONS = {
    # reason -> (sign of the on-hand change, floor that must hold afterwards)
    Reason.RECEIPT: (1, None),
    Reason.RETURN: (1, None),
    Reason.SALE: (-1, Floor.ATP),
    Reason.DAMAGE: (-1, Floor.ON_HAND),
}

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


class InventoryRuleError(ValueError):
    """A rule violation; ``code`` and ``details`` become the API error."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


# --- locations ------------------------------------------------------------------------------


def check_location_type(value: str) -> str:
    if value not in {t.value for t in LocationType}:
        raise InventoryRuleError(
            "invalid_location_type",
            f"unknown location type {value!r}",
            allowed=[t.value for t in LocationType],
        )
    return value


def check_capabilities(values: Sequence[str]) -> list[str]:
    allowed = {c.value for c in Capability}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise InventoryRuleError(
            "invalid_capability",
            f"unknown capabilities: {', '.join(unknown)}",
            unknown=unknown,
            allowed=sorted(allowed),
        )
    return sorted(set(values))


def check_timezone(name: str) -> str:
    if not name or name not in _zones():
        raise InventoryRuleError(
            "invalid_timezone", f"{name!r} is not an IANA time zone", timezone=name
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InventoryRuleError(
            "invalid_timezone", f"{name!r} is not an IANA time zone", timezone=name
        ) from None
    return name


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


def check_coordinates(latitude: float | None, longitude: float | None) -> None:
    if (latitude is None) != (longitude is None):
        raise InventoryRuleError(
            "invalid_coordinates", "give both latitude and longitude, or neither"
        )
    if latitude is None or longitude is None:
        return
    if not (math.isfinite(latitude) and -90.0 <= latitude <= 90.0):
        raise InventoryRuleError(
            "invalid_coordinates", "latitude must be between -90 and 90", latitude=latitude
        )
    if not (math.isfinite(longitude) and -180.0 <= longitude <= 180.0):
        raise InventoryRuleError(
            "invalid_coordinates", "longitude must be between -180 and 180", longitude=longitude
        )


def check_opening_hours(hours: Mapping[str, Any]) -> dict[str, list[list[str]]]:
    """``{"mon": [["09:00", "18:00"]], ...}`` in the location's local time; days left out are
    closed; ``"24:00"`` closes at midnight. Intervals must be ordered and must not overlap."""
    out: dict[str, list[list[str]]] = {}
    for day, intervals in hours.items():
        if day not in WEEKDAYS:
            raise InventoryRuleError(
                "invalid_opening_hours", f"unknown weekday {day!r}", allowed=list(WEEKDAYS)
            )
        if not isinstance(intervals, list | tuple):
            raise InventoryRuleError("invalid_opening_hours", f"{day}: expected a list")
        parsed: list[list[str]] = []
        last_close = ""
        for interval in intervals:
            if not isinstance(interval, list | tuple) or len(interval) != 2:
                raise InventoryRuleError(
                    "invalid_opening_hours", f"{day}: each interval is [open, close]"
                )
            opens, closes = str(interval[0]), str(interval[1])
            if not _HHMM.match(opens) or not _HHMM.match(closes):
                raise InventoryRuleError(
                    "invalid_opening_hours", f"{day}: times are HH:MM", interval=[opens, closes]
                )
            if opens >= closes or opens < last_close:
                raise InventoryRuleError(
                    "invalid_opening_hours",
                    f"{day}: intervals must be ordered, non-empty and not overlap",
                    interval=[opens, closes],
                )
            last_close = closes
            parsed.append([opens, closes])
        out[day] = parsed
    return {d: out[d] for d in WEEKDAYS if d in out}


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


OpeningMinutes = tuple[tuple[tuple[int, int], ...], ...]
"""Opening hours as minutes since local midnight: one tuple of (opens, closes) per weekday,
Monday first (parsed once, checked many times)."""


def opening_minutes(hours: Mapping[str, Sequence[Sequence[str]]]) -> OpeningMinutes:
    return tuple(
        tuple((_minutes(opens), _minutes(closes)) for opens, closes in hours.get(day, []))
        for day in WEEKDAYS
    )


def is_open_at(minutes: OpeningMinutes, timezone: str, at: datetime) -> bool:
    """Whether a location with these opening minutes is open at the aware instant ``at``."""
    local = at.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    return any(opens <= minute < closes for opens, closes in minutes[local.weekday()])


def is_open(hours: Mapping[str, list[list[str]]], timezone: str, at: datetime) -> bool:
    """Whether a location with these opening hours is open at the aware instant ``at``."""
    return is_open_at(opening_minutes(hours), timezone, at)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing the circle (a cheap pre-filter)."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    cos_lat = math.cos(math.radians(lat))
    dlon = 180.0 if cos_lat < 1e-9 else min(180.0, dlat / cos_lat)
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


# --- sourcing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcingRule:
    """A location feeds a channel when it matches every field that is set."""

    location_id: str | None = None
    location_type: str | None = None
    capability: str | None = None

    def matches(self, location_id: str, location_type: str, capabilities: Sequence[str]) -> bool:
        if self.location_id is not None and self.location_id != location_id:
            return False
        if self.location_type is not None and self.location_type != location_type:
            return False
        return self.capability is None or self.capability in capabilities


@dataclass(frozen=True)
class LocationFacts:
    id: str
    code: str
    type: str
    capabilities: tuple[str, ...]


def sourcing_locations(
    rules: Sequence[SourcingRule], locations: Sequence[LocationFacts]
) -> list[str]:
    """The ids of the active ``locations`` that feed a channel, in rule order then code order.
    No rules means every location feeds it."""
    if not rules:
        return [loc.id for loc in sorted(locations, key=lambda x: x.code)]
    ordered: list[str] = []
    seen: set[str] = set()
    for rule in rules:
        for loc in sorted(locations, key=lambda x: x.code):
            if loc.id not in seen and rule.matches(loc.id, loc.type, loc.capabilities):
                seen.add(loc.id)
                ordered.append(loc.id)
    return ordered


# --- quantities -----------------------------------------------------------------------------


def atp(on_hand: int, reserved: int, safety_stock: int, buffer: int = 0) -> int:
    """Available to promise, never below zero."""
    return max(0, on_hand - reserved - safety_stock - buffer)


def check_quantity(quantity: int, field: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise InventoryRuleError(
            "invalid_quantity", f"{field} must be a positive whole number", **{field: quantity}
        )
    return quantity


def plan_split(
    requested: int, free: Sequence[tuple[str, int]], strategy: SplitStrategy
) -> list[tuple[str, int]] | None:
    """Split ``requested`` units over ``free`` = [(location, available), ...] (in preference
    order). Returns [(location, quantity), ...] or ``None`` when the total is short."""
    usable = [(loc, n) for loc, n in free if n > 0]
    if sum(n for _, n in usable) < requested:
        return None
    if strategy is SplitStrategy.ANY:
        whole = next((loc for loc, n in usable if n >= requested), None)
        if whole is not None:
            return [(whole, requested)]
        # Fewest locations: largest first (stable, so ties keep the preference order).
        usable = sorted(usable, key=lambda item: -item[1])
    plan: list[tuple[str, int]] = []
    remaining = requested
    for loc, n in usable:
        take = min(n, remaining)
        plan.append((loc, take))
        remaining -= take
        if remaining == 0:
            break
    return plan


@dataclass(frozen=True)
class StockLevelEvent:
    topic: str
    available: int


def stock_level_events(before: int, after: int, low_threshold: int | None) -> list[StockLevelEvent]:
    """Events when the sellable quantity (on hand − allocated − safety stock) crosses a line:
    out of stock (reached 0), back in stock (left 0), low stock (fell to or below the
    threshold while still in stock)."""
    before, after = max(0, before), max(0, after)
    if before == after:
        return []
    if after == 0:
        return [StockLevelEvent("inventory.out_of_stock", 0)]
    out: list[StockLevelEvent] = []
    if before == 0:
        out.append(StockLevelEvent("inventory.back_in_stock", after))
    if (
        low_threshold is not None
        and after <= low_threshold
        and (before > low_threshold or before == 0)
    ):
        out.append(StockLevelEvent("inventory.low_stock", after))
    return out
