"""Request and response models of the customer API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AddressIn(BaseModel):
    kind: str = Field(default="shipping", examples=["shipping"], max_length=20)
    line1: str = Field(examples=["12 High Street"], max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, examples=["Leeds"], max_length=120)
    postal_code: str | None = Field(default=None, examples=["LS1 4AP"], max_length=20)
    region: str | None = Field(default=None, max_length=120)
    country: str = Field(examples=["GB"], min_length=2, max_length=2)
    is_default: bool = False


class CustomerCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.org",
                    "phone": "+44 7700 900123",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "loyalty_card": "LC-100200",
                    "external_ids": {"shopify": "7781"},
                    "traits": {"plan": "gold"},
                    "preferred_store_id": "loc_01J...",
                    "preferred_channel": "store",
                }
            ]
        }
    )

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    first_name: str | None = Field(default=None, max_length=120)
    last_name: str | None = Field(default=None, max_length=120)
    loyalty_card: str | None = Field(default=None, max_length=64)
    user_id: str | None = Field(default=None, max_length=255)
    external_ids: dict[str, str] = Field(default_factory=dict)
    addresses: list[AddressIn] = Field(default_factory=list, max_length=20)
    traits: dict[str, Any] = Field(default_factory=dict)
    preferred_store_id: str | None = Field(default=None, max_length=40)
    preferred_channel: str | None = Field(default=None, max_length=20)


class CustomerUpdate(BaseModel):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    first_name: str | None = Field(default=None, max_length=120)
    last_name: str | None = Field(default=None, max_length=120)
    traits: dict[str, Any] | None = Field(
        default=None, description="Merged into the traits; a null value removes that trait"
    )
    preferred_store_id: str | None = Field(default=None, max_length=40)
    preferred_channel: str | None = Field(default=None, max_length=20)


class IdentifierIn(BaseModel):
    type: str = Field(
        examples=["loyalty_card"],
        description="email, phone, loyalty_card, user_id, anonymous_id, device_id or "
        "external:<channel>",
    )
    value: str = Field(examples=["LC-100200"], max_length=255)


class IdentifierOut(BaseModel):
    type: str
    value: str | None
    profile_id: str
    shared: bool
    source: str
    created_at: datetime


class ConsentEntry(BaseModel):
    status: str = Field(description="granted, pending (double opt-in), denied or not_given")
    source: str | None
    updated_at: datetime | None


class OrderStats(BaseModel):
    count: int
    revenue_minor: dict[str, int]


class CustomerOut(BaseModel):
    """The customer 360. Without PII permission (roles other than admin and support_agent)
    email, phone, names and addresses are masked."""

    id: str
    status: str
    profile_ids: list[str]
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    identifiers: list[IdentifierOut]
    addresses: list[dict[str, Any]]
    traits: dict[str, Any]
    preferred_store_id: str | None
    preferred_channel: str | None
    channels_used: list[str]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    event_count: int
    orders: OrderStats
    consent: dict[str, ConsentEntry]
    created_at: datetime


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None = None


class MergeIn(BaseModel):
    other_id: str = Field(examples=["cus_01J..."])
    reason: str = Field(default="", max_length=500)


class UnmergeIn(BaseModel):
    reason: str = Field(default="", max_length=500)


class MergeOut(BaseModel):
    id: str
    survivor_id: str
    absorbed_id: str
    cause: str
    explanation: str
    evidence: dict[str, Any]
    actor: str
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None
    undo_reason: str | None


class ConsentIn(BaseModel):
    purpose: str = Field(
        examples=["marketing_email"],
        description="marketing_email, marketing_sms, marketing_push, personalisation, analytics",
    )
    granted: bool
    source: str = Field(examples=["web:newsletter-form"], max_length=60)
    proof: dict[str, Any] | None = Field(
        default=None,
        description="Evidence (form version, wording, IP...); stored encrypted",
        examples=[{"form": "footer-v3", "text": "Send me offers"}],
    )


class ConsentOut(BaseModel):
    customer_id: str
    purpose: str
    status: str
    changed: bool


class ConsentConfirmIn(BaseModel):
    token: str = Field(max_length=200)
    proof: dict[str, Any] | None = None


class ConsentChangeOut(BaseModel):
    purpose: str
    status: str
    source: str
    actor: str
    occurred_at: datetime
    proof: dict[str, Any] | None


class ConsentView(BaseModel):
    customer_id: str
    current: dict[str, ConsentEntry]
    history: list[ConsentChangeOut]


class TimelineItem(BaseModel):
    id: str
    kind: str = Field(description="order, return, event or consent")
    type: str
    event: str | None
    fact: str | None
    channel: str | None
    occurred_at: datetime
    order_id: str | None
    amount_minor: int | None
    currency: str | None
    profile_id: str | None
    source_id: str
    message_id: str
    properties: dict[str, Any]
    data: dict[str, Any]


class TimelinePage(BaseModel):
    items: list[TimelineItem]
    next_cursor: str | None = None


class EraseIn(BaseModel):
    reason: str = Field(examples=["GDPR art. 17 request #4411"], max_length=500)


class ErasureOut(BaseModel):
    id: str
    customer_id: str
    profile_ids: list[str]
    requested_by: str
    reason: str
    counts: dict[str, int]
    erased_at: datetime


class SourceIn(BaseModel):
    name: str = Field(examples=["Web storefront"], max_length=120)
    kind: str = Field(examples=["web"], description="web, app, pos or server")


class SourceOut(BaseModel):
    id: str
    name: str
    kind: str
    key_prefix: str
    active: bool
    created_at: datetime


class SourceCreated(SourceOut):
    write_key: str = Field(description="Shown once; only its SHA-256 is stored")


class RejectOut(BaseModel):
    id: int
    source_id: str
    received_at: datetime
    code: str
    message: str
    position: int
    message_id: str | None
    event_type: str | None
    size_bytes: int


class RejectPage(BaseModel):
    items: list[RejectOut]
    next_cursor: str | None = None
