"""Tables of the customer context.

Personal data (email, phone, names, addresses, the personal part of events, consent proof) is
stored only as Fernet ciphertext under the person's own data key (``customer_data_keys``);
lookups go through ``customer_identifiers.value_hash`` (HMAC blind index).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from omniretail.core.db import Base
from omniretail.core.timeutil import utcnow

AutoId = BigInteger().with_variant(Integer(), "sqlite")


class Profile(Base):
    """One profile per identity cluster seen; merged profiles point at their survivor."""

    __tablename__ = "customer_profiles"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    root_id: Mapped[str] = mapped_column(String(40), index=True)  # the person (canonical id)
    merged_into_id: Mapped[str | None] = mapped_column(String(40), default=None)
    status: Mapped[str] = mapped_column(String(12), default="active")  # active|merged|erased
    email_enc: Mapped[str | None] = mapped_column(Text, default=None)
    phone_enc: Mapped[str | None] = mapped_column(Text, default=None)
    first_name_enc: Mapped[str | None] = mapped_column(Text, default=None)
    last_name_enc: Mapped[str | None] = mapped_column(Text, default=None)
    traits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    preferred_store_id: Mapped[str | None] = mapped_column(String(40), default=None)
    preferred_channel: Mapped[str | None] = mapped_column(String(20), default=None)
    channels_mask: Mapped[int] = mapped_column(Integer, default=0)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(default=None)


class DataKey(Base):
    """A person's data key, wrapped by the master key ring. Deleting it crypto-shreds."""

    __tablename__ = "customer_data_keys"

    profile_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    wrapped: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(default=None)


class Identifier(Base):
    """An identifier (email, phone, loyalty card, user/anonymous/device id, external id) and
    the profile that first owned it. Ownership never moves: merges link profiles instead, so
    an unmerge gives each profile its identifiers back."""

    __tablename__ = "customer_identifiers"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(40))
    value_hash: Mapped[str] = mapped_column(String(64), unique=True)
    value: Mapped[str | None] = mapped_column(String(255), default=None)  # non-personal types
    value_enc: Mapped[str | None] = mapped_column(Text, default=None)  # email, phone
    profile_id: Mapped[str] = mapped_column(String(40), index=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(Base):
    """An identifier of an erased person, as its blind-index hash only (no value): bulk imports
    of another system's history must not bring that person back. Live sign-ups and tracking
    are not suppressed: a person who comes back of their own accord is a new customer."""

    __tablename__ = "customer_suppressions"

    value_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    erasure_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdentityLink(Base):
    """Two identifiers seen together, why, and what identity resolution did about it."""

    __tablename__ = "customer_identity_links"
    __table_args__ = (UniqueConstraint("a_hash", "b_hash"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    a_hash: Mapped[str] = mapped_column(String(64))  # the lower hash of the pair
    a_type: Mapped[str] = mapped_column(String(40))
    b_hash: Mapped[str] = mapped_column(String(64), index=True)
    b_type: Mapped[str] = mapped_column(String(40))
    cause: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str | None] = mapped_column(String(128), default=None)
    outcome: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Merge(Base):
    """An edge ``absorbed -> survivor``: why two profiles became one person; undoable."""

    __tablename__ = "customer_merges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(40), index=True)
    absorbed_id: Mapped[str] = mapped_column(String(40), index=True)
    cause: Mapped[str] = mapped_column(String(20))
    explanation: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)
    undone_by: Mapped[str | None] = mapped_column(String(60), default=None)
    undo_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Address(Base):
    __tablename__ = "customer_addresses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="shipping")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    data_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerEvent(Base):
    """Append-only activity: tracked calls, commerce facts from other contexts and consent
    changes. Personal fields of a call are split off into ``pii_enc``."""

    __tablename__ = "customer_events"
    __table_args__ = (
        UniqueConstraint("source_id", "message_id"),
        Index("ix_customer_events_profile_time", "profile_id", "occurred_at", "seq"),
    )

    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(12))  # track|identify|...|fact|consent
    event: Mapped[str | None] = mapped_column(String(200), default=None)
    fact: Mapped[str | None] = mapped_column(String(40), default=None)
    user_id: Mapped[str | None] = mapped_column(String(255), default=None)
    anonymous_id: Mapped[str | None] = mapped_column(String(255), default=None)
    profile_id: Mapped[str | None] = mapped_column(String(40), default=None)
    channel: Mapped[str | None] = mapped_column(String(20), default=None)
    order_id: Mapped[str | None] = mapped_column(String(100), default=None)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    occurred_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pii_enc: Mapped[str | None] = mapped_column(Text, default=None)


class Consent(Base):
    """Current consent of a profile for one purpose."""

    __tablename__ = "customer_consents"

    profile_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(30), primary_key=True)
    status: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    token_hash: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)


class ConsentChange(Base):
    """Every consent change, with its source, time and (encrypted) proof."""

    __tablename__ = "customer_consent_changes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(40), index=True)
    purpose: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(60))
    proof_enc: Mapped[str | None] = mapped_column(Text, default=None)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


class Source(Base):
    """A tracking source (web, app, POS, server) with its hashed write key."""

    __tablename__ = "customer_sources"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrackingReject(Base):
    """An event refused inside an accepted batch (the batch still answered 200)."""

    __tablename__ = "customer_tracking_rejects"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(String(40), index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str | None] = mapped_column(String(128), default=None)
    event_type: Mapped[str | None] = mapped_column(String(20), default=None)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)


class Erasure(Base):
    """Audit record of a GDPR erasure (no personal data in it)."""

    __tablename__ = "customer_erasures"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    profile_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    requested_by: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
