"""HTTP routes of the customer context: customer 360, identity, consent, timeline, GDPR and
tracking sources. The Segment-compatible tracking endpoints are in ``tracking_api``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from sqlalchemy import select

from omniretail.core.auth import Principal, Role
from omniretail.core.errors import AppError
from omniretail.core.pagination import clamp_limit, decode_cursor, encode_cursor
from omniretail.core.web import (
    ERROR_RESPONSES,
    SessionDep,
    TransactionalRoute,
    database_of,
    require,
)
from omniretail.customer import service, subscribers, tracking
from omniretail.customer.identity import unmerge
from omniretail.customer.models import Source, TrackingReject
from omniretail.customer.schemas import (
    AddressIn,
    ConsentConfirmIn,
    ConsentIn,
    ConsentOut,
    ConsentView,
    CustomerCreate,
    CustomerOut,
    CustomerPage,
    CustomerUpdate,
    EraseIn,
    ErasureOut,
    IdentifierIn,
    MergeIn,
    MergeOut,
    RejectOut,
    RejectPage,
    SourceCreated,
    SourceIn,
    SourceOut,
    TimelineItem,
    TimelinePage,
    UnmergeIn,
)

subscribers.register()

router = APIRouter(prefix="/api/v1", route_class=TransactionalRoute, responses=ERROR_RESPONSES)

Reader = Annotated[
    Principal,
    Depends(require(Role.SUPPORT_AGENT, Role.STORE_ASSOCIATE, Role.ANALYST)),
]
Writer = Annotated[Principal, Depends(require(Role.SUPPORT_AGENT, Role.STORE_ASSOCIATE))]
IdentityAdmin = Annotated[Principal, Depends(require(Role.SUPPORT_AGENT))]
PiiReader = Annotated[Principal, Depends(require(Role.SUPPORT_AGENT))]
Admin = Annotated[Principal, Depends(require())]
ConsentWriter = Annotated[
    Principal, Depends(require(Role.SUPPORT_AGENT, Role.STORE_ASSOCIATE, Role.CHANNEL))
]
RejectReader = Annotated[Principal, Depends(require(Role.ANALYST))]


def _pii(principal: Principal) -> bool:
    return principal.role.value in service.PII_ROLES


def _actor(principal: Principal) -> str:
    return f"{principal.kind}:{principal.id}"


def _view(session: Any, customer_id: str, principal: Principal) -> CustomerOut:
    return CustomerOut.model_validate(service.customer_view(session, customer_id, _pii(principal)))


@router.post(
    "/customers",
    status_code=201,
    tags=["customers"],
    summary="Create a customer with identifiers, personal data, addresses and traits",
    responses={409: {"description": "An identifier already belongs to a customer"}},
)
def create_customer(body: CustomerCreate, session: SessionDep, principal: Writer) -> CustomerOut:
    data = service.NewCustomer(
        **body.model_dump(exclude={"addresses"}),
        addresses=[a.model_dump() for a in body.addresses],
    )
    cid = service.create_customer(session, data, _actor(principal))
    return _view(session, cid, principal)


@router.get(
    "/customers",
    tags=["customers"],
    summary="Find customers by email, phone, loyalty card or id (blind index), or list them",
)
def list_customers(
    session: SessionDep,
    principal: Reader,
    email: str | None = None,
    phone: str | None = None,
    loyalty_card: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> CustomerPage:
    filters = {
        "email": email,
        "phone": phone,
        "loyalty_card": loyalty_card,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
    }
    ids, next_cursor = service.search_customers(session, filters, cursor, limit)
    return CustomerPage(items=[_view(session, i, principal) for i in ids], next_cursor=next_cursor)


@router.post(
    "/customers/consent/confirm",
    tags=["customers"],
    summary="Confirm a double opt-in with the token sent by email",
)
def confirm_consent(
    body: ConsentConfirmIn, session: SessionDep, _principal: ConsentWriter
) -> ConsentOut:
    result = service.confirm_consent(session, body.token, body.proof)
    return ConsentOut(**result.__dict__)


@router.post(
    "/customers/merges/{merge_id}/unmerge",
    tags=["customers"],
    summary="Undo a merge: both profiles become separate customers again with their events",
)
def unmerge_customers(
    merge_id: str, body: UnmergeIn, session: SessionDep, principal: IdentityAdmin
) -> MergeOut:
    merge = unmerge(session, merge_id, _actor(principal), body.reason)
    return MergeOut.model_validate(service.merge_dict(merge))


@router.get("/customers/{customer_id}", tags=["customers"], summary="The customer 360")
def get_customer(customer_id: str, session: SessionDep, principal: Reader) -> CustomerOut:
    return _view(session, customer_id, principal)


@router.patch("/customers/{customer_id}", tags=["customers"], summary="Update a customer")
def update_customer(
    customer_id: str, body: CustomerUpdate, session: SessionDep, principal: Writer
) -> CustomerOut:
    cid = service.update_customer(
        session, customer_id, body.model_dump(exclude_unset=True), _actor(principal)
    )
    return _view(session, cid, principal)


@router.post(
    "/customers/{customer_id}/identifiers",
    tags=["customers"],
    summary="Add an identifier (email, phone, loyalty card, external id, ...)",
)
def add_identifier(
    customer_id: str, body: IdentifierIn, session: SessionDep, principal: Writer
) -> CustomerOut:
    service.add_identifier(session, customer_id, body.type, body.value, _actor(principal))
    return _view(session, customer_id, principal)


@router.post("/customers/{customer_id}/addresses", tags=["customers"], summary="Add an address")
def add_customer_address(
    customer_id: str, body: AddressIn, session: SessionDep, principal: Writer
) -> CustomerOut:
    service.add_address(session, customer_id, body.model_dump(), body.is_default)
    return _view(session, customer_id, principal)


@router.get(
    "/customers/{customer_id}/merges",
    tags=["customers"],
    summary="Merge history: every merge of this person, why it happened, and undos",
)
def merge_history(customer_id: str, session: SessionDep, _principal: Reader) -> list[MergeOut]:
    return [
        MergeOut.model_validate(service.merge_dict(m))
        for m in service.merge_history(session, customer_id)
    ]


@router.post(
    "/customers/{customer_id}/merge",
    tags=["customers"],
    summary="Merge another customer into this one (manual)",
)
def merge_customers(
    customer_id: str, body: MergeIn, session: SessionDep, principal: IdentityAdmin
) -> MergeOut:
    merge = service.merge_customers(
        session, customer_id, body.other_id, _actor(principal), body.reason
    )
    return MergeOut.model_validate(service.merge_dict(merge))


@router.get(
    "/customers/{customer_id}/consent",
    tags=["customers"],
    summary="Current consent per purpose and its history",
)
def get_consent(customer_id: str, session: SessionDep, principal: Reader) -> ConsentView:
    history = service.consent_history(session, customer_id)
    if not _pii(principal):
        for item in history:
            item["proof"] = None
    return ConsentView.model_validate(
        {
            "customer_id": service.root_of(session, customer_id).id,
            "current": service.consent_state(session, customer_id),
            "history": history,
        }
    )


@router.post(
    "/customers/{customer_id}/consent",
    tags=["customers"],
    summary="Grant or withdraw consent for a purpose (marketing email needs double opt-in)",
)
def set_consent(
    customer_id: str, body: ConsentIn, session: SessionDep, principal: ConsentWriter
) -> ConsentOut:
    result = service.set_consent(
        session,
        customer_id,
        body.purpose,
        body.granted,
        body.source,
        _actor(principal),
        body.proof,
    )
    return ConsentOut(**result.__dict__)


@router.get(
    "/customers/{customer_id}/timeline",
    tags=["customers"],
    summary="Orders from every channel, returns, tracked events and consent changes",
)
def get_timeline(
    customer_id: str,
    session: SessionDep,
    _principal: Reader,
    cursor: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> TimelinePage:
    items, next_cursor = service.timeline(session, customer_id, cursor, limit)
    return TimelinePage(
        items=[TimelineItem.model_validate(i) for i in items], next_cursor=next_cursor
    )


@router.get(
    "/customers/{customer_id}/export",
    tags=["customers"],
    summary="GDPR export: every piece of data about the person, machine-readable",
)
def export_customer(customer_id: str, session: SessionDep, _principal: PiiReader) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(service.export_customer(session, customer_id))


@router.post(
    "/customers/{customer_id}/erase",
    tags=["customers"],
    summary="GDPR erasure: crypto-shred personal data, keep financial records, audit it",
)
def erase_customer(
    customer_id: str,
    body: EraseIn,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    principal: Admin,
) -> ErasureOut:
    erasure = service.erase_customer(session, customer_id, _actor(principal), body.reason)
    background.add_task(service.scrub_storage, database_of(request))
    return ErasureOut.model_validate(erasure, from_attributes=True)


# --- tracking sources and rejects ----------------------------------------------------------


@router.post(
    "/tracking/sources",
    status_code=201,
    tags=["tracking"],
    summary="Create a tracking source (web, app, pos, server); the write key is shown once",
)
def create_source(body: SourceIn, session: SessionDep, _principal: Admin) -> SourceCreated:
    key, source = tracking.create_source(session, body.name, body.kind)
    return SourceCreated(
        **SourceOut.model_validate(source, from_attributes=True).model_dump(), write_key=key
    )


@router.get("/tracking/sources", tags=["tracking"], summary="Tracking sources")
def list_sources(session: SessionDep, _principal: Admin) -> list[SourceOut]:
    return [
        SourceOut.model_validate(s, from_attributes=True)
        for s in session.scalars(select(Source).order_by(Source.id))
    ]


@router.post(
    "/tracking/sources/{source_id}/deactivate",
    tags=["tracking"],
    summary="Deactivate a source: its write key is refused from now on",
)
def deactivate_source(source_id: str, session: SessionDep, _principal: Admin) -> SourceOut:
    return SourceOut.model_validate(
        tracking.deactivate_source(session, source_id), from_attributes=True
    )


@router.get(
    "/tracking/rejects",
    tags=["tracking"],
    summary="Events refused inside accepted batches (newest first)",
)
def list_rejects(
    session: SessionDep,
    _principal: RejectReader,
    source_id: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> RejectPage:
    size = clamp_limit(limit)
    query = select(TrackingReject)
    if source_id:
        query = query.where(TrackingReject.source_id == source_id)
    if cursor:
        position = decode_cursor(cursor)
        if not position.isdigit():
            raise AppError("invalid_cursor", "the cursor is not valid", 400, {"cursor": cursor})
        query = query.where(TrackingReject.id < int(position))
    rows = list(session.scalars(query.order_by(TrackingReject.id.desc()).limit(size + 1)))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = encode_cursor(str(rows[-1].id))
    return RejectPage(
        items=[RejectOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )
