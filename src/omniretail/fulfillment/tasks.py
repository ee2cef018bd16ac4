"""Store and warehouse fulfilment: tasks, pick lists, pick exceptions, SLA timers, shipments.

When an order's stock is allocated (``order.placed``, or released from a fraud review), every
delivery group gets one **task** per location that holds its units:

* ``pickup`` at the pickup store itself (click & collect, curbside):
  assigned → picking → picked → packed → ready → handed_over;
* ``ship`` at the shipping location (home delivery, ship-from-store):
  assigned → picking → picked → packed → handed_over (with a shipment);
* ``transfer`` at another location feeding a pickup store or locker: as ``ship``, its
  shipment goes to the pickup location;
* ``collect`` at the pickup store or locker once a transfer left: assigned → ready →
  handed_over.

Any open task can be cancelled (the order was cancelled, or nothing was found to pick).

**Pick exceptions.** Recording a pick with fewer units than asked writes the missing units off
at that location (allocation and on hand go down, ledger reason ``cycle_count``) and re-sources
them at once: the sourcing engine plans over the other locations (the failing one excluded)
when the destination has coordinates, else the channel's other sourcing locations are tried
in order; the new reservation joins the order and a new task appears where the units are.
Units found nowhere are settled with the customer (``order.settle_unavailable``: voided from
the authorisation or refunded).

**SLA timers.** A task is due ``pick_minutes[method]`` after it was created; once ready, a
pickup waits ``pickup_hold_hours``; :func:`check_timers` (worker, ``omni fulfillment
timers``) emits ``fulfillment.task_overdue`` once per late task, a reminder
``fulfillment.pickup_reminder`` ``reminder_hours`` before the hold ends, and cancels orders
not collected in time (``fulfillment.pickup_expired``; the stock goes back).

**Order lifecycle.** Tasks move the order along: the first task started makes it
``fulfilling``; all pickup work ready makes it ``ready_for_pickup`` (the customer is told),
all handed over ``picked_up``; all parcels of a delivery order shipped makes it ``shipped``
(partial shipments before that: ``shipment.shipped`` with ``partial: true``) and all delivered
``delivered``. Stock leaves each location when its own parcel ships or the customer collects;
a transfer's units move to the pickup location (still allocated) when its collect task is
ready, so an order not collected gives them back where they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omniretail.core.errors import AppError, conflict, invalid, not_found
from omniretail.core.events import emit
from omniretail.core.ids import new_id
from omniretail.core.timeutil import as_utc, utcnow
from omniretail.fulfillment import carriers
from omniretail.fulfillment import service as sourcing
from omniretail.fulfillment.models import FulfillmentTask, FulfillmentTaskLine, Shipment
from omniretail.inventory import picking
from omniretail.inventory import service as inventory
from omniretail.order import service as orders

# --- the state machine (pure) -----------------------------------------------------------------

STEPS: dict[str, tuple[str, ...]] = {
    "pickup": ("assigned", "picking", "picked", "packed", "ready", "handed_over"),
    "ship": ("assigned", "picking", "picked", "packed", "handed_over"),
    "transfer": ("assigned", "picking", "picked", "packed", "handed_over"),
    "collect": ("assigned", "ready", "handed_over"),
}
FINAL = frozenset({"handed_over", "cancelled"})
PICKUP_METHODS = frozenset({"bopis", "curbside", "locker", "click_and_collect", "pickup"})
NO_TASK_METHODS = frozenset({"in_store"})


def next_state(kind: str, state: str) -> str | None:
    steps = STEPS[kind]
    if state not in steps or state == steps[-1]:
        return None
    return steps[steps.index(state) + 1]


def check_step(kind: str, state: str, target: str) -> None:
    """409 ``invalid_task_transition`` unless ``target`` is the next step (or a cancel)."""
    if target == "cancelled" and state not in FINAL:
        return
    if next_state(kind, state) != target:
        raise conflict(
            "invalid_task_transition",
            f"a {kind} task that is {state} cannot become {target}",
            kind=kind,
            state=state,
            target=target,
            allowed=[x for x in (next_state(kind, state),) if x]
            + ([] if state in FINAL else ["cancelled"]),
        )


def task_kind(method: str, location_id: str, pickup_location_id: str | None) -> str:
    if method in PICKUP_METHODS:
        return "pickup" if location_id == pickup_location_id else "transfer"
    return "ship"


# --- settings ---------------------------------------------------------------------------------

SLA_KEY = "task_sla"
DEFAULT_SLA: dict[str, Any] = {
    "pick_minutes": {
        "curbside": 60,
        "bopis": 120,
        "same_day": 120,
        "locker": 240,
        "express": 240,
        "standard": 1440,
        "ship_from_store": 1440,
    },
    "default_pick_minutes": 1440,
    "pickup_hold_hours": 168,
    "reminder_hours": 24,
    "cancel_uncollected": True,
}


def get_sla(session: Session) -> dict[str, Any]:
    stored = sourcing._setting(session, SLA_KEY) or {}
    merged = {**DEFAULT_SLA, **stored}
    merged["pick_minutes"] = {**DEFAULT_SLA["pick_minutes"], **stored.get("pick_minutes", {})}
    return merged


def set_sla(session: Session, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Change the SLA settings (unknown keys or non-positive durations: 422)."""
    current = get_sla(session)
    unknown = sorted(set(changes) - set(DEFAULT_SLA))
    if unknown:
        raise invalid("unknown_setting", "unknown SLA settings", keys=unknown)
    merged = {**current, **{k: v for k, v in changes.items() if k != "pick_minutes"}}
    merged["pick_minutes"] = {**current["pick_minutes"], **(changes.get("pick_minutes") or {})}
    durations = {
        **{f"pick_minutes.{k}": v for k, v in merged["pick_minutes"].items()},
        **{k: merged[k] for k in ("default_pick_minutes", "pickup_hold_hours")},
    }
    bad = sorted(k for k, v in durations.items() if not isinstance(v, int) or v <= 0)
    if bad or not isinstance(merged["reminder_hours"], int) or merged["reminder_hours"] < 0:
        raise invalid("invalid_duration", "durations must be positive whole numbers", keys=bad)
    sourcing._put_setting(session, SLA_KEY, merged)
    return merged


# --- views ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskLineView:
    sku: str
    title: str
    quantity: int
    picked: int
    short: int


@dataclass(frozen=True)
class TaskView:
    id: str
    order_id: str
    group_id: str
    channel_id: str
    kind: str
    method: str
    state: str
    location_id: str
    pickup_location_id: str | None
    reservation_id: str | None
    assignee: str | None
    parent_id: str | None
    due_at: datetime
    overdue: bool
    ready_at: datetime | None
    collect_by: datetime | None
    handed_over_at: datetime | None
    next_step: str | None
    lines: list[TaskLineView]
    history: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    shipments: list[str] = field(default_factory=list)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _views(
    session: Session, tasks: Sequence[FulfillmentTask], now: datetime | None = None
) -> list[TaskView]:
    """Views of several tasks: their lines and shipments in one query each."""
    at = now or utcnow()
    ids = [t.id for t in tasks]
    lines: dict[str, list[TaskLineView]] = defaultdict(list)
    shipments: dict[str, list[str]] = defaultdict(list)
    if ids:
        for x in session.scalars(
            select(FulfillmentTaskLine)
            .where(FulfillmentTaskLine.task_id.in_(ids))
            .order_by(FulfillmentTaskLine.id)
        ):
            lines[x.task_id].append(TaskLineView(x.sku, x.title, x.quantity, x.picked, x.short))
        for task_id, shipment_id in session.execute(
            select(Shipment.task_id, Shipment.id)
            .where(Shipment.task_id.in_(ids))
            .order_by(Shipment.created_at)
        ):
            shipments[task_id].append(shipment_id)
    out = []
    for task in tasks:
        due = as_utc(task.due_at)
        out.append(
            TaskView(
                id=task.id,
                order_id=task.order_id,
                group_id=task.group_id,
                channel_id=task.channel_id,
                kind=task.kind,
                method=task.method,
                state=task.state,
                location_id=task.location_id,
                pickup_location_id=task.pickup_location_id,
                reservation_id=task.reservation_id,
                assignee=task.assignee,
                parent_id=task.parent_id,
                due_at=due,
                overdue=task.state in ("assigned", "picking", "picked", "packed") and at > due,
                ready_at=_aware(task.ready_at),
                collect_by=_aware(task.collect_by),
                handed_over_at=_aware(task.handed_over_at),
                next_step=next_state(task.kind, task.state) if task.state != "cancelled" else None,
                lines=lines[task.id],
                history=list(task.history or []),
                created_at=as_utc(task.created_at),
                updated_at=as_utc(task.updated_at),
                shipments=shipments[task.id],
            )
        )
    return out


def _view(session: Session, task: FulfillmentTask, now: datetime | None = None) -> TaskView:
    return _views(session, [task], now)[0]


def _row(session: Session, task_id: str, *, lock: bool = False) -> FulfillmentTask:
    stmt = select(FulfillmentTask).where(FulfillmentTask.id == task_id)
    if lock:
        stmt = stmt.with_for_update()
    task = session.scalar(stmt)
    if task is None:
        raise not_found("task", task_id)
    return task


def get_task(session: Session, task_id: str, now: datetime | None = None) -> TaskView:
    return _view(session, _row(session, task_id), now)


def list_tasks(
    session: Session,
    *,
    location_id: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    order_id: str | None = None,
    open_only: bool = False,
    limit: int = 100,
    now: datetime | None = None,
) -> list[TaskView]:
    """Tasks by due time (the queue of a store), filtered."""
    if state is not None and state not in {s for steps in STEPS.values() for s in steps} | {
        "cancelled"
    }:
        raise invalid("invalid_state", f"unknown task state {state!r}")
    if kind is not None and kind not in STEPS:
        raise invalid("invalid_kind", f"unknown task kind {kind!r}", allowed=sorted(STEPS))
    stmt = select(FulfillmentTask)
    if location_id is not None:
        stmt = stmt.where(FulfillmentTask.location_id == location_id)
    if state is not None:
        stmt = stmt.where(FulfillmentTask.state == state)
    if kind is not None:
        stmt = stmt.where(FulfillmentTask.kind == kind)
    if order_id is not None:
        stmt = stmt.where(FulfillmentTask.order_id == order_id)
    if open_only:
        stmt = stmt.where(FulfillmentTask.state.not_in(FINAL))
    rows = session.scalars(
        stmt.order_by(FulfillmentTask.due_at, FulfillmentTask.id).limit(limit)
    ).all()
    return _views(session, rows, now)


@dataclass(frozen=True)
class PickListLine:
    sku: str
    title: str
    quantity: int
    tasks: list[dict[str, Any]]  # [{task_id, order_id, quantity, due_at}]


@dataclass(frozen=True)
class PickList:
    location_id: str
    tasks: int
    units: int
    lines: list[PickListLine]


def pick_list(session: Session, location_id: str, *, now: datetime | None = None) -> PickList:
    """What to fetch from the shelves at a location: every unit of its tasks that are assigned
    or being picked, one line per SKU (most urgent first) with the tasks it goes to."""
    inventory.get_location(session, location_id)
    rows = session.execute(
        select(
            FulfillmentTaskLine.sku,
            FulfillmentTaskLine.title,
            FulfillmentTaskLine.quantity,
            FulfillmentTask.id,
            FulfillmentTask.order_id,
            FulfillmentTask.due_at,
        )
        .join(FulfillmentTask, FulfillmentTask.id == FulfillmentTaskLine.task_id)
        .where(
            FulfillmentTask.location_id == location_id,
            FulfillmentTask.state.in_(("assigned", "picking")),
            FulfillmentTask.kind != "collect",
        )
        .order_by(FulfillmentTask.due_at, FulfillmentTask.id)
    ).all()
    by_sku: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_sku[row.sku].append(row)
    lines = [
        PickListLine(
            sku=sku,
            title=items[0].title,
            quantity=sum(r.quantity for r in items),
            tasks=[
                {
                    "task_id": r.id,
                    "order_id": r.order_id,
                    "quantity": r.quantity,
                    "due_at": as_utc(r.due_at).isoformat(),
                }
                for r in items
            ],
        )
        for sku, items in by_sku.items()
    ]
    lines.sort(key=lambda x: (x.tasks[0]["due_at"], x.sku))
    return PickList(
        location_id=location_id,
        tasks=len({r.id for r in rows}),
        units=sum(x.quantity for x in lines),
        lines=lines,
    )


# --- creating tasks ---------------------------------------------------------------------------


def _due(session: Session, method: str, at: datetime) -> datetime:
    sla = get_sla(session)
    minutes = sla["pick_minutes"].get(method, sla["default_pick_minutes"])
    return at + timedelta(minutes=int(minutes))


def _log(task: FulfillmentTask, state: str, at: datetime, by: str | None, note: str | None) -> None:
    entry: dict[str, Any] = {"state": state, "at": at.isoformat()}
    if by:
        entry["by"] = by
    if note:
        entry["note"] = note
    task.history = [*(task.history or []), entry]


def _new_task(
    session: Session,
    *,
    order: Any,
    group: Mapping[str, Any],
    location_id: str,
    kind: str,
    reservation_id: str | None,
    lines: Sequence[tuple[str, str, int]],
    at: datetime,
    parent_id: str | None = None,
    state: str = "assigned",
    note: str | None = None,
    due_from: datetime | None = None,
) -> FulfillmentTask:
    method = str(group.get("method"))
    task = FulfillmentTask(
        id=new_id("ftk"),
        order_id=order.id,
        group_id=group["id"],
        channel_id=order.channel_id,
        reservation_id=reservation_id,
        location_id=location_id,
        kind=kind,
        method=method,
        pickup_location_id=(group.get("location") or {}).get("id"),
        state=state,
        parent_id=parent_id,
        due_at=_due(session, method, due_from or at),
        alerts=[],
        history=[],
        version=1,
        created_at=at,
        updated_at=at,
    )
    _log(task, state, at, None, note)
    session.add(task)
    session.flush()
    session.add_all(
        FulfillmentTaskLine(task_id=task.id, sku=sku, title=title, quantity=q, picked=0, short=0)
        for sku, title, q in lines
    )
    session.flush()
    return task


def create_tasks_for_order(
    session: Session, order_id: str, *, now: datetime | None = None
) -> list[TaskView]:
    """One task per delivery group and location holding its units. Idempotent: an order that
    already has tasks gets none more. Orders not allocated yet (fraud hold) get none."""
    at = now or utcnow()
    order = orders.get_order(session, order_id)
    if order.status != "allocated":
        return []
    existing = session.scalar(
        select(FulfillmentTask.id)
        .where(FulfillmentTask.order_id == order_id, FulfillmentTask.state != "cancelled")
        .limit(1)
    )
    if existing is not None:
        return []
    by_group: dict[str, dict[str, list[tuple[str, str, int]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for line in orders.order_lines(session, order_id):
        for piece in line.allocations or []:
            by_group[line.group_id][piece["location_id"]].append(
                (line.sku, line.title, int(piece["quantity"]))
            )
    created = []
    for group in order.delivery:
        if group.get("method") in NO_TASK_METHODS:
            continue
        pickup_id = (group.get("location") or {}).get("id")
        for location_id, lines in sorted(by_group.get(group["id"], {}).items()):
            merged: dict[str, tuple[str, int]] = {}
            for sku, title, q in lines:
                merged[sku] = (title, merged.get(sku, (title, 0))[1] + q)
            created.append(
                _new_task(
                    session,
                    order=order,
                    group=group,
                    location_id=location_id,
                    kind=task_kind(str(group.get("method")), location_id, pickup_id),
                    reservation_id=group.get("reservation_id"),
                    lines=[(sku, t, q) for sku, (t, q) in merged.items()],
                    at=at,
                    due_from=as_utc(order.placed_at),
                )
            )
    return _views(session, created, at)


# --- moving the order along -------------------------------------------------------------------


def _order_tasks(session: Session, order_id: str) -> list[FulfillmentTask]:
    return list(
        session.scalars(
            select(FulfillmentTask)
            .where(FulfillmentTask.order_id == order_id, FulfillmentTask.state != "cancelled")
            .order_by(FulfillmentTask.created_at, FulfillmentTask.id)
        )
    )


def _advance_order(session: Session, order_id: str, at: datetime, by: str | None) -> None:
    """Move the order to the status its tasks have reached (see the module docstring)."""
    tasks = _order_tasks(session, order_id)
    order = orders.get_order(session, order_id)
    if order.status == "allocated" and any(t.state != "assigned" for t in tasks):
        orders.transition(session, order_id, "fulfilling", by=by, now=at)
    if order.status != "fulfilling" and order.status != "ready_for_pickup":
        return
    collect = [t for t in tasks if t.kind in ("pickup", "collect")]
    ships = [t for t in tasks if t.kind == "ship"]
    transfers_pending = any(t.kind == "transfer" and t.state != "handed_over" for t in tasks)
    if collect and not ships and not transfers_pending:
        if order.status == "fulfilling" and all(
            t.state in ("ready", "handed_over") for t in collect
        ):
            orders.transition(session, order_id, "ready_for_pickup", by=by, now=at)
        if order.status == "ready_for_pickup" and all(t.state == "handed_over" for t in collect):
            orders.transition(session, order_id, "picked_up", by=by, now=at)
        return
    if (
        tasks
        and order.status == "fulfilling"
        and not transfers_pending
        and all(t.state == "handed_over" for t in tasks)
    ):
        # Delivery orders (and mixed ones once every part is out) become shipped.
        orders.transition(session, order_id, "shipped", by=by, now=at)


def _locked(session: Session, task_id: str, target: str) -> FulfillmentTask:
    task = _row(session, task_id, lock=True)
    check_step(task.kind, task.state, target)
    if target != "cancelled" and orders.get_order(session, task.order_id).status == "cancelled":
        raise conflict(
            "order_cancelled",
            f"order {task.order_id} was cancelled; put the items back",
            order_id=task.order_id,
        )
    return task


def _move(
    task: FulfillmentTask, target: str, at: datetime, by: str | None, note: str | None = None
) -> None:
    task.state = target
    task.version += 1
    task.updated_at = at
    _log(task, target, at, by, note)


def assign(
    session: Session,
    task_id: str,
    assignee: str,
    *,
    by: str | None = None,
    now: datetime | None = None,
) -> TaskView:
    """Give an open task to an associate (by name or user id)."""
    at = now or utcnow()
    assignee = assignee.strip()
    if not assignee or len(assignee) > 120:
        raise invalid("invalid_assignee", "assignee must be 1 to 120 characters")
    task = _row(session, task_id, lock=True)
    if task.state in FINAL:
        raise conflict("task_closed", f"task {task_id} is {task.state}", state=task.state)
    task.assignee = assignee
    task.version += 1
    task.updated_at = at
    _log(task, task.state, at, by, f"assigned to {assignee}")
    session.flush()
    return _view(session, task, at)


def start_picking(
    session: Session, task_id: str, *, by: str | None = None, now: datetime | None = None
) -> TaskView:
    at = now or utcnow()
    task = _locked(session, task_id, "picking")
    if task.assignee is None and by:
        task.assignee = by
    _move(task, "picking", at, by)
    session.flush()
    _advance_order(session, task.order_id, at, by)
    return _view(session, task, at)


@dataclass(frozen=True)
class PickOutcome:
    task: TaskView
    short: dict[str, int]
    resourced: list[TaskView]
    unavailable: dict[str, int]


def record_pick(
    session: Session,
    task_id: str,
    picked: Mapping[str, int],
    *,
    by: str | None = None,
    now: datetime | None = None,
) -> PickOutcome:
    """The units found on the shelf, per SKU (every line of the task must be given). Fewer
    than asked is a pick exception: see the module docstring."""
    at = now or utcnow()
    task = _locked(session, task_id, "picked")
    lines = {
        x.sku: x
        for x in session.scalars(
            select(FulfillmentTaskLine).where(FulfillmentTaskLine.task_id == task.id)
        )
    }
    unknown = sorted(set(picked) - set(lines))
    missing = sorted(set(lines) - set(picked))
    if unknown or missing:
        raise invalid(
            "pick_lines_mismatch",
            "give the picked quantity of every line of the task, and only those",
            unknown=unknown,
            missing=missing,
        )
    bad = {sku: q for sku, q in picked.items() if q < 0 or q > lines[sku].quantity}
    if bad:
        raise invalid(
            "invalid_quantity",
            "picked quantities must be between 0 and the line's quantity",
            lines={sku: {"picked": q, "quantity": lines[sku].quantity} for sku, q in bad.items()},
        )
    short = {sku: lines[sku].quantity - q for sku, q in picked.items() if q < lines[sku].quantity}
    for sku, q in picked.items():
        lines[sku].picked = q
        lines[sku].short = lines[sku].quantity - q
    resourced: list[FulfillmentTask] = []
    unavailable: dict[str, int] = {}
    if short:
        resourced, unavailable = _pick_exception(session, task, short, at, by)
    if sum(picked.values()) == 0:
        _move(task, "cancelled", at, by, "nothing found on the shelf")
    else:
        _move(task, "picked", at, by, None if not short else "short: " + _units(short))
    session.flush()
    _advance_order(session, task.order_id, at, by)
    return PickOutcome(
        task=_view(session, task, at),
        short=short,
        resourced=_views(session, resourced, at),
        unavailable=unavailable,
    )


def _units(items: Mapping[str, int]) -> str:
    return ", ".join(f"{q} x {sku}" for sku, q in sorted(items.items()))


def _failed_locations(session: Session, task: FulfillmentTask) -> list[str]:
    """The task's location and those of the tasks it re-sources (each had an exception)."""
    out = [task.location_id]
    parent = task.parent_id
    while parent:
        row = session.get(FulfillmentTask, parent)
        if row is None:
            break
        out.append(row.location_id)
        parent = row.parent_id
    return out


def _destination(order: Any, group: Mapping[str, Any]) -> tuple[float, float] | None:
    address = group.get("address") or order.shipping_address or {}
    lat, lon = address.get("latitude"), address.get("longitude")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return float(lat), float(lon)
    return None


def _plan_with_engine(
    session: Session,
    task: FulfillmentTask,
    order: Any,
    group: Mapping[str, Any],
    short: Mapping[str, int],
    exclude: Sequence[str],
    at: datetime,
) -> list[tuple[str, list[tuple[str, int]]]] | None:
    """Packages (location, items) chosen by the sourcing engine, or ``None`` when it cannot
    plan here (no coordinates, no plan at all)."""
    destination = _destination(order, group)
    pickup = task.pickup_location_id if task.method in PICKUP_METHODS else None
    if pickup is None and destination is None:
        return None
    try:
        decision = sourcing.plan_sourcing(
            session,
            [(sku, q) for sku, q in sorted(short.items())],
            method=task.method,
            destination=destination,
            pickup_location=pickup,
            channel=task.channel_id,
            allow_partial=True,
            exclude_locations=exclude,
            reference=f"{task.order_id}/{task.id}",
            now=at,
        )
    except AppError:
        return None
    return [
        (p.location_id, [(x.sku, x.quantity) for x in p.lines if x.quantity > 0])
        for p in decision.packages
    ]


def _reserve_elsewhere(
    session: Session,
    task: FulfillmentTask,
    items: Sequence[tuple[str, int]],
    locations: Sequence[str],
    at: datetime,
) -> inventory.ReservationView | None:
    try:
        view = inventory.reserve(
            session,
            list(items),
            locations=list(locations),
            strategy="preferred",
            reference=task.order_id,
            kind="order",
            now=at,
        )
    except AppError as exc:
        if exc.code == "insufficient_stock":
            return None
        raise
    return inventory.allocate_reservation(session, view.id, order_reference=task.order_id, now=at)


def _pick_exception(
    session: Session,
    task: FulfillmentTask,
    short: Mapping[str, int],
    at: datetime,
    by: str | None,
) -> tuple[list[FulfillmentTask], dict[str, int]]:
    order = orders.get_order(session, task.order_id)
    group = next(g for g in order.delivery if g["id"] == task.group_id)
    for sku, q in sorted(short.items()):
        if task.reservation_id:
            picking.write_off_allocated(
                session,
                task.reservation_id,
                location_id=task.location_id,
                sku=sku,
                quantity=q,
                note=f"pick exception on task {task.id}",
                now=at,
            )
    exclude = _failed_locations(session, task)
    packages = _plan_with_engine(session, task, order, group, short, exclude, at)
    reservations: list[inventory.ReservationView] = []
    left = dict(short)
    if packages:
        for location_id, items in packages:
            view = _reserve_elsewhere(session, task, items, [location_id], at)
            if view is not None:
                reservations.append(view)
                for x in view.lines:
                    left[x.sku] -= x.quantity
    capable = {"ship", "ship_from_store"}
    shipping = {
        loc.id
        for loc in inventory.list_locations(session, active=True)
        if capable & set(loc.capabilities or ())
    }
    others = [
        loc
        for loc in inventory.channel_context(session, task.channel_id).location_ids
        if loc not in exclude and loc in shipping
    ]
    for sku in sorted(left):
        for location_id in others:
            if left[sku] <= 0:
                break
            balance = inventory.stock_balance(session, sku, location_id, now=at)
            take = min(left[sku], max(0, balance.available))
            if take <= 0:
                continue
            view = _reserve_elsewhere(session, task, [(sku, take)], [location_id], at)
            if view is not None:
                reservations.append(view)
                left[sku] -= take
    titles = {
        x.sku: x.title
        for x in session.scalars(
            select(FulfillmentTaskLine).where(FulfillmentTaskLine.task_id == task.id)
        )
    }
    created = []
    for view in reservations:
        orders.reallocate(
            session,
            task.order_id,
            group_id=task.group_id,
            from_location=task.location_id,
            reservation=view,
            now=at,
        )
        by_location: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for x in view.lines:
            by_location[x.location_id][x.sku] += x.quantity
        for location_id, units in by_location.items():
            created.append(
                _new_task(
                    session,
                    order=order,
                    group=group,
                    location_id=location_id,
                    kind=task_kind(task.method, location_id, task.pickup_location_id),
                    reservation_id=view.id,
                    lines=[(sku, titles.get(sku, ""), q) for sku, q in sorted(units.items())],
                    at=at,
                    parent_id=task.id,
                    note=f"re-sourced after a pick exception on {task.id}",
                )
            )
    unavailable = {sku: q for sku, q in left.items() if q > 0}
    for sku, q in sorted(unavailable.items()):
        orders.settle_unavailable(
            session,
            task.order_id,
            group_id=task.group_id,
            sku=sku,
            location_id=task.location_id,
            quantity=q,
            reason="not found at any location",
            now=at,
        )
    emit(
        session,
        "fulfillment.pick_exception",
        {
            "task_id": task.id,
            "order_id": task.order_id,
            "location_id": task.location_id,
            "short": dict(short),
            "resourced": [
                {"task_id": t.id, "location_id": t.location_id, "reservation_id": t.reservation_id}
                for t in created
            ],
            "unavailable": unavailable,
            "by": by,
            "occurred_at": at.isoformat(),
        },
        aggregate_id=task.order_id,
    )
    return created, unavailable


def pack(
    session: Session, task_id: str, *, by: str | None = None, now: datetime | None = None
) -> TaskView:
    at = now or utcnow()
    task = _locked(session, task_id, "packed")
    _move(task, "packed", at, by)
    session.flush()
    return _view(session, task, at)


def _arrived(session: Session, task: FulfillmentTask, at: datetime) -> None:
    """A transfer's parcel is at the pickup location: its units move there in the stock
    ledger, still allocated to the order, so a cancelled or uncollected order returns them to
    that location's stock, where they are."""
    transfer = _row(session, task.parent_id or "")
    if not transfer.reservation_id:
        return
    items = {
        x.sku: x.quantity
        for x in session.scalars(
            select(FulfillmentTaskLine).where(FulfillmentTaskLine.task_id == task.id)
        )
    }
    picking.move_allocated(
        session,
        transfer.reservation_id,
        from_location=transfer.location_id,
        to_location=task.location_id,
        items=items,
        note=f"transfer {transfer.id} arrived for collect task {task.id}",
        now=at,
    )
    orders.units_arrived(
        session,
        task.order_id,
        group_id=task.group_id,
        from_location=transfer.location_id,
        to_location=task.location_id,
        items=items,
        now=at,
    )


def mark_ready(
    session: Session, task_id: str, *, by: str | None = None, now: datetime | None = None
) -> TaskView:
    """The order waits at the counter or in the locker: the pickup hold starts and the
    customer is told (``fulfillment.ready_for_pickup``; the order's own
    ``order.ready_for_pickup`` follows once all of it is ready)."""
    at = now or utcnow()
    task = _locked(session, task_id, "ready")
    if task.kind == "collect" and task.parent_id:
        _arrived(session, task, at)
    hold = timedelta(hours=int(get_sla(session)["pickup_hold_hours"]))
    task.ready_at = at
    task.collect_by = at + hold
    _move(task, "ready", at, by)
    session.flush()
    location = inventory.get_location(session, task.location_id)
    order = orders.get_order(session, task.order_id)
    emit(
        session,
        "fulfillment.ready_for_pickup",
        {
            "task_id": task.id,
            "order_id": task.order_id,
            "customer_id": order.customer_id,
            "channel_id": task.channel_id,
            "method": task.method,
            "location_id": location.id,
            "location_name": location.name,
            "collect_by": task.collect_by.isoformat(),
            "occurred_at": at.isoformat(),
        },
        aggregate_id=task.order_id,
    )
    _advance_order(session, task.order_id, at, by)
    return _view(session, task, at)


def hand_over(
    session: Session, task_id: str, *, by: str | None = None, now: datetime | None = None
) -> TaskView:
    """The customer collected: the units leave the location's stock (for a collect task,
    the pickup location's, where they arrived) and the order moves on."""
    at = now or utcnow()
    task = _locked(session, task_id, "handed_over")
    if task.kind not in ("pickup", "collect"):
        raise conflict(
            "invalid_task_transition",
            f"a {task.kind} task is handed over by shipping it",
            kind=task.kind,
            state=task.state,
        )
    reservation_id = task.reservation_id
    if task.kind == "collect" and task.parent_id:
        reservation_id = _row(session, task.parent_id).reservation_id
    if reservation_id:
        picking.fulfill_location(session, reservation_id, task.location_id, now=at)
    task.handed_over_at = at
    _move(task, "handed_over", at, by)
    session.flush()
    _advance_order(session, task.order_id, at, by)
    return _view(session, task, at)


def customer_arrived(
    session: Session,
    order_id: str,
    location_id: str,
    *,
    bay: str | None = None,
    vehicle: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Curbside "I'm here": the order's open pickup work at that location jumps to the top of
    the queue (due now) and records where the customer waits. Returns the tasks touched."""
    at = now or utcnow()
    rows = session.scalars(
        select(FulfillmentTask).where(
            FulfillmentTask.order_id == order_id,
            FulfillmentTask.location_id == location_id,
            FulfillmentTask.kind.in_(("pickup", "collect")),
            FulfillmentTask.state.not_in(FINAL),
        )
    ).all()
    where = ", ".join(
        x
        for x in (
            f"bay {bay}" if bay else "",
            " ".join(str(v) for v in (vehicle or {}).values() if v),
        )
        if x
    )
    for task in rows:
        if as_utc(task.due_at) > at:
            task.due_at = at
        task.version += 1
        task.updated_at = at
        _log(task, task.state, at, None, "customer arrived" + (f" ({where})" if where else ""))
    session.flush()
    return [t.id for t in rows]


def rebuild_tasks(
    session: Session, order_id: str, *, now: datetime | None = None
) -> list[TaskView]:
    """An order edited before fulfilment began (lines, delivery): its untouched tasks are
    replaced by tasks for the new allocations. Nothing happens once any task has started
    (the order cannot be edited then anyway)."""
    at = now or utcnow()
    current = _order_tasks(session, order_id)
    if any(t.state != "assigned" for t in current):
        return []
    for task in current:
        _move(task, "cancelled", at, None, "order edited")
    session.flush()
    return create_tasks_for_order(session, order_id, now=at)


def cancel_order_tasks(
    session: Session, order_id: str, *, reason: str = "order cancelled", now: datetime | None = None
) -> int:
    """Cancel the open tasks of a cancelled order (the order gave the stock back)."""
    at = now or utcnow()
    rows = session.scalars(
        select(FulfillmentTask).where(
            FulfillmentTask.order_id == order_id, FulfillmentTask.state.not_in(FINAL)
        )
    ).all()
    for task in rows:
        _move(task, "cancelled", at, None, reason)
    session.flush()
    return len(rows)


# --- shipments --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentView:
    id: str
    order_id: str
    task_id: str
    location_id: str
    kind: str
    carrier: str
    service: str | None
    tracking_number: str
    tracking_url: str | None
    state: str
    destination: dict[str, Any] | None
    packages: list[dict[str, Any]]
    events: list[dict[str, Any]]
    shipped_at: datetime
    delivered_at: datetime | None


def _shipment_view(row: Shipment) -> ShipmentView:
    try:
        url = carriers.get_carrier(row.carrier).tracking_url(row.tracking_number)
    except AppError:
        url = None
    return ShipmentView(
        id=row.id,
        order_id=row.order_id,
        task_id=row.task_id,
        location_id=row.location_id,
        kind=row.kind,
        carrier=row.carrier,
        service=row.service,
        tracking_number=row.tracking_number,
        tracking_url=url,
        state=row.state,
        destination=row.destination,
        packages=list(row.packages or []),
        events=list(row.events or []),
        shipped_at=as_utc(row.shipped_at),
        delivered_at=_aware(row.delivered_at),
    )


def _address_of_location(location: Any) -> dict[str, Any]:
    return {"name": location.name, **(location.address or {})}


def ship(
    session: Session,
    task_id: str,
    *,
    carrier: str = "manual",
    service: str | None = None,
    packages: Sequence[carriers.PackageRequest] | None = None,
    by: str | None = None,
    now: datetime | None = None,
) -> ShipmentView:
    """Hand a packed ship or transfer task to a carrier: one shipment with one label and
    tracking number per package (default: one package with everything picked). The units
    leave the location's stock now; the order is shipped once all of its parcels are, and a
    transfer creates the collect task at the pickup location."""
    at = now or utcnow()
    chosen = carriers.get_carrier(carrier)
    task = _locked(session, task_id, "handed_over")
    if task.kind not in ("ship", "transfer"):
        raise conflict(
            "invalid_task_transition",
            "pickup tasks are handed to the customer, not shipped",
            kind=task.kind,
            state=task.state,
        )
    lines = session.scalars(
        select(FulfillmentTaskLine).where(FulfillmentTaskLine.task_id == task.id)
    ).all()
    picked = {x.sku: x.picked for x in lines if x.picked > 0}
    titles = {x.sku: x.title for x in lines}
    if not packages:
        packages = [carriers.PackageRequest(lines=sorted(picked.items()))]
    packed: dict[str, int] = defaultdict(int)
    for package in packages:
        if not package.lines:
            raise invalid("empty_package", "every package needs at least one line")
        for sku, q in package.lines:
            if q <= 0:
                raise invalid("invalid_quantity", "package quantities must be positive", sku=sku)
            packed[sku] += q
    if dict(packed) != picked:
        raise invalid(
            "packages_mismatch",
            "the packages must hold exactly the units picked",
            picked=picked,
            packed=dict(packed),
        )
    order = orders.get_order(session, task.order_id)
    group = next(g for g in order.delivery if g["id"] == task.group_id)
    source = inventory.get_location(session, task.location_id)
    if task.kind == "transfer" and task.pickup_location_id:
        recipient = _address_of_location(inventory.get_location(session, task.pickup_location_id))
        destination: dict[str, Any] = {"location_id": task.pickup_location_id, **recipient}
    else:
        recipient = dict(group.get("address") or order.shipping_address or {})
        destination = recipient
    shipment_id = new_id("shp")
    labels = chosen.create_labels(
        carriers.LabelRequest(
            shipment_id=shipment_id,
            order_id=order.id,
            service=service,
            sender=_address_of_location(source),
            recipient=recipient,
            packages=list(packages),
        )
    )
    package_rows = [
        {
            "number": n,
            "tracking_number": label.tracking_number,
            "weight_g": package.weight_g,
            "lines": [
                {"sku": sku, "title": titles.get(sku, ""), "quantity": q}
                for sku, q in package.lines
            ],
            "label": {"format": label.format, "content": label.content},
        }
        for n, (package, label) in enumerate(zip(packages, labels, strict=True), start=1)
    ]
    row = Shipment(
        id=shipment_id,
        order_id=order.id,
        task_id=task.id,
        location_id=task.location_id,
        kind=task.kind,
        carrier=chosen.code,
        service=service,
        tracking_number=labels[0].tracking_number,
        state="shipped",
        destination=destination,
        packages=package_rows,
        events=[{"status": "shipped", "at": at.isoformat()}],
        shipped_at=at,
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    if task.kind == "ship" and task.reservation_id:
        picking.fulfill_location(session, task.reservation_id, task.location_id, now=at)
    task.handed_over_at = at
    _move(task, "handed_over", at, by, f"shipped {shipment_id} with {chosen.code}")
    session.flush()
    if task.kind == "transfer" and task.pickup_location_id:
        _new_task(
            session,
            order=order,
            group=group,
            location_id=task.pickup_location_id,
            kind="collect",
            reservation_id=task.reservation_id,
            lines=[(sku, titles.get(sku, ""), q) for sku, q in sorted(picked.items())],
            at=at,
            parent_id=task.id,
            note=f"on its way from {source.code} ({shipment_id})",
        )
    pending = [
        t.id
        for t in _order_tasks(session, order.id)
        if t.kind in ("ship", "transfer") and t.state != "handed_over"
    ]
    emit(
        session,
        "shipment.shipped",
        {
            "shipment_id": shipment_id,
            "order_id": order.id,
            "customer_id": order.customer_id,
            "kind": task.kind,
            "carrier": chosen.code,
            "tracking_numbers": [p["tracking_number"] for p in package_rows],
            "location_id": task.location_id,
            "partial": bool(pending),
            "occurred_at": at.isoformat(),
        },
        aggregate_id=order.id,
    )
    _advance_order(session, order.id, at, by)
    return _shipment_view(row)


TRACKING_STATES = ("in_transit", "out_for_delivery", "delivered", "exception", "returned")


def get_shipment(session: Session, shipment_id: str) -> ShipmentView:
    row = session.get(Shipment, shipment_id)
    if row is None:
        raise not_found("shipment", shipment_id)
    return _shipment_view(row)


def list_shipments(
    session: Session,
    *,
    order_id: str | None = None,
    tracking_number: str | None = None,
    limit: int = 100,
) -> list[ShipmentView]:
    stmt = select(Shipment)
    if order_id is not None:
        stmt = stmt.where(Shipment.order_id == order_id)
    if tracking_number is not None:
        stmt = stmt.where(Shipment.tracking_number == tracking_number)
    rows = session.scalars(stmt.order_by(Shipment.created_at, Shipment.id).limit(limit)).all()
    return [_shipment_view(r) for r in rows]


def record_tracking(
    session: Session,
    shipment_id: str,
    status: str,
    *,
    note: str | None = None,
    at: datetime | None = None,
    by: str | None = None,
) -> ShipmentView:
    """A carrier scan (or a person) reports where the parcel is. ``delivered`` closes the
    shipment; once every customer shipment of an order is delivered, so is the order."""
    when = at or utcnow()
    if status not in TRACKING_STATES:
        raise invalid(
            "invalid_tracking_status", f"unknown status {status!r}", allowed=list(TRACKING_STATES)
        )
    row = session.scalar(select(Shipment).where(Shipment.id == shipment_id).with_for_update())
    if row is None:
        raise not_found("shipment", shipment_id)
    if row.state in ("delivered", "returned"):
        raise conflict("shipment_closed", f"shipment {shipment_id} is {row.state}", state=row.state)
    event = {"status": status, "at": when.isoformat(), **({"note": note} if note else {})}
    row.events = [*(row.events or []), event]
    row.state = status
    row.updated_at = when
    if status == "delivered":
        row.delivered_at = when
    session.flush()
    emit(
        session,
        f"shipment.{status}",
        {
            "shipment_id": row.id,
            "order_id": row.order_id,
            "kind": row.kind,
            "tracking_number": row.tracking_number,
            "occurred_at": when.isoformat(),
        },
        aggregate_id=row.order_id,
    )
    if status == "delivered" and row.kind == "ship":
        open_parcels = session.scalar(
            select(Shipment.id).where(
                Shipment.order_id == row.order_id,
                Shipment.kind == "ship",
                Shipment.state != "delivered",
            )
        )
        order = orders.get_order(session, row.order_id)
        if open_parcels is None and order.status == "shipped":
            orders.transition(session, row.order_id, "delivered", by=by, now=when)
    return _shipment_view(row)


# --- timers -----------------------------------------------------------------------------------


@dataclass
class TimerReport:
    overdue: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


def _alert_once(task: FulfillmentTask, name: str) -> bool:
    if name in (task.alerts or []):
        return False
    task.alerts = [*(task.alerts or []), name]
    return True


def check_timers(
    session: Session, *, now: datetime | None = None, limit: int = 1000
) -> TimerReport:
    """Late picks, pickup reminders and uncollected orders (see the module docstring).
    Each alert is sent once per task; running it again changes nothing."""
    at = now or utcnow()
    sla = get_sla(session)
    report = TimerReport()
    late = session.scalars(
        select(FulfillmentTask)
        .where(
            FulfillmentTask.state.in_(("assigned", "picking", "picked", "packed")),
            FulfillmentTask.due_at < at,
        )
        .order_by(FulfillmentTask.due_at)
        .limit(limit)
    ).all()
    for task in late:
        if _alert_once(task, "pick_overdue"):
            report.overdue.append(task.id)
            emit(
                session,
                "fulfillment.task_overdue",
                {
                    "task_id": task.id,
                    "order_id": task.order_id,
                    "location_id": task.location_id,
                    "state": task.state,
                    "due_at": as_utc(task.due_at).isoformat(),
                    "occurred_at": at.isoformat(),
                },
                aggregate_id=task.order_id,
            )
    remind = timedelta(hours=int(sla["reminder_hours"]))
    waiting = session.scalars(
        select(FulfillmentTask)
        .where(FulfillmentTask.state == "ready", FulfillmentTask.collect_by < at + remind)
        .order_by(FulfillmentTask.collect_by)
        .limit(limit)
    ).all()
    for task in waiting:
        collect_by = as_utc(task.collect_by) if task.collect_by else at
        order = orders.get_order(session, task.order_id)
        payload = {
            "task_id": task.id,
            "order_id": task.order_id,
            "customer_id": order.customer_id,
            "location_id": task.location_id,
            "collect_by": collect_by.isoformat(),
            "occurred_at": at.isoformat(),
        }
        if collect_by <= at:
            if not _alert_once(task, "pickup_expired"):
                continue
            report.expired.append(task.id)
            emit(session, "fulfillment.pickup_expired", payload, aggregate_id=task.order_id)
            if sla["cancel_uncollected"] and order.status == "ready_for_pickup":
                orders.transition(
                    session, task.order_id, "cancelled", note="not collected in time", now=at
                )
                cancel_order_tasks(session, task.order_id, reason="not collected", now=at)
        elif remind and _alert_once(task, "pickup_reminder"):
            report.reminded.append(task.id)
            emit(session, "fulfillment.pickup_reminder", payload, aggregate_id=task.order_id)
    session.flush()
    return report
