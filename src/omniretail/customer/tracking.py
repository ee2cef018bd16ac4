"""Tracking ingest: write keys, body decoding, validation, identity resolution, bulk storage
and projection into profiles. Used by the Segment-compatible routes in ``tracking_api``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, case, or_, select, update
from sqlalchemy.orm import Session

from omniretail.core import events
from omniretail.core.bulk import insert_rows, processed
from omniretail.core.db import Database, UTCDateTime
from omniretail.core.errors import AppError, invalid, not_found
from omniretail.core.ids import new_id
from omniretail.core.timeutil import utcnow
from omniretail.customer import domain
from omniretail.customer.crypto import encrypt_json, encrypt_text
from omniretail.customer.domain import EventRejected, TrackedEvent
from omniretail.customer.identity import Hasher, Resolver, Seen, in_param
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


@dataclass(frozen=True)
class Decoded:
    """A decoded request body: the JSON value, its decoded size in bytes, the length in the
    text of each element of a top-level ``batch`` array (``None`` if there is none), and
    whether the body is pure ASCII."""

    value: Any
    size: int
    spans: list[int] | None = None
    ascii: bool = True


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int) -> Decoded:
    """Gunzip (by header or by magic bytes) and JSON-decode, refusing more than ``max_bytes``
    of decoded JSON. Content-Type is ignored on purpose (some SDKs mislabel gzipped JSON)."""
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
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads does
        value, spans = _loads_with_spans(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AppError("malformed_json", f"malformed JSON: {exc}", 400) from None
    return Decoded(value, len(raw), spans, raw.isascii())


_scanner = json.JSONDecoder()
# the json module's string scanner (C), not in the type stubs
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_whitespace = re.compile(r"[ \t\n\r]*")


def _skip(text: str, i: int) -> int:
    """The index of the first non-whitespace character at or after ``i``."""
    match = _whitespace.match(text, i)
    return match.end() if match else i


def _loads_with_spans(text: str) -> tuple[Any, list[int] | None]:
    """``json.loads(text)``, and for an object with a ``batch`` array the length in the text
    of each of its elements (parsed element by element with the json module's own scanner,
    so sizes come free). Anything unexpected: plain ``json.loads`` (and its errors)."""
    try:
        return _object_with_spans(text)
    except ValueError:
        return json.loads(text), None


def _object_with_spans(text: str) -> tuple[Any, list[int] | None]:
    i = _skip(text, 0)
    if not text.startswith("{", i):
        raise ValueError("not an object")
    value: dict[str, Any] = {}
    spans: list[int] | None = None
    i = _skip(text, i + 1)
    if text.startswith("}", i):
        i += 1
    else:
        while True:
            if not text.startswith('"', i):
                raise ValueError("expecting a key")
            key, i = _scanstring(text, i + 1, True)
            i = _skip(text, i)
            if not text.startswith(":", i):
                raise ValueError("expecting ':'")
            i = _skip(text, i + 1)
            if key == "batch":
                spans = None
                if text.startswith("[", i):
                    value[key], i, spans = _array_with_spans(text, i)
                else:
                    value[key], i = _scanner.raw_decode(text, i)
            else:
                value[key], i = _scanner.raw_decode(text, i)
            i = _skip(text, i)
            if text.startswith(",", i):
                i = _skip(text, i + 1)
                continue
            if text.startswith("}", i):
                i += 1
                break
            raise ValueError("expecting ',' or '}'")
    if _skip(text, i) != len(text):
        raise ValueError("extra data")
    return value, spans


def _array_with_spans(text: str, i: int) -> tuple[list[Any], int, list[int]]:
    items: list[Any] = []
    spans: list[int] = []
    i = _skip(text, i + 1)
    if text.startswith("]", i):
        return items, i + 1, spans
    while True:
        item, end = _scanner.raw_decode(text, i)
        items.append(item)
        spans.append(end - i)
        i = _skip(text, end)
        if text.startswith(",", i):
            i = _skip(text, i + 1)
            continue
        if text.startswith("]", i):
            return items, i + 1, spans
        raise ValueError("expecting ',' or ']'")


# Compact JSON of an event is at most this many times its length in the request: whitespace
# and escapes only shrink; a number can grow ("1e15" -> "1000000000000000.0", 4.5 times);
# a character of a non-ASCII body may take 4 bytes of UTF-8.
_GROWTH_ASCII = 4.5
_GROWTH = 4.5 * 4


def event_size(raw: Any) -> int:
    return len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode())


def _size_or_zero(raw: Any) -> int:
    try:
        return event_size(raw)
    except UnicodeEncodeError:  # a lone surrogate: not representable, size unknown
        return 0


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
    spans: Sequence[int] | None = None,
    ascii_body: bool = True,
) -> tuple[list[TrackedEvent], list[Reject], int]:
    """Normalise every event; returns (good events, rejects, duplicates within the batch).

    An event's size is the length of its compact JSON. It is computed only when the request
    is over the event limit and the event's length in the request (``spans``, from
    ``decode_body``) cannot rule out that it is over the limit."""
    settings = get_customer_settings()
    max_event = settings.tracking_max_event_bytes
    check_sizes = total_bytes > max_event
    growth = _GROWTH_ASCII if ascii_body else _GROWTH
    if spans is not None and len(spans) != len(raws):
        spans = None
    good: list[TrackedEvent] = []
    rejects: list[Reject] = []
    seen_ids: set[str] = set()
    duplicates = 0
    for position, raw in enumerate(raws):
        size = 0
        if check_sizes and (spans is None or spans[position] * growth > max_event):
            size = event_size(raw)
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
            if check_sizes and not size:
                size = _size_or_zero(raw)
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
_rejects_table = cast(Table, TrackingReject.__table__)
_EVENT_COLUMNS = (
    "source_id",
    "message_id",
    "type",
    "event",
    "fact",
    "user_id",
    "anonymous_id",
    "profile_id",
    "channel",
    "order_id",
    "amount_minor",
    "currency",
    "occurred_at",
    "received_at",
    "data",
    "pii_enc",
)
_REJECT_COLUMNS = (
    "source_id",
    "received_at",
    "code",
    "message",
    "position",
    "message_id",
    "event_type",
    "size_bytes",
)


def _identifiers(hasher: Hasher, ev: TrackedEvent) -> list[Seen]:
    found: list[Seen | None] = [
        hasher.seen("user_id", ev.user_id),
        hasher.seen("anonymous_id", ev.anonymous_id),
        hasher.seen("device_id", ev.device_id),
    ]
    if ev.pii_traits:
        lowered = {k.lower(): v for k, v in ev.pii_traits.items()}
        found.append(hasher.seen("email", lowered.get("email")))
        found.append(hasher.seen("phone", lowered.get("phone")))
    if ev.previous_id is not None:
        found.append(hasher.seen("previous_id", ev.previous_id))
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


@dataclass
class Prepared:
    """The database-free part of ingesting a batch: identifiers normalised and hashed, event
    data serialised. Done before the transaction (on SQLite, outside the write lock) and
    reused when the transaction is retried."""

    hasher: Hasher
    seen: list[list[Seen]]
    hashes: list[str]
    data: list[str]


def prepare(events: Sequence[TrackedEvent]) -> Prepared:
    hasher = Hasher()
    per_event = [_identifiers(hasher, ev) for ev in events]
    hashes = [s.hash for seen in per_event for s in seen]
    for seen in per_event:
        for s in seen:
            if s.type == "previous_id":
                anon = hasher.seen("anonymous_id", s.value)
                if anon is not None:
                    hashes.append(anon.hash)
    return Prepared(hasher, per_event, hashes, [json.dumps(ev.data) for ev in events])


def ingest(
    session: Session,
    source: SourceInfo,
    events: Sequence[TrackedEvent],
    rejects: Sequence[Reject] = (),
    received_at: datetime | None = None,
    prepared: Prepared | None = None,
) -> IngestResult:
    """Store validated events (append-only, deduplicated on (source, messageId)), resolve
    identities, project the new events into profiles and announce the sessions they start.
    Set-based: a constant number of statements per batch in the common case. ``prepared``:
    ``prepare(events)``, done before the transaction. Flushes; the caller commits."""
    received_at = received_at or utcnow()
    result = IngestResult()
    prepared = prepared or prepare(events)
    per_event, data = prepared.seen, prepared.data
    resolver = Resolver(session, source.id, f"source:{source.id}", prepared.hasher)
    conn = session.connection()
    if rejects:
        insert_rows(
            conn,
            _rejects_table,
            _REJECT_COLUMNS,
            [
                (
                    source.id,
                    received_at,
                    r.code,
                    r.message[:1000],
                    r.position,
                    r.message_id,
                    r.event_type,
                    r.size_bytes,
                )
                for r in rejects
            ],
        )
        result.rejected = list(rejects)
    if not events:
        return result

    resolver.prefetch(prepared.hashes)
    resolver.preload(per_event)
    owners: list[str | None] = []
    for ev, seen in zip(events, per_event, strict=True):
        if ev.previous_id is not None:
            seen = _previous_as_anonymous(resolver, seen)
        owners.append(resolver.resolve(seen, cause=ev.type, message_id=ev.message_id))
    resolver.flush()

    with_pii = {pid for ev, pid in zip(events, owners, strict=True) if ev.pii and pid}
    keys = (
        data_keys(session, with_pii, create=True, new=resolver.new_profiles()) if with_pii else {}
    )
    rows = []
    for ev, pid, data_json in zip(events, owners, data, strict=True):
        pii_enc = None
        if ev.pii and pid:
            pii_enc = encrypt_json(keys[pid], ev.pii)
        rows.append(
            (
                source.id,
                ev.message_id,
                ev.type,
                ev.event,
                ev.fact,
                ev.user_id,
                ev.anonymous_id,
                pid,
                source.kind,
                ev.order_id,
                ev.amount_minor,
                ev.currency,
                ev.occurred_at,
                received_at,
                data_json,
                pii_enc,
            )
        )
    inserted = set(
        insert_rows(
            conn,
            _events_table,
            _EVENT_COLUMNS,
            rows,
            conflict=("source_id", "message_id"),
            returning="message_id",
            serialized=("data",),
        )
    )
    result.stored = len(inserted)
    result.duplicates = len(events) - len(inserted)
    fresh = [
        (ev, pid)
        for ev, pid in zip(events, owners, strict=True)
        if ev.message_id in inserted and pid is not None
    ]
    project(session, fresh, source.kind)
    announce_sessions(session, source, resolver, fresh)
    result.profile_ids = sorted({pid for _, pid in fresh})
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
"""One profile's counters (``pid``, ``n`` events, channel ``bit``, ``first``/``last`` seen)."""

# The same update for many profiles at once, as one executemany of driver SQL (? / %s).
_STATS_SQL = (
    "UPDATE customer_profiles SET event_count = event_count + CAST({p} AS INTEGER), "
    "channels_mask = channels_mask | CAST({p} AS INTEGER), "
    "first_seen_at = CASE WHEN first_seen_at IS NULL OR first_seen_at > {p} THEN {p} "
    "ELSE first_seen_at END, "
    "last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < {p} THEN {p} "
    "ELSE last_seen_at END "
    "WHERE id = {p}"
)
_STATS_COLUMNS = (
    "event_count",
    "channels_mask",
    "first_seen_at",
    "first_seen_at",
    "last_seen_at",
    "last_seen_at",
    "id",
)
# PostgreSQL: lock the rows in id order (concurrent batches never wait on each other in
# opposite orders), then one UPDATE ... FROM unnest for every profile of the batch: one
# statement instead of one per profile (a third of the server's work, a quarter of ours).
_LOCK_PROFILES_PG = (
    "SELECT count(*) FROM (SELECT id FROM customer_profiles WHERE id = ANY(%b::text[]) "
    "ORDER BY id FOR UPDATE) AS locked"
)
_STATS_PG = (
    "UPDATE customer_profiles AS p SET event_count = p.event_count + u.n, "
    "channels_mask = p.channels_mask | u.bit, "
    "first_seen_at = CASE WHEN p.first_seen_at IS NULL OR p.first_seen_at > u.first "
    "THEN u.first ELSE p.first_seen_at END, "
    "last_seen_at = CASE WHEN p.last_seen_at IS NULL OR p.last_seen_at < u.last "
    "THEN u.last ELSE p.last_seen_at END "
    "FROM unnest(%b::text[], %b::int[], %b::int[], %b::timestamptz[], %b::timestamptz[]) "
    "AS u(pid, n, bit, first, last) WHERE p.id = u.pid"
)
_TRAITS_SQL = (
    "UPDATE customer_profiles SET traits = {p}, email_enc = COALESCE({p}, email_enc), "
    "phone_enc = COALESCE({p}, phone_enc), first_name_enc = COALESCE({p}, first_name_enc), "
    "last_name_enc = COALESCE({p}, last_name_enc), updated_at = {p} WHERE id = {p}"
)
_TRAITS_PG = (
    "UPDATE customer_profiles AS p SET traits = u.traits::json, "
    "email_enc = COALESCE(u.email_enc, p.email_enc), "
    "phone_enc = COALESCE(u.phone_enc, p.phone_enc), "
    "first_name_enc = COALESCE(u.first_name_enc, p.first_name_enc), "
    "last_name_enc = COALESCE(u.last_name_enc, p.last_name_enc), updated_at = u.updated_at "
    "FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], "
    "%b::timestamptz[], %b::text[]) "
    "AS u(traits, email_enc, phone_enc, first_name_enc, last_name_enc, updated_at, id) "
    "WHERE p.id = u.id"
)
_TRAITS_COLUMNS = (
    "traits",
    "email_enc",
    "phone_enc",
    "first_name_enc",
    "last_name_enc",
    "updated_at",
    "id",
)


def _driver_sql(conn: Connection, template: str) -> str:
    return template.format(p="%s" if conn.dialect.name == "postgresql" else "?")


def project(session: Session, fresh: Sequence[tuple[TrackedEvent, str]], channel: str) -> None:
    """Fold newly stored events into their profiles: counters, first/last seen, channels used
    (one executemany, profiles in id order so concurrent batches lock them in one order),
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
            if ev.occurred_at < s[1]:
                s[1] = ev.occurred_at
            if ev.occurred_at > s[2]:
                s[2] = ev.occurred_at
    conn = session.connection()
    ordered = sorted(stats.items())
    if conn.dialect.name == "postgresql":
        pids = [pid for pid, _ in ordered]
        conn.exec_driver_sql(_LOCK_PROFILES_PG, (pids,)).scalar()
        conn.exec_driver_sql(
            _STATS_PG,
            (
                pids,
                [s[0] for _, s in ordered],
                [bit] * len(ordered),
                [s[1] for _, s in ordered],
                [s[2] for _, s in ordered],
            ),
        )
    else:
        params = processed(
            conn,
            _profiles,
            _STATS_COLUMNS,
            [(s[0], bit, s[1], s[1], s[2], s[2], pid) for pid, s in ordered],
        )
        conn.exec_driver_sql(_driver_sql(conn, _STATS_SQL), params)

    identifies = [(ev, pid) for ev, pid in fresh if ev.type == "identify"]
    if identifies:
        apply_traits(session, identifies)


@lru_cache(maxsize=4)
def _traits_statement(dialect: str) -> Any:
    # the rows are locked already: ``project`` updated every profile of the batch
    query = select(Profile.id, Profile.traits).where(in_param(Profile.id, "pids", dialect))
    return query.order_by(Profile.id)


def apply_traits(session: Session, identifies: Sequence[tuple[TrackedEvent, str]]) -> None:
    """Identify traits in time order: plain traits merged into ``traits``, personal ones
    (email, phone, names) encrypted into their columns, the ``address`` trait as the
    profile's trait address. One executemany for all profiles."""
    conn = session.connection()
    pids = sorted({pid for _, pid in identifies})
    query = _traits_statement(conn.dialect.name)
    current = {pid: traits for pid, traits in conn.execute(query, {"pids": pids}).all()}
    need_keys = {pid for ev, pid in identifies if ev.pii_traits}
    keys = data_keys(session, need_keys, create=True) if need_keys else {}
    now = utcnow()
    changes: dict[str, dict[str, Any]] = {}
    for ev, pid in sorted(identifies, key=lambda item: item[0].occurred_at):
        if pid not in current:
            continue
        change = changes.setdefault(pid, {})
        if ev.traits:
            current[pid] = {**(current[pid] or {}), **ev.traits}
        if ev.pii_traits:
            key = keys[pid]
            for name, value in domain.person_fields_from_traits(ev.pii_traits).items():
                if name in ("email", "phone"):
                    value = domain.normalise_identifier(name, value) or value
                change[f"{name}_enc"] = encrypt_text(key, value)
            lowered = {k.lower(): v for k, v in ev.pii_traits.items()}
            address = domain.address_from_trait(lowered.get("address"))
            if address is not None:
                upsert_trait_address(session, pid, address, encrypt_json(key, address))
    rows = [
        (
            current[pid] or {},
            change.get("email_enc"),
            change.get("phone_enc"),
            change.get("first_name_enc"),
            change.get("last_name_enc"),
            now,
            pid,
        )
        for pid, change in sorted(changes.items())
    ]
    if not rows:
        return
    params = processed(conn, _profiles, _TRAITS_COLUMNS, rows)
    if conn.dialect.name == "postgresql":
        arrays = tuple(list(column) for column in zip(*params, strict=True))
        conn.exec_driver_sql(_TRAITS_PG, arrays)
    else:
        conn.exec_driver_sql(_driver_sql(conn, _TRAITS_SQL), params)


# --- sessions ------------------------------------------------------------------------------


def _sdk_session(ev: TrackedEvent) -> tuple[str | None, bool]:
    """``context.sessionId`` (RudderStack SDKs send one) and ``context.sessionStart``."""
    context = ev.data.get("context")
    if not isinstance(context, dict):
        return None, False
    value = context.get("sessionId")
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None, False
    return str(value)[:200], context.get("sessionStart") is True


def session_key(source_id: str, ev: TrackedEvent, sdk_session: str | None) -> str:
    """The id of the session an event starts: from the SDK's session id (per source and
    device, since SDK session ids are start times and may collide across devices), else
    from the starting event (unique per source and messageId). Deterministic, so a resent
    batch names the same session."""
    if sdk_session is not None:
        material = f"sdk\x1f{source_id}\x1f{ev.anonymous_id or ev.user_id}\x1f{sdk_session}"
    else:
        material = f"msg\x1f{source_id}\x1f{ev.message_id}"
    return "ses_" + hashlib.sha256(material.encode()).hexdigest()[:32]


def announce_sessions(
    session: Session,
    source: SourceInfo,
    resolver: Resolver,
    fresh: Sequence[tuple[TrackedEvent, str]],
) -> None:
    """Emit ``tracking.session.started`` for every session the new events start, and
    ``tracking.order.completed`` for tracked ``Order Completed`` events (with the session
    they belong to when it is known here), through the outbox.

    A person's previous activity is the latest event before this batch of their profiles
    that own the batch's identifiers (their last-seen times, read by the identity prefetch:
    no extra query)."""
    if not fresh:
        return
    timeout = timedelta(minutes=get_customer_settings().tracking_session_timeout_min)
    before = resolver.people_last_seen()
    per_person: dict[str, list[tuple[TrackedEvent, str | None, bool]]] = {}
    for ev, pid in fresh:
        sdk, flagged = _sdk_session(ev)
        per_person.setdefault(resolver.person_of(pid), []).append((ev, sdk, flagged))
    outbox: list[tuple[str, dict[str, Any], str]] = []
    for person, items in per_person.items():
        items.sort(key=lambda item: item[0].occurred_at)
        starts = set(
            domain.session_starts(
                [(ev.occurred_at, sdk, flagged) for ev, sdk, flagged in items],
                before.get(person),
                timeout,
            )
        )
        current: str | None = None
        for i, (ev, sdk, _) in enumerate(items):
            if i in starts:
                current = session_key(source.id, ev, sdk)
                started = {
                    "session_id": current,
                    "channel": source.kind,
                    "started_at": ev.occurred_at.isoformat(),
                    "customer_id": person,
                    "source_id": source.id,
                    "sdk_session_id": sdk,
                }
                outbox.append(("tracking.session.started", started, person))
            elif sdk is not None:
                current = session_key(source.id, ev, sdk)
            if ev.fact == "order_completed" and ev.order_id:
                order = {
                    "order_id": ev.order_id,
                    "occurred_at": ev.occurred_at.isoformat(),
                    "channel": source.kind,
                    "customer_id": person,
                    "session_id": current,
                    "amount_minor": ev.amount_minor,
                    "currency": ev.currency,
                    "source_id": source.id,
                }
                outbox.append(("tracking.order.completed", order, person))
    if outbox:
        events.emit_many(session, outbox)


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
