"""Use cases of the customer context: profiles (customer 360), consent, timeline, commerce
facts from other contexts, GDPR export and erasure. Services flush; callers commit."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from omniretail.core import events
from omniretail.core.db import Database
from omniretail.core.errors import AppError, conflict, invalid, not_found
from omniretail.core.ids import new_id
from omniretail.core.pagination import clamp_limit
from omniretail.core.timeutil import as_utc, utcnow
from omniretail.customer import domain
from omniretail.customer.crypto import (
    decrypt_json,
    decrypt_text,
    encrypt_json,
    encrypt_text,
    key_ring,
)
from omniretail.customer.domain import ConsentStatus, Purpose
from omniretail.customer.identity import (
    Resolver,
    Seen,
    member_ids,
    merge_roots,
    merges_of,
    root_of,
)
from omniretail.customer.keys import data_keys, destroy_data_keys
from omniretail.customer.models import (
    Address,
    Consent,
    ConsentChange,
    CustomerEvent,
    Erasure,
    Identifier,
    IdentityLink,
    Merge,
    Profile,
    Suppression,
)
from omniretail.customer.settings import get_customer_settings
from omniretail.customer.tracking import PROFILE_STATS

INTERNAL_SOURCE = "internal"
PII_ROLES = frozenset({"admin", "support_agent"})

# --- helpers ------------------------------------------------------------------------------


def _dec(key: Fernet | None, token: str | None) -> str | None:
    if key is None or token is None:
        return None
    try:
        return decrypt_text(key, token)
    except InvalidToken:
        return None


def _dec_json(key: Fernet | None, token: str | None) -> Any:
    if key is None or token is None:
        return None
    try:
        return decrypt_json(key, token)
    except InvalidToken:
        return None


def _seen(kind: str, raw: Any, *, strict: bool = True) -> Seen | None:
    """Normalise and hash an identifier given through the API; 422 when unusable."""
    if not domain.is_identifier_type(kind):
        raise invalid("invalid_identifier_type", f"unknown identifier type {kind!r}")
    value = domain.normalise_identifier(kind, raw)
    if value is None:
        if strict:
            raise invalid(f"invalid_{kind.split(':')[0]}", f"{kind} value is not valid")
        return None
    if domain.is_blocked(value, get_customer_settings().identity_blocked_values):
        raise invalid("blocked_identifier", f"this {kind} is blocked and cannot identify anyone")
    return Seen(kind, value, key_ring().blind_index(kind, value))


def find_customer_id(session: Session, kind: str, value: Any) -> str | None:
    """The person (root profile id) that owns an identifier, via the blind index."""
    seen = _seen(kind, value, strict=False)
    if seen is None:
        return None
    return session.scalar(
        select(Profile.root_id)
        .join(Identifier, Identifier.profile_id == Profile.id)
        .where(Identifier.value_hash == seen.hash)
    )


def person_profile_ids(session: Session, customer_id: str) -> list[str]:
    """Every profile id of the person that ``customer_id`` (any of their profile ids) belongs
    to, in id order: the ids other contexts may have recorded for that person, since a merge
    keeps the absorbed ids. ``[]`` for an unknown id."""
    root = session.scalar(select(Profile.root_id).where(Profile.id == customer_id))
    return member_ids(session, root) if root is not None else []


def resolve_customer_ref(session: Session, ref: str) -> str:
    """A customer id (``cus_...``) or an email address, as the CLI accepts them."""
    if ref.startswith("cus_"):
        return root_of(session, ref).id
    found = find_customer_id(session, "email", ref)
    if found is None:
        raise not_found("customer", ref)
    return found


# --- profiles -----------------------------------------------------------------------------


@dataclass
class NewCustomer:
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    loyalty_card: str | None = None
    user_id: str | None = None
    external_ids: dict[str, str] = field(default_factory=dict)
    addresses: list[dict[str, Any]] = field(default_factory=list)
    traits: dict[str, Any] = field(default_factory=dict)
    preferred_store_id: str | None = None
    preferred_channel: str | None = None


def _identifiers_of(data: NewCustomer) -> list[Seen]:
    seen: list[Seen] = []
    for kind, value in (
        ("email", data.email),
        ("phone", data.phone),
        ("loyalty_card", data.loyalty_card),
        ("user_id", data.user_id),
    ):
        if value is not None:
            s = _seen(kind, value)
            if s is not None:
                seen.append(s)
    for channel, value in sorted(data.external_ids.items()):
        s = _seen(f"external:{channel.strip().lower()}", value)
        if s is not None:
            seen.append(s)
    return seen


def _check_channel(channel: str | None) -> None:
    if channel is not None and channel not in domain.CHANNEL_BITS:
        raise invalid(
            "invalid_channel", f"unknown channel {channel!r}", allowed=list(domain.CHANNEL_BITS)
        )


def _clean_address(raw: Mapping[str, Any]) -> dict[str, str]:
    out = {
        k: str(v).strip()
        for k, v in raw.items()
        if k in domain.ADDRESS_FIELDS and v is not None and str(v).strip()
    }
    if not out.get("line1") or not out.get("country"):
        raise invalid("invalid_address", "an address needs at least line1 and country")
    return out


def create_customer(session: Session, data: NewCustomer, actor: str) -> str:
    """A new person with identifiers, personal data, addresses and traits; 409 if any
    identifier already belongs to someone."""
    _check_channel(data.preferred_channel)
    seen = _identifiers_of(data)
    hashes = [s.hash for s in seen]
    if hashes:
        owner = session.execute(
            select(Identifier.type, Profile.root_id)
            .join(Profile, Profile.id == Identifier.profile_id)
            .where(Identifier.value_hash.in_(hashes))
            .limit(1)
        ).first()
        if owner is not None:
            raise conflict(
                "customer_exists",
                f"a customer with this {owner.type} already exists",
                customer_id=owner.root_id,
                identifier_type=owner.type,
            )
    addresses = [
        _clean_address(a) | {"kind": str(a.get("kind") or "shipping")} for a in data.addresses
    ]
    pid = new_id("cus")
    now = utcnow()
    key = data_keys(session, [pid], create=True)[pid]
    profile = Profile(
        id=pid,
        root_id=pid,
        status="active",
        traits=dict(data.traits),
        preferred_store_id=data.preferred_store_id,
        preferred_channel=data.preferred_channel,
        channels_mask=domain.channel_bit(data.preferred_channel),
        event_count=0,
        created_at=now,
        updated_at=now,
    )
    for name in domain.PERSON_FIELDS:
        value = getattr(data, name)
        if value:
            if name == "email":
                value = domain.normalise_identifier("email", value)
            elif name == "phone":
                value = domain.normalise_identifier("phone", value)
            setattr(profile, f"{name}_enc", encrypt_text(key, str(value)))
    session.add(profile)
    for s in seen:
        _add_identifier(session, key, pid, s, source=f"api:{actor}")
    for i, address in enumerate(addresses):
        _add_address(session, key, pid, address, is_default=i == 0)
    session.flush()
    events.emit(session, "customer.created", {"customer_id": pid}, aggregate_id=pid)
    return pid


def _add_identifier(session: Session, key: Fernet, pid: str, s: Seen, source: str) -> None:
    row = Identifier(type=s.type, value_hash=s.hash, profile_id=pid, shared=False, source=source)
    if s.type in domain.PII_IDENTIFIER_TYPES:
        row.value_enc = encrypt_text(key, s.value)
    else:
        row.value = s.value
    session.add(row)


def _add_address(
    session: Session, key: Fernet, pid: str, address: dict[str, str], is_default: bool
) -> Address:
    kind = address.pop("kind", "shipping")
    row = Address(
        id=new_id("adr"),
        profile_id=pid,
        kind=kind,
        is_default=is_default,
        data_enc=encrypt_json(key, address),
        created_at=utcnow(),
    )
    session.add(row)
    return row


def _active_root(session: Session, customer_id: str) -> Profile:
    root = root_of(session, customer_id)
    if root.status == "erased":
        raise AppError("customer_erased", f"customer {root.id!r} was erased", 410)
    return root


def add_identifier(session: Session, customer_id: str, kind: str, value: Any, actor: str) -> None:
    root = _active_root(session, customer_id)
    s = _seen(kind, value)
    assert s is not None
    owner = session.execute(
        select(Profile.root_id)
        .join(Identifier, Identifier.profile_id == Profile.id)
        .where(Identifier.value_hash == s.hash)
    ).scalar()
    if owner == root.id:
        return
    if owner is not None:
        raise conflict(
            "identifier_in_use",
            f"this {kind} belongs to another customer; merge them if they are one person",
            customer_id=owner,
        )
    from omniretail.customer.identity import identifier_counts

    violation = domain.attach_violation(
        identifier_counts(session, root.id), kind, get_customer_settings().identity_limits
    )
    if violation is not None:
        raise conflict(
            "identifier_limit", f"a customer may not have more identifiers of type {kind}"
        )
    key = data_keys(session, [root.id], create=True)[root.id]
    _add_identifier(session, key, root.id, s, source=f"api:{actor}")
    root.updated_at = utcnow()
    session.flush()


def add_address(
    session: Session, customer_id: str, address: Mapping[str, Any], is_default: bool
) -> str:
    root = _active_root(session, customer_id)
    cleaned = _clean_address(address) | {"kind": str(address.get("kind") or "shipping")}
    key = data_keys(session, [root.id], create=True)[root.id]
    if is_default:
        session.execute(
            update(Address).where(Address.profile_id == root.id).values(is_default=False)
        )
    row = _add_address(session, key, root.id, cleaned, is_default)
    session.flush()
    return row.id


def update_customer(
    session: Session, customer_id: str, changes: Mapping[str, Any], actor: str
) -> str:
    """Change names, email/phone (also added as identifiers), traits (null removes a trait),
    preferred store and channel."""
    root = _active_root(session, customer_id)
    if "preferred_channel" in changes:
        _check_channel(changes["preferred_channel"])
    for kind in ("email", "phone"):
        if changes.get(kind):
            add_identifier(session, root.id, kind, changes[kind], actor)
    key = data_keys(session, [root.id], create=True)[root.id]
    for name in domain.PERSON_FIELDS:
        if name in changes:
            value = changes[name]
            if value and name in ("email", "phone"):
                value = domain.normalise_identifier(name, value)
            setattr(root, f"{name}_enc", encrypt_text(key, str(value)) if value else None)
    if "traits" in changes and changes["traits"] is not None:
        traits = dict(root.traits or {})
        for k, v in changes["traits"].items():
            if v is None:
                traits.pop(k, None)
            else:
                traits[k] = v
        root.traits = traits
    for name in ("preferred_store_id", "preferred_channel"):
        if name in changes:
            setattr(root, name, changes[name])
    root.updated_at = utcnow()
    session.flush()
    events.emit(session, "customer.updated", {"customer_id": root.id}, aggregate_id=root.id)
    return root.id


def customer_view(session: Session, customer_id: str, pii: bool) -> dict[str, Any]:
    """The customer 360: every profile of the person folded into one view."""
    root = root_of(session, customer_id)
    members = list(
        session.scalars(
            select(Profile).where(Profile.root_id == root.id).order_by(Profile.updated_at)
        )
    )
    ids = [m.id for m in members]
    keys = data_keys(session, ids, create=False)
    ordered = sorted(members, key=lambda m: (m.id == root.id, m.updated_at))  # root wins
    person: dict[str, str | None] = dict.fromkeys(domain.PERSON_FIELDS)
    traits: dict[str, Any] = {}
    for m in ordered:
        traits.update(m.traits or {})
        for name in domain.PERSON_FIELDS:
            value = _dec(keys.get(m.id), getattr(m, f"{name}_enc"))
            if value:
                person[name] = value
    if not pii:
        person["email"] = domain.mask_email(person["email"])
        person["phone"] = domain.mask_phone(person["phone"])
        person["first_name"] = domain.mask_name(person["first_name"])
        person["last_name"] = domain.mask_name(person["last_name"])

    identifiers = []
    for row in session.scalars(
        select(Identifier).where(Identifier.profile_id.in_(ids)).order_by(Identifier.id)
    ):
        value = row.value
        if row.type in domain.PII_IDENTIFIER_TYPES:
            value = _dec(keys.get(row.profile_id), row.value_enc)
            if not pii:
                value = domain.mask_identifier(row.type, value)
        identifiers.append(
            {
                "type": row.type,
                "value": value,
                "profile_id": row.profile_id,
                "shared": row.shared,
                "source": row.source,
                "created_at": row.created_at,
            }
        )
    addresses = []
    for adr in session.scalars(
        select(Address).where(Address.profile_id.in_(ids)).order_by(Address.created_at)
    ):
        data = _dec_json(keys.get(adr.profile_id), adr.data_enc) or {}
        item = {"id": adr.id, "kind": adr.kind, "is_default": adr.is_default, **data}
        addresses.append(item if pii else domain.mask_address(item))

    mask = 0
    for m in members:
        mask |= m.channels_mask
    seen_first = [m.first_seen_at for m in members if m.first_seen_at]
    seen_last = [m.last_seen_at for m in members if m.last_seen_at]
    preferred = next((m for m in reversed(ordered) if m.preferred_store_id), None)
    preferred_ch = next((m for m in reversed(ordered) if m.preferred_channel), None)
    return {
        "id": root.id,
        "status": root.status,
        "profile_ids": ids,
        **person,
        "identifiers": identifiers,
        "addresses": addresses,
        "traits": traits,
        "preferred_store_id": preferred.preferred_store_id if preferred else None,
        "preferred_channel": preferred_ch.preferred_channel if preferred_ch else None,
        "channels_used": domain.channels_of(mask),
        "first_seen_at": min(seen_first) if seen_first else None,
        "last_seen_at": max(seen_last) if seen_last else None,
        "event_count": sum(m.event_count for m in members),
        "orders": order_stats(session, ids),
        "consent": consent_state(session, root.id),
        "created_at": min(m.created_at for m in members),
    }


def order_stats(session: Session, profile_ids: Sequence[str]) -> dict[str, Any]:
    """Distinct orders and revenue per currency from order facts of every channel."""
    rows = session.execute(
        select(
            CustomerEvent.order_id,
            CustomerEvent.currency,
            func.max(CustomerEvent.amount_minor),
        )
        .where(
            CustomerEvent.profile_id.in_(profile_ids),
            CustomerEvent.fact.in_(["order_completed", "order_placed", "pos_sale"]),
            CustomerEvent.order_id.is_not(None),
        )
        .group_by(CustomerEvent.order_id, CustomerEvent.currency)
    ).all()
    revenue: dict[str, int] = {}
    orders = set()
    for order_id, currency, amount in rows:
        orders.add(order_id)
        if currency and amount is not None:
            revenue[currency] = revenue.get(currency, 0) + int(amount)
    return {"count": len(orders), "revenue_minor": revenue}


def search_customers(
    session: Session, filters: Mapping[str, Any], cursor: str | None, limit: int | None
) -> tuple[list[str], str | None]:
    """Customer ids matching an identifier (blind index) or, without filters, all people."""
    size = clamp_limit(limit)
    given = {k: v for k, v in filters.items() if v not in (None, "")}
    if given:
        found: set[str] = set()
        for kind, value in given.items():
            cid = find_customer_id(session, kind, value)
            if cid is not None:
                found.add(cid)
        return sorted(found), None
    from omniretail.core.pagination import decode_cursor, encode_cursor

    query = select(Profile.id).where(Profile.root_id == Profile.id, Profile.status == "active")
    if cursor:
        query = query.where(Profile.id > decode_cursor(cursor))
    ids = list(session.scalars(query.order_by(Profile.id).limit(size + 1)))
    if len(ids) > size:
        ids = ids[:size]
        return ids, encode_cursor(ids[-1])
    return ids, None


# --- merges -------------------------------------------------------------------------------


def merge_customers(
    session: Session, customer_id: str, other_id: str, actor: str, reason: str
) -> Merge:
    a = _active_root(session, customer_id)
    b = _active_root(session, other_id)
    if a.id == b.id:
        raise conflict("already_merged", "these profiles are already one customer")
    return merge_roots(
        session,
        a.id,
        b.id,
        cause="manual",
        actor=actor,
        explanation=f"manual: {reason}" if reason else "manual merge",
        evidence={"requested": [customer_id, other_id]},
    )


def merge_history(session: Session, customer_id: str) -> list[Merge]:
    return merges_of(session, root_of(session, customer_id).id)


# --- consent ------------------------------------------------------------------------------


def _purpose(value: str) -> Purpose:
    try:
        return Purpose(value)
    except ValueError:
        raise invalid(
            "invalid_purpose", f"unknown purpose {value!r}", allowed=[p.value for p in Purpose]
        ) from None


@dataclass
class ConsentResult:
    customer_id: str
    purpose: str
    status: str
    changed: bool


def _consent_rows(session: Session, root_id: str) -> list[Consent]:
    return list(
        session.scalars(
            select(Consent)
            .join(Profile, Profile.id == Consent.profile_id)
            .where(Profile.root_id == root_id)
        )
    )


def consent_state(session: Session, customer_id: str) -> dict[str, dict[str, Any]]:
    """Current consent per purpose (the latest change across the person's profiles)."""
    root_id = root_of(session, customer_id).id
    latest: dict[str, Consent] = {}
    for consent in _consent_rows(session, root_id):
        current = latest.get(consent.purpose)
        if current is None or as_utc(consent.updated_at) >= as_utc(current.updated_at):
            latest[consent.purpose] = consent
    out: dict[str, dict[str, Any]] = {}
    for purpose in Purpose:
        row = latest.get(purpose.value)
        out[purpose.value] = (
            {"status": row.status, "source": row.source, "updated_at": row.updated_at}
            if row
            else {"status": "not_given", "source": None, "updated_at": None}
        )
    return out


def has_consent(session: Session, customer_id: str, purpose: str) -> bool:
    """Public check for every context: may this person's data be used for ``purpose``?"""
    wanted = _purpose(purpose)
    profile = session.get(Profile, customer_id)
    if profile is None or profile.status == "erased":
        return False
    state = consent_state(session, profile.root_id)
    return bool(state[wanted.value]["status"] == ConsentStatus.GRANTED)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_consent(
    session: Session,
    customer_id: str,
    purpose: str,
    granted: bool,
    source: str,
    actor: str,
    proof: Mapping[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> ConsentResult:
    """Grant or withdraw consent. Granting marketing email starts a double opt-in: status
    ``pending`` until the emailed token is confirmed (``confirm_consent``)."""
    wanted = _purpose(purpose)
    root = _active_root(session, customer_id)
    if not source.strip():
        raise invalid("invalid_source", "consent needs a source (where it was given)")
    current = consent_state(session, root.id)[wanted.value]["status"]
    if granted:
        status = ConsentStatus.PENDING if wanted in domain.DOUBLE_OPT_IN else ConsentStatus.GRANTED
        if current == ConsentStatus.GRANTED:
            return ConsentResult(root.id, wanted.value, current, False)
    else:
        status = ConsentStatus.DENIED
        if current == ConsentStatus.DENIED:
            return ConsentResult(root.id, wanted.value, current, False)
    token = secrets.token_urlsafe(24) if status == ConsentStatus.PENDING else None
    _write_consent(session, root.id, wanted.value, status, source, actor, proof, token, occurred_at)
    if token is not None:
        events.emit(
            session,
            "customer.consent_confirmation_requested",
            {"customer_id": root.id, "purpose": wanted.value, "token": token},
            aggregate_id=root.id,
        )
    return ConsentResult(root.id, wanted.value, status.value, True)


def confirm_consent(session: Session, token: str, proof: Mapping[str, Any] | None) -> ConsentResult:
    row = session.scalar(select(Consent).where(Consent.token_hash == _token_hash(token)))
    if row is None or row.status != ConsentStatus.PENDING:
        raise AppError("invalid_confirmation_token", "the confirmation token is not valid", 404)
    root_id = root_of(session, row.profile_id).id
    _write_consent(
        session,
        root_id,
        row.purpose,
        ConsentStatus.GRANTED,
        row.source,
        "double_opt_in",
        {"double_opt_in": "confirmed", **(proof or {})},
        None,
        None,
    )
    return ConsentResult(root_id, row.purpose, ConsentStatus.GRANTED.value, True)


def _write_consent(
    session: Session,
    root_id: str,
    purpose: str,
    status: ConsentStatus,
    source: str,
    actor: str,
    proof: Mapping[str, Any] | None,
    token: str | None,
    occurred_at: datetime | None,
) -> None:
    now = occurred_at or utcnow()
    # One current row per person and purpose: drop the rows of absorbed profiles.
    session.execute(
        delete(Consent).where(
            Consent.purpose == purpose,
            Consent.profile_id.in_(member_ids(session, root_id)),
        )
    )
    session.flush()
    session.add(
        Consent(
            profile_id=root_id,
            purpose=purpose,
            status=status.value,
            source=source,
            updated_at=now,
            token_hash=_token_hash(token) if token else None,
        )
    )
    key = data_keys(session, [root_id], create=True)[root_id] if proof else None
    change_id = new_id("cns")
    session.add(
        ConsentChange(
            id=change_id,
            profile_id=root_id,
            purpose=purpose,
            status=status.value,
            source=source,
            actor=actor,
            proof_enc=encrypt_json(key, dict(proof)) if key and proof else None,
            occurred_at=now,
        )
    )
    session.add(
        CustomerEvent(
            source_id=INTERNAL_SOURCE,
            message_id=f"consent:{change_id}",
            type="consent",
            event=f"Consent {status.value.capitalize()}",
            profile_id=root_id,
            channel=None,
            occurred_at=now,
            received_at=now,
            data={"purpose": purpose, "status": status.value, "source": source},
        )
    )
    session.flush()
    events.emit(
        session,
        "customer.consent_changed",
        {"customer_id": root_id, "purpose": purpose, "status": status.value, "source": source},
        aggregate_id=root_id,
    )


def consent_history(session: Session, customer_id: str) -> list[dict[str, Any]]:
    root_id = root_of(session, customer_id).id
    ids = member_ids(session, root_id)
    keys = data_keys(session, ids, create=False)
    return [
        {
            "purpose": c.purpose,
            "status": c.status,
            "source": c.source,
            "actor": c.actor,
            "occurred_at": c.occurred_at,
            "proof": _dec_json(keys.get(c.profile_id), c.proof_enc),
        }
        for c in session.scalars(
            select(ConsentChange)
            .where(ConsentChange.profile_id.in_(ids))
            .order_by(ConsentChange.occurred_at, ConsentChange.id)
        )
    ]


# --- timeline -----------------------------------------------------------------------------


def _cursor(occurred_at: datetime, seq: int) -> str:
    raw = f"{as_utc(occurred_at).isoformat()}|{seq}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, _, seq = raw.partition("|")
        return as_utc(datetime.fromisoformat(ts)), int(seq)
    except Exception:
        raise AppError(
            "invalid_cursor", "the cursor is not valid", 400, {"cursor": cursor}
        ) from None


def timeline(
    session: Session, customer_id: str, cursor: str | None, limit: int | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Everything the person did and everything that happened to them, newest first: orders
    from every channel, returns, tracked events and consent changes."""
    size = clamp_limit(limit)
    root = root_of(session, customer_id)
    ids = member_ids(session, root.id)
    query = select(CustomerEvent).where(CustomerEvent.profile_id.in_(ids))
    if cursor:
        ts, seq = _parse_cursor(cursor)
        query = query.where(
            or_(
                CustomerEvent.occurred_at < ts,
                and_(CustomerEvent.occurred_at == ts, CustomerEvent.seq < seq),
            )
        )
    rows = list(
        session.scalars(
            query.order_by(CustomerEvent.occurred_at.desc(), CustomerEvent.seq.desc()).limit(
                size + 1
            )
        )
    )
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = _cursor(rows[-1].occurred_at, rows[-1].seq)
    return [timeline_item(r) for r in rows], next_cursor


def timeline_kind(row: CustomerEvent) -> str:
    if row.type == "consent":
        return "consent"
    if row.fact in ("order_completed", "order_placed", "pos_sale"):
        return "order"
    if row.fact in ("return_received", "order_refunded", "refund_issued"):
        return "return"
    return "event"


def timeline_item(row: CustomerEvent) -> dict[str, Any]:
    return {
        "id": str(row.seq),
        "kind": timeline_kind(row),
        "type": row.type,
        "event": row.event,
        "fact": row.fact,
        "channel": row.channel,
        "occurred_at": row.occurred_at,
        "order_id": row.order_id,
        "amount_minor": row.amount_minor,
        "currency": row.currency,
        "profile_id": row.profile_id,
        "source_id": row.source_id,
        "message_id": row.message_id,
        "properties": (row.data or {}).get("properties", {}),
        "data": {k: v for k, v in (row.data or {}).items() if k not in ("properties", "context")},
    }


# --- commerce facts from other contexts ----------------------------------------------------

_REF_KEYS = {
    "email": "email",
    "phone": "phone",
    "loyalty_card": "loyalty_card",
    "user_id": "user_id",
    "anonymous_id": "anonymous_id",
}
_FACT_PII_KEYS = frozenset(
    {
        "customer",
        "customer_id",
        "email",
        "phone",
        "name",
        "first_name",
        "last_name",
        "address",
        "shipping_address",
        "billing_address",
    }
)


def record_commerce_fact(
    session: Session,
    customer_ref: str | Mapping[str, Any],
    kind: str,
    payload: Mapping[str, Any],
) -> CustomerEvent | None:
    """Entry point for orders, POS sales and returns of other contexts.

    ``customer_ref`` is a customer id or identifiers (``email``, ``phone``, ``loyalty_card``,
    ``user_id``, ``anonymous_id``, ``external: {channel: id}``), which are linked like any
    other identifiers seen together. ``payload`` may carry ``id``/``order_id``/``return_id``
    (deduplication), ``total_minor`` or ``amount_minor``, ``currency``, ``channel`` and
    ``occurred_at``. Personal fields of the payload are not stored. Idempotent per
    (kind, reference); returns the stored fact or ``None`` for a duplicate."""
    if not kind or len(kind) > 40:
        raise invalid("invalid_fact_kind", "a fact needs a kind of at most 40 characters")
    ref = payload.get("id") or payload.get("order_id") or payload.get("return_id")
    message_id = f"{kind}:{ref}" if ref else f"{kind}:{uuid.uuid4()}"
    profile_id: str | None
    if isinstance(customer_ref, str):
        profile_id = root_of(session, customer_ref).id
    else:
        if customer_ref.get("customer_id"):
            profile_id = root_of(session, str(customer_ref["customer_id"])).id
        else:
            resolver = Resolver(session, INTERNAL_SOURCE, actor=f"fact:{kind}")
            seen: list[Seen] = []
            for key, id_kind in _REF_KEYS.items():
                s = resolver.seen(id_kind, customer_ref.get(key))
                if s is not None:
                    seen.append(s)
            for channel, value in (customer_ref.get("external") or {}).items():
                s = resolver.seen(f"external:{str(channel).lower()}", value)
                if s is not None:
                    seen.append(s)
            resolver.prefetch(s.hash for s in seen)
            profile_id = resolver.resolve(seen, cause=kind[:20], message_id=message_id)
            resolver.flush()
            _store_ref_pii(session, resolver, seen)
    if profile_id is None:
        return None
    existing = session.scalar(
        select(CustomerEvent.seq).where(
            CustomerEvent.source_id == INTERNAL_SOURCE, CustomerEvent.message_id == message_id
        )
    )
    if existing is not None:
        return None
    currency = payload.get("currency")
    currency = str(currency).upper()[:3] if currency else None
    amount = payload.get("total_minor", payload.get("amount_minor"))
    occurred = payload.get("occurred_at")
    occurred_at = domain.parse_timestamp(occurred, "occurred_at") if occurred else utcnow()
    assert occurred_at is not None
    channel = str(payload.get("channel") or ("pos" if kind.startswith("pos") else "server"))
    order_id = payload.get("order_id") or (
        payload.get("id") if "order" in kind or "sale" in kind else None
    )
    row = CustomerEvent(
        source_id=INTERNAL_SOURCE,
        message_id=message_id,
        type="fact",
        event=kind.replace("_", " ").title(),
        fact=kind,
        profile_id=profile_id,
        channel=channel[:20],
        order_id=str(order_id)[:100] if order_id else None,
        amount_minor=int(amount) if isinstance(amount, int) else None,
        currency=currency,
        occurred_at=occurred_at,
        received_at=utcnow(),
        data={"properties": {k: v for k, v in payload.items() if k not in _FACT_PII_KEYS}},
    )
    session.add(row)
    session.flush()
    session.execute(
        PROFILE_STATS,
        [
            {
                "pid": profile_id,
                "n": 1,
                "bit": domain.channel_bit(channel),
                "first": occurred_at,
                "last": occurred_at,
            }
        ],
    )
    return row


def _store_ref_pii(session: Session, resolver: Resolver, seen: Sequence[Seen]) -> None:
    """Newly created people from facts get their email/phone as (encrypted) profile data."""
    for pid in resolver.created_profiles:
        profile = session.get(Profile, pid)
        if profile is None:
            continue
        key = data_keys(session, [pid], create=True)[pid]
        for s in seen:
            if s.type in ("email", "phone") and getattr(profile, f"{s.type}_enc") is None:
                setattr(profile, f"{s.type}_enc", encrypt_text(key, s.value))


# --- GDPR ---------------------------------------------------------------------------------


def export_customer(session: Session, customer_id: str) -> dict[str, Any]:
    """Everything stored about a person, decrypted, as one machine-readable bundle."""
    root = root_of(session, customer_id)
    ids = member_ids(session, root.id)
    keys = data_keys(session, ids, create=False)
    view = customer_view(session, root.id, pii=True)
    profiles = []
    for p in session.scalars(select(Profile).where(Profile.id.in_(ids)).order_by(Profile.id)):
        key = keys.get(p.id)
        profiles.append(
            {
                "id": p.id,
                "status": p.status,
                "merged_into_id": p.merged_into_id,
                "email": _dec(key, p.email_enc),
                "phone": _dec(key, p.phone_enc),
                "first_name": _dec(key, p.first_name_enc),
                "last_name": _dec(key, p.last_name_enc),
                "traits": p.traits,
                "preferred_store_id": p.preferred_store_id,
                "preferred_channel": p.preferred_channel,
                "created_at": p.created_at,
                "updated_at": p.updated_at,
            }
        )
    activity = []
    for e in session.scalars(
        select(CustomerEvent)
        .where(CustomerEvent.profile_id.in_(ids))
        .order_by(CustomerEvent.occurred_at, CustomerEvent.seq)
    ):
        activity.append(
            {
                "seq": e.seq,
                "source_id": e.source_id,
                "message_id": e.message_id,
                "type": e.type,
                "event": e.event,
                "fact": e.fact,
                "user_id": e.user_id,
                "anonymous_id": e.anonymous_id,
                "profile_id": e.profile_id,
                "channel": e.channel,
                "order_id": e.order_id,
                "amount_minor": e.amount_minor,
                "currency": e.currency,
                "occurred_at": e.occurred_at,
                "received_at": e.received_at,
                "data": e.data,
                "personal_data": _dec_json(keys.get(e.profile_id or ""), e.pii_enc),
            }
        )
    hashes = list(
        session.scalars(select(Identifier.value_hash).where(Identifier.profile_id.in_(ids)))
    )
    links = [
        {
            "types": [link.a_type, link.b_type],
            "cause": link.cause,
            "source": link.source,
            "message_id": link.message_id,
            "outcome": link.outcome,
            "created_at": link.created_at,
        }
        for link in session.scalars(
            select(IdentityLink)
            .where(or_(IdentityLink.a_hash.in_(hashes), IdentityLink.b_hash.in_(hashes)))
            .order_by(IdentityLink.id)
        )
    ]
    return {
        "format": "omniretail.customer-export/1",
        "exported_at": utcnow(),
        "customer_id": root.id,
        "customer": view,
        "profiles": profiles,
        "consent_history": consent_history(session, root.id),
        "events": activity,
        "merges": [merge_dict(m) for m in merges_of(session, root.id)],
        "identity_links": links,
    }


def merge_dict(m: Merge) -> dict[str, Any]:
    return {
        "id": m.id,
        "survivor_id": m.survivor_id,
        "absorbed_id": m.absorbed_id,
        "cause": m.cause,
        "explanation": m.explanation,
        "evidence": m.evidence,
        "actor": m.actor,
        "created_at": m.created_at,
        "undone_at": m.undone_at,
        "undone_by": m.undone_by,
        "undo_reason": m.undo_reason,
    }


def suppress_identifiers(
    session: Session, identifiers: Sequence[tuple[str, str]], erasure_id: str | None
) -> int:
    """Put (value hash, type) pairs on the suppression list; already listed ones are kept.
    Returns how many were new."""
    listed = set(
        session.scalars(
            select(Suppression.value_hash).where(
                Suppression.value_hash.in_([h for h, _ in identifiers])
            )
        )
    )
    new = {h: kind for h, kind in identifiers if h not in listed}
    session.add_all(
        Suppression(value_hash=h, type=kind, erasure_id=erasure_id) for h, kind in new.items()
    )
    return len(new)


def suppressed_hashes(session: Session, hashes: Sequence[str]) -> set[str]:
    """Those of ``hashes`` that belong to erased people (see :func:`suppress_identifiers`)."""
    found: set[str] = set()
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        found.update(
            session.scalars(select(Suppression.value_hash).where(Suppression.value_hash.in_(chunk)))
        )
    return found


def erase_customer(session: Session, customer_id: str, actor: str, reason: str) -> Erasure:
    """Right to erasure: crypto-shred the person's data keys, delete identifiers, addresses,
    consent and non-financial events, strip personal fields from the financial facts that are
    kept (orders, sales, returns), and write an audit record. Emits ``customer.erased`` so
    other contexts remove the person's data too."""
    if not reason.strip():
        raise invalid("reason_required", "an erasure needs a reason for the audit record")
    root = root_of(session, customer_id)
    if root.status == "erased":
        raise AppError("customer_erased", f"customer {root.id!r} was already erased", 410)
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete = ON"))  # freed pages are zeroed
    ids = member_ids(session, root.id)
    known = session.execute(
        select(Identifier.value_hash, Identifier.type).where(Identifier.profile_id.in_(ids))
    ).all()
    hashes = [value_hash for value_hash, _ in known]
    erasure_id = new_id("era")
    counts: dict[str, int] = {}
    # Keep the identifiers' blind-index hashes (never the values) so that a later bulk import
    # of another system's history does not bring the person back.
    counts["suppressed"] = suppress_identifiers(session, known, erasure_id)
    counts["data_keys"] = destroy_data_keys(session, ids)
    if hashes:
        session.execute(
            delete(IdentityLink).where(
                or_(IdentityLink.a_hash.in_(hashes), IdentityLink.b_hash.in_(hashes))
            )
        )
    counts["identifiers"] = _rowcount(
        session.execute(delete(Identifier).where(Identifier.profile_id.in_(ids)))
    )
    counts["addresses"] = _rowcount(
        session.execute(delete(Address).where(Address.profile_id.in_(ids)))
    )
    session.execute(delete(Consent).where(Consent.profile_id.in_(ids)))
    session.execute(delete(ConsentChange).where(ConsentChange.profile_id.in_(ids)))
    financial = CustomerEvent.fact.in_(sorted(domain.FINANCIAL_FACTS))
    counts["events_deleted"] = _rowcount(
        session.execute(
            delete(CustomerEvent).where(
                CustomerEvent.profile_id.in_(ids), or_(CustomerEvent.fact.is_(None), ~financial)
            )
        )
    )
    kept = list(
        session.scalars(select(CustomerEvent).where(CustomerEvent.profile_id.in_(ids), financial))
    )
    for e in kept:
        props = (e.data or {}).get("properties", {})
        e.data = {"properties": {k: v for k, v in props.items() if k not in _FACT_PII_KEYS}}
        e.user_id = None
        e.anonymous_id = None
        e.pii_enc = None
    counts["financial_facts_kept"] = len(kept)
    now = utcnow()
    session.execute(
        update(Profile)
        .where(Profile.id.in_(ids))
        .values(
            status="erased",
            email_enc=None,
            phone_enc=None,
            first_name_enc=None,
            last_name_enc=None,
            traits={},
            preferred_store_id=None,
            erased_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session="fetch")
    )
    counts["profiles"] = len(ids)
    erasure = Erasure(
        id=erasure_id,
        customer_id=root.id,
        profile_ids=ids,
        requested_by=actor,
        reason=reason.strip(),
        counts=counts,
        erased_at=now,
    )
    session.add(erasure)
    session.flush()
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete = OFF"))
    events.emit(
        session,
        "customer.erased",
        {"customer_id": root.id, "profile_ids": ids},
        aggregate_id=root.id,
    )
    return erasure


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def scrub_storage(db: Database) -> None:
    """After an erasure committed: on SQLite, checkpoint and truncate the WAL so no copy of
    the erased rows stays in the log file."""
    if db.dialect != "sqlite":
        return
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
