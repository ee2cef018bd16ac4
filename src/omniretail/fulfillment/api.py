"""HTTP routes of the fulfillment context: thin wrappers over ``fulfillment.service``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from omniretail.core.auth import Principal, Role
from omniretail.core.web import (
    ERROR_RESPONSES,
    AnyStaff,
    Idempotent,
    SessionDep,
    TransactionalRoute,
    check_locations,
    error_doc,
    require,
    storefront,
)
from omniretail.fulfillment import carriers, service, subscribers, tasks
from omniretail.fulfillment.schemas import (
    AssignIn,
    CarrierCalendarIn,
    CarrierCalendarOut,
    CostModelIn,
    CostModelOut,
    DecisionOut,
    LocationCalendarIn,
    LocationCalendarOut,
    PickIn,
    PickListOut,
    PickOutcomeOut,
    PromiseIn,
    PromiseOut,
    ShipIn,
    ShipmentOut,
    SlaIn,
    SlaOut,
    SourcingPlanIn,
    StrategyIn,
    StrategyOut,
    TaskOut,
    TrackingIn,
)

subscribers.register()


def _example(code: str, text: str, details: dict[str, Any]) -> dict[str, Any]:
    return error_doc(code, text, details)


RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    404: _example("sku_not_found", "Unknown SKU, location, channel or decision", {"skus": ["X"]}),
    409: _example(
        "insufficient_stock",
        "No plan: the reason is the code (insufficient_stock, capacity_exhausted, "
        "max_packages_exceeded, ship_together_unsatisfiable, no_capable_location)",
        {
            "lines": [{"sku": "TSHIRT-RED-M", "requested": 3, "available": 1}],
            "partial_allowed": False,
        },
    ),
}

router = APIRouter(prefix="/api/v1", route_class=TransactionalRoute, responses=RESPONSES)
TAGS: list[str | Any] = ["fulfillment"]

Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Staff = Annotated[Principal, Depends(AnyStaff)]
Planner = Annotated[Principal, Depends(require(Role.STORE_ASSOCIATE, Role.SUPPORT_AGENT))]
Shopper = Annotated[Principal, Depends(storefront(*(r for r in Role if r is not Role.CHANNEL)))]


# --- sourcing ------------------------------------------------------------------------------


@router.post(
    "/sourcing/plan",
    status_code=201,
    tags=TAGS,
    summary="Decide where an order ships from (stored with its explanation)",
    description="Chooses the plan by the channel's strategy (or the override), stores the "
    "decision with its cost breakdown and the alternatives that lost, and books the picking "
    "capacity. `dry_run` only decides (200). No plan: 409 with the reason as the error code; "
    "with `allow_partial` a partial plan is returned instead.",
)
def plan_sourcing(
    body: SourcingPlanIn,
    session: SessionDep,
    _: Planner,
    response: Response,
    __: None = Idempotent,
) -> DecisionOut:
    view = service.plan_sourcing(
        session,
        [service.LineRequest(x.sku, x.quantity, x.line_id) for x in body.lines],
        method=body.method,
        destination=None
        if body.destination is None
        else (body.destination.latitude, body.destination.longitude),
        pickup_location=body.pickup_location,
        channel=body.channel,
        strategy=body.strategy,
        max_packages=body.max_packages,
        ship_together=body.ship_together,
        split_lines=body.split_lines,
        allow_partial=body.allow_partial,
        allow_transfers=body.allow_transfers,
        reference=body.reference,
        dry_run=body.dry_run,
    )
    if not view.stored:
        response.status_code = 200
    return DecisionOut.model_validate(view)


@router.get("/sourcing/decisions/{decision_id}", tags=TAGS, summary="One sourcing decision")
def get_decision(decision_id: str, session: SessionDep, _: Staff) -> DecisionOut:
    return DecisionOut.model_validate(service.get_decision(session, decision_id))


@router.get("/sourcing/decisions", tags=TAGS, summary="Recent sourcing decisions")
def list_decisions(
    session: SessionDep,
    _: Staff,
    reference: str | None = None,
    state: str | None = Query(default=None, description="open, released or cancelled"),
    limit: int = Query(default=50, ge=1, le=500),
) -> list[DecisionOut]:
    rows = service.list_decisions(session, reference=reference, state=state, limit=limit)
    return [DecisionOut.model_validate(r) for r in rows]


@router.post(
    "/sourcing/decisions/{decision_id}/release",
    tags=TAGS,
    summary="The order went to the floor: the plan is final",
)
def release_decision(
    decision_id: str, session: SessionDep, _: Planner, __: None = Idempotent
) -> DecisionOut:
    return DecisionOut.model_validate(service.release_decision(session, decision_id))


@router.post(
    "/sourcing/decisions/{decision_id}/cancel",
    tags=TAGS,
    summary="The order was cancelled: picking capacity is given back",
)
def cancel_decision(
    decision_id: str, session: SessionDep, _: Planner, __: None = Idempotent
) -> DecisionOut:
    return DecisionOut.model_validate(service.cancel_decision(session, decision_id))


# --- configuration ---------------------------------------------------------------------------


@router.get("/sourcing/strategies/{channel}", tags=TAGS, summary="A channel's sourcing strategy")
def get_strategy(channel: str, session: SessionDep, _: Staff) -> StrategyOut:
    return StrategyOut.model_validate(service.get_channel_strategy(session, channel))


@router.put("/sourcing/strategies/{channel}", tags=TAGS, summary="Set a channel's strategy")
def put_strategy(channel: str, body: StrategyIn, session: SessionDep, _: Admin) -> StrategyOut:
    view = service.set_channel_strategy(session, channel, **body.model_dump())
    return StrategyOut.model_validate(view)


@router.get("/sourcing/cost-model", tags=TAGS, summary="The sourcing cost model")
def get_cost_model(session: SessionDep, _: Staff) -> CostModelOut:
    return CostModelOut(**service.get_cost_model(session).to_dict())


@router.put(
    "/sourcing/cost-model", tags=TAGS, summary="Change the cost model (fields left out stay)"
)
def put_cost_model(body: CostModelIn, session: SessionDep, _: Admin) -> CostModelOut:
    model = service.set_cost_model(session, body.model_dump(exclude_none=True))
    return CostModelOut(**model.to_dict())


@router.get("/sourcing/carrier-calendar", tags=TAGS, summary="Carrier days and transit bands")
def get_carrier(session: SessionDep, _: Staff) -> CarrierCalendarOut:
    return CarrierCalendarOut(**service.get_carrier_calendar(session).to_dict())


@router.put("/sourcing/carrier-calendar", tags=TAGS, summary="Change the carrier calendar")
def put_carrier(body: CarrierCalendarIn, session: SessionDep, _: Admin) -> CarrierCalendarOut:
    carrier = service.set_carrier_calendar(session, body.model_dump(exclude_none=True))
    return CarrierCalendarOut(**carrier.to_dict())


@router.get(
    "/sourcing/locations/{ref}/calendar",
    tags=TAGS,
    summary="A location's cut-offs, holidays and handling time",
)
def get_location_calendar(ref: str, session: SessionDep, _: Staff) -> LocationCalendarOut:
    return LocationCalendarOut.model_validate(service.get_location_calendar(session, ref))


@router.put(
    "/sourcing/locations/{ref}/calendar",
    tags=TAGS,
    summary="Set a location's cut-offs, holidays and handling time",
)
def put_location_calendar(
    ref: str, body: LocationCalendarIn, session: SessionDep, _: Admin
) -> LocationCalendarOut:
    view = service.set_location_calendar(session, ref, **body.model_dump())
    return LocationCalendarOut.model_validate(view)


# --- delivery promise ---------------------------------------------------------------------------


@router.post(
    "/delivery-promise",
    tags=TAGS,
    summary="Earliest delivery or pickup time per method for a cart",
    description="Sources the cart per method with the channel's strategy (nothing stored) "
    "and reads the locations' calendars: 'Order within 2 h 10 min for delivery tomorrow', "
    "'Ready for pickup today 17:00 at Store X'. Publishable channel keys use their channel.",
)
def delivery_promise(body: PromiseIn, session: SessionDep, principal: Shopper) -> PromiseOut:
    channel = principal.channel_id if principal.role is Role.CHANNEL else body.channel
    view = service.delivery_promise(
        session,
        [service.LineRequest(x.sku, x.quantity, x.line_id) for x in body.lines],
        destination=None
        if body.destination is None
        else (body.destination.latitude, body.destination.longitude),
        destination_timezone=None if body.destination is None else body.destination.timezone,
        pickup_location=body.pickup_location,
        channel=channel,
        methods=body.methods,
        now=body.now,
    )
    return PromiseOut.model_validate(view)


# --- store fulfilment tasks ---------------------------------------------------------------------

TASKS: list[str | Any] = ["fulfillment tasks"]
Floor = Annotated[Principal, Depends(require(Role.STORE_ASSOCIATE))]


def _task_at(session: Any, principal: Principal, task_id: str) -> None:
    """Store associates work the tasks of their own stores only."""
    check_locations(principal, [tasks.get_task(session, task_id).location_id])


@router.get(
    "/fulfillment/tasks",
    tags=TASKS,
    summary="Fulfilment tasks, most urgent first (a store's queue)",
    description="Store associates see their own stores' tasks unless they name one.",
)
def list_tasks(
    session: SessionDep,
    principal: Floor,
    location: str | None = Query(default=None, description="Location id"),
    state: str | None = Query(default=None, examples=["assigned"]),
    kind: str | None = Query(default=None, examples=["pickup"]),
    order_id: str | None = None,
    open: bool = Query(default=False, description="Only tasks not handed over or cancelled"),
    limit: int = Query(default=100, ge=1, le=500),
) -> list[TaskOut]:
    if location is not None:
        check_locations(principal, [location])
    locations: list[str | None] = [location] if location else [*principal.location_ids]
    locations = locations or [None]
    out: list[TaskOut] = []
    for loc in locations:
        views = tasks.list_tasks(
            session,
            location_id=loc,
            state=state,
            kind=kind,
            order_id=order_id,
            open_only=open,
            limit=limit,
        )
        out += [TaskOut.model_validate(v) for v in views]
    return sorted(out, key=lambda t: (t.due_at, t.id))[:limit]


@router.get("/fulfillment/tasks/{task_id}", tags=TASKS, summary="One task with its lines")
def get_task(task_id: str, session: SessionDep, principal: Floor) -> TaskOut:
    _task_at(session, principal, task_id)
    return TaskOut.model_validate(tasks.get_task(session, task_id))


@router.get(
    "/locations/{location_id}/pick-list",
    tags=TASKS,
    summary="What to fetch from the shelves: open tasks' units per SKU",
)
def pick_list(location_id: str, session: SessionDep, principal: Floor) -> PickListOut:
    check_locations(principal, [location_id])
    return PickListOut.model_validate(tasks.pick_list(session, location_id))


@router.post("/fulfillment/tasks/{task_id}/assign", tags=TASKS, summary="Give a task to someone")
def assign_task(task_id: str, body: AssignIn, session: SessionDep, principal: Floor) -> TaskOut:
    _task_at(session, principal, task_id)
    return TaskOut.model_validate(tasks.assign(session, task_id, body.assignee, by=principal.id))


@router.post("/fulfillment/tasks/{task_id}/start", tags=TASKS, summary="Start picking")
def start_task(task_id: str, session: SessionDep, principal: Floor) -> TaskOut:
    _task_at(session, principal, task_id)
    return TaskOut.model_validate(tasks.start_picking(session, task_id, by=principal.id))


@router.post(
    "/fulfillment/tasks/{task_id}/pick",
    tags=TASKS,
    summary="Record what was found on the shelf (pick exceptions re-source the rest)",
    description="Every line of the task with the units found. Missing units are written off "
    "at this location and re-sourced at once: new tasks where they were found, or settled "
    "with the customer when nowhere. Idempotency-Key recommended.",
)
def pick_task(
    task_id: str, body: PickIn, session: SessionDep, principal: Floor, _: None = Idempotent
) -> PickOutcomeOut:
    _task_at(session, principal, task_id)
    picked: dict[str, int] = {}
    for line in body.lines:
        picked[line.sku] = picked.get(line.sku, 0) + line.picked
    outcome = tasks.record_pick(session, task_id, picked, by=principal.id)
    return PickOutcomeOut.model_validate(outcome)


@router.post("/fulfillment/tasks/{task_id}/pack", tags=TASKS, summary="Packed (or bagged)")
def pack_task(task_id: str, session: SessionDep, principal: Floor) -> TaskOut:
    _task_at(session, principal, task_id)
    return TaskOut.model_validate(tasks.pack(session, task_id, by=principal.id))


@router.post(
    "/fulfillment/tasks/{task_id}/ready",
    tags=TASKS,
    summary="Ready for pickup (the customer is told; the pickup hold starts)",
)
def ready_task(task_id: str, session: SessionDep, principal: Floor) -> TaskOut:
    _task_at(session, principal, task_id)
    return TaskOut.model_validate(tasks.mark_ready(session, task_id, by=principal.id))


@router.post(
    "/fulfillment/tasks/{task_id}/hand-over",
    tags=TASKS,
    summary="The customer collected (stock leaves; the payment is captured with the order)",
)
def hand_over_task(
    task_id: str, session: SessionDep, principal: Floor, _: None = Idempotent
) -> TaskOut:
    _task_at(session, principal, task_id)
    return TaskOut.model_validate(tasks.hand_over(session, task_id, by=principal.id))


@router.post(
    "/fulfillment/tasks/{task_id}/ship",
    status_code=201,
    tags=TASKS,
    summary="Hand a packed task to a carrier: labels, tracking numbers, a shipment",
    description="Carriers: " + ", ".join(carriers.carrier_codes()) + " (pluggable). A "
    "transfer task's shipment goes to the pickup store, where a collect task appears.",
)
def ship_task(
    task_id: str, body: ShipIn, session: SessionDep, principal: Floor, _: None = Idempotent
) -> ShipmentOut:
    _task_at(session, principal, task_id)
    packages = None
    if body.packages:
        packages = [
            carriers.PackageRequest(
                lines=[(x.sku, x.quantity) for x in p.lines],
                weight_g=p.weight_g,
                tracking_number=p.tracking_number,
            )
            for p in body.packages
        ]
    view = tasks.ship(
        session,
        task_id,
        carrier=body.carrier,
        service=body.service,
        packages=packages,
        by=principal.id,
    )
    return ShipmentOut.model_validate(view)


@router.get("/shipments", tags=TASKS, summary="Shipments of an order or by tracking number")
def list_shipments(
    session: SessionDep,
    _: Staff,
    order_id: str | None = None,
    tracking_number: str | None = None,
    limit: int = Query(default=100, ge=1, le=500),
) -> list[ShipmentOut]:
    views = tasks.list_shipments(
        session, order_id=order_id, tracking_number=tracking_number, limit=limit
    )
    return [ShipmentOut.model_validate(v) for v in views]


@router.get("/shipments/{shipment_id}", tags=TASKS, summary="One shipment with its packages")
def get_shipment(shipment_id: str, session: SessionDep, _: Staff) -> ShipmentOut:
    return ShipmentOut.model_validate(tasks.get_shipment(session, shipment_id))


@router.post(
    "/shipments/{shipment_id}/tracking",
    tags=TASKS,
    summary="A tracking update (carrier webhook or a person); delivered closes it",
)
def track_shipment(
    shipment_id: str, body: TrackingIn, session: SessionDep, principal: Floor
) -> ShipmentOut:
    view = tasks.record_tracking(
        session,
        shipment_id,
        body.status,
        note=body.note,
        at=body.occurred_at,
        by=principal.id,
    )
    return ShipmentOut.model_validate(view)


@router.get("/fulfillment/sla", tags=TASKS, summary="Pick deadlines and the pickup hold")
def get_sla(session: SessionDep, _: Staff) -> SlaOut:
    return SlaOut.model_validate(tasks.get_sla(session))


@router.put("/fulfillment/sla", tags=TASKS, summary="Change pick deadlines or the pickup hold")
def set_sla(body: SlaIn, session: SessionDep, _: Admin) -> SlaOut:
    changes = body.model_dump(exclude_none=True)
    return SlaOut.model_validate(tasks.set_sla(session, changes))
