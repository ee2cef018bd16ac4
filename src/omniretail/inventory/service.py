"""Inventory use cases: locations, stock movements, reservations, availability, transfers,
purchase-order receipts, cycle counts and the ledger audit.

Concurrency model (details in docs/inventory.md):

* every balance change is one conditional ``UPDATE stock_levels ... WHERE <floor> >= 0
  RETURNING ...`` (see :func:`_apply`), so the check and the write are one atomic step in the
  database, whatever the number of API processes;
* a change that touches several rows applies them in ascending ``stock_levels.id`` order, and
  any operation that changes reservation lines locks their stock rows first (again in id
  order): stock rows, then lines, then the reservation header;
* each public writing function runs inside a savepoint retried by tenacity on deadlock or
  serialization errors, so such errors never reach the caller;
* cart holds are rows with a deadline; ``held`` counts the units of holds not yet cleaned up.
  Reads subtract only live holds; a write that finds the row short first reclaims the expired
  holds of that row, so an expired hold stops counting the moment its deadline passes.

Services flush, never commit.
"""

from __future__ import annotations

import random
import re
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.core.db import Database
from omniretail.core.errors import AppError, conflict, invalid, not_found
from omniretail.core.events import emit
from omniretail.core.ids import new_id
from omniretail.core.retry import retrying
from omniretail.core.timeutil import as_utc, utcnow
from omniretail.inventory.domain import (
    DEFAULT_CART_TTL_SECONDS,
    MAX_AVAILABILITY_SKUS,
    MAX_TTL_SECONDS,
    MOVEMENT_REASONS,
    Floor,
    InventoryRuleError,
    LineStatus,
    LocationFacts,
    OpeningMinutes,
    PurchaseOrderStatus,
    Reason,
    ReservationStatus,
    SourcingRule,
    SplitStrategy,
    TransferStatus,
    bounding_box,
    check_capabilities,
    check_coordinates,
    check_location_type,
    check_opening_hours,
    check_quantity,
    check_timezone,
    distance_km,
    is_open_at,
    opening_minutes,
    plan_split,
    sourcing_locations,
    stock_level_events,
)
from omniretail.inventory.models import (
    ChannelInventorySettings,
    CycleCount,
    CycleCountLine,
    LedgerEntry,
    Location,
    PurchaseOrder,
    PurchaseOrderLine,
    Reservation,
    ReservationLine,
    SourcingRuleRow,
    StockLevel,
    Transfer,
    TransferLine,
)

T = TypeVar("T")

STOCK = cast(Table, StockLevel.__table__)
LEDGER = cast(Table, LedgerEntry.__table__)
LINES = cast(Table, ReservationLine.__table__)
RESERVATIONS = cast(Table, Reservation.__table__)
SOURCING_RULES = cast(Table, SourcingRuleRow.__table__)
S = STOCK.c
L = LINES.c

# --- errors and retries ---------------------------------------------------------------------


def _rule_error(exc: InventoryRuleError) -> AppError:
    return invalid(exc.code, exc.message, **exc.details)


def insufficient(sku: str, requested: int, available: int, **extra: Any) -> AppError:
    return conflict(
        "insufficient_stock",
        f"not enough stock for {sku!r}: requested {requested}, available {available}",
        sku=sku,
        requested=requested,
        available=max(0, available),
        **extra,
    )


def atomic(session: Session, fn: Callable[[], T], attempts: int = 8) -> T:
    """Run ``fn`` so that it either takes full effect or none, retrying it (jittered
    exponential back-off, at most ``attempts`` times) on a deadlock or serialization error.

    Inside a transaction that already holds other work, ``fn`` runs in a savepoint. When the
    session has no transaction yet, the whole transaction is ``fn``'s own, so a plain
    rollback undoes exactly ``fn`` and the savepoint's two round trips are saved."""
    for attempt in retrying(attempts):
        with attempt:
            if session.in_transaction():
                with session.begin_nested():
                    return fn()
            try:
                return fn()
            except BaseException:
                session.rollback()
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _now(now: datetime | None) -> datetime:
    return utcnow() if now is None else as_utc(now)


# --- locations ------------------------------------------------------------------------------


def _validate_location_fields(
    *,
    type: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    timezone: str | None = None,
    capabilities: Sequence[str] | None = None,
    opening_hours: Mapping[str, Any] | None = None,
    daily_pick_capacity: int | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        if type is not None:
            out["type"] = check_location_type(type)
        check_coordinates(latitude, longitude)
        if timezone is not None:
            out["timezone"] = check_timezone(timezone)
        if capabilities is not None:
            out["capabilities"] = check_capabilities(capabilities)
        if opening_hours is not None:
            out["opening_hours"] = check_opening_hours(opening_hours)
    except InventoryRuleError as exc:
        raise _rule_error(exc) from None
    if daily_pick_capacity is not None and daily_pick_capacity < 0:
        raise invalid("invalid_capacity", "daily pick capacity cannot be negative")
    return out


def create_location(
    session: Session,
    *,
    code: str,
    name: str,
    type: str,
    timezone: str,
    latitude: float | None = None,
    longitude: float | None = None,
    capabilities: Sequence[str] = (),
    opening_hours: Mapping[str, Any] | None = None,
    daily_pick_capacity: int | None = None,
    address: Mapping[str, Any] | None = None,
) -> Location:
    from omniretail.catalog.domain import valid_code

    if not valid_code(code):
        raise invalid("invalid_code", f"location code {code!r} must be lower-case [a-z0-9_-]")
    if not name.strip():
        raise invalid("invalid_name", "a location needs a name")
    fields = _validate_location_fields(
        type=type,
        latitude=latitude,
        longitude=longitude,
        timezone=timezone,
        capabilities=capabilities,
        opening_hours=opening_hours or {},
        daily_pick_capacity=daily_pick_capacity,
    )
    if session.scalar(select(Location.id).where(Location.code == code)):
        raise conflict("location_exists", f"location {code!r} already exists", code=code)
    location = Location(
        id=new_id("loc"),
        code=code,
        name=name.strip(),
        latitude=latitude,
        longitude=longitude,
        daily_pick_capacity=daily_pick_capacity,
        address=dict(address or {}),
        active=True,
        **fields,
    )
    session.add(location)
    session.flush()
    return location


def get_location(session: Session, ref: str) -> Location:
    """A location by id or code; unknown is a 404."""
    location = session.get(Location, ref) if ref.startswith("loc_") else None
    if location is None:
        location = session.scalar(select(Location).where(Location.code == ref))
    if location is None:
        raise not_found("location", ref)
    return location


def update_location(session: Session, ref: str, changes: Mapping[str, Any]) -> Location:
    location = get_location(session, ref)
    allowed = {
        "name",
        "type",
        "latitude",
        "longitude",
        "timezone",
        "capabilities",
        "opening_hours",
        "daily_pick_capacity",
        "address",
        "active",
    }
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise invalid("invalid_field", f"cannot change: {', '.join(unknown)}", fields=unknown)
    merged_lat = changes.get("latitude", location.latitude)
    merged_lon = changes.get("longitude", location.longitude)
    fields = _validate_location_fields(
        type=changes.get("type"),
        latitude=merged_lat,
        longitude=merged_lon,
        timezone=changes.get("timezone"),
        capabilities=changes.get("capabilities"),
        opening_hours=changes.get("opening_hours"),
        daily_pick_capacity=changes.get("daily_pick_capacity"),
    )
    for key, value in {**changes, **fields}.items():
        setattr(location, key, value)
    session.flush()
    return location


def list_locations(
    session: Session,
    *,
    type: str | None = None,
    capability: str | None = None,
    active: bool | None = None,
) -> list[Location]:
    query = select(Location).order_by(Location.code)
    if type is not None:
        query = query.where(Location.type == type)
    if active is not None:
        query = query.where(Location.active.is_(active))
    rows = list(session.scalars(query))
    if capability is not None:
        rows = [loc for loc in rows if capability in (loc.capabilities or [])]
    return rows


def _require_locations(session: Session, ids: Iterable[str], active: bool = True) -> list[str]:
    """Check that the location ids exist (and are active); returns them de-duplicated."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = dict(
        session.execute(select(Location.id, Location.active).where(Location.id.in_(wanted))).all()
    )
    missing = [i for i in wanted if i not in found]
    if missing:
        raise AppError(
            "location_not_found",
            f"unknown location: {', '.join(missing)}",
            404,
            {"locations": missing},
        )
    inactive = [i for i in wanted if active and not found[i]]
    if inactive:
        raise conflict(
            "location_inactive", f"location not active: {', '.join(inactive)}", locations=inactive
        )
    return wanted


# --- location metadata, cached per database and checked on every use -----------------------


@dataclass(frozen=True)
class _LocationMeta:
    """What availability and sourcing read of a location, decoded once per change."""

    id: str
    code: str
    name: str
    type: str
    latitude: float | None
    longitude: float | None
    timezone: str
    capabilities: tuple[str, ...]
    opening: OpeningMinutes
    active: bool


@dataclass
class _LocationSnapshot:
    """Every location as of one fingerprint of the ``locations`` table, and the sourcing
    lists computed from it (memoized per rule list)."""

    fingerprint: tuple[Any, ...]
    rows: tuple[_LocationMeta, ...]
    facts: list[LocationFacts]  # active locations
    sourcing: dict[tuple[SourcingRule, ...], tuple[str, ...]] = field(default_factory=dict)

    def feeding(self, rules: Sequence[SourcingRule]) -> tuple[str, ...]:
        key = tuple(rules)
        ids = self.sourcing.get(key)
        if ids is None:
            ids = tuple(sourcing_locations(key, self.facts))
            if len(self.sourcing) < 256:  # a handful of channels; bounded all the same
                self.sourcing[key] = ids
        return ids


# The fingerprint changes whenever a location is added, removed or changed: the row count,
# the newest ``updated_at`` (bumped by every ORM update, which is how locations change) and a
# sum over all rows that moves with any single change (PostgreSQL: the rows' ``xmin``, new on
# every update whatever the clock says and whatever the commit order; SQLite, whose writers
# are serialized: the sum of the timestamps).
_FINGERPRINTS = {
    "postgresql": text(
        "SELECT count(*), max(updated_at), sum(CAST(CAST(xmin AS text) AS bigint)) FROM locations"
    ),
    "sqlite": text("SELECT count(*), max(updated_at), total(julianday(updated_at)) FROM locations"),
}
_LOCATION_ROWS = select(
    Location.id,
    Location.code,
    Location.name,
    Location.type,
    Location.latitude,
    Location.longitude,
    Location.timezone,
    Location.capabilities,
    Location.opening_hours,
    Location.active,
).order_by(Location.code)
# Per engine (one database), dropped with the engine.
_SNAPSHOTS: weakref.WeakKeyDictionary[Engine, _LocationSnapshot] = weakref.WeakKeyDictionary()


def _dialect_name(session: Session) -> str:
    return session.get_bind().dialect.name


def _locations(session: Session) -> _LocationSnapshot:
    """The locations as this transaction sees them: one cheap fingerprint query, and the full
    read only when the fingerprint differs from the cached snapshot's (a location was added or
    changed, in this process or any other). The cache holds nothing a reader could not have
    read itself: a snapshot is only ever used under its own fingerprint."""
    bind = session.get_bind()
    key = bind.engine
    fingerprint = tuple(session.connection().execute(_FINGERPRINTS[bind.dialect.name]).one())
    cached = _SNAPSHOTS.get(key)
    if cached is not None and cached.fingerprint == fingerprint:
        return cached
    rows = tuple(
        _LocationMeta(
            r.id,
            r.code,
            r.name,
            r.type,
            r.latitude,
            r.longitude,
            r.timezone,
            tuple(r.capabilities or ()),
            opening_minutes(r.opening_hours or {}),
            bool(r.active),
        )
        for r in session.execute(_LOCATION_ROWS)
    )
    snapshot = _LocationSnapshot(
        fingerprint,
        rows,
        [LocationFacts(r.id, r.code, r.type, r.capabilities) for r in rows if r.active],
    )
    _SNAPSHOTS[key] = snapshot
    return snapshot


# --- channels: sourcing rules, buffer, reservation TTL --------------------------------------


@dataclass(frozen=True)
class ChannelContext:
    channel_id: str | None
    channel_code: str | None
    buffer: int
    ttl_seconds: int
    location_ids: tuple[str, ...]  # active locations feeding the channel, in preference order
    every_location: bool = False  # every location (active or not) feeds it: no filter needed


@dataclass(frozen=True)
class ChannelSourcing:
    channel_id: str
    channel_code: str
    buffer: int
    reservation_ttl_seconds: int
    rules: list[SourcingRule]
    location_ids: list[str]


def set_channel_sourcing(
    session: Session,
    channel_ref: str,
    *,
    rules: Sequence[Mapping[str, Any]],
    buffer: int = 0,
    reservation_ttl_seconds: int = DEFAULT_CART_TTL_SECONDS,
) -> ChannelSourcing:
    """Replace a channel's sourcing rules (which locations feed it), buffer and hold TTL."""
    channel = catalog.get_channel(session, channel_ref)
    if buffer < 0:
        raise invalid("invalid_buffer", "the channel buffer cannot be negative", buffer=buffer)
    if not 1 <= reservation_ttl_seconds <= MAX_TTL_SECONDS:
        raise invalid(
            "invalid_ttl",
            f"reservation TTL must be between 1 and {MAX_TTL_SECONDS} seconds",
            reservation_ttl_seconds=reservation_ttl_seconds,
        )
    parsed: list[SourcingRule] = []
    for raw in rules:
        rule = SourcingRule(
            location_id=raw.get("location_id"),
            location_type=raw.get("location_type"),
            capability=raw.get("capability"),
        )
        if rule == SourcingRule():
            raise invalid("invalid_rule", "a sourcing rule needs a location, type or capability")
        try:
            if rule.location_type is not None:
                check_location_type(rule.location_type)
            if rule.capability is not None:
                check_capabilities([rule.capability])
        except InventoryRuleError as exc:
            raise _rule_error(exc) from None
        if rule.location_id is not None:
            _require_locations(session, [rule.location_id], active=False)
        parsed.append(rule)
    settings = session.get(ChannelInventorySettings, channel.id)
    if settings is None:
        settings = ChannelInventorySettings(channel_id=channel.id)
        session.add(settings)
    settings.buffer = buffer
    settings.reservation_ttl_seconds = reservation_ttl_seconds
    session.execute(SOURCING_RULES.delete().where(SourcingRuleRow.channel_id == channel.id))
    session.add_all(
        SourcingRuleRow(
            channel_id=channel.id,
            position=pos,
            location_id=r.location_id,
            location_type=r.location_type,
            capability=r.capability,
        )
        for pos, r in enumerate(parsed)
    )
    session.flush()
    return get_channel_sourcing(session, channel.id)


def get_channel_sourcing(session: Session, channel_ref: str) -> ChannelSourcing:
    channel = catalog.get_channel(session, channel_ref)
    ctx = channel_context(session, channel.id)
    rules = _rules(session, channel.id)
    return ChannelSourcing(
        channel_id=channel.id,
        channel_code=channel.code,
        buffer=ctx.buffer,
        reservation_ttl_seconds=ctx.ttl_seconds,
        rules=rules,
        location_ids=list(ctx.location_ids),
    )


def _rules(session: Session, channel_id: str) -> list[SourcingRule]:
    rows = session.execute(
        select(
            SourcingRuleRow.location_id, SourcingRuleRow.location_type, SourcingRuleRow.capability
        )
        .where(SourcingRuleRow.channel_id == channel_id)
        .order_by(SourcingRuleRow.position)
    ).all()
    return [SourcingRule(a, b, c) for a, b, c in rows]


_SETTINGS = select(
    ChannelInventorySettings.buffer, ChannelInventorySettings.reservation_ttl_seconds
).where(ChannelInventorySettings.channel_id == bindparam("channel_id"))


def channel_context(session: Session, channel_ref: str | None) -> ChannelContext:
    """Which locations feed a channel, its buffer and its hold TTL. Without a channel: every
    active location, no buffer, the default TTL. The channel, its settings and its rules are
    read on every call; the locations come from the checked cache (:func:`_locations`)."""
    return _channel_context(session, channel_ref, _locations(session))


def _channel_context(
    session: Session, channel_ref: str | None, snapshot: _LocationSnapshot
) -> ChannelContext:
    n_locations = len(snapshot.rows)
    if channel_ref is None:
        ids = snapshot.feeding(())
        return ChannelContext(None, None, 0, DEFAULT_CART_TTL_SECONDS, ids, len(ids) == n_locations)
    channel = catalog.get_channel(session, channel_ref)
    if not channel.active:
        raise conflict("channel_inactive", f"channel {channel.code!r} is not active")
    settings = session.connection().execute(_SETTINGS, {"channel_id": channel.id}).first()
    ids = snapshot.feeding(_rules(session, channel.id))
    return ChannelContext(
        channel.id,
        channel.code,
        settings.buffer if settings else 0,
        settings.reservation_ttl_seconds if settings else DEFAULT_CART_TTL_SECONDS,
        ids,
        len(set(ids)) == n_locations,
    )


# --- stock rows and the write kernel --------------------------------------------------------


def _dialect_insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _ensure_stock_rows(
    session: Session, pairs: Iterable[tuple[str, str, str]], now: datetime
) -> dict[tuple[str, str], int]:
    """Create missing stock rows for (sku, variant_id, location_id); returns
    {(sku, location_id): stock id}. Safe under concurrency (insert ... on conflict do nothing)."""
    wanted = {(sku, loc): variant for sku, variant, loc in pairs}
    if not wanted:
        return {}
    ids = _stock_ids(session, wanted)
    missing = [key for key in wanted if key not in ids]
    if missing:
        stmt = (
            _dialect_insert(session)(STOCK)
            .values(
                [
                    {
                        "sku": sku,
                        "variant_id": wanted[(sku, loc)],
                        "location_id": loc,
                        "on_hand": 0,
                        "allocated": 0,
                        "held": 0,
                        "safety_stock": 0,
                        "incoming": 0,
                        "updated_at": now,
                    }
                    for sku, loc in missing
                ]
            )
            .on_conflict_do_nothing(index_elements=["sku", "location_id"])
        )
        session.execute(stmt)
        ids = _stock_ids(session, wanted)
    return ids


def _stock_ids(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    keys = list(keys)
    skus = {k[0] for k in keys}
    locs = {k[1] for k in keys}
    rows = session.execute(
        select(S.sku, S.location_id, S.id).where(S.sku.in_(skus), S.location_id.in_(locs))
    ).all()
    wanted = set(keys)
    return {(sku, loc): sid for sku, loc, sid in rows if (sku, loc) in wanted}


@dataclass
class Change:
    """One change to one stock row. ``floor`` names the quantity that must stay >= 0."""

    stock_id: int
    reason: Reason
    on_hand: int = 0
    allocated: int = 0
    held: int = 0
    safety: int = 0
    incoming: int = 0
    floor: Floor | None = None
    buffer: int = 0
    reference: str | None = None
    note: str | None = None

    def need(self) -> int:
        """The ``floor`` quantity the row must have *before* the change."""
        if self.floor is Floor.ATP:
            return self.buffer - (self.on_hand - self.allocated - self.held - self.safety)
        if self.floor is Floor.UNRESERVED:
            return -(self.on_hand - self.allocated - self.held)
        return -self.on_hand


class Short(Exception):
    """A conditional update found the row short (after reclaiming its expired holds)."""

    def __init__(self, change: Change, row: Any | None) -> None:
        super().__init__(f"stock row {change.stock_id} is short")
        self.change = change
        self.row = row

    def available(self) -> int:
        if self.row is None:
            return 0
        r = self.row
        if self.change.floor is Floor.ATP:
            return r.on_hand - r.allocated - r.held - r.safety_stock - self.change.buffer
        if self.change.floor is Floor.UNRESERVED:
            return r.on_hand - r.allocated - r.held
        return int(r.on_hand)


_RETURNING = (
    S.id,
    S.sku,
    S.variant_id,
    S.location_id,
    S.on_hand,
    S.allocated,
    S.held,
    S.safety_stock,
    S.incoming,
    S.low_stock_threshold,
)


def _update_stmt(floor: Floor | None) -> Any:
    stmt = update(STOCK).where(S.id == bindparam("sid"))
    if floor is Floor.ATP:
        stmt = stmt.where(S.on_hand - S.allocated - S.held - S.safety_stock >= bindparam("need"))
    elif floor is Floor.UNRESERVED:
        stmt = stmt.where(S.on_hand - S.allocated - S.held >= bindparam("need"))
    elif floor is Floor.ON_HAND:
        stmt = stmt.where(S.on_hand >= bindparam("need"))
    return stmt.values(
        on_hand=S.on_hand + bindparam("d_on_hand"),
        allocated=S.allocated + bindparam("d_allocated"),
        held=S.held + bindparam("d_held"),
        safety_stock=S.safety_stock + bindparam("d_safety"),
        incoming=S.incoming + bindparam("d_incoming"),
        updated_at=bindparam("now"),
    ).returning(*_RETURNING)


_UPDATES = {floor: _update_stmt(floor) for floor in (None, *Floor)}


def _try_update(session: Session, c: Change, now: datetime) -> Any | None:
    params = {
        "sid": c.stock_id,
        "d_on_hand": c.on_hand,
        "d_allocated": c.allocated,
        "d_held": c.held,
        "d_safety": c.safety,
        "d_incoming": c.incoming,
        "now": now,
    }
    if c.floor is not None:
        params["need"] = c.need()
    return session.execute(_UPDATES[c.floor], params).first()


def apply_changes(
    session: Session, changes: Sequence[Change], now: datetime, reclaim: bool = True
) -> dict[int, Any]:
    """Apply changes in ascending stock-row order, each as one conditional update, write one
    ledger row per change and emit stock-level events. A change that finds its row short
    reclaims that row's expired holds and tries once more (unless ``reclaim`` is off), then
    raises :class:`Short`. Returns the rows after the changes, by stock id."""
    after: dict[int, Any] = {}
    ledger: list[dict[str, Any]] = []
    for c in sorted(changes, key=lambda ch: ch.stock_id):
        row = _try_update(session, c, now)
        if row is None and reclaim and c.floor is not None:
            reclaim_expired(session, [c.stock_id], now)
            row = _try_update(session, c, now)
        if row is None:
            current = session.execute(select(*_RETURNING).where(S.id == c.stock_id)).first()
            raise Short(c, current)
        after[c.stock_id] = row
        ledger.append(
            {
                "stock_id": c.stock_id,
                "sku": row.sku,
                "location_id": row.location_id,
                "reason": c.reason.value,
                "on_hand_delta": c.on_hand,
                "allocated_delta": c.allocated,
                "held_delta": c.held,
                "safety_delta": c.safety,
                "incoming_delta": c.incoming,
                "reference": c.reference,
                "note": c.note,
                "created_at": now,
            }
        )
        sellable_delta = c.on_hand - c.allocated - c.safety
        if sellable_delta:
            sellable = row.on_hand - row.allocated - row.safety_stock
            _emit_stock_levels(session, row, sellable - sellable_delta, sellable)
    if ledger:
        session.execute(insert(LEDGER), ledger)
    return after


def _lock_stock(session: Session, stock_ids: Iterable[int]) -> None:
    """Lock stock rows in ascending id order (PostgreSQL ``FOR NO KEY UPDATE``; SQLite's
    writers are already serialized by ``BEGIN IMMEDIATE``)."""
    ids = sorted(set(stock_ids))
    if ids and session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(S.id).where(S.id.in_(ids)).order_by(S.id).with_for_update(key_share=True)
        ).all()


def reclaim_expired(session: Session, stock_ids: Iterable[int], now: datetime) -> int:
    """Turn the expired holds of these stock rows into ``expired`` lines and give their units
    back (``held`` goes down, one ``expiry`` ledger row per line). Returns the units freed."""
    ids = sorted(set(stock_ids))
    if not ids:
        return 0
    _lock_stock(session, ids)
    freed = session.execute(
        update(LINES)
        .where(
            L.stock_id.in_(ids),
            L.status == LineStatus.HELD.value,
            L.expires_at <= now,
        )
        .values(status=LineStatus.EXPIRED.value)
        .returning(L.stock_id, L.quantity, L.reservation_id)
    ).all()
    if not freed:
        return 0
    apply_changes(
        session,
        [
            Change(stock_id, Reason.EXPIRY, held=-quantity, reference=reservation_id)
            for stock_id, quantity, reservation_id in freed
        ],
        now,
        reclaim=False,
    )
    return sum(q for _, q, _ in freed)


# --- reading balances -----------------------------------------------------------------------


def _expired_holds() -> Any:
    """Units of holds whose deadline (``:now``) has passed but that are not cleaned up yet."""
    return (
        select(L.stock_id, func.sum(L.quantity).label("units"))
        .where(L.status == LineStatus.HELD.value, L.expires_at <= bindparam("now"))
        .group_by(L.stock_id)
        .subquery("expired")
    )


def _balance_query(active_only: bool = False) -> Any:
    expired = _expired_holds()
    live_held = (S.held - func.coalesce(expired.c.units, 0)).label("live_held")
    query = select(
        S.id,
        S.sku,
        S.variant_id,
        S.location_id,
        S.on_hand,
        S.allocated,
        live_held,
        S.safety_stock,
        S.incoming,
        S.low_stock_threshold,
    ).select_from(STOCK.outerjoin(expired, expired.c.stock_id == S.id))
    if active_only:
        query = query.join(Location, and_(Location.id == S.location_id, Location.active.is_(True)))
    return query


_BALANCES = _balance_query()
# The read of a reservation: built once (it runs on every reserve call).
_RESERVE_READ = _balance_query(active_only=True).where(
    S.sku.in_(bindparam("skus", expanding=True)),
    S.location_id.in_(bindparam("locs", expanding=True)),
)


def _balance_rows(
    session: Session,
    now: datetime,
    skus: Sequence[str] | None = None,
    location_ids: Sequence[str] | None = None,
) -> list[Any]:
    """Stock rows with ``live_held`` (held minus expired holds) in one consistent read."""
    query = _BALANCES
    if skus is not None:
        query = query.where(S.sku.in_(list(skus)))
    if location_ids is not None:
        query = query.where(S.location_id.in_(list(location_ids)))
    return list(session.execute(query, {"now": now}))


@dataclass(frozen=True)
class StockBalance:
    sku: str
    variant_id: str
    location_id: str
    on_hand: int
    allocated: int
    held: int  # units in live holds
    reserved: int  # allocated + held
    safety_stock: int
    incoming: int
    available: int  # on hand - reserved - safety stock, never below zero
    low_stock_threshold: int | None


def _balance(row: Any) -> StockBalance:
    reserved = row.allocated + row.live_held
    return StockBalance(
        sku=row.sku,
        variant_id=row.variant_id,
        location_id=row.location_id,
        on_hand=row.on_hand,
        allocated=row.allocated,
        held=row.live_held,
        reserved=reserved,
        safety_stock=row.safety_stock,
        incoming=row.incoming,
        available=max(0, row.on_hand - reserved - row.safety_stock),
        low_stock_threshold=row.low_stock_threshold,
    )


def stock_balances(
    session: Session,
    *,
    skus: Sequence[str] | None = None,
    location_id: str | None = None,
    now: datetime | None = None,
) -> list[StockBalance]:
    if location_id is not None:
        _require_locations(session, [location_id], active=False)
    rows = _balance_rows(
        session, _now(now), skus, [location_id] if location_id is not None else None
    )
    return sorted((_balance(r) for r in rows), key=lambda b: (b.sku, b.location_id))


def stock_balance(
    session: Session, sku: str, location_id: str, now: datetime | None = None
) -> StockBalance:
    """One balance; a (SKU, location) without a stock row reads as all zeros."""
    rows = stock_balances(session, skus=[sku], location_id=location_id, now=now)
    if rows:
        return rows[0]
    facts = catalog.require_variants(session, [sku])
    return StockBalance(sku, facts[sku].variant_id, location_id, 0, 0, 0, 0, 0, 0, 0, None)


# --- stock movements ------------------------------------------------------------------------


def _merge_lines(lines: Iterable[tuple[str, int]], field: str = "quantity") -> dict[str, int]:
    merged: dict[str, int] = {}
    for sku, quantity in lines:
        try:
            check_quantity(quantity, field)
        except InventoryRuleError as exc:
            raise _rule_error(exc) from None
        merged[sku] = merged.get(sku, 0) + quantity
    if not merged:
        raise invalid("lines_required", "give at least one line")
    return merged


@dataclass(frozen=True)
class MovementResult:
    location_id: str
    reason: str
    balances: list[StockBalance]


def record_movement(
    session: Session,
    *,
    location_id: str,
    reason: str,
    lines: Sequence[tuple[str, int]],
    reference: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> MovementResult:
    """Receipt, customer return, damage or a direct sale (a register sale without a
    reservation) of positive quantities at one location."""
    try:
        parsed = Reason(reason)
        sign, floor = MOVEMENT_REASONS[parsed]
    except (ValueError, KeyError):
        raise invalid(
            "invalid_reason",
            f"reason {reason!r} is not a stock movement",
            allowed=[r.value for r in MOVEMENT_REASONS],
        ) from None
    at = _now(now)
    merged = _merge_lines(lines)

    def run() -> MovementResult:
        _require_locations(session, [location_id])
        facts = catalog.require_variants(session, merged)
        ids = _ensure_stock_rows(
            session, ((sku, facts[sku].variant_id, location_id) for sku in merged), at
        )
        changes = [
            Change(
                ids[(sku, location_id)],
                parsed,
                on_hand=sign * qty,
                floor=floor,
                reference=reference,
                note=note,
            )
            for sku, qty in merged.items()
        ]
        _apply_or_409(session, changes, at)
        return MovementResult(
            location_id,
            parsed.value,
            stock_balances(session, skus=list(merged), location_id=location_id, now=at),
        )

    return atomic(session, run)


def _apply_or_409(session: Session, changes: Sequence[Change], now: datetime) -> dict[int, Any]:
    try:
        return apply_changes(session, changes, now)
    except Short as short:
        row = short.row
        sku = row.sku if row is not None else "?"
        requested = -short.change.on_hand or short.change.held or short.change.allocated
        raise insufficient(sku, requested, short.available()) from None


def adjust_stock(
    session: Session,
    *,
    location_id: str,
    sku: str,
    delta: int,
    note: str | None = None,
    reference: str | None = None,
    now: datetime | None = None,
) -> StockBalance:
    """Correct on-hand by a signed, non-zero ``delta`` (on hand never goes below zero)."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise invalid("invalid_quantity", "delta must be a non-zero whole number", delta=delta)
    at = _now(now)

    def run() -> StockBalance:
        _require_locations(session, [location_id])
        facts = catalog.require_variants(session, [sku])
        ids = _ensure_stock_rows(session, [(sku, facts[sku].variant_id, location_id)], at)
        change = Change(
            ids[(sku, location_id)],
            Reason.ADJUSTMENT,
            on_hand=delta,
            floor=Floor.ON_HAND if delta < 0 else None,
            reference=reference,
            note=note,
        )
        _apply_or_409(session, [change], at)
        return stock_balance(session, sku, location_id, at)

    return atomic(session, run)


def set_stock_settings(
    session: Session,
    *,
    location_id: str,
    sku: str,
    safety_stock: int | None = None,
    low_stock_threshold: int | None = None,
    clear_low_stock_threshold: bool = False,
    now: datetime | None = None,
) -> StockBalance:
    """Set the safety stock (a ledger entry) and/or the low-stock threshold of one row."""
    if safety_stock is not None and safety_stock < 0:
        raise invalid(
            "invalid_quantity", "safety stock cannot be negative", safety_stock=safety_stock
        )
    if low_stock_threshold is not None and low_stock_threshold < 0:
        raise invalid("invalid_quantity", "the low-stock threshold cannot be negative")
    at = _now(now)

    def run() -> StockBalance:
        _require_locations(session, [location_id], active=False)
        facts = catalog.require_variants(session, [sku])
        sid = _ensure_stock_rows(session, [(sku, facts[sku].variant_id, location_id)], at)[
            (sku, location_id)
        ]
        if low_stock_threshold is not None or clear_low_stock_threshold:
            session.execute(
                update(STOCK).where(S.id == sid).values(low_stock_threshold=low_stock_threshold)
            )
        if safety_stock is not None:
            _lock_stock(session, [sid])
            current = session.execute(select(S.safety_stock).where(S.id == sid)).scalar_one()
            if current != safety_stock:
                apply_changes(
                    session, [Change(sid, Reason.SAFETY_STOCK, safety=safety_stock - current)], at
                )
        return stock_balance(session, sku, location_id, at)

    return atomic(session, run)


# --- reservations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReservationLineView:
    sku: str
    location_id: str
    quantity: int
    status: str


@dataclass(frozen=True)
class ReservationView:
    id: str
    status: str
    kind: str
    channel_id: str | None
    reference: str | None
    order_reference: str | None
    expires_at: datetime | None
    created_at: datetime
    lines: list[ReservationLineView] = field(default_factory=list)

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)


def _effective_status(status: str, expires_at: datetime | None, now: datetime) -> str:
    if status == ReservationStatus.ACTIVE.value and expires_at is not None and expires_at <= now:
        return ReservationStatus.EXPIRED.value
    return status


def get_reservation(
    session: Session, reservation_id: str, now: datetime | None = None
) -> ReservationView:
    at = _now(now)
    header = session.execute(
        select(RESERVATIONS).where(RESERVATIONS.c.id == reservation_id)
    ).first()
    if header is None:
        raise not_found("reservation", reservation_id)
    lines = session.execute(
        select(L.sku, L.location_id, L.quantity, L.status)
        .where(L.reservation_id == reservation_id)
        .order_by(L.id)
    ).all()
    expires_at = as_utc(header.expires_at) if header.expires_at is not None else None
    return ReservationView(
        id=header.id,
        status=_effective_status(header.status, expires_at, at),
        kind=header.kind,
        channel_id=header.channel_id,
        reference=header.reference,
        order_reference=header.order_reference,
        expires_at=expires_at,
        created_at=as_utc(header.created_at),
        lines=[ReservationLineView(s, loc, q, st) for s, loc, q, st in lines],
    )


class _Retry(Exception):
    """The optimistic attempt lost a race; run the pessimistic one."""


def reserve(
    session: Session,
    items: Sequence[tuple[str, int]],
    *,
    channel: str | None = None,
    locations: Sequence[str] | None = None,
    strategy: str = SplitStrategy.PREFERRED.value,
    ttl_seconds: int | None = None,
    reference: str | None = None,
    kind: str = "cart",
    now: datetime | None = None,
) -> ReservationView:
    """Hold stock for a cart or an order line until a deadline (channel TTL by default).

    Each item may be split across several locations: ``preferred`` fills from the first of
    ``locations`` then the next; ``any`` takes a single location that can fill it, else the
    fewest. Without ``locations`` the channel's sourcing locations are used. All or nothing:
    when any item is short the call fails with 409 ``insufficient_stock`` and changes nothing.
    """
    at = _now(now)
    merged, split = _reserve_arguments(items, strategy, kind, ttl_seconds)

    def attempt(mode: str) -> ReservationView:
        ctx, candidates = _reservation_candidates(session, channel, locations)
        ttl = ttl_seconds if ttl_seconds is not None else ctx.ttl_seconds
        if mode == "guess" and not candidates:
            mode = "read"
        return _reserve_once(
            session, merged, ctx, candidates, split, at, ttl, reference, kind, mode
        )

    modes = ["read", "locked"]
    if session.get_bind().dialect.name == "postgresql":
        modes.insert(0, "guess")
    for mode in modes[:-1]:
        try:
            return atomic(session, lambda: attempt(mode))  # noqa: B023 (called at once)
        except _Retry:
            continue
    return atomic(session, lambda: attempt(modes[-1]))


def _reserve_arguments(
    items: Sequence[tuple[str, int]], strategy: str, kind: str, ttl_seconds: int | None
) -> tuple[dict[str, int], SplitStrategy]:
    merged = _merge_lines(items)
    try:
        split = SplitStrategy(strategy)
    except ValueError:
        raise invalid(
            "invalid_strategy",
            f"unknown strategy {strategy!r}",
            allowed=[s.value for s in SplitStrategy],
        ) from None
    if kind not in ("cart", "order"):
        raise invalid("invalid_kind", "kind is 'cart' or 'order'", kind=kind)
    if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise invalid(
            "invalid_ttl",
            f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}",
            ttl_seconds=ttl_seconds,
        )
    return merged, split


def reserve_standalone(
    db: Database,
    items: Sequence[tuple[str, int]],
    *,
    channel: str | None = None,
    locations: Sequence[str] | None = None,
    strategy: str = SplitStrategy.PREFERRED.value,
    ttl_seconds: int | None = None,
    reference: str | None = None,
    kind: str = "cart",
    now: datetime | None = None,
) -> ReservationView:
    """:func:`reserve` as a unit of work of its own (a hold with nothing else to commit with
    it, as ``POST /reservations`` without an Idempotency-Key), same arguments, same result.

    On PostgreSQL a one-line hold is one statement that either writes everything (the stock
    row, the reservation, its line and the ledger row) or nothing, so it runs without an
    explicit transaction: one round trip instead of three (BEGIN, the statement, COMMIT).
    When that statement cannot place the hold (short, contended, unknown location), or on
    SQLite, or for several lines, it runs :func:`reserve` in a unit of work, which says
    exactly what is wrong or takes the slower exact path."""
    at = _now(now)
    merged, split = _reserve_arguments(items, strategy, kind, ttl_seconds)
    if db.dialect == "postgresql" and len(merged) == 1:
        with db.statement_connection() as conn:
            if channel is None and locations:  # nothing to read first
                ctx, candidates = _explicit_candidates(locations)
            else:
                with Session(bind=conn) as session:
                    ctx, candidates = _reservation_candidates(session, channel, locations)
            if candidates:
                ttl = ttl_seconds if ttl_seconds is not None else ctx.ttl_seconds
                view = _guess(
                    conn, merged, ctx, candidates, split, at, ttl, reference, kind, driver=True
                )
                if view is not None:
                    return view
    with db.unit_of_work() as session:
        return reserve(
            session,
            items,
            channel=channel,
            locations=locations,
            strategy=strategy,
            ttl_seconds=ttl_seconds,
            reference=reference,
            kind=kind,
            now=at,
        )


def _explicit_candidates(locations: Sequence[str]) -> tuple[ChannelContext, list[str]]:
    ids = list(dict.fromkeys(locations))
    return ChannelContext(None, None, 0, DEFAULT_CART_TTL_SECONDS, tuple(ids)), ids


def _reservation_candidates(
    session: Session, channel: str | None, locations: Sequence[str] | None
) -> tuple[ChannelContext, list[str]]:
    """The channel context and the candidate locations in preference order. Explicit
    locations without a channel are checked later, with the stock read (no extra query)."""
    if channel is None and locations:
        return _explicit_candidates(locations)
    ctx = channel_context(session, channel)
    if not locations:
        return ctx, list(ctx.location_ids)
    ids = list(dict.fromkeys(locations))
    feeding = set(ctx.location_ids)
    outside = [i for i in ids if i not in feeding]
    if outside:
        _require_locations(session, outside)  # unknown or inactive: 404 / 409
        raise invalid(
            "location_not_sourced",
            f"location does not feed channel {ctx.channel_code!r}: {', '.join(outside)}",
            locations=outside,
        )
    return ctx, ids


def _reserve_once(
    session: Session,
    items: dict[str, int],
    ctx: ChannelContext,
    candidates: list[str],
    split: SplitStrategy,
    now: datetime,
    ttl: int,
    reference: str | None,
    kind: str,
    mode: str,
) -> ReservationView:
    """One attempt. ``guess`` (PostgreSQL): one candidate location (the first; for ``any``
    a random one) fills every item, in one statement without a read; ``read``: read, plan,
    conditional updates; ``locked``: lock the rows and reclaim their expired holds first,
    then read and plan (exact)."""
    if mode == "guess":
        view = _guess(
            session.connection(), items, ctx, candidates, split, now, ttl, reference, kind
        )
        if view is None:
            raise _Retry()
        return view
    reservation_id = new_id("rsv")
    expires_at = now + timedelta(seconds=ttl)
    header = _hold_header(reservation_id, ctx, kind, reference, expires_at, now)
    pessimistic = mode == "locked"
    if pessimistic:
        ids = _stock_ids(session, [(sku, loc) for sku in items for loc in candidates])
        reclaim_expired(session, ids.values(), now)  # locks them in id order, frees expired
    rows = (
        list(session.execute(_RESERVE_READ, {"skus": list(items), "locs": candidates, "now": now}))
        if candidates
        else []
    )
    by_key = {(r.sku, r.location_id): r for r in rows}
    without_rows = set(candidates) - {r.location_id for r in rows}
    if without_rows:
        _require_locations(session, sorted(without_rows))  # unknown or inactive: 404 / 409
    unknown = [sku for sku in items if not any(r.sku == sku for r in rows)]
    if unknown:
        catalog.require_variants(session, unknown)  # 404 for SKUs the catalog does not know
    plan: list[tuple[str, str, int, int]] = []  # (sku, location, quantity, stock id)
    for sku, quantity in items.items():
        free = []
        for loc in candidates:
            r = by_key.get((sku, loc))
            if r is not None:
                free.append(
                    (loc, r.on_hand - r.allocated - r.live_held - r.safety_stock - ctx.buffer)
                )
        chosen = plan_split(quantity, free, split)
        if chosen is None:
            raise insufficient(sku, quantity, sum(max(0, n) for _, n in free))
        plan += [(sku, loc, q, by_key[(sku, loc)].id) for loc, q in chosen]
    if not pessimistic and session.get_bind().dialect.name == "postgresql":
        keyed = [(sku, loc, q) for sku, loc, q, _ in plan]
        if not _hold_in_one_statement(session.connection(), keyed, candidates, header):
            raise _Retry()
    else:
        _hold_step_by_step(session, plan, header, pessimistic)
    return _view(
        reservation_id,
        ctx,
        reference,
        kind,
        now,
        expires_at,
        [(sku, loc, q) for sku, loc, q, _ in plan],
    )


def _hold_header(
    reservation_id: str,
    ctx: ChannelContext,
    kind: str,
    reference: str | None,
    expires_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The parameters of the hold statements that describe the reservation itself."""
    return {
        "rid": reservation_id,
        "channel_id": ctx.channel_id,
        "kind": kind,
        "reference": reference,
        "expires_at": expires_at,
        "now": now,
        "buffer": ctx.buffer,
    }


def _guess(
    connection: Connection,
    items: dict[str, int],
    ctx: ChannelContext,
    candidates: list[str],
    split: SplitStrategy,
    now: datetime,
    ttl: int,
    reference: str | None,
    kind: str,
    driver: bool = False,
) -> ReservationView | None:
    """The ``guess`` attempt (PostgreSQL): one candidate location fills every item, in one
    statement without a read; None when it cannot (nothing of a one-line hold was written
    then; a hold of several lines may have updated rows, which the caller rolls back).
    ``driver``: send the statement through the driver itself (see :func:`_first_value`)."""
    reservation_id = new_id("rsv")
    expires_at = now + timedelta(seconds=ttl)
    header = _hold_header(reservation_id, ctx, kind, reference, expires_at, now)
    # "any of these": the caller does not mind which location fills a line, so start at a
    # random candidate to spread a hot SKU over its locations instead of one locked row.
    first = (
        candidates[random.randrange(len(candidates))]
        if split is SplitStrategy.ANY
        else candidates[0]
    )
    if split is SplitStrategy.ANY and len(items) == 1 and len(candidates) > 1:
        ((sku, q),) = items.items()
        where = _hold_any_in_one_statement(
            connection, sku, q, first, candidates, header, driver=driver
        )
        if where is None:
            return None
        return _view(reservation_id, ctx, reference, kind, now, expires_at, [(sku, where, q)])
    guess = [(sku, first, q) for sku, q in items.items()]
    if not _hold_in_one_statement(connection, guess, candidates, header, driver=driver):
        return None
    return _view(reservation_id, ctx, reference, kind, now, expires_at, guess)


def _view(
    reservation_id: str,
    ctx: ChannelContext,
    reference: str | None,
    kind: str,
    now: datetime,
    expires_at: datetime,
    plan: Sequence[tuple[str, str, int]],
) -> ReservationView:
    return ReservationView(
        id=reservation_id,
        status=ReservationStatus.ACTIVE.value,
        kind=kind,
        channel_id=ctx.channel_id,
        reference=reference,
        order_reference=None,
        expires_at=expires_at,
        created_at=now,
        lines=[ReservationLineView(sku, loc, q, LineStatus.HELD.value) for sku, loc, q in plan],
    )


_HOLD_PG = text(
    """
    WITH plan AS (
        SELECT * FROM unnest(CAST(:skus AS varchar[]), CAST(:locs AS varchar[]),
                             CAST(:qtys AS integer[])) AS p(sku, loc, qty)
    ),
    locked AS MATERIALIZED (
        SELECT s.id, plan.qty FROM stock_levels AS s
        JOIN plan ON s.sku = plan.sku AND s.location_id = plan.loc
        ORDER BY s.id FOR NO KEY UPDATE OF s
    ),
    upd AS (
        UPDATE stock_levels AS s SET held = s.held + locked.qty, updated_at = :now
        FROM locked
        WHERE s.id = locked.id
          AND s.on_hand - s.allocated - s.held - s.safety_stock >= locked.qty + :buffer
        RETURNING s.id, s.sku, s.location_id, locked.qty
    ),
    ok AS (
        SELECT (SELECT count(*) FROM upd) = :n
           AND (SELECT count(*) FROM locations
                WHERE id = ANY(CAST(:candidates AS varchar[])) AND active) = :n_candidates
           AS ok
    ),
    hdr AS (
        INSERT INTO reservations (id, channel_id, kind, reference, order_reference, status,
                                  expires_at, created_at, updated_at)
        SELECT :rid, :channel_id, :kind, :reference, NULL, 'active', :expires_at, :now, :now
        FROM ok WHERE ok.ok
        RETURNING id
    ),
    lns AS (
        INSERT INTO reservation_lines (reservation_id, stock_id, sku, location_id, quantity,
                                       status, expires_at)
        SELECT hdr.id, upd.id, upd.sku, upd.location_id, upd.qty, 'held', :expires_at
        FROM upd, hdr
    ),
    led AS (
        INSERT INTO stock_ledger (stock_id, sku, location_id, reason, on_hand_delta,
                                  allocated_delta, held_delta, safety_delta, incoming_delta,
                                  reference, note, created_at)
        SELECT upd.id, upd.sku, upd.location_id, 'reservation', 0, 0, upd.qty, 0, 0, hdr.id,
               NULL, :now
        FROM upd, hdr
    )
    SELECT ok FROM ok
    """
)


# One line (the usual cart hold): a single conditional UPDATE of one row needs no lock
# ordering, so no locking CTE and no arrays. The candidate check is part of the UPDATE's WHERE,
# so when anything is wrong nothing at all is written (no partial update to roll back).
_HOLD_ONE_PG = text(
    """
    WITH upd AS (
        UPDATE stock_levels AS s SET held = s.held + :qty, updated_at = :now
        WHERE s.sku = :sku AND s.location_id = :loc
          AND s.on_hand - s.allocated - s.held - s.safety_stock >= :qty + :buffer
          AND (SELECT count(*) FROM locations
               WHERE id = ANY(CAST(:candidates AS varchar[])) AND active) = :n_candidates
        RETURNING s.id
    ),
    hdr AS (
        INSERT INTO reservations (id, channel_id, kind, reference, order_reference, status,
                                  expires_at, created_at, updated_at)
        SELECT :rid, :channel_id, :kind, :reference, NULL, 'active', :expires_at, :now, :now
        FROM upd
    ),
    lns AS (
        INSERT INTO reservation_lines (reservation_id, stock_id, sku, location_id, quantity,
                                       status, expires_at)
        SELECT :rid, upd.id, :sku, :loc, :qty, 'held', :expires_at FROM upd
    ),
    led AS (
        INSERT INTO stock_ledger (stock_id, sku, location_id, reason, on_hand_delta,
                                  allocated_delta, held_delta, safety_delta, incoming_delta,
                                  reference, note, created_at)
        SELECT upd.id, :sku, :loc, 'reservation', 0, 0, :qty, 0, 0, :rid, NULL, :now FROM upd
    )
    SELECT count(*) FROM upd
    """
)


# One line, "any of these" locations: take a random candidate row that nobody holds locked and
# that can fill the line (SKIP LOCKED), so that concurrent holds of a hot SKU go to different
# rows instead of queueing on one; only when every such row is locked does it wait, on the
# random candidate ``:loc``. The UPDATE re-checks the floor on the row it locked, as always.
_HOLD_ANY_PG = text(
    """
    WITH pick AS (
        SELECT s.id FROM stock_levels AS s
        WHERE s.sku = :sku AND s.location_id = ANY(CAST(:candidates AS varchar[]))
          AND s.on_hand - s.allocated - s.held - s.safety_stock >= :qty + :buffer
        ORDER BY random() LIMIT 1
        FOR NO KEY UPDATE SKIP LOCKED
    ),
    upd AS (
        UPDATE stock_levels AS s SET held = s.held + :qty, updated_at = :now
        WHERE s.id = coalesce((SELECT id FROM pick),
                              (SELECT id FROM stock_levels WHERE sku = :sku AND location_id = :loc))
          AND s.on_hand - s.allocated - s.held - s.safety_stock >= :qty + :buffer
          AND (SELECT count(*) FROM locations
               WHERE id = ANY(CAST(:candidates AS varchar[])) AND active) = :n_candidates
        RETURNING s.id, s.location_id
    ),
    hdr AS (
        INSERT INTO reservations (id, channel_id, kind, reference, order_reference, status,
                                  expires_at, created_at, updated_at)
        SELECT :rid, :channel_id, :kind, :reference, NULL, 'active', :expires_at, :now, :now
        FROM upd
    ),
    lns AS (
        INSERT INTO reservation_lines (reservation_id, stock_id, sku, location_id, quantity,
                                       status, expires_at)
        SELECT :rid, upd.id, :sku, upd.location_id, :qty, 'held', :expires_at FROM upd
    ),
    led AS (
        INSERT INTO stock_ledger (stock_id, sku, location_id, reason, on_hand_delta,
                                  allocated_delta, held_delta, safety_delta, incoming_delta,
                                  reference, note, created_at)
        SELECT upd.id, :sku, upd.location_id, 'reservation', 0, 0, :qty, 0, 0, :rid, NULL, :now
        FROM upd
    )
    SELECT location_id FROM upd
    """
)


def _hold_any_in_one_statement(
    connection: Connection,
    sku: str,
    quantity: int,
    fallback: str,
    candidates: Sequence[str],
    header: dict[str, Any],
    driver: bool = False,
) -> str | None:
    """PostgreSQL, one line, any candidate: hold it at an unlocked candidate row that can
    fill it (or wait for ``fallback``'s row), in one statement that writes nothing when it
    fails. Returns the location, or None (then the slower path says what is wrong).
    ``driver``: send it through the driver itself (see :func:`_first_value`)."""
    params = {
        **header,
        "sku": sku,
        "qty": quantity,
        "loc": fallback,
        "candidates": list(candidates),
        "n_candidates": len(set(candidates)),
    }
    return cast("str | None", _first_value(connection, _HOLD_ANY_PG, params, driver))


def _hold_in_one_statement(
    connection: Connection,
    plan: Sequence[tuple[str, str, int]],
    candidates: Sequence[str],
    header: dict[str, Any],
    driver: bool = False,
) -> bool:
    """PostgreSQL: lock the plan's rows in id order, apply the conditional updates and write
    the reservation, its lines and the ledger rows in one statement, so a hot row stays locked
    only for this statement and the commit. False when a row is missing or short or a
    candidate location is unknown or inactive; the caller then rolls back (some rows may have
    been updated) and takes the slower path that says exactly what is wrong.

    The statement goes straight to the session's connection (Core): it is the whole work of
    the usual reservation, and the ORM's execution layer has nothing to add to it."""
    if len(plan) == 1:
        ((sku, loc, qty),) = plan
        one = {
            **header,
            "sku": sku,
            "loc": loc,
            "qty": qty,
            "candidates": list(candidates),
            "n_candidates": len(set(candidates)),
        }
        return bool(_first_value(connection, _HOLD_ONE_PG, one, driver))
    params = {
        **header,
        "skus": [sku for sku, _, _ in plan],
        "locs": [loc for _, loc, _ in plan],
        "qtys": [q for _, _, q in plan],
        "n": len(plan),
        "candidates": list(candidates),
        "n_candidates": len(set(candidates)),
    }
    return bool(_first_value(connection, _HOLD_PG, params, driver))


# The hold statements in the driver's own parameter style (``%(name)s``).
_DRIVER_SQL = {
    statement: re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", statement.text)
    for statement in (_HOLD_PG, _HOLD_ONE_PG, _HOLD_ANY_PG)
}
assert not any("%" in sql.replace("%(", "") for sql in _DRIVER_SQL.values())


def _first_value(
    connection: Connection, statement: Any, params: dict[str, Any], driver: bool
) -> Any:
    """The first column of the first row (None without a row). ``driver``: execute on the
    DB-API connection itself, without SQLAlchemy's execution layer (about a third of the
    client's CPU for a one-statement hold); for the autocommit path, which no statement
    listener needs to see."""
    if not driver:
        return connection.execute(statement, params).scalar()
    dbapi = connection.connection.driver_connection
    assert dbapi is not None
    row = dbapi.execute(_DRIVER_SQL[statement], params).fetchone()
    return None if row is None else row[0]


def _hold_step_by_step(
    session: Session,
    plan: list[tuple[str, str, int, int]],
    header: dict[str, Any],
    pessimistic: bool,
) -> None:
    """Any database: conditional updates in id order, then the reservation rows."""
    changes = [
        Change(
            sid,
            Reason.RESERVATION,
            held=q,
            floor=Floor.ATP,
            buffer=header["buffer"],
            reference=header["rid"],
        )
        for _, _, q, sid in plan
    ]
    try:
        apply_changes(session, changes, header["now"], reclaim=False)
    except Short as short:
        if not pessimistic:
            raise _Retry() from None
        # Rows are locked and expired holds reclaimed: the read above is exact. Defensive.
        raise insufficient(short.row.sku if short.row else "?", 0, short.available()) from None
    session.execute(
        insert(RESERVATIONS),
        {
            "id": header["rid"],
            "channel_id": header["channel_id"],
            "kind": header["kind"],
            "reference": header["reference"],
            "order_reference": None,
            "status": ReservationStatus.ACTIVE.value,
            "expires_at": header["expires_at"],
            "created_at": header["now"],
            "updated_at": header["now"],
        },
    )
    session.execute(
        insert(LINES),
        [
            {
                "reservation_id": header["rid"],
                "stock_id": sid,
                "sku": sku,
                "location_id": loc,
                "quantity": q,
                "status": LineStatus.HELD.value,
                "expires_at": header["expires_at"],
            }
            for sku, loc, q, sid in plan
        ],
    )


def _load_for_change(
    session: Session, reservation_id: str, line_status: LineStatus
) -> tuple[Any, list[Any]]:
    header = session.execute(
        select(RESERVATIONS).where(RESERVATIONS.c.id == reservation_id)
    ).first()
    if header is None:
        raise not_found("reservation", reservation_id)
    lines = session.execute(
        select(L.id, L.stock_id, L.sku, L.location_id, L.quantity).where(
            L.reservation_id == reservation_id, L.status == line_status.value
        )
    ).all()
    return header, list(lines)


def _transition_lines(
    session: Session,
    reservation_id: str,
    from_status: LineStatus,
    to_status: LineStatus,
    extra_where: ColumnElement[bool] | None = None,
    **values: Any,
) -> list[Any]:
    """Move lines from one status to another (stock rows must already be locked)."""
    stmt = update(LINES).where(L.reservation_id == reservation_id, L.status == from_status.value)
    if extra_where is not None:
        stmt = stmt.where(extra_where)
    return list(
        session.execute(
            stmt.values(status=to_status.value, **values).returning(L.id, L.stock_id, L.quantity)
        ).all()
    )


def _set_header(session: Session, reservation_id: str, now: datetime, **values: Any) -> None:
    session.execute(
        update(RESERVATIONS)
        .where(RESERVATIONS.c.id == reservation_id)
        .values(updated_at=now, **values)
    )


def _not_active(view_status: str, reservation_id: str, action: str) -> AppError:
    code = (
        "reservation_expired"
        if view_status == ReservationStatus.EXPIRED.value
        else ("reservation_not_active")
    )
    return conflict(
        code,
        f"reservation {reservation_id} is {view_status}; cannot {action}",
        reservation_id=reservation_id,
        status=view_status,
    )


def extend_reservation(
    session: Session,
    reservation_id: str,
    *,
    ttl_seconds: int | None = None,
    now: datetime | None = None,
) -> ReservationView:
    """Push a live hold's deadline to now + TTL (the channel's TTL by default). An expired hold
    cannot be extended: reserve again."""
    at = _now(now)
    if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise invalid("invalid_ttl", f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")

    def run() -> ReservationView:
        header, lines = _load_for_change(session, reservation_id, LineStatus.HELD)
        status = _effective_status(header.status, _aware(header.expires_at), at)
        if status != ReservationStatus.ACTIVE.value:
            raise _not_active(status, reservation_id, "extend")
        ttl = ttl_seconds
        if ttl is None:
            ttl = (
                channel_context(session, header.channel_id).ttl_seconds
                if header.channel_id
                else DEFAULT_CART_TTL_SECONDS
            )
        expires_at = at + timedelta(seconds=ttl)
        _lock_stock(session, (line.stock_id for line in lines))
        moved = session.execute(
            update(LINES)
            .where(
                L.reservation_id == reservation_id,
                L.status == LineStatus.HELD.value,
                L.expires_at > at,
            )
            .values(expires_at=expires_at)
            .returning(L.id)
        ).all()
        if len(moved) != len(lines):
            raise _not_active(ReservationStatus.EXPIRED.value, reservation_id, "extend")
        _set_header(session, reservation_id, at, expires_at=expires_at)
        return get_reservation(session, reservation_id, at)

    return atomic(session, run)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def release_reservation(
    session: Session, reservation_id: str, *, now: datetime | None = None
) -> ReservationView:
    """Give the units back: a hold (live or expired) or an allocation. Releasing a released or
    expired reservation changes nothing; a fulfilled one is a 409."""
    at = _now(now)

    def run() -> ReservationView:
        header, lines = _read_reservation(session, reservation_id)
        if header.status in (ReservationStatus.RELEASED.value, ReservationStatus.EXPIRED.value):
            return _view_of(header, lines, at)
        if header.status == ReservationStatus.FULFILLED.value:
            raise _not_active(header.status, reservation_id, "release")
        held = header.status == ReservationStatus.ACTIVE.value
        line_status = LineStatus.HELD if held else LineStatus.ALLOCATED
        moved = _transition_lines(session, reservation_id, line_status, LineStatus.RELEASED)
        _apply_unconditional(
            session,
            [
                Change(
                    stock_id,
                    Reason.RELEASE,
                    held=-q if held else 0,
                    allocated=0 if held else -q,
                    reference=reservation_id,
                )
                for _, stock_id, q in moved
            ],
            at,
        )
        values = {"status": ReservationStatus.RELEASED.value}
        _set_header(session, reservation_id, at, **values)
        return _view_after(
            session, header, lines, at, line_status, moved, LineStatus.RELEASED, **values
        )

    return atomic(session, run)


# The header and every line of a reservation in one statement. The lines' stock rows are
# locked in id order on PostgreSQL (stock rows before lines and header: the lock order).
_RESERVATION_READ = (
    select(
        RESERVATIONS.c.id,
        RESERVATIONS.c.status,
        RESERVATIONS.c.kind,
        RESERVATIONS.c.channel_id,
        RESERVATIONS.c.reference,
        RESERVATIONS.c.order_reference,
        RESERVATIONS.c.expires_at,
        RESERVATIONS.c.created_at,
        L.id.label("line_id"),
        L.stock_id,
        L.sku,
        L.location_id,
        L.quantity,
        L.status.label("line_status"),
        L.expires_at.label("line_expires_at"),
    )
    .select_from(
        LINES.join(RESERVATIONS, RESERVATIONS.c.id == L.reservation_id).join(
            STOCK, S.id == L.stock_id
        )
    )
    .where(L.reservation_id == bindparam("rid"))
    .order_by(S.id, L.id)
    .with_for_update(of=STOCK, key_share=True)
)


def _read_reservation(session: Session, reservation_id: str) -> tuple[Any, list[Any]]:
    """The header (404 if unknown) and all its lines in id order, in one statement that also
    locks their stock rows (PostgreSQL). The lines may be older than the locks: writers move
    them with a conditional update afterwards and use what that update returns."""
    rows = session.execute(_RESERVATION_READ, {"rid": reservation_id}).all()
    if not rows:  # every reservation has lines
        raise not_found("reservation", reservation_id)
    return rows[0], sorted(rows, key=lambda r: r.line_id)


def _view_of(
    header: Any,
    lines: Sequence[Any],
    now: datetime,
    moved_ids: set[int] | frozenset[int] = frozenset(),
    to_status: LineStatus | None = None,
    **values: Any,
) -> ReservationView:
    """The view of a reservation read with :func:`_read_reservation`, after moving the lines
    ``moved_ids`` to ``to_status`` and setting the header ``values`` (no second read)."""
    status = values.get("status", header.status)
    expires_at = values.get("expires_at", header.expires_at)
    expires_at = as_utc(expires_at) if expires_at is not None else None
    return ReservationView(
        id=header.id,
        status=_effective_status(status, expires_at, now),
        kind=header.kind,
        channel_id=header.channel_id,
        reference=header.reference,
        order_reference=values.get("order_reference", header.order_reference),
        expires_at=expires_at,
        created_at=as_utc(header.created_at),
        lines=[
            ReservationLineView(
                line.sku,
                line.location_id,
                line.quantity,
                to_status.value
                if to_status is not None and line.line_id in moved_ids
                else line.line_status,
            )
            for line in lines
        ],
    )


def _view_after(
    session: Session,
    header: Any,
    lines: Sequence[Any],
    now: datetime,
    from_status: LineStatus,
    moved: Sequence[Any],
    to_status: LineStatus,
    **values: Any,
) -> ReservationView:
    """The view after a transition: built from the read when the update moved exactly the
    lines read in ``from_status`` (the usual case), else read again."""
    moved_ids = {m.id for m in moved}
    if moved_ids == {line.line_id for line in lines if line.line_status == from_status.value}:
        return _view_of(header, lines, now, moved_ids, to_status, **values)
    return get_reservation(session, header.id, now)


def _emit_stock_levels(session: Session, row: Any, before: int, after: int) -> None:
    """Low-stock, out-of-stock and back-in-stock events of one stock row whose sellable
    quantity went from ``before`` to ``after``."""
    for ev in stock_level_events(before, after, row.low_stock_threshold):
        emit(
            session,
            ev.topic,
            {
                "sku": row.sku,
                "variant_id": row.variant_id,
                "location_id": row.location_id,
                "available": ev.available,
                "low_stock_threshold": row.low_stock_threshold,
            },
            aggregate_id=row.sku,
        )


def _apply_unconditional(
    session: Session, changes: Sequence[Change], now: datetime
) -> dict[int, Any]:
    """Changes without a floor (releases, allocations, sales of allocated units) to several
    stock rows in one ``UPDATE`` (the counters' check constraints still hold; the rows must
    already be locked), their ledger rows in one insert, and the stock-level events, exactly
    as :func:`apply_changes` would write them. Returns the rows after the changes."""
    if not changes:
        return {}
    ordered = sorted(changes, key=lambda ch: ch.stock_id)
    totals: dict[int, list[int]] = {}
    for c in ordered:
        if c.floor is not None or c.safety or c.incoming:
            raise ValueError("only unconditional on-hand, allocated and held changes")
        t = totals.setdefault(c.stock_id, [0, 0, 0])
        t[0] += c.on_hand
        t[1] += c.allocated
        t[2] += c.held
    ids = sorted(totals)
    values: dict[str, Any] = {"updated_at": now}
    for n, column in enumerate(("on_hand", "allocated", "held")):
        deltas = {i: totals[i][n] for i in ids if totals[i][n]}
        if deltas:
            values[column] = STOCK.c[column] + case(deltas, value=S.id, else_=0)
    rows = session.execute(
        update(STOCK).where(S.id.in_(ids)).values(values).returning(*_RETURNING)
    ).all()
    after = {row.id: row for row in rows}
    session.execute(
        insert(LEDGER),
        [
            {
                "stock_id": c.stock_id,
                "sku": after[c.stock_id].sku,
                "location_id": after[c.stock_id].location_id,
                "reason": c.reason.value,
                "on_hand_delta": c.on_hand,
                "allocated_delta": c.allocated,
                "held_delta": c.held,
                "safety_delta": 0,
                "incoming_delta": 0,
                "reference": c.reference,
                "note": c.note,
                "created_at": now,
            }
            for c in ordered
        ],
    )
    # Stock-level events per change, as if the changes ran one after the other in id order.
    sellable = {
        i: r.on_hand - r.allocated - r.safety_stock - (totals[i][0] - totals[i][1])
        for i, r in after.items()
    }
    for c in ordered:
        delta = c.on_hand - c.allocated
        if not delta:
            continue
        row = after[c.stock_id]
        before = sellable[c.stock_id]
        sellable[c.stock_id] = before + delta
        _emit_stock_levels(session, row, before, before + delta)
    return after


def allocate_reservation(
    session: Session,
    reservation_id: str,
    *,
    order_reference: str | None = None,
    now: datetime | None = None,
) -> ReservationView:
    """Convert a live hold into an allocation when the order is placed: the units move from
    ``held`` to ``allocated`` and no longer expire. An expired hold is a 409
    ``reservation_expired`` (its units may be someone else's by now).

    Set-based: one read (that locks the stock rows), one update of the lines, one of the
    stock rows, one ledger insert and the header, whatever the number of lines."""
    at = _now(now)

    def run() -> ReservationView:
        header, lines = _read_reservation(session, reservation_id)
        status = _effective_status(header.status, _aware(header.expires_at), at)
        if status == ReservationStatus.ALLOCATED.value:
            return _view_of(header, lines, at)
        if status != ReservationStatus.ACTIVE.value:
            raise _not_active(status, reservation_id, "allocate")
        held = {line.line_id for line in lines if line.line_status == LineStatus.HELD.value}
        moved = _transition_lines(
            session,
            reservation_id,
            LineStatus.HELD,
            LineStatus.ALLOCATED,
            L.expires_at > at,
            expires_at=None,
        )
        # Every line read as held must still be a live hold (one expired, or the reservation
        # was released or swept since the read: the hold is gone).
        if not moved or {m.id for m in moved} != held:
            raise _not_active(ReservationStatus.EXPIRED.value, reservation_id, "allocate")
        _apply_unconditional(
            session,
            [
                Change(stock_id, Reason.ALLOCATION, held=-q, allocated=q, reference=reservation_id)
                for _, stock_id, q in moved
            ],
            at,
        )
        values = {
            "status": ReservationStatus.ALLOCATED.value,
            "expires_at": None,
            "order_reference": order_reference,
        }
        _set_header(session, reservation_id, at, **values)
        return _view_of(header, lines, at, held, LineStatus.ALLOCATED, **values)

    return atomic(session, run)


def fulfill_reservation(
    session: Session, reservation_id: str, *, now: datetime | None = None
) -> ReservationView:
    """The allocated units leave the building (a sale): on hand and allocated go down."""
    at = _now(now)

    def run() -> ReservationView:
        header, lines = _read_reservation(session, reservation_id)
        if header.status == ReservationStatus.FULFILLED.value:
            return _view_of(header, lines, at)
        if header.status != ReservationStatus.ALLOCATED.value:
            status = _effective_status(header.status, _aware(header.expires_at), at)
            raise _not_active(status, reservation_id, "fulfil (allocate it first)")
        moved = _transition_lines(
            session, reservation_id, LineStatus.ALLOCATED, LineStatus.FULFILLED
        )
        _apply_unconditional(
            session,
            [
                Change(stock_id, Reason.SALE, on_hand=-q, allocated=-q, reference=reservation_id)
                for _, stock_id, q in moved
            ],
            at,
        )
        values = {"status": ReservationStatus.FULFILLED.value}
        _set_header(session, reservation_id, at, **values)
        return _view_after(
            session,
            header,
            lines,
            at,
            LineStatus.ALLOCATED,
            moved,
            LineStatus.FULFILLED,
            **values,
        )

    return atomic(session, run)


def expire_reservations(session: Session, *, now: datetime | None = None, limit: int = 1000) -> int:
    """Clean up up to ``limit`` expired hold lines (their units already stopped counting when
    the deadline passed) and mark their reservations expired. Returns lines cleaned."""
    at = _now(now)

    def run() -> int:
        due = (
            session.execute(
                select(L.stock_id)
                .where(L.status == LineStatus.HELD.value, L.expires_at <= at)
                .order_by(L.expires_at)
                .limit(limit)
            )
            .scalars()
            .all()
        )
        if not due:
            return 0
        stock_ids = sorted(set(due))
        before = session.execute(
            select(func.count()).where(
                L.stock_id.in_(stock_ids), L.status == LineStatus.HELD.value, L.expires_at <= at
            )
        ).scalar_one()
        reclaim_expired(session, stock_ids, at)
        session.execute(
            update(RESERVATIONS)
            .where(
                RESERVATIONS.c.status == ReservationStatus.ACTIVE.value,
                RESERVATIONS.c.expires_at <= at,
                ~select(literal(1))
                .where(L.reservation_id == RESERVATIONS.c.id, L.status == LineStatus.HELD.value)
                .exists(),
            )
            .values(status=ReservationStatus.EXPIRED.value, updated_at=at)
        )
        return int(before)

    return atomic(session, run)


# --- availability (ATP) ---------------------------------------------------------------------


@dataclass(frozen=True)
class SkuAvailability:
    sku: str
    available: int
    locations: dict[str, int]  # location id -> units, only locations with units


@dataclass(frozen=True)
class PickupLocation:
    location_id: str
    code: str
    name: str
    type: str
    distance_km: float
    open_now: bool
    available: dict[str, int]


@dataclass(frozen=True)
class Availability:
    channel: str | None
    buffer: int
    items: list[SkuAvailability]
    pickup: list[PickupLocation] | None


def availability(
    session: Session,
    skus: Sequence[str],
    *,
    channel: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    radius_km: float | None = None,
    now: datetime | None = None,
) -> Availability:
    """ATP per SKU for a channel: per sourcing location and in total (minus the channel
    buffer per location, never below zero), plus the pickup-capable locations within
    ``radius_km`` of (``lat``, ``lon``) with their distance and their own ATP."""
    at = _now(now)
    wanted = list(dict.fromkeys(s.strip() for s in skus if s and s.strip()))
    if not wanted:
        raise invalid("skus_required", "give at least one SKU")
    if len(wanted) > MAX_AVAILABILITY_SKUS:
        raise invalid(
            "too_many_skus",
            f"at most {MAX_AVAILABILITY_SKUS} SKUs per call",
            limit=MAX_AVAILABILITY_SKUS,
            given=len(wanted),
        )
    near = lat is not None or lon is not None or radius_km is not None
    if near:
        if lat is None or lon is None:
            raise invalid("invalid_coordinates", "give lat and lon together")
        try:
            check_coordinates(lat, lon)
        except InventoryRuleError as exc:
            raise _rule_error(exc) from None
        radius_km = 25.0 if radius_km is None else radius_km
        if not 0 < radius_km <= 1000:
            raise invalid("invalid_radius", "radius_km must be in (0, 1000]", radius_km=radius_km)
    locations = _locations(session)
    ctx = _channel_context(session, channel, locations)
    pickups: list[tuple[_LocationMeta, float]] = []
    if near:
        assert lat is not None and lon is not None and radius_km is not None
        min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, radius_km)
        wraps = min_lon < -180 or max_lon > 180  # the box wraps around the antimeridian
        for loc in locations.rows:
            if (
                not loc.active
                or "pickup" not in loc.capabilities
                or loc.latitude is None
                or loc.longitude is None
                or not min_lat <= loc.latitude <= max_lat
                or not (wraps or min_lon <= loc.longitude <= max_lon)
            ):
                continue
            d = distance_km(lat, lon, loc.latitude, loc.longitude)
            if d <= radius_km:
                pickups.append((loc, d))
        pickups.sort(key=lambda item: (item[1], item[0].code))
    buffer = ctx.buffer
    postgres = _dialect_name(session) == "postgresql"
    # PostgreSQL: one indexed probe decides whether the expired-holds correction is needed.
    # SQLite corrects in the same statement, from the (few) expired hold lines.
    with_expired = not postgres or session.execute(_ANY_EXPIRED, {"now": at}).first() is not None
    per_sku: dict[str, dict[str, int]] = {}
    if ctx.location_ids:
        per_sku = _positive_atp(
            session,
            "sku",
            wanted,
            list(ctx.location_ids),
            buffer,
            at,
            with_expired,
            every_location=ctx.every_location,
        )
    missing = [sku for sku in wanted if sku not in per_sku]
    if missing:
        catalog.require_variants(session, missing)  # sold out everywhere, or unknown: 404
    items = [
        SkuAvailability(sku, sum(per_sku.get(sku, {}).values()), per_sku.get(sku, {}))
        for sku in wanted
    ]
    pickup_out: list[PickupLocation] | None = None
    if near:
        per_loc: dict[str, dict[str, int]] = {}
        if pickups:
            ids = [loc.id for loc, _ in pickups]
            per_loc = _positive_atp(session, "location", wanted, ids, buffer, at, with_expired)
        pickup_out = [
            PickupLocation(
                location_id=loc.id,
                code=loc.code,
                name=loc.name,
                type=loc.type,
                distance_km=round(d, 3),
                open_now=is_open_at(loc.opening, loc.timezone, at),
                available={sku: per_loc.get(loc.id, {}).get(sku, 0) for sku in wanted},
            )
            for loc, d in pickups
        ]
    return Availability(ctx.channel_code, buffer, items, pickup_out)


def _member(column: Any, name: str, postgres: bool) -> Any:
    """``column`` is one of the list parameter ``name``: an array on PostgreSQL, a JSON array
    on SQLite (``json_each``), so that a list of 100 or 200 values is one bound parameter and
    the statement's text does not depend on its length."""
    if postgres:
        return column == func.any(bindparam(name, type_=ARRAY(String)))
    values = func.json_each(bindparam(name, type_=JSON)).table_valued("value")
    return column.in_(select(values.c.value))


def _atp_query(by: str, postgres: bool, with_expired: bool, every_location: bool = False) -> Any:
    """Positive ATP after the buffer, aggregated in the database into one JSON object per SKU
    ({location: units}) or per location ({sku: units}): no per-row work in Python.

    Expired holds that the sweeper has not cleaned up yet still count in ``held``:
    PostgreSQL subtracts them through a join (only when such holds exist). SQLite, per SKU,
    appends in the same statement (one snapshot) one more JSON object per SKU with the
    corrected ATP of just the rows that have expired holds, found from the (few) expired
    lines through their partial index, and :func:`_positive_atp` lets those override the main
    figures; per location (a handful of pickup locations), each held row probes its own
    expired lines. ``every_location``: the locations feeding the channel are all the
    locations, so the SKUs' rows need no location filter."""
    held: Any = S.held
    source: Any = STOCK
    if with_expired and postgres:
        expired = _expired_holds()
        held = S.held - func.coalesce(expired.c.units, 0)
        source = STOCK.outerjoin(expired, expired.c.stock_id == S.id)
    elif with_expired and by == "location":
        # A few locations (a pickup search): probing each held row's expired lines is cheaper
        # than visiting every expired line.
        lines = LINES.alias("expired_lines")
        units = (
            select(func.coalesce(func.sum(lines.c.quantity), 0))
            .where(
                lines.c.stock_id == S.id,
                lines.c.status == literal_column("'held'"),
                lines.c.expires_at <= bindparam("now"),
            )
            .scalar_subquery()
        )
        held = case((S.held > 0, S.held - units), else_=0)
    value = (S.on_hand - S.allocated - held - S.safety_stock - bindparam("buffer")).label("v")
    # SQLite, many locations: walk each SKU's index range and filter the locations instead of
    # one index probe per (SKU, location) pair (``|| ''`` keeps the planner off the column).
    location = S.location_id if postgres or by != "sku" else S.location_id.op("||")(literal(""))
    where = [_member(S.sku, "skus", postgres)]
    if not (every_location and by == "sku" and not postgres):
        where.append(_member(location, "locs", postgres))
    inner = select(S.sku, S.location_id, value).select_from(source).where(*where).subquery("atp")
    group, key = (
        (inner.c.sku, inner.c.location_id) if by == "sku" else (inner.c.location_id, inner.c.sku)
    )
    agg = func.json_object_agg if postgres else func.json_group_object
    main = select(literal(0).label("fix"), group.label("k"), agg(key, inner.c.v).label("o"))
    main = main.where(inner.c.v > 0).group_by(group)
    if postgres or not with_expired or by == "location":
        return main
    # Only the expired lines, from the partial index on the deadline of held lines, however
    # many live holds there are: 'held' as a literal so that the index qualifies, and the
    # grouping on ``stock_id + 0`` so that the planner does not walk every held line in the
    # other index's stock order instead.
    stock_id = (L.stock_id + 0).label("stock_id")
    expired = (
        select(stock_id, func.sum(L.quantity).label("units"))
        .where(L.status == literal_column("'held'"), L.expires_at <= bindparam("now"))
        .group_by(stock_id)
        .subquery("expired")
    )
    fixed = (
        S.on_hand - S.allocated - (S.held - expired.c.units) - S.safety_stock - bindparam("buffer")
    )
    fix_where = [_member(S.sku, "skus", postgres)]
    if not every_location:
        fix_where.append(_member(S.location_id, "locs", postgres))
    fixes = (
        select(literal(1), S.sku, func.json_group_object(S.location_id, fixed))
        .select_from(expired.join(STOCK, S.id == expired.c.stock_id))
        .where(*fix_where)
        .group_by(S.sku)
    )
    return main.union_all(fixes)


_ATP_QUERIES = {
    (by, pg, exp, every): _atp_query(by, pg, exp, every)
    for by in ("sku", "location")
    for pg in (True, False)
    for exp in (True, False)
    for every in (True, False)
}
_ANY_EXPIRED = (
    select(L.id).where(L.status == LineStatus.HELD.value, L.expires_at <= bindparam("now")).limit(1)
)


def _positive_atp(
    session: Session,
    by: str,
    skus: list[str],
    location_ids: list[str],
    buffer: int,
    now: datetime,
    with_expired: bool,
    every_location: bool = False,
) -> dict[str, dict[str, int]]:
    postgres = _dialect_name(session) == "postgresql"
    every = every_location and by == "sku" and not postgres
    params: dict[str, Any] = {"skus": skus, "buffer": buffer, "now": now}
    if not every:
        params["locs"] = location_ids
    # Core on the session's connection: a read with nothing for the ORM to do.
    query = _ATP_QUERIES[(by, postgres, with_expired, every)]
    rows = session.connection().execute(query, params).all()
    if postgres:  # psycopg decodes JSON itself
        return {k: v for fix, k, v in rows if not fix}
    # One decode of all the objects (the JSON decoder shares the repeated keys); the main
    # objects come first, then the corrections for rows with expired holds.
    rows = sorted(rows, key=lambda row: row[0])
    decoded = orjson.loads("[" + ",".join(v for _, _, v in rows) + "]")
    out: dict[str, dict[str, int]] = {}
    for (fix, k, _), obj in zip(rows, decoded, strict=True):
        if not fix:
            out[k] = obj
            continue
        # A row with expired holds: its corrected figure replaces the main one.
        target = out.setdefault(k, {})
        for inner_key, units in obj.items():
            if units > 0:
                target[inner_key] = units
            else:
                target.pop(inner_key, None)
        if not target:
            del out[k]
    return out


# --- transfers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferLineView:
    sku: str
    quantity_shipped: int
    quantity_received: int | None
    discrepancy: int | None


@dataclass(frozen=True)
class TransferView:
    id: str
    from_location_id: str
    to_location_id: str
    status: str
    reference: str | None
    created_at: datetime
    received_at: datetime | None
    lines: list[TransferLineView]


def get_transfer(session: Session, transfer_id: str) -> TransferView:
    transfer = session.get(Transfer, transfer_id)
    if transfer is None:
        raise not_found("transfer", transfer_id)
    lines = session.scalars(
        select(TransferLine)
        .where(TransferLine.transfer_id == transfer_id)
        .order_by(TransferLine.id)
    ).all()
    return TransferView(
        id=transfer.id,
        from_location_id=transfer.from_location_id,
        to_location_id=transfer.to_location_id,
        status=transfer.status,
        reference=transfer.reference,
        created_at=as_utc(transfer.created_at),
        received_at=_aware(transfer.received_at),
        lines=[
            TransferLineView(
                line.sku,
                line.quantity_shipped,
                line.quantity_received,
                None
                if line.quantity_received is None
                else line.quantity_shipped - line.quantity_received,
            )
            for line in lines
        ],
    )


def create_transfer(
    session: Session,
    *,
    from_location_id: str,
    to_location_id: str,
    lines: Sequence[tuple[str, int]],
    reference: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> TransferView:
    """Ship units from one location to another: they leave the source's on hand now (only
    unreserved units may go) and show as incoming at the destination until received."""
    if from_location_id == to_location_id:
        raise invalid("same_location", "a transfer needs two different locations")
    at = _now(now)
    merged = _merge_lines(lines)

    def run() -> TransferView:
        _require_locations(session, [from_location_id, to_location_id])
        facts = catalog.require_variants(session, merged)
        ids = _ensure_stock_rows(
            session,
            (
                (sku, facts[sku].variant_id, loc)
                for sku in merged
                for loc in (from_location_id, to_location_id)
            ),
            at,
        )
        transfer_id = new_id("trf")
        changes: list[Change] = []
        for sku, qty in merged.items():
            changes.append(
                Change(
                    ids[(sku, from_location_id)],
                    Reason.TRANSFER_OUT,
                    on_hand=-qty,
                    floor=Floor.UNRESERVED,
                    reference=transfer_id,
                    note=note,
                )
            )
            changes.append(
                Change(
                    ids[(sku, to_location_id)],
                    Reason.TRANSFER_IN,
                    incoming=qty,
                    reference=transfer_id,
                    note="in transit",
                )
            )
        _apply_or_409(session, changes, at)
        session.add(
            Transfer(
                id=transfer_id,
                from_location_id=from_location_id,
                to_location_id=to_location_id,
                status=TransferStatus.IN_TRANSIT.value,
                reference=reference,
                note=note,
                created_at=at,
            )
        )
        session.flush()
        session.add_all(
            TransferLine(transfer_id=transfer_id, sku=sku, quantity_shipped=qty)
            for sku, qty in merged.items()
        )
        session.flush()
        return get_transfer(session, transfer_id)

    return atomic(session, run)


def receive_transfer(
    session: Session,
    transfer_id: str,
    *,
    received: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> TransferView:
    """Receive an in-transit transfer. ``received`` gives the counted quantity per SKU (lines
    left out arrived in full); shipped − received is the line's discrepancy."""
    at = _now(now)
    received = dict(received or {})
    for sku, qty in received.items():
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
            raise invalid("invalid_quantity", "received quantities are whole numbers >= 0", sku=sku)

    def run() -> TransferView:
        transfer = session.get(Transfer, transfer_id, with_for_update=True)
        if transfer is None:
            raise not_found("transfer", transfer_id)
        if transfer.status != TransferStatus.IN_TRANSIT.value:
            raise conflict(
                "transfer_not_in_transit",
                f"transfer {transfer_id} is {transfer.status}",
                status=transfer.status,
            )
        lines = session.scalars(
            select(TransferLine).where(TransferLine.transfer_id == transfer_id)
        ).all()
        extra = sorted(set(received) - {line.sku for line in lines})
        if extra:
            raise invalid(
                "sku_not_on_transfer", f"not on this transfer: {', '.join(extra)}", skus=extra
            )
        ids = _stock_ids(session, [(line.sku, transfer.to_location_id) for line in lines])
        changes = []
        discrepancy = False
        for line in lines:
            got = received.get(line.sku, line.quantity_shipped)
            line.quantity_received = got
            discrepancy = discrepancy or got != line.quantity_shipped
            changes.append(
                Change(
                    ids[(line.sku, transfer.to_location_id)],
                    Reason.TRANSFER_IN,
                    on_hand=got,
                    incoming=-line.quantity_shipped,
                    reference=transfer_id,
                    note=None
                    if got == line.quantity_shipped
                    else f"discrepancy {line.quantity_shipped - got}",
                )
            )
        apply_changes(session, changes, at)
        transfer.status = (
            TransferStatus.DISCREPANCY.value if discrepancy else TransferStatus.RECEIVED.value
        )
        transfer.received_at = at
        session.flush()
        return get_transfer(session, transfer_id)

    return atomic(session, run)


def list_transfers(session: Session, *, status: str | None = None) -> list[TransferView]:
    query = select(Transfer.id).order_by(Transfer.id)
    if status is not None:
        query = query.where(Transfer.status == status)
    return [get_transfer(session, tid) for tid in session.scalars(query)]


# --- purchase orders ------------------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseOrderLineView:
    sku: str
    quantity_ordered: int
    quantity_received: int
    outstanding: int


@dataclass(frozen=True)
class PurchaseOrderView:
    id: str
    location_id: str
    supplier: str
    reference: str | None
    status: str
    expected_at: datetime | None
    created_at: datetime
    lines: list[PurchaseOrderLineView]


def get_purchase_order(session: Session, po_id: str) -> PurchaseOrderView:
    po = session.get(PurchaseOrder, po_id)
    if po is None:
        raise not_found("purchase_order", po_id)
    lines = session.scalars(
        select(PurchaseOrderLine)
        .where(PurchaseOrderLine.purchase_order_id == po_id)
        .order_by(PurchaseOrderLine.id)
    ).all()
    return PurchaseOrderView(
        id=po.id,
        location_id=po.location_id,
        supplier=po.supplier,
        reference=po.reference,
        status=po.status,
        expected_at=_aware(po.expected_at),
        created_at=as_utc(po.created_at),
        lines=[
            PurchaseOrderLineView(
                line.sku,
                line.quantity_ordered,
                line.quantity_received,
                max(0, line.quantity_ordered - line.quantity_received),
            )
            for line in lines
        ],
    )


def create_purchase_order(
    session: Session,
    *,
    location_id: str,
    supplier: str,
    lines: Sequence[tuple[str, int]],
    reference: str | None = None,
    expected_at: datetime | None = None,
    now: datetime | None = None,
) -> PurchaseOrderView:
    """Expected goods: the ordered quantities show as ``incoming`` at the location."""
    at = _now(now)
    merged = _merge_lines(lines)
    if not supplier.strip():
        raise invalid("invalid_supplier", "a purchase order needs a supplier")

    def run() -> PurchaseOrderView:
        _require_locations(session, [location_id])
        facts = catalog.require_variants(session, merged)
        ids = _ensure_stock_rows(
            session, ((sku, facts[sku].variant_id, location_id) for sku in merged), at
        )
        po_id = new_id("po")
        apply_changes(
            session,
            [
                Change(ids[(sku, location_id)], Reason.PURCHASE_ORDER, incoming=q, reference=po_id)
                for sku, q in merged.items()
            ],
            at,
        )
        session.add(
            PurchaseOrder(
                id=po_id,
                location_id=location_id,
                supplier=supplier.strip(),
                reference=reference,
                status=PurchaseOrderStatus.OPEN.value,
                expected_at=expected_at,
                created_at=at,
            )
        )
        session.flush()
        session.add_all(
            PurchaseOrderLine(
                purchase_order_id=po_id, sku=sku, quantity_ordered=q, quantity_received=0
            )
            for sku, q in merged.items()
        )
        session.flush()
        return get_purchase_order(session, po_id)

    return atomic(session, run)


def receive_purchase_order(
    session: Session,
    po_id: str,
    *,
    lines: Sequence[tuple[str, int]],
    now: datetime | None = None,
) -> PurchaseOrderView:
    """Goods arrived against a purchase order: on hand goes up, incoming goes down by what was
    still outstanding (over-deliveries are received too)."""
    at = _now(now)
    merged = _merge_lines(lines)

    def run() -> PurchaseOrderView:
        po = session.get(PurchaseOrder, po_id, with_for_update=True)
        if po is None:
            raise not_found("purchase_order", po_id)
        if po.status == PurchaseOrderStatus.RECEIVED.value:
            raise conflict("purchase_order_closed", f"purchase order {po_id} is fully received")
        po_lines = {
            line.sku: line
            for line in session.scalars(
                select(PurchaseOrderLine).where(PurchaseOrderLine.purchase_order_id == po_id)
            )
        }
        extra = sorted(set(merged) - set(po_lines))
        if extra:
            raise invalid(
                "sku_not_on_order", f"not on this purchase order: {', '.join(extra)}", skus=extra
            )
        ids = _stock_ids(session, [(sku, po.location_id) for sku in merged])
        changes = []
        for sku, q in merged.items():
            line = po_lines[sku]
            outstanding = max(0, line.quantity_ordered - line.quantity_received)
            changes.append(
                Change(
                    ids[(sku, po.location_id)],
                    Reason.RECEIPT,
                    on_hand=q,
                    incoming=-min(q, outstanding),
                    reference=po_id,
                )
            )
            line.quantity_received += q
        apply_changes(session, changes, at)
        done = all(line.quantity_received >= line.quantity_ordered for line in po_lines.values())
        po.status = (
            PurchaseOrderStatus.RECEIVED.value
            if done
            else PurchaseOrderStatus.PARTIALLY_RECEIVED.value
        )
        session.flush()
        return get_purchase_order(session, po_id)

    return atomic(session, run)


# --- cycle counts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VarianceLine:
    sku: str
    expected: int
    counted: int
    variance: int  # counted - expected


@dataclass(frozen=True)
class CycleCountReport:
    id: str
    location_id: str
    created_at: datetime
    note: str | None
    lines: list[VarianceLine]

    @property
    def lines_counted(self) -> int:
        return len(self.lines)

    @property
    def lines_with_variance(self) -> int:
        return sum(1 for line in self.lines if line.variance)

    @property
    def net_variance(self) -> int:
        return sum(line.variance for line in self.lines)

    @property
    def absolute_variance(self) -> int:
        return sum(abs(line.variance) for line in self.lines)


def submit_cycle_count(
    session: Session,
    *,
    location_id: str,
    counts: Sequence[tuple[str, int]],
    note: str | None = None,
    now: datetime | None = None,
) -> CycleCountReport:
    """Counted quantities replace on hand (a ``cycle_count`` ledger entry per difference);
    returns the variance report (counted − expected per SKU)."""
    at = _now(now)
    merged: dict[str, int] = {}
    for sku, counted in counts:
        if isinstance(counted, bool) or not isinstance(counted, int) or counted < 0:
            raise invalid("invalid_quantity", "counted quantities are whole numbers >= 0", sku=sku)
        if sku in merged:
            raise invalid("duplicate_sku", f"{sku!r} is counted twice", sku=sku)
        merged[sku] = counted
    if not merged:
        raise invalid("lines_required", "give at least one count")

    def run() -> CycleCountReport:
        _require_locations(session, [location_id], active=False)
        facts = catalog.require_variants(session, merged)
        ids = _ensure_stock_rows(
            session, ((sku, facts[sku].variant_id, location_id) for sku in merged), at
        )
        _lock_stock(session, ids.values())
        on_hand = dict(
            session.execute(select(S.sku, S.on_hand).where(S.id.in_(list(ids.values())))).all()
        )
        count_id = new_id("cnt")
        apply_changes(
            session,
            [
                Change(
                    ids[(sku, location_id)],
                    Reason.CYCLE_COUNT,
                    on_hand=counted - on_hand[sku],
                    reference=count_id,
                )
                for sku, counted in merged.items()
                if counted != on_hand[sku]
            ],
            at,
        )
        session.add(CycleCount(id=count_id, location_id=location_id, note=note, created_at=at))
        session.flush()
        session.add_all(
            CycleCountLine(cycle_count_id=count_id, sku=sku, expected=on_hand[sku], counted=c)
            for sku, c in merged.items()
        )
        session.flush()
        return get_cycle_count(session, count_id)

    return atomic(session, run)


def get_cycle_count(session: Session, count_id: str) -> CycleCountReport:
    count = session.get(CycleCount, count_id)
    if count is None:
        raise not_found("cycle_count", count_id)
    lines = session.scalars(
        select(CycleCountLine)
        .where(CycleCountLine.cycle_count_id == count_id)
        .order_by(CycleCountLine.sku)
    ).all()
    return CycleCountReport(
        id=count.id,
        location_id=count.location_id,
        created_at=as_utc(count.created_at),
        note=count.note,
        lines=[
            VarianceLine(line.sku, line.expected, line.counted, line.counted - line.expected)
            for line in lines
        ],
    )


# --- ledger and audit -----------------------------------------------------------------------


def ledger_query(
    session: Session, *, sku: str | None = None, location_id: str | None = None
) -> Any:
    query = select(LedgerEntry)
    if sku is not None:
        query = query.where(LedgerEntry.sku == sku)
    if location_id is not None:
        query = query.where(LedgerEntry.location_id == location_id)
    return query


@dataclass(frozen=True)
class Drift:
    sku: str
    location_id: str
    field: str
    balance: int
    expected: int  # rebuilt from the ledger (or, for held/allocated, from reservation lines)


@dataclass(frozen=True)
class VerifyReport:
    rows_checked: int
    ledger_entries: int
    drift: list[Drift]

    @property
    def ok(self) -> bool:
        return not self.drift


def verify(session: Session) -> VerifyReport:
    """Rebuild every balance from the ledger and compare; also check that ``held`` and
    ``allocated`` equal the units of held and allocated reservation lines."""
    sums = (
        select(
            LEDGER.c.stock_id,
            func.count().label("entries"),
            func.sum(LEDGER.c.on_hand_delta).label("on_hand"),
            func.sum(LEDGER.c.allocated_delta).label("allocated"),
            func.sum(LEDGER.c.held_delta).label("held"),
            func.sum(LEDGER.c.safety_delta).label("safety_stock"),
            func.sum(LEDGER.c.incoming_delta).label("incoming"),
        )
        .group_by(LEDGER.c.stock_id)
        .subquery("ledger")
    )
    held = (
        select(L.stock_id, func.sum(L.quantity).label("units"))
        .where(L.status == LineStatus.HELD.value)
        .group_by(L.stock_id)
        .subquery("held_lines")
    )
    allocated = (
        select(L.stock_id, func.sum(L.quantity).label("units"))
        .where(L.status == LineStatus.ALLOCATED.value)
        .group_by(L.stock_id)
        .subquery("allocated_lines")
    )
    rows = session.execute(
        select(
            S.sku,
            S.location_id,
            S.on_hand,
            S.allocated,
            S.held,
            S.safety_stock,
            S.incoming,
            func.coalesce(sums.c.entries, 0),
            func.coalesce(sums.c.on_hand, 0),
            func.coalesce(sums.c.allocated, 0),
            func.coalesce(sums.c.held, 0),
            func.coalesce(sums.c.safety_stock, 0),
            func.coalesce(sums.c.incoming, 0),
            func.coalesce(held.c.units, 0),
            func.coalesce(allocated.c.units, 0),
        )
        .select_from(
            STOCK.outerjoin(sums, sums.c.stock_id == S.id)
            .outerjoin(held, held.c.stock_id == S.id)
            .outerjoin(allocated, allocated.c.stock_id == S.id)
        )
        .order_by(S.sku, S.location_id)
    ).all()
    drift: list[Drift] = []
    checked = entries = 0
    names = ("on_hand", "allocated", "held", "safety_stock", "incoming")
    for row in rows:
        sku, loc = row[0], row[1]
        balances, count, ledger = row[2:7], row[7], row[8:13]
        held_lines, allocated_lines = row[13], row[14]
        checked += 1
        entries += int(count)
        for name, balance, expected in zip(names, balances, ledger, strict=True):
            if int(balance) != int(expected):
                drift.append(Drift(sku, loc, name, int(balance), int(expected)))
        if int(balances[2]) != int(held_lines):
            drift.append(Drift(sku, loc, "held_vs_reservations", int(balances[2]), int(held_lines)))
        if int(balances[1]) != int(allocated_lines):
            drift.append(
                Drift(sku, loc, "allocated_vs_reservations", int(balances[1]), int(allocated_lines))
            )
    return VerifyReport(checked, entries, drift)
