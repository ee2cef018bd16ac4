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
    error_doc,
    require,
    storefront,
)
from omniretail.fulfillment import service
from omniretail.fulfillment.schemas import (
    CarrierCalendarIn,
    CarrierCalendarOut,
    CostModelIn,
    CostModelOut,
    DecisionOut,
    LocationCalendarIn,
    LocationCalendarOut,
    PromiseIn,
    PromiseOut,
    SourcingPlanIn,
    StrategyIn,
    StrategyOut,
)


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
