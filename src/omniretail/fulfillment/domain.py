"""Order sourcing as a pure optimisation problem (no I/O, no ORM).

A :class:`SourcingProblem` holds the order lines, the candidate locations (type, coordinates,
capabilities, remaining daily capacity), the ATP of every line's SKU at every location, the
destination or pickup store, the delivery method, the constraints, the cost model and the
strategy. :func:`compile_problem` turns it into an :class:`Instance`: the eligible candidates
and their integer cost coefficients, which both solvers (``heuristic`` and ``exact``) share:

* a package opened at candidate ``j`` costs ``F[j]`` (carrier base + distance per parcel +
  handling per parcel for the location type + transfer cost + split penalty),
* each unit shipped from ``j`` costs ``c[j]`` (distance per unit + handling per unit),
* the split penalty is charged for every package after the first, so the plan cost is
  ``sum(F[open]) - split_penalty + sum(c[j] * units[j])`` (0 for an empty plan).

All money is in integer minor units; per-candidate coefficients are rounded half-up once, so a
plan's cost breakdown always adds up to its total. Strategies other than cost-optimal rank
plans lexicographically: first by their own criterion (unit-kilometres, packages, units not
from stores / warehouses), then by cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from omniretail.inventory.domain import Capability, LocationType

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

EARTH_RADIUS_KM = 6371.0088
MAX_LINES = 50
UNLIMITED = -1  # remaining capacity of a location without a daily pick capacity


class SourcingRuleError(ValueError):
    """A rule violation in the sourcing input; ``code`` and ``details`` become the API error."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class Method(StrEnum):
    STANDARD = "standard"
    EXPRESS = "express"
    SAME_DAY = "same_day"
    PICKUP = "pickup"
    CURBSIDE = "curbside"


PICKUP_METHODS = frozenset({Method.PICKUP, Method.CURBSIDE})
# Names the order context and other callers use for the same thing.
METHOD_ALIASES = {
    "bopis": Method.PICKUP,
    "click_and_collect": Method.PICKUP,
    "locker": Method.PICKUP,
    "ship": Method.STANDARD,
    "ship_from_store": Method.STANDARD,
}


def parse_method(value: str) -> Method:
    alias = METHOD_ALIASES.get(value)
    try:
        return Method(alias if alias is not None else value)
    except ValueError:
        raise SourcingRuleError(
            "invalid_method",
            f"unknown delivery method {value!r}",
            allowed=[m.value for m in Method],
        ) from None


class Strategy(StrEnum):
    COST_OPTIMAL = "cost_optimal"
    NEAREST = "nearest"
    FEWEST_SPLITS = "fewest_splits"
    STORE_FIRST = "store_first"
    WAREHOUSE_FIRST = "warehouse_first"


STRATEGY_TEXT = {
    Strategy.COST_OPTIMAL: "the cheapest plan that meets every constraint",
    Strategy.NEAREST: "the fewest unit-kilometres (units times distance), then the lowest cost",
    Strategy.FEWEST_SPLITS: "the fewest packages, then the lowest cost",
    Strategy.STORE_FIRST: "the most units from stores, then the lowest cost",
    Strategy.WAREHOUSE_FIRST: "the most units from warehouses, then the lowest cost",
}


def parse_strategy(value: str) -> Strategy:
    try:
        return Strategy(value)
    except ValueError:
        raise SourcingRuleError(
            "invalid_strategy",
            f"unknown sourcing strategy {value!r}",
            allowed=[s.value for s in Strategy],
        ) from None


class PackageKind(StrEnum):
    SHIP = "ship"  # parcel from the location to the customer
    PICKUP = "pickup"  # picked at the pickup store itself
    TRANSFER = "transfer"  # moved to the pickup store first (lead time)


KINDS = (PackageKind.SHIP, PackageKind.PICKUP, PackageKind.TRANSFER)


class Reason(StrEnum):
    """Why no (full) plan exists."""

    NO_CAPABLE_LOCATION = "no_capable_location"
    PICKUP_LOCATION_NOT_CAPABLE = "pickup_location_not_capable"
    INSUFFICIENT_STOCK = "insufficient_stock"
    CAPACITY_EXHAUSTED = "capacity_exhausted"
    SHIP_TOGETHER_UNSATISFIABLE = "ship_together_unsatisfiable"
    MAX_PACKAGES_EXCEEDED = "max_packages_exceeded"
    NO_PLAN_FOUND = "no_plan_found"


# --- geography -------------------------------------------------------------------------------


def haversine_km(lat: float, lon: float, lats: npt.ArrayLike, lons: npt.ArrayLike) -> FloatArray:
    """Great-circle distances (km) from one point to many (vectorised haversine)."""
    p1 = math.radians(lat)
    p2 = np.radians(np.asarray(lats, dtype=np.float64))
    dp = p2 - p1
    dl = np.radians(np.asarray(lons, dtype=np.float64) - lon)
    a = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(1.0, a)))
    return out


@dataclass(frozen=True)
class Point:
    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latitude) and -90.0 <= self.latitude <= 90.0):
            raise SourcingRuleError(
                "invalid_coordinates", "latitude must be between -90 and 90", latitude=self.latitude
            )
        if not (math.isfinite(self.longitude) and -180.0 <= self.longitude <= 180.0):
            raise SourcingRuleError(
                "invalid_coordinates",
                "longitude must be between -180 and 180",
                longitude=self.longitude,
            )


# --- cost model ------------------------------------------------------------------------------


def _type_map(values: Mapping[str, int]) -> dict[str, int]:
    return {t.value: int(values.get(t.value, 0)) for t in LocationType}


DEFAULT_HANDLING_PER_PACKAGE = {
    "warehouse": 40,
    "store": 180,
    "dark_store": 90,
    "locker": 0,
    "dropship": 250,
}
DEFAULT_HANDLING_PER_UNIT = {
    "warehouse": 25,
    "store": 95,
    "dark_store": 45,
    "locker": 0,
    "dropship": 60,
}


@dataclass(frozen=True)
class CostModel:
    """What a plan costs, in minor units of ``currency``. Distances are great-circle km."""

    currency: str = "GBP"
    package_fixed: int = 320  # carrier base price per parcel
    per_km_package: float = 0.6  # per parcel and km
    per_km_unit: float = 0.15  # per unit and km
    handling_per_package: Mapping[str, int] = field(
        default_factory=lambda: dict(DEFAULT_HANDLING_PER_PACKAGE)
    )
    handling_per_unit: Mapping[str, int] = field(
        default_factory=lambda: dict(DEFAULT_HANDLING_PER_UNIT)
    )
    split_penalty: int = 150  # per package after the first
    express_surcharge: int = 400  # per parcel
    same_day_surcharge: int = 650  # per parcel (courier)
    same_day_radius_km: float = 30.0
    pickup_handling_per_package: int = 60  # picking at the pickup store itself (no packing)
    pickup_handling_per_unit: int = 40
    transfer_fixed: int = 120  # per transfer to a pickup store (consolidated trunk run)
    transfer_per_km: float = 0.25
    transfer_lead_hours: int = 48

    def to_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "package_fixed": self.package_fixed,
            "per_km_package": self.per_km_package,
            "per_km_unit": self.per_km_unit,
            "handling_per_package": _type_map(self.handling_per_package),
            "handling_per_unit": _type_map(self.handling_per_unit),
            "split_penalty": self.split_penalty,
            "express_surcharge": self.express_surcharge,
            "same_day_surcharge": self.same_day_surcharge,
            "same_day_radius_km": self.same_day_radius_km,
            "pickup_handling_per_package": self.pickup_handling_per_package,
            "pickup_handling_per_unit": self.pickup_handling_per_unit,
            "transfer_fixed": self.transfer_fixed,
            "transfer_per_km": self.transfer_per_km,
            "transfer_lead_hours": self.transfer_lead_hours,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostModel:
        """Validate and build; keys left out keep their defaults."""
        known = set(cls().to_dict())
        unknown = sorted(set(data) - known)
        if unknown:
            raise SourcingRuleError(
                "invalid_cost_model", f"unknown fields: {', '.join(unknown)}", fields=unknown
            )
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key == "currency":
                if not (isinstance(value, str) and len(value) == 3 and value.isalpha()):
                    raise SourcingRuleError(
                        "invalid_cost_model", "currency must be an ISO 4217 code", currency=value
                    )
                out[key] = value.upper()
            elif key in ("handling_per_package", "handling_per_unit"):
                if not isinstance(value, Mapping):
                    raise SourcingRuleError(
                        "invalid_cost_model", f"{key} maps location types to amounts"
                    )
                types = {t.value for t in LocationType}
                bad = sorted(set(value) - types)
                if bad:
                    raise SourcingRuleError(
                        "invalid_cost_model",
                        f"{key}: unknown location types {', '.join(bad)}",
                        allowed=sorted(types),
                    )
                merged = dict(getattr(cls(), key))
                for t, amount in value.items():
                    merged[t] = _non_negative_int(f"{key}.{t}", amount)
                out[key] = merged
            elif key in ("per_km_package", "per_km_unit", "transfer_per_km", "same_day_radius_km"):
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                    or value < 0
                ):
                    raise SourcingRuleError(
                        "invalid_cost_model", f"{key} must be a number >= 0", **{key: value}
                    )
                out[key] = float(value)
            else:
                out[key] = _non_negative_int(key, value)
        return cls(**out)


def _non_negative_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SourcingRuleError(
            "invalid_cost_model", f"{key} must be a whole number >= 0", **{key: value}
        )
    return value


# --- problem ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True)
class Constraints:
    max_packages: int | None = None
    ship_together: tuple[tuple[str, ...], ...] = ()  # SKUs that must leave one location together
    split_lines: bool = True  # may one line's units come from several locations?
    allow_partial: bool = False
    allow_transfers: bool = True  # pickup orders: may stock move to the pickup store first?


@dataclass(frozen=True)
class SourceLocation:
    id: str
    code: str
    type: str
    latitude: float | None = None
    longitude: float | None = None
    capabilities: frozenset[str] = frozenset()
    name: str = ""


_CAP_BITS = {
    Capability.SHIP.value: 1,
    Capability.SHIP_FROM_STORE.value: 2,
    Capability.PICKUP.value: 4,
    Capability.CURBSIDE.value: 8,
    Capability.SAME_DAY.value: 16,
}
SHIPS = 1 | 2
TYPES = [t.value for t in LocationType]


class Network:
    """The locations as parallel arrays (built once, shared by many problems)."""

    def __init__(self, locations: Sequence[SourceLocation]) -> None:
        self.locations = tuple(locations)
        self.index = {loc.id: i for i, loc in enumerate(self.locations)}
        if len(self.index) != len(self.locations):
            raise SourcingRuleError("duplicate_location", "location ids must be unique")
        self.lat = np.array(
            [np.nan if loc.latitude is None else loc.latitude for loc in self.locations],
            dtype=np.float64,
        )
        self.lon = np.array(
            [np.nan if loc.longitude is None else loc.longitude for loc in self.locations],
            dtype=np.float64,
        )
        self.has_coords: BoolArray = ~(np.isnan(self.lat) | np.isnan(self.lon))
        self.type_code = np.array(
            [TYPES.index(loc.type) if loc.type in TYPES else 0 for loc in self.locations],
            dtype=np.int64,
        )
        self.cap_bits = np.array(
            [sum(_CAP_BITS.get(c, 0) for c in set(loc.capabilities)) for loc in self.locations],
            dtype=np.int64,
        )

    def __len__(self) -> int:
        return len(self.locations)


@dataclass(frozen=True, eq=False)
class SourcingProblem:
    """``atp[i, k]``: units of ``lines[k].sku`` promisable at ``network.locations[i]``;
    ``capacity[i]``: units the location can still pick today (``UNLIMITED`` = no limit)."""

    network: Network
    lines: tuple[Line, ...]
    atp: IntArray
    capacity: IntArray
    method: Method = Method.STANDARD
    destination: Point | None = None
    pickup_location_id: str | None = None
    constraints: Constraints = Constraints()
    cost_model: CostModel = field(default_factory=CostModel)
    strategy: Strategy = Strategy.COST_OPTIMAL

    @property
    def skus(self) -> list[str]:
        return [line.sku for line in self.lines]

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)


def build_problem(
    locations: Sequence[SourceLocation] | Network,
    lines: Iterable[tuple[str, int] | Line],
    atp: Mapping[tuple[str, str], int],
    *,
    capacity: Mapping[str, int | None] | None = None,
    method: Method | str = Method.STANDARD,
    destination: Point | tuple[float, float] | None = None,
    pickup_location_id: str | None = None,
    constraints: Constraints | None = None,
    cost_model: CostModel | None = None,
    strategy: Strategy | str = Strategy.COST_OPTIMAL,
) -> SourcingProblem:
    """A validated problem from plain mappings: ``atp[(location_id, sku)]`` and
    ``capacity[location_id]`` (missing or None: unlimited)."""
    network = locations if isinstance(locations, Network) else Network(locations)
    parsed = tuple(x if isinstance(x, Line) else Line(x[0], x[1]) for x in lines)
    atp_matrix = np.zeros((len(network), len(parsed)), dtype=np.int64)
    col = {line.sku: k for k, line in enumerate(parsed)}
    for (loc_id, sku), value in atp.items():
        i = network.index.get(loc_id)
        k = col.get(sku)
        if i is not None and k is not None:
            atp_matrix[i, k] = max(0, int(value))
    caps = np.full(len(network), UNLIMITED, dtype=np.int64)
    for loc_id, limit in (capacity or {}).items():
        if limit is not None and loc_id in network.index:
            caps[network.index[loc_id]] = max(0, int(limit))
    if isinstance(destination, tuple):
        destination = Point(*destination)
    problem = SourcingProblem(
        network=network,
        lines=parsed,
        atp=atp_matrix,
        capacity=caps,
        method=method if isinstance(method, Method) else parse_method(method),
        destination=destination,
        pickup_location_id=pickup_location_id,
        constraints=constraints or Constraints(),
        cost_model=cost_model or CostModel(),
        strategy=strategy if isinstance(strategy, Strategy) else parse_strategy(strategy),
    )
    validate_problem(problem)
    return problem


def validate_problem(problem: SourcingProblem) -> None:
    lines = problem.lines
    if not lines:
        raise SourcingRuleError("lines_required", "give at least one line")
    if len(lines) > MAX_LINES:
        raise SourcingRuleError(
            "too_many_lines", f"at most {MAX_LINES} lines", limit=MAX_LINES, given=len(lines)
        )
    seen: set[str] = set()
    for line in lines:
        if not line.sku:
            raise SourcingRuleError("invalid_sku", "every line needs a SKU")
        if line.sku in seen:
            raise SourcingRuleError(
                "duplicate_sku", f"SKU {line.sku!r} appears twice; merge its lines", sku=line.sku
            )
        seen.add(line.sku)
        q = line.quantity
        if isinstance(q, bool) or not isinstance(q, int) or q <= 0:
            raise SourcingRuleError(
                "invalid_quantity",
                "quantity must be a positive whole number",
                sku=line.sku,
                quantity=q,
            )
    c = problem.constraints
    if c.max_packages is not None and c.max_packages < 1:
        raise SourcingRuleError(
            "invalid_max_packages", "max_packages must be at least 1", max_packages=c.max_packages
        )
    for group in c.ship_together:
        unknown = sorted(set(group) - seen)
        if unknown:
            raise SourcingRuleError(
                "invalid_ship_together",
                f"ship_together names SKUs that are not in the order: {', '.join(unknown)}",
                skus=unknown,
            )
    if problem.method in PICKUP_METHODS:
        if not problem.pickup_location_id:
            raise SourcingRuleError(
                "pickup_location_required", f"method {problem.method.value!r} needs a pickup store"
            )
        if problem.pickup_location_id not in problem.network.index:
            raise SourcingRuleError(
                "pickup_location_unknown",
                f"pickup location {problem.pickup_location_id!r} is not a candidate location",
                location_id=problem.pickup_location_id,
            )
    elif problem.destination is None:
        raise SourcingRuleError(
            "destination_required", f"method {problem.method.value!r} needs a destination"
        )
    if problem.atp.shape != (len(problem.network), len(lines)):
        raise SourcingRuleError("invalid_atp", "ATP matrix shape does not match the problem")


# --- compiled instance -----------------------------------------------------------------------


@dataclass(frozen=True)
class Infeasibility:
    code: Reason
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "details": dict(self.details)}


def _round_half_up(values: FloatArray) -> IntArray:
    out: IntArray = np.floor(values + 0.5).astype(np.int64)
    return out


@dataclass(eq=False)
class Instance:
    """The eligible candidates of a problem with their integer cost coefficients.

    Row ``j`` is network location ``rows[j]``. ``A[j, k]`` = min(ATP, quantity) of line ``k``;
    ``cap[j]`` remaining capacity (a large number when unlimited). ``Fo``/``co`` are the
    strategy's objective coefficients: ``weight * primary + true cost``."""

    problem: SourcingProblem
    q: IntArray
    rows: IntArray
    kind_code: IntArray  # 0 ship, 1 pickup at the store itself, 2 transfer
    A: IntArray
    cap: IntArray
    dist: FloatArray
    lead_hours: IntArray
    ship_pkg: IntArray
    ship_unit: IntArray
    hand_pkg: IntArray
    hand_unit: IntArray
    transfer_pkg: IntArray
    F: IntArray
    c: IntArray
    prim_pkg: FloatArray
    prim_unit: FloatArray
    weight: float
    Fo: FloatArray
    co: FloatArray
    groups: list[int]  # bitmasks of lines that must come from one location, unsplit
    blocked: Infeasibility | None = None
    capable: int = 0  # locations able to serve the method, with or without stock
    supply: IntArray | None = None  # units per line at capable locations
    supply_open: IntArray | None = None  # the same at capable locations with capacity left
    group_lines: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.group_lines = [[k for k in range(len(self.q)) if g >> k & 1] for g in self.groups]

    @property
    def n(self) -> int:
        return len(self.q)

    @property
    def m(self) -> int:
        return len(self.rows)

    @property
    def split_penalty(self) -> int:
        return self.problem.cost_model.split_penalty


BIG_CAPACITY = 1 << 40


def line_groups(problem: SourcingProblem) -> list[int]:
    """Bitmasks of lines that must ship together (merged when they overlap), plus every line on
    its own when lines may not be split."""
    col = {line.sku: k for k, line in enumerate(problem.lines)}
    parent = list(range(len(problem.lines)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    grouped: set[int] = set()
    for group in problem.constraints.ship_together:
        ks = [col[s] for s in group]
        grouped.update(ks)
        for k in ks[1:]:
            parent[find(k)] = find(ks[0])
    if not problem.constraints.split_lines:
        grouped.update(range(len(problem.lines)))
    masks: dict[int, int] = {}
    for k in sorted(grouped):
        root = find(k)
        masks[root] = masks.get(root, 0) | (1 << k)
    return sorted(masks.values())


def offers(network: Network, i: int, method: Method) -> bool:
    """Whether location ``i`` hands orders over by this pickup method (a locker always
    offers pickup)."""
    if method is Method.CURBSIDE:
        return bool(network.cap_bits[i] & _CAP_BITS["curbside"])
    return bool(network.cap_bits[i] & _CAP_BITS["pickup"]) or network.locations[i].type == "locker"


def compile_problem(problem: SourcingProblem) -> Instance:
    """The eligible candidates (capable of the method, with stock of the order and capacity
    left) and their integer cost coefficients, plus the strategy's objective."""
    net = problem.network
    cm = problem.cost_model
    q = np.array([line.quantity for line in problem.lines], dtype=np.int64)
    method = problem.method
    blocked: Infeasibility | None = None
    cap_all = np.where(problem.capacity < 0, BIG_CAPACITY, problem.capacity)
    has_stock = (problem.atp > 0).any(axis=1)
    usable = has_stock & (cap_all > 0)
    kind_code = np.zeros(len(net), dtype=np.int64)  # 0 ship, 1 pickup, 2 transfer
    if method in PICKUP_METHODS:
        p = net.index[problem.pickup_location_id or ""]
        if not offers(net, p, method):
            blocked = Infeasibility(
                Reason.PICKUP_LOCATION_NOT_CAPABLE,
                f"location {net.locations[p].code!r} does not offer {method.value}",
                {"location_id": net.locations[p].id, "method": method.value},
            )
        dist = np.zeros(len(net))
        eligible = np.zeros(len(net), dtype=bool)
        eligible[p] = True
        kind_code[:] = 2
        kind_code[p] = 1
        if problem.constraints.allow_transfers and net.has_coords[p]:
            dist = np.nan_to_num(haversine_km(net.lat[p], net.lon[p], net.lat, net.lon))
            eligible |= ((net.cap_bits & SHIPS) != 0) & net.has_coords
        dist[p] = 0.0
    else:
        dest = problem.destination
        assert dest is not None
        dist = np.nan_to_num(
            haversine_km(dest.latitude, dest.longitude, net.lat, net.lon), nan=np.inf
        )
        if method is Method.SAME_DAY:
            eligible = ((net.cap_bits & _CAP_BITS["same_day"]) != 0) & (
                dist <= cm.same_day_radius_km
            )
        else:
            eligible = ((net.cap_bits & SHIPS) != 0) & net.has_coords
    rows = np.nonzero(eligible & usable)[0].astype(np.int64)
    if blocked is not None:
        rows = rows[:0]
        eligible = np.zeros(len(net), dtype=bool)
    supply = eligible.astype(np.int64) @ problem.atp
    supply_open = (eligible & (cap_all > 0)).astype(np.int64) @ problem.atp
    d = dist[rows]
    kc = kind_code[rows]
    types = net.type_code[rows]
    hp = np.array([cm.handling_per_package.get(t, 0) for t in TYPES], dtype=np.int64)[types]
    hu = np.array([cm.handling_per_unit.get(t, 0) for t in TYPES], dtype=np.int64)[types]
    zeros = np.zeros(len(rows), dtype=np.int64)
    if method in PICKUP_METHODS:
        hp = np.where(kc == 1, cm.pickup_handling_per_package, hp)
        hu = np.where(kc == 1, cm.pickup_handling_per_unit, hu)
        ship_pkg, ship_unit = zeros, zeros.copy()
        transfer_pkg = np.where(
            kc == 2, _round_half_up(cm.transfer_fixed + cm.transfer_per_km * d), 0
        )
        lead = np.where(kc == 2, cm.transfer_lead_hours, 0).astype(np.int64)
    else:
        surcharge = {Method.EXPRESS: cm.express_surcharge, Method.SAME_DAY: cm.same_day_surcharge}
        base = cm.package_fixed + surcharge.get(method, 0)
        ship_pkg = _round_half_up(base + cm.per_km_package * d)
        ship_unit = _round_half_up(cm.per_km_unit * d)
        transfer_pkg = zeros
        lead = zeros.copy()
    F = ship_pkg + hp + transfer_pkg + cm.split_penalty
    c = ship_unit + hu
    A = np.minimum(problem.atp[rows], q[None, :])
    cap = cap_all[rows]
    prim_pkg = np.zeros(len(rows))
    prim_unit = np.zeros(len(rows))
    strategy = problem.strategy
    if strategy is Strategy.NEAREST:
        prim_unit = np.round(d, 3)
    elif strategy is Strategy.FEWEST_SPLITS:
        prim_pkg = np.ones(len(rows))
    elif strategy is Strategy.STORE_FIRST:
        prim_unit = (types != TYPES.index("store")).astype(np.float64)
    elif strategy is Strategy.WAREHOUSE_FIRST:
        prim_unit = (types != TYPES.index("warehouse")).astype(np.float64)
    units = int(q.sum())
    weight = 0.0
    if strategy is not Strategy.COST_OPTIMAL and len(rows):
        # more than any plan can cost (at most one package per unit), so the criterion wins
        weight = float(min(units, len(rows)) * int(F.max()) + units * int(c.max()) + 1)
    Fo = F + weight * prim_pkg
    co = c + weight * prim_unit
    return Instance(
        problem=problem,
        q=q,
        rows=rows,
        kind_code=kc,
        A=A,
        cap=cap,
        dist=d,
        lead_hours=lead,
        ship_pkg=ship_pkg,
        ship_unit=ship_unit,
        hand_pkg=hp,
        hand_unit=hu,
        transfer_pkg=transfer_pkg,
        F=F,
        c=c,
        prim_pkg=prim_pkg,
        prim_unit=prim_unit,
        weight=weight,
        Fo=Fo.astype(np.float64),
        co=co.astype(np.float64),
        groups=line_groups(problem),
        blocked=blocked,
        capable=int(eligible.sum()),
        supply=supply.astype(np.int64),
        supply_open=supply_open.astype(np.int64),
    )


# --- plans -----------------------------------------------------------------------------------

Assignment = dict[int, IntArray]  # instance row -> units per line


@dataclass(frozen=True)
class PackageCost:
    shipping: int
    handling: int
    transfer: int

    @property
    def total(self) -> int:
        return self.shipping + self.handling + self.transfer


@dataclass(frozen=True)
class Package:
    location_id: str
    location_code: str
    location_type: str
    kind: PackageKind
    lines: tuple[tuple[str, int], ...]  # (sku, units)
    distance_km: float
    lead_time_hours: int
    cost: PackageCost

    @property
    def units(self) -> int:
        return sum(q for _, q in self.lines)


@dataclass(frozen=True)
class CostBreakdown:
    shipping: int
    handling: int
    transfer: int
    split_penalty: int
    currency: str

    @property
    def total(self) -> int:
        return self.shipping + self.handling + self.transfer + self.split_penalty

    def to_dict(self) -> dict[str, Any]:
        return {
            "shipping": self.shipping,
            "handling": self.handling,
            "transfer": self.transfer,
            "split_penalty": self.split_penalty,
            "total": self.total,
            "currency": self.currency,
        }


@dataclass(frozen=True)
class Plan:
    packages: tuple[Package, ...]
    unfulfilled: tuple[tuple[str, int], ...]
    cost: CostBreakdown
    primary: float  # the strategy's criterion (0 for cost-optimal)

    @property
    def total(self) -> int:
        return self.cost.total

    @property
    def complete(self) -> bool:
        return not self.unfulfilled

    @property
    def units(self) -> int:
        return sum(p.units for p in self.packages)

    def locations(self) -> list[str]:
        return [p.location_id for p in self.packages]

    def rank(self) -> tuple[int, float, int]:
        """Smaller is better: fewer unfulfilled units, then the strategy's criterion, then
        cost."""
        missing = sum(q for _, q in self.unfulfilled)
        return (missing, round(self.primary, 6), self.total)


def objective(inst: Instance, assignment: Assignment) -> float:
    total = 0.0
    for j, x in assignment.items():
        total += inst.Fo[j] + inst.co[j] * float(x.sum())
    return total


def to_plan(inst: Instance, assignment: Assignment) -> Plan:
    """The plan of an assignment with its exact integer cost breakdown."""
    net = inst.problem.network
    lines = inst.problem.lines
    packages: list[Package] = []
    filled = np.zeros(inst.n, dtype=np.int64)
    primary = 0.0
    for j, x in assignment.items():
        units = int(x.sum())
        if units <= 0:
            continue
        filled += x
        loc = net.locations[int(inst.rows[j])]
        cost = PackageCost(
            shipping=int(inst.ship_pkg[j] + inst.ship_unit[j] * units),
            handling=int(inst.hand_pkg[j] + inst.hand_unit[j] * units),
            transfer=int(inst.transfer_pkg[j]),
        )
        primary += float(inst.prim_pkg[j] + inst.prim_unit[j] * units)
        packages.append(
            Package(
                location_id=loc.id,
                location_code=loc.code,
                location_type=loc.type,
                kind=KINDS[int(inst.kind_code[j])],
                lines=tuple((lines[k].sku, int(x[k])) for k in range(inst.n) if x[k] > 0),
                distance_km=round(float(inst.dist[j]), 3),
                lead_time_hours=int(inst.lead_hours[j]),
                cost=cost,
            )
        )
    packages.sort(key=lambda p: (-p.units, p.distance_km, p.location_code))
    unfulfilled = tuple(
        (lines[k].sku, int(inst.q[k] - filled[k])) for k in range(inst.n) if filled[k] < inst.q[k]
    )
    breakdown = CostBreakdown(
        shipping=sum(p.cost.shipping for p in packages),
        handling=sum(p.cost.handling for p in packages),
        transfer=sum(p.cost.transfer for p in packages),
        split_penalty=inst.split_penalty * max(0, len(packages) - 1),
        currency=inst.problem.cost_model.currency,
    )
    return Plan(tuple(packages), unfulfilled, breakdown, round(primary, 6))


# --- checking a plan against the problem (independent of the solvers) ----------------------


def violations(problem: SourcingProblem, plan: Plan) -> list[str]:
    """Every way ``plan`` breaks the problem's rules: ATP, capacity, capabilities, maximum
    packages, ship-together groups, unsplittable lines, quantities. Empty when valid."""
    out: list[str] = []
    net = problem.network
    col = {line.sku: k for k, line in enumerate(problem.lines)}
    method = problem.method
    cm = problem.cost_model
    c = problem.constraints
    sent = dict.fromkeys(col, 0)
    sources: dict[str, set[str]] = {sku: set() for sku in col}
    seen_locations: set[str] = set()
    pickup = net.index.get(problem.pickup_location_id or "")
    for p in plan.packages:
        i = net.index.get(p.location_id)
        if i is None:
            out.append(f"{p.location_id}: not a candidate location")
            continue
        if p.location_id in seen_locations:
            out.append(f"{p.location_id}: two packages from one location")
        seen_locations.add(p.location_id)
        bits = int(net.cap_bits[i])
        if method in PICKUP_METHODS:
            if i != pickup and (not c.allow_transfers or not bits & SHIPS):
                out.append(f"{p.location_id}: cannot send a transfer")
            if pickup is not None and not offers(net, pickup, method):
                out.append(f"{problem.pickup_location_id}: pickup store lacks {method.value}")
        elif method is Method.SAME_DAY:
            assert problem.destination is not None
            d = float(
                haversine_km(
                    problem.destination.latitude,
                    problem.destination.longitude,
                    net.lat[i : i + 1],
                    net.lon[i : i + 1],
                )[0]
            )
            if not bits & _CAP_BITS["same_day"] or not d <= cm.same_day_radius_km:
                out.append(f"{p.location_id}: not capable of same-day delivery")
        elif not bits & SHIPS:
            out.append(f"{p.location_id}: not capable of shipping")
        units = 0
        for sku, qty in p.lines:
            k = col.get(sku)
            if k is None:
                out.append(f"{p.location_id}: {sku} is not in the order")
                continue
            if qty <= 0:
                out.append(f"{p.location_id}: {sku} has {qty} units")
            if qty > problem.atp[i, k]:
                out.append(f"{p.location_id}: {sku} {qty} > ATP {int(problem.atp[i, k])}")
            sent[sku] += qty
            sources[sku].add(p.location_id)
            units += qty
        cap = int(problem.capacity[i])
        if cap != UNLIMITED and units > cap:
            out.append(f"{p.location_id}: {units} units > remaining capacity {cap}")
    missing = dict(plan.unfulfilled)
    for line in problem.lines:
        if sent[line.sku] + missing.get(line.sku, 0) != line.quantity:
            out.append(
                f"{line.sku}: {sent[line.sku]} planned + {missing.get(line.sku, 0)} unfulfilled"
                f" != {line.quantity}"
            )
    if plan.unfulfilled and not c.allow_partial:
        out.append("partial plan although partial fulfilment is not allowed")
    if c.max_packages is not None and len(plan.packages) > c.max_packages:
        out.append(f"{len(plan.packages)} packages > max {c.max_packages}")
    for mask in line_groups(problem):
        skus = [problem.lines[k].sku for k in range(len(problem.lines)) if mask >> k & 1]
        shipped = [s for s in skus if sent[s] > 0]
        if not shipped:
            continue
        locs = set().union(*(sources[s] for s in shipped))
        if len(locs) > 1 or len(shipped) != len(skus) or any(missing.get(s) for s in skus):
            out.append(f"ship together {skus}: split over {sorted(locs)} or incomplete")
    return out
