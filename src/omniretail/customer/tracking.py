"""Tracking ingest: write keys, body decoding, validation, identity resolution, bulk storage
and projection into profiles. Used by the Segment-compatible routes in ``tracking_api``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from omniretail.core.db import Database, UTCDateTime
from omniretail.core.errors import AppError, invalid, not_found
from omniretail.core.ids import new_id
from omniretail.core.timeutil import utcnow
from omniretail.customer import domain
from omniretail.customer.crypto import encrypt_json, encrypt_text
from omniretail.customer.domain import EventRejected, TrackedEvent
from omniretail.customer.identity import Resolver, Seen
from omniretail.customer.keys import data_keys
from omniretail.customer.models import Address, CustomerEvent, Profile, Source, TrackingReject
from omniretail.customer.settings import get_customer_settings

log = logging.getLogger("omniretail.customer.tracking")

# --- sources and write keys ---------------------------------------------------------------


def hash_write_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_source(session: Session, name: str, kind: str) -> tuple[str, Source]:
    """A tracking source and its write key (returned once; only its SHA-256 is stored)."""
    if kind not in domain.SOURCE_KINDS:
        raise invalid(
            "invalid_source_kind",
            f"unknown source kind {kind!r}",
            allowed=list(domain.SOURCE_KINDS),
        )
    if not name.strip():
        raise invalid("invalid_source_name", "a source needs a name")
    plaintext = f"wk_{kind}_{secrets.token_urlsafe(24)}"
    source = Source(
        id=new_id("src"),
        name=name.strip(),
        kind=kind,
        key_prefix=plaintext[:12],
        key_hash=hash_write_key(plaintext),
        active=True,
        created_at=utcnow(),
    )
    session.add(source)
    session.flush()
    return plaintext, source


def deactivate_source(session: Session, source_id: str) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise not_found("source", source_id)
    source.active = False
    session.flush()
    _key_cache.clear()
    return source


@dataclass(frozen=True)
class SourceInfo:
    id: str
    kind: str


class _KeyCache:
    """Valid write keys remembered for ``OMNI_TRACKING_KEY_CACHE_S`` per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[int, str], tuple[float, SourceInfo]] = {}

    def get(self, db: Database, digest: str) -> SourceInfo | None:
        with self._lock:
            item = self._items.get((id(db.engine), digest))
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, db: Database, digest: str, info: SourceInfo) -> None:
        ttl = get_customer_settings().tracking_key_cache_s
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[(id(db.engine), digest)] = (time.monotonic() + ttl, info)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_key_cache = _KeyCache()


def authenticate_source(db: Database, write_key: str | None) -> SourceInfo:
    if not write_key:
        raise AppError(
            "unauthenticated",
            "send the write key as HTTP Basic user (empty password) or as writeKey in the body",
            401,
        )
    digest = hash_write_key(write_key)
    info = _key_cache.get(db, digest)
    if info is not None:
        return info
    with db.unit_of_work(write=False) as session:
        row = session.execute(
            select(Source.id, Source.kind, Source.active).where(Source.key_hash == digest)
        ).first()
    if row is None or not row.active:
        raise AppError("invalid_write_key", "the write key is not valid", 401)
    info = SourceInfo(row.id, row.kind)
    _key_cache.put(db, digest, info)
    return info


def basic_auth_user(header: str | None) -> str | None:
    """The user part of ``Authorization: Basic base64(user:password)``."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AppError("unauthenticated", "malformed Basic authorization header", 401) from None
    return decoded.partition(":")[0] or None


# --- body decoding ------------------------------------------------------------------------


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int) -> tuple[Any, int]:
    """Gunzip (by header or by magic bytes) and JSON-decode, refusing more than ``max_bytes``
    of decoded JSON. Content-Type is ignored on purpose (some SDKs mislabel gzipped JSON).
    Returns the value and the decoded size in bytes."""
    gzipped = "gzip" in (content_encoding or "").lower() or body[:2] == b"\x1f\x8b"
    if gzipped:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(body, max_bytes + 1)
        except zlib.error as exc:
            raise AppError(
                "malformed_gzip", f"the gzip body cannot be decoded: {exc}", 400
            ) from None
        if not inflater.eof and len(raw) <= max_bytes:
            raise AppError("malformed_gzip", "the gzip body is truncated", 400)
    else:
        raw = body
    if len(raw) > max_bytes:
        raise AppError(
            "request_too_large",
            f"the decoded request is larger than {max_bytes} bytes",
            400,
            {"limit_bytes": max_bytes},
        )
    if not raw.strip():
        raise AppError("malformed_json", "the request body is empty", 400)
    try:
        return json.loads(raw), len(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AppError("malformed_json", f"malformed JSON: {exc}", 400) from None


def event_size(raw: Any) -> int:
    return len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode())


# --- ingest -------------------------------------------------------------------------------


@dataclass
class Reject:
    position: int
    code: str
    message: str
    message_id: str | None
    event_type: str | None
    size_bytes: int


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    rejected: list[Reject] = field(default_factory=list)
    profile_ids: list[str] = field(default_factory=list)


def _raw_message_id(raw: Any) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("messageId")
        if isinstance(value, str | int):
            return str(value)[:128]
    return None


def _raw_type(raw: Any) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        return str(raw["type"])[:20]
    return None


def validate_events(
    raws: Sequence[Any],
    *,
    received_at: datetime,
    sent_at: datetime | None,
    forced_type: str | None,
    total_bytes: int,
    defaults: dict[str, Any] | None = None,
) -> tuple[list[TrackedEvent], list[Reject], int]:
    """Normalise every event; returns (good events, rejects, duplicates within the batch)."""
    settings = get_customer_settings()
    max_event = settings.tracking_max_event_bytes
    check_sizes = total_bytes > max_event
    good: list[TrackedEvent] = []
    rejects: list[Reject] = []
    seen_ids: set[str] = set()
    duplicates = 0
    for position, raw in enumerate(raws):
        size = event_size(raw) if check_sizes else 0
        try:
            if size > max_event:
                raise EventRejected(
                    "event_too_large", f"the event is {size} bytes; the limit is {max_event}"
                )
            if defaults and isinstance(raw, dict):
                context = raw.get("context")
                if context is None and "context" in defaults:
                    raw = {**raw, "context": defaults["context"]}
            event = domain.normalise_event(
                raw, received_at, sent_at, forced_type, new_message_id=uuid.uuid4
            )
        except EventRejected as exc:
            rejects.append(
                Reject(position, exc.code, exc.message, _raw_message_id(raw), _raw_type(raw), size)
            )
            continue
        if event.message_id in seen_ids:
            duplicates += 1
            continue
        seen_ids.add(event.message_id)
        good.append(event)
    return good, rejects, duplicates


_events_table = cast(Table, CustomerEvent.__table__)


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(_events_table)
    if dialect == "sqlite":
        return sqlite.insert(_events_table)
    raise AppError("unsupported_database", f"tracking needs SQLite or PostgreSQL, not {dialect}")


def _identifiers(resolver: Resolver, ev: TrackedEvent) -> list[Seen]:
    found: list[Seen | None] = [
        resolver.seen("user_id", ev.user_id),
        resolver.seen("anonymous_id", ev.anonymous_id),
        resolver.seen("device_id", ev.device_id),
    ]
    if ev.pii_traits:
        lowered = {k.lower(): v for k, v in ev.pii_traits.items()}
        found.append(resolver.seen("email", lowered.get("email")))
        found.append(resolver.seen("phone", lowered.get("phone")))
    if ev.previous_id is not None:
        found.append(resolver.seen("previous_id", ev.previous_id))
    return [s for s in found if s is not None]


def _previous_as_anonymous(resolver: Resolver, seen: list[Seen]) -> list[Seen]:
    """``alias.previousId`` is an old user id or an anonymous id: use whichever is known."""
    out: list[Seen] = []
    for s in seen:
        if s.type == "previous_id" and resolver.known.get(s.hash) is None:
            anon = resolver.seen("anonymous_id", s.value)
            if anon is not None and resolver.known.get(anon.hash) is not None:
                s = anon
        out.append(s)
    return out


def ingest(
    session: Session,
    source: SourceInfo,
    events: Sequence[TrackedEvent],
    rejects: Sequence[Reject] = (),
    received_at: datetime | None = None,
) -> IngestResult:
    """Store validated events (append-only, deduplicated on (source, messageId)), resolve
    identities and project the new events into profiles. Flushes; the caller commits."""
    received_at = received_at or utcnow()
    result = IngestResult()
    if rejects:
        session.add_all(
            TrackingReject(
                source_id=source.id,
                received_at=received_at,
                code=r.code,
                message=r.message[:1000],
                position=r.position,
                message_id=r.message_id,
                event_type=r.event_type,
                size_bytes=r.size_bytes,
            )
            for r in rejects
        )
        result.rejected = list(rejects)
    if not events:
        session.flush()
        return result

    resolver = Resolver(session, source.id, actor=f"source:{source.id}")
    per_event = [_identifiers(resolver, ev) for ev in events]
    hashes = [s.hash for seen in per_event for s in seen]
    for seen in per_event:
        for s in seen:
            if s.type == "previous_id":
                anon = resolver.seen("anonymous_id", s.value)
                if anon is not None:
                    hashes.append(anon.hash)
    resolver.prefetch(hashes)
    owners: list[str | None] = []
    for ev, seen in zip(events, per_event, strict=True):
        if ev.previous_id is not None:
            seen = _previous_as_anonymous(resolver, seen)
        owners.append(resolver.resolve(seen, cause=ev.type, message_id=ev.message_id))

    with_pii = {pid for ev, pid in zip(events, owners, strict=True) if ev.pii and pid}
    keys = (
        data_keys(session, with_pii, create=True, new=resolver.new_profiles()) if with_pii else {}
    )
    rows = []
    for ev, pid in zip(events, owners, strict=True):
        pii_enc = None
        if ev.pii and pid:
            pii_enc = encrypt_json(keys[pid], ev.pii)
        rows.append(
            {
                "source_id": source.id,
                "message_id": ev.message_id,
                "type": ev.type,
                "event": ev.event,
                "fact": ev.fact,
                "user_id": ev.user_id,
                "anonymous_id": ev.anonymous_id,
                "profile_id": pid,
                "channel": source.kind,
                "order_id": ev.order_id,
                "amount_minor": ev.amount_minor,
                "currency": ev.currency,
                "occurred_at": ev.occurred_at,
                "received_at": received_at,
                "data": ev.data,
                "pii_enc": pii_enc,
            }
        )
    session.flush()  # identities first, so the projection below sees them
    stmt = (
        _insert(session)
        .on_conflict_do_nothing(index_elements=["source_id", "message_id"])
        .returning(_events_table.c.message_id)
    )
    inserted = set(session.connection().execute(stmt, rows).scalars().all())
    result.stored = len(inserted)
    result.duplicates = len(events) - len(inserted)
    fresh = [
        (ev, pid)
        for ev, pid in zip(events, owners, strict=True)
        if ev.message_id in inserted and pid is not None
    ]
    project(session, fresh, source.kind)
    result.profile_ids = sorted({pid for _, pid in fresh})
    session.flush()
    return result


_profiles = cast(Table, Profile.__table__)
PROFILE_STATS = (
    update(_profiles)
    .where(_profiles.c.id == bindparam("pid"))
    .values(
        event_count=_profiles.c.event_count + bindparam("n"),
        channels_mask=_profiles.c.channels_mask.op("|")(bindparam("bit")),
        last_seen_at=case(
            (
                or_(
                    _profiles.c.last_seen_at.is_(None),
                    _profiles.c.last_seen_at < bindparam("last", type_=UTCDateTime()),
                ),
                bindparam("last", type_=UTCDateTime()),
            ),
            else_=_profiles.c.last_seen_at,
        ),
        first_seen_at=case(
            (
                or_(
                    _profiles.c.first_seen_at.is_(None),
                    _profiles.c.first_seen_at > bindparam("first", type_=UTCDateTime()),
                ),
                bindparam("first", type_=UTCDateTime()),
            ),
            else_=_profiles.c.first_seen_at,
        ),
    )
)


def project(session: Session, fresh: Sequence[tuple[TrackedEvent, str]], channel: str) -> None:
    """Fold newly stored events into their profiles: counters, first/last seen, channels used,
    and identify traits (personal ones encrypted under the person's data key)."""
    if not fresh:
        return
    stats: dict[str, list[Any]] = {}
    bit = domain.channel_bit(channel)
    for ev, pid in fresh:
        s = stats.get(pid)
        if s is None:
            stats[pid] = [1, ev.occurred_at, ev.occurred_at]
        else:
            s[0] += 1
            s[1] = min(s[1], ev.occurred_at)
            s[2] = max(s[2], ev.occurred_at)
    params = [
        {"pid": pid, "n": s[0], "bit": bit, "first": s[1], "last": s[2]}
        for pid, s in sorted(stats.items())
    ]
    session.execute(PROFILE_STATS, params)

    identifies = [(ev, pid) for ev, pid in fresh if ev.type == "identify"]
    if identifies:
        apply_traits(session, identifies)


def apply_traits(session: Session, identifies: Sequence[tuple[TrackedEvent, str]]) -> None:
    pids = sorted({pid for _, pid in identifies})
    query = select(Profile).where(Profile.id.in_(pids)).order_by(Profile.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    profiles = {p.id: p for p in session.scalars(query)}
    need_keys = {pid for ev, pid in identifies if ev.pii_traits}
    keys = data_keys(session, need_keys, create=True) if need_keys else {}
    now = utcnow()
    for ev, pid in sorted(identifies, key=lambda item: item[0].occurred_at):
        profile = profiles.get(pid)
        if profile is None:
            continue
        if ev.traits:
            profile.traits = {**(profile.traits or {}), **ev.traits}
        if ev.pii_traits:
            key = keys[pid]
            for name, value in domain.person_fields_from_traits(ev.pii_traits).items():
                if name in ("email", "phone"):
                    value = domain.normalise_identifier(name, value) or value
                setattr(profile, f"{name}_enc", encrypt_text(key, value))
            lowered = {k.lower(): v for k, v in ev.pii_traits.items()}
            address = domain.address_from_trait(lowered.get("address"))
            if address is not None:
                upsert_trait_address(session, pid, address, encrypt_json(key, address))
        profile.updated_at = now


def upsert_trait_address(
    session: Session, profile_id: str, address: dict[str, str], enc: str
) -> None:
    row = session.scalar(
        select(Address).where(Address.profile_id == profile_id, Address.kind == "traits")
    )
    if row is None:
        session.add(
            Address(
                id=new_id("adr"),
                profile_id=profile_id,
                kind="traits",
                is_default=False,
                data_enc=enc,
                created_at=utcnow(),
            )
        )
    else:
        row.data_enc = enc
