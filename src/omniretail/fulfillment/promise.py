"""Delivery promise (pure): the earliest delivery or pickup time per method.

Each location works on its own calendar, in its own IANA time zone: opening hours per weekday
(none at all means it works around the clock), holidays (local dates), a cut-off time per
method (``standard``, ``express``, ``same_day``) and a handling time counted in open time
only. The carrier collects on collection days, delivers on delivery days, not on its
holidays, in a delivery window, and takes a number of delivery days set by distance band.

* **Delivery**: ready = now + handling (open time); it leaves at the first cut-off at or after
  ready on a day the location works and the carrier collects; it arrives after the band's
  transit days, counted in carrier delivery days (``express``: its own day count;
  ``same_day``: the same day, in the evening window). "Order within" is the latest order time
  that still makes that cut-off: the cut-off minus the handling time in open time.
* **Pickup**: ready = now (+ transfer lead time when stock moves in first) + handling at the
  pickup store in its open time, rounded up to the quarter hour, moved to the next opening if
  the store is closed then.

All instants are aware; arithmetic is on UTC instants, so the 23- and 25-hour days of a
daylight-saving change come out right. A local wall time that does not exist (inside the
spring-forward gap) is read with the offset before the change, as ``zoneinfo`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from omniretail.fulfillment.domain import SourcingRuleError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
HORIZON_DAYS = 60  # how far ahead a promise looks before giving up
DELIVERY_METHODS = ("standard", "express", "same_day")


def _hhmm(value: str, what: str) -> time:
    try:
        hours, minutes = value.split(":")
        h, m = int(hours), int(minutes)
    except (ValueError, AttributeError):
        raise SourcingRuleError("invalid_time", f"{what}: expected HH:MM", value=value) from None
    if h == 24 and m == 0:
        return time(0, 0)  # as an end of day: handled by callers via _end_of
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise SourcingRuleError("invalid_time", f"{what}: expected HH:MM", value=value)
    return time(h, m)


def _local(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    """The aware instant of local wall time ``hhmm`` on ``day`` (24:00 = next midnight)."""
    if hhmm == "24:00":
        return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)
    return datetime.combine(day, _hhmm(hhmm, "time"), tzinfo=zone)


@dataclass(frozen=True)
class LocationCalendar:
    location_id: str
    code: str
    name: str
    timezone: str
    opening_hours: Mapping[str, Sequence[Sequence[str]]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    cutoffs: Mapping[str, str] = field(default_factory=dict)  # method -> "HH:MM" local
    handling_minutes: int = 120

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def always_open(self) -> bool:
        return not any(self.opening_hours.values())

    def works_on(self, day: date) -> bool:
        if day in self.holidays:
            return False
        return self.always_open or bool(self.opening_hours.get(WEEKDAYS[day.weekday()]))

    def intervals(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals (aware, in UTC) that end after ``start``, in order."""
        zone = self.zone
        day = start.astimezone(zone).date()
        for offset in range(-1, HORIZON_DAYS):
            d = day + timedelta(days=offset)
            if d in self.holidays:
                continue
            if self.always_open:
                spans: Sequence[Sequence[str]] = [("00:00", "24:00")]
            else:
                spans = self.opening_hours.get(WEEKDAYS[d.weekday()], [])
            for opens, closes in spans:
                a = _local(d, opens, zone).astimezone(UTC)
                b = _local(d, closes, zone).astimezone(UTC)
                if b > start:
                    yield max(a, start), b

    def intervals_before(self, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals that start before ``end``, latest first (clipped at ``end``)."""
        zone = self.zone
        day = end.astimezone(zone).date()
        for offset in range(1, -HORIZON_DAYS, -1):
            d = day + timedelta(days=offset)
            if d in self.holidays:
                continue
            if self.always_open:
                spans: Sequence[Sequence[str]] = [("00:00", "24:00")]
            else:
                spans = self.opening_hours.get(WEEKDAYS[d.weekday()], [])
            for opens, closes in reversed(list(spans)):
                a = _local(d, opens, zone).astimezone(UTC)
                b = _local(d, closes, zone).astimezone(UTC)
                if a < end:
                    yield a, min(b, end)

    def add_open_time(self, start: datetime, minutes: float) -> datetime:
        """The instant when ``minutes`` of open time starting at ``start`` have passed."""
        left = timedelta(minutes=minutes)
        for a, b in self.intervals(start):
            if b - a >= left:
                return a + left
            left -= b - a
        raise SourcingRuleError(
            "location_never_open",
            f"location {self.code!r} is not open in the next {HORIZON_DAYS} days",
            location_id=self.location_id,
        )

    def subtract_open_time(self, end: datetime, minutes: float) -> datetime:
        """The latest instant from which ``minutes`` of open time end by ``end``."""
        left = timedelta(minutes=minutes)
        for a, b in self.intervals_before(end):
            if b - a >= left:
                return b - left
            left -= b - a
        return end - timedelta(days=HORIZON_DAYS)

    def next_open(self, at: datetime) -> datetime:
        for a, b in self.intervals(at):
            if a <= at < b:
                return at
            return a
        raise SourcingRuleError(
            "location_never_open",
            f"location {self.code!r} is not open in the next {HORIZON_DAYS} days",
            location_id=self.location_id,
        )


@dataclass(frozen=True)
class CarrierCalendar:
    """Carrier and network defaults (a location's own cut-offs override ``cutoffs``)."""

    transit_bands: tuple[tuple[float | None, int], ...] = (
        (50.0, 1),
        (300.0, 1),
        (700.0, 2),
        (None, 3),
    )
    express_days: int = 1
    collection_days: frozenset[str] = frozenset(WEEKDAYS[:5])
    delivery_days: frozenset[str] = frozenset(WEEKDAYS[:6])
    holidays: frozenset[date] = frozenset()
    delivery_window: tuple[str, str] = ("08:00", "18:00")
    same_day_window: tuple[str, str] = ("18:00", "22:00")
    cutoffs: Mapping[str, str] = field(
        default_factory=lambda: {"standard": "16:00", "express": "14:00", "same_day": "12:00"}
    )
    pickup_rounding_minutes: int = 15

    def transit_days(self, method: str, distance_km: float) -> int:
        if method == "same_day":
            return 0
        if method == "express":
            return self.express_days
        for limit, days in self.transit_bands:
            if limit is None or distance_km <= limit:
                return days
        return self.transit_bands[-1][1]

    def collects_on(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.collection_days and day not in self.holidays

    def delivers_on(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.delivery_days and day not in self.holidays

    def to_dict(self) -> dict[str, Any]:
        return {
            "transit_bands": [
                {"max_km": limit, "days": days} for limit, days in self.transit_bands
            ],
            "express_days": self.express_days,
            "collection_days": [d for d in WEEKDAYS if d in self.collection_days],
            "delivery_days": [d for d in WEEKDAYS if d in self.delivery_days],
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "delivery_window": list(self.delivery_window),
            "same_day_window": list(self.same_day_window),
            "cutoffs": dict(self.cutoffs),
            "pickup_rounding_minutes": self.pickup_rounding_minutes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CarrierCalendar:
        base = cls()
        known = set(base.to_dict())
        unknown = sorted(set(data) - known)
        if unknown:
            raise SourcingRuleError(
                "invalid_carrier_calendar", f"unknown fields: {', '.join(unknown)}", fields=unknown
            )
        out: dict[str, Any] = {}
        if "transit_bands" in data:
            bands = []
            for band in data["transit_bands"]:
                limit, days = band.get("max_km"), band.get("days")
                if (limit is not None and (not isinstance(limit, int | float) or limit <= 0)) or (
                    not isinstance(days, int) or isinstance(days, bool) or days < 0
                ):
                    raise SourcingRuleError(
                        "invalid_carrier_calendar",
                        "a transit band is {max_km: number > 0 or null, days: int >= 0}",
                        band=band,
                    )
                bands.append((None if limit is None else float(limit), days))
            if not bands or bands[-1][0] is not None:
                raise SourcingRuleError(
                    "invalid_carrier_calendar", "the last transit band needs max_km null"
                )
            limits = [b[0] for b in bands[:-1]]
            if limits != sorted(limits):  # type: ignore[type-var]
                raise SourcingRuleError(
                    "invalid_carrier_calendar", "transit bands must grow in distance"
                )
            out["transit_bands"] = tuple(bands)
        for key in ("collection_days", "delivery_days"):
            if key in data:
                days = data[key]
                if not isinstance(days, list) or any(d not in WEEKDAYS for d in days):
                    raise SourcingRuleError(
                        "invalid_carrier_calendar", f"{key}: weekdays mon..sun", allowed=WEEKDAYS
                    )
                out[key] = frozenset(days)
        if "holidays" in data:
            out["holidays"] = parse_dates(data["holidays"])
        for key in ("delivery_window", "same_day_window"):
            if key in data:
                window = data[key]
                if not isinstance(window, list | tuple) or len(window) != 2:
                    raise SourcingRuleError("invalid_carrier_calendar", f"{key}: [from, to]")
                for value in window:
                    _hhmm(value, key)
                out[key] = (str(window[0]), str(window[1]))
        if "cutoffs" in data:
            out["cutoffs"] = check_cutoffs(data["cutoffs"])
        for key in ("express_days", "pickup_rounding_minutes"):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise SourcingRuleError(
                        "invalid_carrier_calendar", f"{key} must be a whole number >= 0"
                    )
                out[key] = value
        return cls(**{**base.__dict__, **out})


def check_cutoffs(cutoffs: Any) -> dict[str, str]:
    if not isinstance(cutoffs, Mapping):
        raise SourcingRuleError("invalid_cutoffs", "cut-offs map a method to HH:MM")
    out = {}
    for method, value in cutoffs.items():
        if method not in DELIVERY_METHODS:
            raise SourcingRuleError(
                "invalid_cutoffs", f"unknown method {method!r}", allowed=list(DELIVERY_METHODS)
            )
        _hhmm(value, f"cut-off {method}")
        out[method] = str(value)
    return out


def parse_dates(values: Any) -> frozenset[date]:
    if not isinstance(values, list | tuple | set | frozenset):
        raise SourcingRuleError("invalid_holidays", "holidays are a list of YYYY-MM-DD dates")
    out = set()
    for value in values:
        if isinstance(value, date):
            out.add(value)
            continue
        try:
            out.add(date.fromisoformat(str(value)))
        except ValueError:
            raise SourcingRuleError(
                "invalid_holidays", "holidays are YYYY-MM-DD dates", value=value
            ) from None
    return frozenset(out)


# --- promises --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One package of a plan: where it leaves from, how far it goes, lead time for transfers."""

    calendar: LocationCalendar
    distance_km: float
    lead_time_hours: int = 0


@dataclass(frozen=True)
class PackagePromise:
    location_id: str
    ready_at: datetime
    dispatch_at: datetime | None
    arrives_on: date | None
    order_by: datetime | None


@dataclass(frozen=True)
class Promise:
    method: str
    available: bool
    earliest: datetime | None = None  # delivery window start or pickup ready time
    latest: datetime | None = None  # delivery window end
    order_by: datetime | None = None  # order before this to get this promise
    text: str = ""
    location_id: str | None = None  # pickup store
    reason: str | None = None
    packages: tuple[PackagePromise, ...] = ()


def _duration(delta: timedelta) -> str:
    minutes = max(0, math.floor(delta.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} d")
    if hours:
        parts.append(f"{hours} h")
    if mins or not parts:
        parts.append(f"{mins} min")
    return " ".join(parts)


def _day_text(day: date, today: date) -> str:
    if day == today:
        return "today"
    if day == today + timedelta(days=1):
        return "tomorrow"
    return f"on {DAY_NAMES[day.weekday()]} {day.day} {MONTHS[day.month - 1]}"


def _cutoff(cal: LocationCalendar, carrier: CarrierCalendar, method: str) -> str:
    return cal.cutoffs.get(method) or carrier.cutoffs.get(method) or "16:00"


def _dispatch(
    cal: LocationCalendar, carrier: CarrierCalendar, method: str, ready: datetime
) -> datetime:
    zone = cal.zone
    cutoff = _cutoff(cal, carrier, method)
    day = ready.astimezone(zone).date()
    for offset in range(HORIZON_DAYS):
        d = day + timedelta(days=offset)
        if not (cal.works_on(d) and carrier.collects_on(d)):
            continue
        at = _local(d, cutoff, zone)
        if at >= ready:
            return at.astimezone(UTC)
    raise SourcingRuleError(
        "no_dispatch_day",
        f"location {cal.code!r} has no dispatch day in the next {HORIZON_DAYS} days",
        location_id=cal.location_id,
    )


def _arrival(carrier: CarrierCalendar, dispatch_day: date, days: int) -> date:
    d = dispatch_day
    for _ in range(days):
        d += timedelta(days=1)
        while not carrier.delivers_on(d):
            d += timedelta(days=1)
    if days == 0:
        while not carrier.delivers_on(d):
            d += timedelta(days=1)
    return d


def promise_delivery(
    method: str,
    sources: Sequence[Source],
    carrier: CarrierCalendar,
    now: datetime,
    destination_timezone: str | None = None,
) -> Promise:
    """When a delivery by ``method`` from these packages arrives (the last package counts)."""
    if not sources:
        return Promise(method, False, reason="no location can send this order")
    if now.tzinfo is None:
        raise SourcingRuleError("naive_datetime", "now must be timezone-aware")
    dest_zone = ZoneInfo(destination_timezone or sources[0].calendar.timezone)
    packages: list[PackagePromise] = []
    for src in sources:
        cal = src.calendar
        start = now + timedelta(hours=src.lead_time_hours)
        ready = cal.add_open_time(start, cal.handling_minutes)
        dispatch = _dispatch(cal, carrier, method, ready)
        local_dispatch = dispatch.astimezone(cal.zone).date()
        if method == "same_day":
            arrives = local_dispatch
            if not carrier.delivers_on(arrives):
                arrives = _arrival(carrier, local_dispatch, 0)
        else:
            arrives = _arrival(
                carrier, local_dispatch, carrier.transit_days(method, src.distance_km)
            )
        order_by = cal.subtract_open_time(dispatch, cal.handling_minutes) - timedelta(
            hours=src.lead_time_hours
        )
        packages.append(PackagePromise(cal.location_id, ready, dispatch, arrives, order_by))
    arrives_on = max(p.arrives_on for p in packages if p.arrives_on is not None)
    order_by = min(p.order_by for p in packages if p.order_by is not None)
    window = carrier.same_day_window if method == "same_day" else carrier.delivery_window
    earliest = _local(arrives_on, window[0], dest_zone)
    latest = _local(arrives_on, window[1], dest_zone)
    today = now.astimezone(dest_zone).date()
    when = _day_text(arrives_on, today)
    if method == "same_day" and arrives_on == today:
        when = f"today {window[0]}–{window[1]}"
    left = order_by - now
    if timedelta(0) <= left < timedelta(minutes=1):
        text = f"Order now for delivery {when}"
    elif timedelta(0) <= left <= timedelta(hours=24):
        text = f"Order within {_duration(left)} for delivery {when}"
    else:
        text = f"Delivery {when}"
    return Promise(
        method=method,
        available=True,
        earliest=earliest,
        latest=latest,
        order_by=order_by,
        text=text,
        packages=tuple(packages),
    )


def _round_up(at: datetime, minutes: int) -> datetime:
    if minutes <= 1:
        extra = 0 if at.second == 0 and at.microsecond == 0 else 1
        return at.replace(second=0, microsecond=0) + timedelta(minutes=extra)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    step = timedelta(minutes=minutes)
    count = math.ceil((at - epoch) / step)
    return epoch + count * step


def promise_pickup(
    store: LocationCalendar,
    sources: Sequence[Source],
    carrier: CarrierCalendar,
    now: datetime,
    method: str = "pickup",
) -> Promise:
    """When an order is ready for pickup at ``store``: its own stock after handling, stock
    from elsewhere after the transfer lead time and handling on arrival."""
    if now.tzinfo is None:
        raise SourcingRuleError("naive_datetime", "now must be timezone-aware")
    lead = max((s.lead_time_hours for s in sources), default=0)
    start = now + timedelta(hours=lead)
    ready = store.add_open_time(start, store.handling_minutes)
    ready = store.next_open(_round_up(ready, carrier.pickup_rounding_minutes))
    zone = store.zone
    local = ready.astimezone(zone)
    day = _day_text(local.date(), now.astimezone(zone).date())
    name = store.name or store.code
    text = f"Ready for {'curbside ' if method == 'curbside' else ''}pickup {day} "
    text += f"{local:%H:%M} at {name}"
    packages = tuple(
        PackagePromise(s.calendar.location_id, ready, None, None, None) for s in sources
    )
    return Promise(
        method=method,
        available=True,
        earliest=ready,
        text=text,
        location_id=store.location_id,
        packages=packages,
    )
