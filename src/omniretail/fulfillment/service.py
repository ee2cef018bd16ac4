"""Fulfilment use cases: sourcing decisions, their re-optimisation, the configuration they
use (cost model, channel strategies, carrier and location calendars) and delivery promises.

The order context calls :func:`plan_sourcing` when an order is placed (it stores a decision and
books the picking capacity), :func:`release_decision` when the order goes to the floor (no more
re-optimisation), and :func:`cancel_decision` when the order is cancelled (capacity returns).
Storefronts call :func:`delivery_promise`. Every function takes the caller's session, flushes
and never commits.

Data comes from the inventory context through its service: active locations (type,
coordinates, time zone, opening hours, capabilities, daily pick capacity) and ATP per location
for the channel (after its buffer). Remaining capacity is the location's daily pick capacity
minus the units this context has already assigned to it for the location's local day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import and_, delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.core.errors import AppError, invalid, not_found
from omniretail.core.events import emit
from omniretail.core.ids import new_id
from omniretail.core.retry import retrying
from omniretail.core.timeutil import as_utc, utcnow
from omniretail.fulfillment.domain import (
    PICKUP_METHODS,
    UNLIMITED,
    Constraints,
    CostModel,
    Line,
    Method,
    Network,
    Plan,
    Point,
    Reason,
    SourceLocation,
    SourcingProblem,
    SourcingRuleError,
    Strategy,
    compile_problem,
    parse_method,
    parse_strategy,
    validate_problem,
)
from omniretail.fulfillment.models import (
    CapacityUsage,
    ChannelStrategy,
    FulfillmentSetting,
    LocationCalendarRow,
    SourcingDecision,
    SourcingPackage,
    SourcingPackageLine,
)
from omniretail.fulfillment.promise import (
    CarrierCalendar,
    LocationCalendar,
    Promise,
    Source,
    check_cutoffs,
    parse_dates,
    promise_delivery,
    promise_pickup,
)
from omniretail.fulfillment.sourcing import SourcingResult, solve_plan
from omniretail.inventory import service as inventory

MAX_ATTEMPTS = 5
DEFAULT_PICKUP_RADIUS_KM = 25.0
PICKUP_OPTIONS = 3


def _rule(exc: SourcingRuleError) -> AppError:
    return invalid(exc.code, exc.message, **exc.details)


def _now(now: datetime | None) -> datetime:
    return utcnow() if now is None else as_utc(now)


# --- configuration -------------------------------------------------------------------------


def _setting(session: Session, key: str) -> dict[str, Any] | None:
    row = session.get(FulfillmentSetting, key)
    return None if row is None else dict(row.value)


def _put_setting(session: Session, key: str, value: dict[str, Any]) -> None:
    row = session.get(FulfillmentSetting, key)
    if row is None:
        session.add(FulfillmentSetting(key=key, value=value))
    else:
        row.value = value
        row.updated_at = utcnow()
    session.flush()


def get_cost_model(session: Session) -> CostModel:
    stored = _setting(session, "cost_model")
    return CostModel() if stored is None else CostModel.from_dict(stored)


def set_cost_model(session: Session, changes: Mapping[str, Any]) -> CostModel:
    """Change the cost model; fields left out keep their current values."""
    current = get_cost_model(session).to_dict()
    try:
        model = CostModel.from_dict({**current, **changes})
    except SourcingRuleError as exc:
        raise _rule(exc) from None
    _put_setting(session, "cost_model", model.to_dict())
    return model


def get_carrier_calendar(session: Session) -> CarrierCalendar:
    stored = _setting(session, "carrier_calendar")
    return CarrierCalendar() if stored is None else CarrierCalendar.from_dict(stored)


def set_carrier_calendar(session: Session, changes: Mapping[str, Any]) -> CarrierCalendar:
    current = get_carrier_calendar(session).to_dict()
    try:
        carrier = CarrierCalendar.from_dict({**current, **changes})
    except SourcingRuleError as exc:
        raise _rule(exc) from None
    _put_setting(session, "carrier_calendar", carrier.to_dict())
    return carrier


@dataclass(frozen=True)
class StrategyView:
    channel_id: str | None
    channel_code: str | None
    strategy: str
    max_packages: int | None
    split_lines: bool
    allow_partial: bool
    allow_transfers: bool


DEFAULT_STRATEGY = StrategyView(None, None, Strategy.COST_OPTIMAL.value, None, True, False, True)


def get_channel_strategy(session: Session, channel_ref: str) -> StrategyView:
    channel = catalog.get_channel(session, channel_ref)
    row = session.get(ChannelStrategy, channel.id)
    if row is None:
        return replace(DEFAULT_STRATEGY, channel_id=channel.id, channel_code=channel.code)
    return StrategyView(
        channel.id,
        channel.code,
        row.strategy,
        row.max_packages,
        row.split_lines,
        row.allow_partial,
        row.allow_transfers,
    )


def set_channel_strategy(
    session: Session,
    channel_ref: str,
    *,
    strategy: str,
    max_packages: int | None = None,
    split_lines: bool = True,
    allow_partial: bool = False,
    allow_transfers: bool = True,
) -> StrategyView:
    """Set how a channel's orders are sourced (replaces the previous setting)."""
    channel = catalog.get_channel(session, channel_ref)
    try:
        parsed = parse_strategy(strategy)
    except SourcingRuleError as exc:
        raise _rule(exc) from None
    if max_packages is not None and max_packages < 1:
        raise invalid(
            "invalid_max_packages", "max_packages must be at least 1", max_packages=max_packages
        )
    row = session.get(ChannelStrategy, channel.id)
    if row is None:
        row = ChannelStrategy(channel_id=channel.id)
        session.add(row)
    row.strategy = parsed.value
    row.max_packages = max_packages
    row.split_lines = split_lines
    row.allow_partial = allow_partial
    row.allow_transfers = allow_transfers
    row.updated_at = utcnow()
    session.flush()
    return get_channel_strategy(session, channel.id)


@dataclass(frozen=True)
class CalendarView:
    location_id: str
    location_code: str
    timezone: str
    opening_hours: dict[str, Any]
    cutoffs: dict[str, str]
    holidays: list[str]
    handling_minutes: int


def _calendar_view(location: Any, row: LocationCalendarRow | None) -> CalendarView:
    return CalendarView(
        location_id=location.id,
        location_code=location.code,
        timezone=location.timezone,
        opening_hours=dict(location.opening_hours or {}),
        cutoffs=dict(row.cutoffs) if row else {},
        holidays=sorted(row.holidays) if row else [],
        handling_minutes=row.handling_minutes if row else 120,
    )


def get_location_calendar(session: Session, location_ref: str) -> CalendarView:
    location = inventory.get_location(session, location_ref)
    return _calendar_view(location, session.get(LocationCalendarRow, location.id))


def set_location_calendar(
    session: Session,
    location_ref: str,
    *,
    cutoffs: Mapping[str, str] | None = None,
    holidays: Sequence[str] | None = None,
    handling_minutes: int | None = None,
) -> CalendarView:
    """A location's cut-off times per method, holidays (local dates) and handling time (open
    minutes). Opening hours and time zone stay with the inventory location."""
    location = inventory.get_location(session, location_ref)
    try:
        parsed_cutoffs = check_cutoffs(cutoffs) if cutoffs is not None else None
        parsed_holidays = parse_dates(list(holidays)) if holidays is not None else None
    except SourcingRuleError as exc:
        raise _rule(exc) from None
    if handling_minutes is not None and not 0 <= handling_minutes <= 7 * 24 * 60:
        raise invalid(
            "invalid_handling_time",
            "handling_minutes must be between 0 and 10080",
            handling_minutes=handling_minutes,
        )
    row = session.get(LocationCalendarRow, location.id)
    if row is None:
        row = LocationCalendarRow(
            location_id=location.id, cutoffs={}, holidays=[], handling_minutes=120
        )
        session.add(row)
    if parsed_cutoffs is not None:
        row.cutoffs = parsed_cutoffs
    if parsed_holidays is not None:
        row.holidays = sorted(d.isoformat() for d in parsed_holidays)
    if handling_minutes is not None:
        row.handling_minutes = handling_minutes
    row.updated_at = utcnow()
    session.flush()
    return _calendar_view(location, row)


# --- loading a sourcing problem --------------------------------------------------------------


@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: int
    line_id: str | None = None


def _lines(raw: Iterable[LineRequest | tuple[str, int] | Mapping[str, Any]]) -> list[LineRequest]:
    out = []
    for item in raw:
        if isinstance(item, LineRequest):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(
                LineRequest(item.get("sku", ""), item.get("quantity", 0), item.get("line_id"))
            )
        else:
            out.append(LineRequest(item[0], item[1]))
    if not out:
        raise invalid("lines_required", "give at least one line")
    for line in out:
        if not isinstance(line.sku, str) or not line.sku.strip():
            raise invalid("invalid_sku", "every line needs a SKU")
        q = line.quantity
        if isinstance(q, bool) or not isinstance(q, int) or q <= 0:
            raise invalid(
                "invalid_quantity",
                "quantity must be a positive whole number",
                sku=line.sku,
                quantity=q,
            )
    return out


def _merged(lines: Sequence[LineRequest]) -> list[Line]:
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.sku.strip()] = totals.get(line.sku.strip(), 0) + line.quantity
    return [Line(sku, q) for sku, q in totals.items()]


@dataclass
class _World:
    """Everything a set of sourcing problems of one cart needs, loaded once."""

    channel_id: str | None
    channel_code: str | None
    buffer: int
    locations: dict[str, Any]  # id -> inventory Location (active)
    atp: dict[tuple[str, str], int]
    remaining: dict[str, int | None]  # location id -> remaining units today (None: no limit)
    days: dict[str, date]  # location id -> its local date now
    settings: StrategyView
    cost_model: CostModel
    now: datetime
    feeding: tuple[str, ...] = ()  # active locations feeding the channel, with or without stock
    pickup_atp: dict[str, dict[str, int]] = field(default_factory=dict)
    networks: dict[tuple[str, ...], Network] = field(default_factory=dict)  # built once


def _local_day(location: Any, now: datetime) -> date:
    return now.astimezone(ZoneInfo(location.timezone)).date()


def _load(
    session: Session,
    skus: Sequence[str],
    channel: str | None,
    now: datetime,
    pickup_ids: Sequence[str] = (),
    exclude: frozenset[str] = frozenset(),
) -> _World:
    settings = DEFAULT_STRATEGY
    if channel is not None:
        settings = get_channel_strategy(session, channel)
    avail = inventory.availability(session, list(skus), channel=settings.channel_id, now=now)
    atp: dict[tuple[str, str], int] = {}
    for item in avail.items:
        for location_id, units in _per_location(item.locations):
            if location_id not in exclude:
                atp[(location_id, item.sku)] = units
    locations = {loc.id: loc for loc in inventory.list_locations(session, active=True)}
    feeding = inventory.channel_context(session, settings.channel_id).location_ids
    pickup_atp: dict[str, dict[str, int]] = {}
    for pid in pickup_ids:
        balances = inventory.stock_balances(session, skus=list(skus), location_id=pid, now=now)
        pickup_atp[pid] = {
            b.sku: 0 if pid in exclude else max(0, b.available - avail.buffer) for b in balances
        }
    days = {lid: _local_day(loc, now) for lid, loc in locations.items()}
    wanted = {lid for lid, _ in atp} | set(pickup_ids)
    used: dict[str, int] = {}
    pairs = [(lid, days[lid]) for lid in wanted if lid in days]
    if pairs:
        rows = session.execute(
            select(CapacityUsage.location_id, CapacityUsage.day, CapacityUsage.units).where(
                tuple_(CapacityUsage.location_id, CapacityUsage.day).in_(pairs)
            )
        ).all()
        used = {lid: units for lid, day, units in rows if days.get(lid) == day}
    remaining: dict[str, int | None] = {}
    for lid in wanted:
        loc = locations.get(lid)
        if loc is None:
            continue
        cap = loc.daily_pick_capacity
        remaining[lid] = None if cap is None else max(0, cap - used.get(lid, 0))
    return _World(
        channel_id=settings.channel_id,
        channel_code=settings.channel_code,
        buffer=avail.buffer,
        locations=locations,
        atp=atp,
        remaining=remaining,
        days=days,
        settings=settings,
        cost_model=get_cost_model(session),
        now=now,
        feeding=tuple(feeding),
        pickup_atp=pickup_atp,
    )


def _per_location(value: Any) -> list[tuple[str, int]]:
    """ATP per location from the inventory availability (a mapping, or a list of
    ``(location_id, available)`` records in older versions)."""
    if isinstance(value, Mapping):
        return [(str(k), int(v)) for k, v in value.items()]
    return [(x.location_id, int(x.available)) for x in value]


def _source(loc: Any) -> SourceLocation:
    return SourceLocation(
        id=loc.id,
        code=loc.code,
        type=loc.type,
        latitude=loc.latitude,
        longitude=loc.longitude,
        capabilities=frozenset(loc.capabilities or ()),
        name=loc.name,
    )


def _problem(
    world: _World,
    lines: Sequence[Line],
    *,
    method: Method,
    destination: Point | None,
    pickup_id: str | None,
    strategy: Strategy,
    constraints: Constraints,
    extra_atp: Mapping[tuple[str, str], int] | None = None,
    extra_capacity: Mapping[str, int] | None = None,
) -> SourcingProblem:
    atp = dict(world.atp)
    if pickup_id is not None:
        for sku, value in world.pickup_atp.get(pickup_id, {}).items():
            atp[(pickup_id, sku)] = value
    for cell, value in (extra_atp or {}).items():
        atp[cell] = atp.get(cell, 0) + value
    ids = sorted(
        {lid for lid, _ in atp} | set(world.feeding) | ({pickup_id} if pickup_id else set())
    )
    members = tuple(i for i in ids if i in world.locations)
    network = world.networks.get(members)
    if network is None:
        network = world.networks[members] = Network([_source(world.locations[i]) for i in members])
    cols = {line.sku: k for k, line in enumerate(lines)}
    matrix = np.zeros((len(network), len(lines)), dtype=np.int64)
    for (lid, sku), value in atp.items():
        i, k = network.index.get(lid), cols.get(sku)
        if i is not None and k is not None:
            matrix[i, k] = max(0, value)
    capacity = np.full(len(network), UNLIMITED, dtype=np.int64)
    for i, loc in enumerate(network.locations):
        left = world.remaining.get(loc.id)
        if left is not None:
            capacity[i] = left + (extra_capacity or {}).get(loc.id, 0)
    problem = SourcingProblem(
        network=network,
        lines=tuple(lines),
        atp=matrix,
        capacity=capacity,
        method=method,
        destination=destination,
        pickup_location_id=pickup_id,
        constraints=constraints,
        cost_model=world.cost_model,
        strategy=strategy,
    )
    try:
        validate_problem(problem)
    except SourcingRuleError as exc:
        raise _rule(exc) from None
    return problem


# --- sourcing decisions ---------------------------------------------------------------------


@dataclass(frozen=True)
class PackageLineView:
    line_id: str | None
    sku: str
    quantity: int


@dataclass(frozen=True)
class PackageView:
    position: int
    location_id: str
    location_code: str
    location_type: str
    kind: str
    distance_km: float
    lead_time_hours: int
    units: int
    shipping_cost: int
    handling_cost: int
    transfer_cost: int
    lines: list[PackageLineView]


@dataclass(frozen=True)
class DecisionView:
    id: str | None
    stored: bool
    reference: str | None
    channel_id: str | None
    method: str
    strategy: str
    solver: str
    outcome: str
    state: str
    currency: str
    total_cost: int
    cost_breakdown: dict[str, Any]
    packages: list[PackageView]
    unfulfilled: list[dict[str, Any]]
    infeasibility: dict[str, Any] | None
    alternatives: list[dict[str, Any]]
    explanation: str
    candidates: int
    solve_ms: float
    revision: int
    created_at: datetime


def _split_to_lines(
    plan: Plan, requests: Sequence[LineRequest]
) -> list[list[tuple[str | None, str, int]]]:
    """Each package's (line_id, sku, quantity), spreading a SKU's units over the request
    lines of that SKU in order."""
    left: dict[str, list[list[Any]]] = defaultdict(list)
    for r in requests:
        left[r.sku.strip()].append([r.line_id, r.quantity])
    out = []
    for p in plan.packages:
        rows: list[tuple[str | None, str, int]] = []
        for sku, qty in p.lines:
            need = qty
            for slot in left[sku]:
                if need == 0:
                    break
                take = min(slot[1], need)
                if take:
                    rows.append((slot[0], sku, take))
                    slot[1] -= take
                    need -= take
        out.append(rows)
    return out


def _package_views(plan: Plan, requests: Sequence[LineRequest]) -> list[PackageView]:
    per_package = _split_to_lines(plan, requests)
    return [
        PackageView(
            position=i + 1,
            location_id=p.location_id,
            location_code=p.location_code,
            location_type=p.location_type,
            kind=p.kind.value,
            distance_km=p.distance_km,
            lead_time_hours=p.lead_time_hours,
            units=p.units,
            shipping_cost=p.cost.shipping,
            handling_cost=p.cost.handling,
            transfer_cost=p.cost.transfer,
            lines=[PackageLineView(lid, sku, q) for lid, sku, q in per_package[i]],
        )
        for i, p in enumerate(plan.packages)
    ]


def _infeasible_error(result: SourcingResult, allow_partial: bool) -> AppError:
    reason = result.infeasibility
    assert reason is not None
    status = 422 if reason.code is Reason.PICKUP_LOCATION_NOT_CAPABLE else 409
    return AppError(
        reason.code.value,
        reason.message,
        status,
        {
            **dict(reason.details),
            "partial_allowed": allow_partial,
            "explanation": result.explanation,
        },
    )


class _CapacityRace(Exception):
    pass


def _book_capacity(session: Session, units: Mapping[str, int], world: _World) -> None:
    """Add units to each location's usage for its local day, in location-id order, by a
    conditional update that keeps usage within the daily pick capacity (a location without
    one is only counted). Raises ``_CapacityRace`` when a concurrent decision took it first."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for lid in sorted(units):
        q = units[lid]
        if q <= 0:
            continue
        day = world.days[lid]
        session.execute(
            insert(CapacityUsage)
            .values(location_id=lid, day=day, units=0)
            .on_conflict_do_nothing(index_elements=["location_id", "day"])
        )
        stmt = (
            update(CapacityUsage)
            .where(CapacityUsage.location_id == lid, CapacityUsage.day == day)
            .values(units=CapacityUsage.units + q)
        )
        cap = world.locations[lid].daily_pick_capacity
        if cap is not None:
            stmt = stmt.where(CapacityUsage.units + q <= cap)
        if session.execute(stmt.returning(CapacityUsage.units)).first() is None:
            raise _CapacityRace(lid)


def _decision_view(session: Session, row: SourcingDecision) -> DecisionView:
    packages = list(
        session.scalars(
            select(SourcingPackage)
            .where(SourcingPackage.decision_id == row.id)
            .order_by(SourcingPackage.position)
        )
    )
    lines_by: dict[int, list[PackageLineView]] = defaultdict(list)
    if packages:
        for pl in session.scalars(
            select(SourcingPackageLine)
            .where(SourcingPackageLine.package_id.in_([p.id for p in packages]))
            .order_by(SourcingPackageLine.id)
        ):
            lines_by[pl.package_id].append(PackageLineView(pl.line_id, pl.sku, pl.quantity))
    return DecisionView(
        id=row.id,
        stored=True,
        reference=row.reference,
        channel_id=row.channel_id,
        method=row.method,
        strategy=row.strategy,
        solver=row.solver,
        outcome=row.outcome,
        state=row.state,
        currency=row.currency,
        total_cost=row.total_cost,
        cost_breakdown=dict(row.cost_breakdown),
        packages=[
            PackageView(
                position=p.position,
                location_id=p.location_id,
                location_code=p.location_code,
                location_type=p.location_type,
                kind=p.kind,
                distance_km=p.distance_km,
                lead_time_hours=p.lead_time_hours,
                units=p.units,
                shipping_cost=p.shipping_cost,
                handling_cost=p.handling_cost,
                transfer_cost=p.transfer_cost,
                lines=lines_by[p.id],
            )
            for p in packages
        ],
        unfulfilled=list(row.unfulfilled or []),
        infeasibility=row.infeasibility,
        alternatives=list(row.alternatives or []),
        explanation=row.explanation,
        candidates=int(row.input_summary.get("candidates", 0)),
        solve_ms=row.solve_ms,
        revision=row.revision,
        created_at=row.created_at,
    )


def _constraints(
    settings: StrategyView,
    *,
    max_packages: int | None,
    ship_together: Sequence[Sequence[str]],
    split_lines: bool | None,
    allow_partial: bool | None,
    allow_transfers: bool | None,
) -> Constraints:
    return Constraints(
        max_packages=max_packages if max_packages is not None else settings.max_packages,
        ship_together=tuple(tuple(s.strip() for s in g) for g in ship_together if g),
        split_lines=settings.split_lines if split_lines is None else split_lines,
        allow_partial=settings.allow_partial if allow_partial is None else allow_partial,
        allow_transfers=settings.allow_transfers if allow_transfers is None else allow_transfers,
    )


def _destination(destination: tuple[float, float] | Point | None) -> Point | None:
    if destination is None or isinstance(destination, Point):
        return destination
    try:
        return Point(float(destination[0]), float(destination[1]))
    except SourcingRuleError as exc:
        raise _rule(exc) from None


def _summary(problem: SourcingProblem, result: SourcingResult, world: _World) -> dict[str, Any]:
    shown = set(result.plan.locations()) if result.plan else set()
    for alt in result.alternatives:
        if alt.plan is not None:
            shown.update(alt.plan.locations())
    net = problem.network
    return {
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in problem.lines],
        "locations_considered": len(net),
        "candidates": result.candidates,
        "channel": world.channel_code,
        "buffer": world.buffer,
        "atp": {
            lid: {
                line.sku: int(problem.atp[net.index[lid], k])
                for k, line in enumerate(problem.lines)
            }
            for lid in sorted(shown)
            if lid in net.index
        },
        "remaining_capacity": {lid: world.remaining.get(lid) for lid in sorted(shown)},
    }


def plan_sourcing(
    session: Session,
    lines: Iterable[LineRequest | tuple[str, int] | Mapping[str, Any]],
    *,
    method: str = "standard",
    destination: tuple[float, float] | Point | None = None,
    pickup_location: str | None = None,
    channel: str | None = None,
    strategy: str | None = None,
    max_packages: int | None = None,
    ship_together: Sequence[Sequence[str]] = (),
    split_lines: bool | None = None,
    allow_partial: bool | None = None,
    allow_transfers: bool | None = None,
    reference: str | None = None,
    dry_run: bool = False,
    exclude_locations: Sequence[str] = (),
    now: datetime | None = None,
) -> DecisionView:
    """Decide where an order ships from, store the decision with its explanation and book
    the picking capacity (``dry_run``: decide only). Request values override the channel's
    strategy settings; ``exclude_locations`` are not considered (re-sourcing after a pick
    exception). No plan: an AppError named after the reason (409), nothing written."""
    at = _now(now)
    requests = _lines(lines)
    merged = _merged(requests)
    try:
        parsed_method = parse_method(method)
        parsed_strategy = parse_strategy(strategy) if strategy is not None else None
    except SourcingRuleError as exc:
        raise _rule(exc) from None
    point = _destination(destination)
    pickup_id: str | None = None
    if parsed_method in PICKUP_METHODS:
        if not pickup_location:
            raise invalid(
                "pickup_location_required", f"method {parsed_method.value!r} needs a pickup store"
            )
        pickup_id = inventory.get_location(session, pickup_location).id
    elif point is None:
        raise invalid("destination_required", f"method {parsed_method.value!r} needs a destination")
    # A concurrent decision can take the capacity between planning and booking: plan again.
    try:
        for attempt in retrying(MAX_ATTEMPTS, lambda exc: isinstance(exc, _CapacityRace)):
            with attempt:
                world = _load(
                    session,
                    [line.sku for line in merged],
                    channel,
                    at,
                    [pickup_id] if pickup_id else [],
                    exclude=frozenset(exclude_locations),
                )
                if pickup_id is not None and pickup_id not in world.locations:
                    raise AppError(
                        "location_inactive",
                        f"pickup location {pickup_location!r} is not active",
                        409,
                    )
                settings = world.settings
                chosen_strategy = parsed_strategy or parse_strategy(settings.strategy)
                constraints = _constraints(
                    settings,
                    max_packages=max_packages,
                    ship_together=ship_together,
                    split_lines=split_lines,
                    allow_partial=allow_partial,
                    allow_transfers=allow_transfers,
                )
                problem = _problem(
                    world,
                    merged,
                    method=parsed_method,
                    destination=point,
                    pickup_id=pickup_id,
                    strategy=chosen_strategy,
                    constraints=constraints,
                )
                result = solve_plan(problem, explain=True)
                if result.plan is None:
                    raise _infeasible_error(result, constraints.allow_partial)
                if dry_run:
                    return _unsaved_view(result, requests, reference, world, parsed_method, at)
                with session.begin_nested():
                    return _store(session, result, problem, requests, reference, world, at)
    except _CapacityRace:
        raise AppError(
            "capacity_changed", "picking capacity changed while planning; try again", 409
        ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _unsaved_view(
    result: SourcingResult,
    requests: Sequence[LineRequest],
    reference: str | None,
    world: _World,
    method: Method,
    at: datetime,
) -> DecisionView:
    plan = result.plan
    assert plan is not None
    return DecisionView(
        id=None,
        stored=False,
        reference=reference,
        channel_id=world.channel_id,
        method=method.value,
        strategy=result.strategy.value,
        solver=result.solver,
        outcome=result.status,
        state="draft",
        currency=plan.cost.currency,
        total_cost=plan.total,
        cost_breakdown=plan.cost.to_dict(),
        packages=_package_views(plan, requests),
        unfulfilled=[{"sku": s, "quantity": q} for s, q in plan.unfulfilled],
        infeasibility=None if result.infeasibility is None else result.infeasibility.to_dict(),
        alternatives=[a.to_dict() for a in result.alternatives],
        explanation=result.explanation,
        candidates=result.candidates,
        solve_ms=result.solve_ms,
        revision=1,
        created_at=at,
    )


def _write_packages(
    session: Session,
    decision_id: str,
    plan: Plan,
    requests: Sequence[LineRequest],
    world: _World,
) -> None:
    per_package = _split_to_lines(plan, requests)
    for i, p in enumerate(plan.packages):
        row = SourcingPackage(
            decision_id=decision_id,
            position=i + 1,
            location_id=p.location_id,
            location_code=p.location_code,
            location_type=p.location_type,
            kind=p.kind.value,
            distance_km=p.distance_km,
            lead_time_hours=p.lead_time_hours,
            units=p.units,
            shipping_cost=p.cost.shipping,
            handling_cost=p.cost.handling,
            transfer_cost=p.cost.transfer,
            capacity_day=world.days[p.location_id],
        )
        session.add(row)
        session.flush()
        session.add_all(
            SourcingPackageLine(package_id=row.id, line_id=lid, sku=sku, quantity=q)
            for lid, sku, q in per_package[i]
        )


def _store(
    session: Session,
    result: SourcingResult,
    problem: SourcingProblem,
    requests: Sequence[LineRequest],
    reference: str | None,
    world: _World,
    at: datetime,
) -> DecisionView:
    plan = result.plan
    assert plan is not None
    _book_capacity(session, {p.location_id: p.units for p in plan.packages}, world)
    decision = SourcingDecision(
        id=new_id("src"),
        reference=reference,
        channel_id=world.channel_id,
        method=problem.method.value,
        strategy=result.strategy.value,
        solver=result.solver,
        outcome=result.status,
        state="open",
        destination=None
        if problem.destination is None
        else {"latitude": problem.destination.latitude, "longitude": problem.destination.longitude},
        pickup_location_id=problem.pickup_location_id,
        lines=[
            {"line_id": r.line_id, "sku": r.sku.strip(), "quantity": r.quantity} for r in requests
        ],
        constraints={
            "max_packages": problem.constraints.max_packages,
            "ship_together": [list(g) for g in problem.constraints.ship_together],
            "split_lines": problem.constraints.split_lines,
            "allow_partial": problem.constraints.allow_partial,
            "allow_transfers": problem.constraints.allow_transfers,
        },
        cost_model=problem.cost_model.to_dict(),
        currency=plan.cost.currency,
        total_cost=plan.total,
        cost_breakdown=plan.cost.to_dict(),
        packages_count=len(plan.packages),
        unfulfilled=[{"sku": s, "quantity": q} for s, q in plan.unfulfilled],
        infeasibility=None if result.infeasibility is None else result.infeasibility.to_dict(),
        alternatives=[a.to_dict() for a in result.alternatives],
        explanation=result.explanation,
        input_summary=_summary(problem, result, world),
        solve_ms=result.solve_ms,
        revision=1,
        history=[],
        created_at=at,
        updated_at=at,
    )
    session.add(decision)
    session.flush()
    _write_packages(session, decision.id, plan, requests, world)
    emit(
        session,
        "sourcing.decision_created",
        {
            "decision_id": decision.id,
            "reference": reference,
            "outcome": result.status,
            "total_cost": plan.total,
            "currency": plan.cost.currency,
            "packages": [
                {
                    "location_id": p.location_id,
                    "kind": p.kind.value,
                    "lines": [list(x) for x in p.lines],
                }
                for p in plan.packages
            ],
        },
        aggregate_id=decision.id,
    )
    session.flush()
    return _decision_view(session, decision)


def _decision_row(session: Session, decision_id: str) -> SourcingDecision:
    row = session.get(SourcingDecision, decision_id)
    if row is None:
        raise not_found("sourcing_decision", decision_id)
    return row


def get_decision(session: Session, decision_id: str) -> DecisionView:
    return _decision_view(session, _decision_row(session, decision_id))


def list_decisions(
    session: Session,
    *,
    reference: str | None = None,
    state: str | None = None,
    limit: int = 50,
) -> list[DecisionView]:
    query = select(SourcingDecision).order_by(SourcingDecision.created_at.desc()).limit(limit)
    if reference is not None:
        query = query.where(SourcingDecision.reference == reference)
    if state is not None:
        query = query.where(SourcingDecision.state == state)
    return [_decision_view(session, row) for row in session.scalars(query)]


def _transition(session: Session, decision_id: str, target: str) -> SourcingDecision:
    row = _decision_row(session, decision_id)
    if row.state != "open":
        raise AppError(
            "decision_not_open",
            f"decision {decision_id!r} is {row.state}; only open decisions can be {target}",
            409,
            {"state": row.state},
        )
    changed = session.execute(
        update(SourcingDecision)
        .where(SourcingDecision.id == decision_id, SourcingDecision.state == "open")
        .values(state=target, updated_at=utcnow())
        .returning(SourcingDecision.id)
    ).first()
    if changed is None:
        raise AppError("decision_not_open", f"decision {decision_id!r} changed meanwhile", 409)
    session.refresh(row)
    return row


def release_decision(session: Session, decision_id: str) -> DecisionView:
    """The order went to the floor: the plan is final (no more re-optimisation)."""
    row = _transition(session, decision_id, "released")
    emit(session, "sourcing.decision_released", {"decision_id": row.id}, aggregate_id=row.id)
    session.flush()
    return _decision_view(session, row)


def cancel_decision(session: Session, decision_id: str) -> DecisionView:
    """The order was cancelled before release: its picking capacity is given back."""
    row = _transition(session, decision_id, "cancelled")
    _give_back(session, row.id)
    emit(session, "sourcing.decision_cancelled", {"decision_id": row.id}, aggregate_id=row.id)
    session.flush()
    return _decision_view(session, row)


def _give_back(session: Session, decision_id: str) -> None:
    for p in session.scalars(
        select(SourcingPackage).where(SourcingPackage.decision_id == decision_id)
    ):
        session.execute(
            update(CapacityUsage)
            .where(
                and_(
                    CapacityUsage.location_id == p.location_id, CapacityUsage.day == p.capacity_day
                )
            )
            .values(units=CapacityUsage.units - p.units)
        )


# --- batch re-optimisation with the exact solver -----------------------------------------------


@dataclass(frozen=True)
class ReoptimizedDecision:
    decision_id: str
    reference: str | None
    old_cost: int
    new_cost: int | None
    saving: int
    changed: bool
    status: str  # improved | unchanged | no_plan | failed | not_open


@dataclass(frozen=True)
class ReoptimizeReport:
    decisions: list[ReoptimizedDecision]
    applied: bool

    @property
    def total_saving(self) -> int:
        return sum(d.saving for d in self.decisions)

    @property
    def improved(self) -> int:
        return sum(1 for d in self.decisions if d.changed)


def open_decisions(session: Session, *, limit: int = 500) -> list[str]:
    """Ids of open (unreleased) decisions, oldest first."""
    return list(
        session.scalars(
            select(SourcingDecision.id)
            .where(SourcingDecision.state == "open")
            .order_by(SourcingDecision.created_at, SourcingDecision.id)
            .limit(limit)
        )
    )


def reoptimize_decision(
    session: Session,
    decision_id: str,
    *,
    apply: bool = False,
    time_limit: float = 10.0,
    now: datetime | None = None,
) -> ReoptimizedDecision:
    """Re-solve one open decision with the exact solver; with ``apply``, replace its plan
    when the new one ranks better (see :func:`reoptimize`). The decision row is locked
    while it is re-planned; one released or cancelled meanwhile is left alone
    (status ``not_open``)."""
    row = session.get(SourcingDecision, decision_id, with_for_update=apply)
    if row is None:
        raise not_found("sourcing_decision", decision_id)
    if row.state != "open":
        return ReoptimizedDecision(
            row.id, row.reference, row.total_cost, None, 0, False, "not_open"
        )
    return _reoptimize_one(session, row, apply, time_limit, _now(now))


def reoptimize(
    session: Session,
    *,
    limit: int = 500,
    apply: bool = False,
    time_limit: float = 10.0,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReoptimizeReport:
    """Re-solve open decisions with the exact solver (oldest first) and report the savings;
    with ``apply``, replace each plan that got cheaper (revision + 1, the old plan kept in
    the history, capacity moved, ``sourcing.decision_replanned`` emitted). All in the
    caller's transaction; the CLI commits decision by decision instead
    (:func:`open_decisions`, :func:`reoptimize_decision`).

    Stock and capacity a decision already holds count as available to it: the order context
    allocates the planned units at the planned locations, so they are no longer in ATP."""
    ids = open_decisions(session, limit=limit)
    out: list[ReoptimizedDecision] = []
    for i, decision_id in enumerate(ids):
        out.append(
            reoptimize_decision(session, decision_id, apply=apply, time_limit=time_limit, now=now)
        )
        if progress is not None:
            progress(i + 1, len(ids))
    return ReoptimizeReport(out, apply)


def _reoptimize_one(
    session: Session, row: SourcingDecision, apply: bool, time_limit: float, at: datetime
) -> ReoptimizedDecision:
    requests = [LineRequest(x["sku"], x["quantity"], x.get("line_id")) for x in row.lines]
    merged = _merged(requests)
    old = _decision_view(session, row)
    held_atp: dict[tuple[str, str], int] = defaultdict(int)
    held_cap: dict[str, int] = defaultdict(int)
    for p in old.packages:
        held_cap[p.location_id] += p.units
        for line in p.lines:
            held_atp[(p.location_id, line.sku)] += line.quantity
    try:
        world = _load(
            session,
            [line.sku for line in merged],
            row.channel_id,
            at,
            [row.pickup_location_id] if row.pickup_location_id else [],
        )
        c = row.constraints
        problem = _problem(
            replace(world, cost_model=CostModel.from_dict(row.cost_model)),
            merged,
            method=Method(row.method),
            destination=None
            if row.destination is None
            else Point(row.destination["latitude"], row.destination["longitude"]),
            pickup_id=row.pickup_location_id,
            strategy=Strategy(row.strategy),
            constraints=Constraints(
                max_packages=c.get("max_packages"),
                ship_together=tuple(tuple(g) for g in c.get("ship_together", [])),
                split_lines=c.get("split_lines", True),
                allow_partial=c.get("allow_partial", False),
                allow_transfers=c.get("allow_transfers", True),
            ),
            extra_atp=held_atp,
            extra_capacity=held_cap,
        )
    except AppError:
        return ReoptimizedDecision(row.id, row.reference, row.total_cost, None, 0, False, "failed")
    result = solve_plan(problem, solver="exact", explain=True, time_limit=time_limit)
    plan = result.plan
    if plan is None or (plan.unfulfilled and not old.unfulfilled):
        return ReoptimizedDecision(row.id, row.reference, row.total_cost, None, 0, False, "no_plan")
    inst = compile_problem(problem)
    old_units = sum(int(x["quantity"]) for x in old.unfulfilled)
    new_units = sum(q for _, q in plan.unfulfilled)
    better = (new_units, plan.primary, plan.total) < (
        old_units,
        _old_primary(inst, old),
        row.total_cost,
    )
    saving = max(0, row.total_cost - plan.total) if better else 0
    if not better:
        return ReoptimizedDecision(
            row.id, row.reference, row.total_cost, plan.total, 0, False, "unchanged"
        )
    if apply:
        with session.begin_nested():
            _replace_plan(session, row, old, result, problem, requests, world, at)
    return ReoptimizedDecision(
        row.id, row.reference, row.total_cost, plan.total, saving, True, "improved"
    )


def _old_primary(inst: Any, old: DecisionView) -> float:
    """The strategy criterion of the stored plan, recomputed on the current instance."""
    if not inst.weight:
        return 0.0
    by_id = {inst.problem.network.locations[int(r)].id: j for j, r in enumerate(inst.rows)}
    total = 0.0
    for p in old.packages:
        j = by_id.get(p.location_id)
        if j is None:
            return float("inf")
        total += float(inst.prim_pkg[j] + inst.prim_unit[j] * p.units)
    return round(total, 6)


def _replace_plan(
    session: Session,
    row: SourcingDecision,
    old: DecisionView,
    result: SourcingResult,
    problem: SourcingProblem,
    requests: Sequence[LineRequest],
    world: _World,
    at: datetime,
) -> None:
    plan = result.plan
    assert plan is not None
    _give_back(session, row.id)
    package_ids = select(SourcingPackage.id).where(SourcingPackage.decision_id == row.id)
    session.execute(
        delete(SourcingPackageLine).where(SourcingPackageLine.package_id.in_(package_ids))
    )
    session.execute(delete(SourcingPackage).where(SourcingPackage.decision_id == row.id))
    _book_capacity(session, {p.location_id: p.units for p in plan.packages}, world)
    _write_packages(session, row.id, plan, requests, world)
    row.history = [
        *(row.history or []),
        {
            "revision": row.revision,
            "solver": row.solver,
            "total_cost": row.total_cost,
            "packages": [{"location_id": p.location_id, "units": p.units} for p in old.packages],
            "replaced_at": at.isoformat(),
        },
    ]
    row.revision += 1
    row.solver = result.solver
    row.outcome = result.status
    row.total_cost = plan.total
    row.cost_breakdown = plan.cost.to_dict()
    row.packages_count = len(plan.packages)
    row.unfulfilled = [{"sku": s, "quantity": q} for s, q in plan.unfulfilled]
    row.alternatives = [a.to_dict() for a in result.alternatives]
    row.explanation = result.explanation
    row.input_summary = _summary(problem, result, world)
    row.solve_ms = result.solve_ms
    row.updated_at = at
    emit(
        session,
        "sourcing.decision_replanned",
        {
            "decision_id": row.id,
            "reference": row.reference,
            "revision": row.revision,
            "old_packages": [
                {"location_id": p.location_id, "lines": [[x.sku, x.quantity] for x in p.lines]}
                for p in old.packages
            ],
            "new_packages": [
                {"location_id": p.location_id, "lines": [list(x) for x in p.lines]}
                for p in plan.packages
            ],
        },
        aggregate_id=row.id,
    )
    session.flush()


# --- delivery promise ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PromiseOption:
    method: str
    available: bool
    earliest: datetime | None
    latest: datetime | None
    order_by: datetime | None
    text: str
    reason: str | None
    location_id: str | None
    location_code: str | None
    locations: list[str]  # where the packages leave from


@dataclass(frozen=True)
class PromiseView:
    now: datetime
    options: list[PromiseOption]


def _calendars(session: Session, world: _World, ids: Iterable[str]) -> dict[str, LocationCalendar]:
    wanted = [i for i in dict.fromkeys(ids) if i in world.locations]
    rows = {
        r.location_id: r
        for r in session.scalars(
            select(LocationCalendarRow).where(LocationCalendarRow.location_id.in_(wanted))
        )
    }
    out = {}
    for lid in wanted:
        loc = world.locations[lid]
        row = rows.get(lid)
        out[lid] = LocationCalendar(
            location_id=lid,
            code=loc.code,
            name=loc.name,
            timezone=loc.timezone,
            opening_hours=dict(loc.opening_hours or {}),
            holidays=parse_dates(row.holidays) if row else frozenset(),
            cutoffs=dict(row.cutoffs) if row else {},
            handling_minutes=row.handling_minutes if row else 120,
        )
    return out


def delivery_promise(
    session: Session,
    lines: Iterable[LineRequest | tuple[str, int] | Mapping[str, Any]],
    *,
    destination: tuple[float, float] | Point | None = None,
    destination_timezone: str | None = None,
    pickup_location: str | None = None,
    channel: str | None = None,
    methods: Sequence[str] | None = None,
    now: datetime | None = None,
) -> PromiseView:
    """The earliest delivery or pickup time per method for a cart: each method is sourced
    with the channel's strategy (nothing stored, no capacity booked) and the packages'
    calendars give the time. Without a pickup store, the nearest pickup stores (up to 3
    within 25 km of the destination) are offered."""
    at = _now(now)
    requests = _lines(lines)
    merged = _merged(requests)
    point = _destination(destination)
    if destination_timezone is not None:
        try:
            ZoneInfo(destination_timezone)
        except Exception:
            raise invalid(
                "invalid_timezone",
                f"{destination_timezone!r} is not an IANA time zone",
                timezone=destination_timezone,
            ) from None
    if point is None and pickup_location is None:
        raise invalid("destination_required", "give a destination or a pickup store")
    wanted = list(methods) if methods is not None else []
    if not wanted:
        wanted = ["standard", "express", "same_day"] if point is not None else []
        wanted.append("pickup")
    try:
        parsed = [parse_method(m) for m in wanted]
    except SourcingRuleError as exc:
        raise _rule(exc) from None
    pickup_ids: list[str] = []
    skus = [line.sku for line in merged]
    if any(m in PICKUP_METHODS for m in parsed):
        if pickup_location is not None:
            pickup_ids = [inventory.get_location(session, pickup_location).id]
        elif point is not None:
            near = inventory.availability(
                session,
                skus,
                lat=point.latitude,
                lon=point.longitude,
                radius_km=DEFAULT_PICKUP_RADIUS_KM,
                now=at,
            )
            pickup_ids = [p.location_id for p in (near.pickup or [])][:PICKUP_OPTIONS]
    world = _load(session, skus, channel, at, pickup_ids)
    carrier = get_carrier_calendar(session)
    settings = world.settings
    constraints = _constraints(
        settings,
        max_packages=None,
        ship_together=(),
        split_lines=None,
        allow_partial=False,
        allow_transfers=None,
    )
    strategy = parse_strategy(settings.strategy)
    options: list[PromiseOption] = []
    for method in parsed:
        if method in PICKUP_METHODS:
            if not pickup_ids:
                options.append(_unavailable(method.value, "no pickup store near the destination"))
            for pid in pickup_ids:
                options.append(
                    _pickup_option(
                        session, world, merged, method, pid, strategy, constraints, carrier, at
                    )
                )
            continue
        if point is None:
            options.append(_unavailable(method.value, "no destination given"))
            continue
        problem = _problem(
            world,
            merged,
            method=method,
            destination=point,
            pickup_id=None,
            strategy=strategy,
            constraints=constraints,
        )
        result = solve_plan(problem)
        if result.plan is None:
            assert result.infeasibility is not None
            options.append(_unavailable(method.value, result.infeasibility.message))
            continue
        cals = _calendars(session, world, result.plan.locations())
        sources = [Source(cals[p.location_id], p.distance_km) for p in result.plan.packages]
        try:
            promise = promise_delivery(method.value, sources, carrier, at, destination_timezone)
        except SourcingRuleError as exc:
            options.append(_unavailable(method.value, exc.message))
            continue
        options.append(_option(promise, None, result.plan.locations()))
    return PromiseView(at, options)


def _unavailable(method: str, reason: str) -> PromiseOption:
    return PromiseOption(method, False, None, None, None, "", reason, None, None, [])


def _option(promise: Promise, code: str | None, locations: list[str]) -> PromiseOption:
    return PromiseOption(
        method=promise.method,
        available=promise.available,
        earliest=promise.earliest,
        latest=promise.latest,
        order_by=promise.order_by,
        text=promise.text,
        reason=promise.reason,
        location_id=promise.location_id,
        location_code=code,
        locations=locations,
    )


def _pickup_option(
    session: Session,
    world: _World,
    merged: Sequence[Line],
    method: Method,
    pickup_id: str,
    strategy: Strategy,
    constraints: Constraints,
    carrier: CarrierCalendar,
    at: datetime,
) -> PromiseOption:
    if pickup_id not in world.locations:
        return _unavailable(method.value, "the pickup store is not active")
    code = world.locations[pickup_id].code
    problem = _problem(
        world,
        merged,
        method=method,
        destination=None,
        pickup_id=pickup_id,
        strategy=strategy,
        constraints=constraints,
    )
    result = solve_plan(problem)
    if result.plan is None:
        assert result.infeasibility is not None
        option = _unavailable(method.value, result.infeasibility.message)
        return replace(option, location_id=pickup_id, location_code=code)
    cals = _calendars(session, world, [pickup_id, *result.plan.locations()])
    sources = [
        Source(cals[p.location_id], p.distance_km, p.lead_time_hours) for p in result.plan.packages
    ]
    try:
        promise = promise_pickup(cals[pickup_id], sources, carrier, at, method.value)
    except SourcingRuleError as exc:
        option = _unavailable(method.value, exc.message)
        return replace(option, location_id=pickup_id, location_code=code)
    return _option(promise, code, result.plan.locations())


__all__ = [
    "DecisionView",
    "LineRequest",
    "PromiseView",
    "ReoptimizeReport",
    "cancel_decision",
    "delivery_promise",
    "get_decision",
    "plan_sourcing",
    "release_decision",
    "reoptimize",
]
