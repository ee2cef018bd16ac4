"""Customer history imported in bulk: profiles for the customer numbers of another system and
the timeline facts of their historic orders and returns.

Set-based counterparts of :func:`customer.service.create_customer` and
:func:`customer.service.record_commerce_fact` for sales history (thousands of customers, tens
of thousands of facts in one transaction): a few ``SELECT ... IN`` and Core ``executemany``
inserts instead of one unit of work per row. Both are idempotent:

* a customer is known by an identifier of type ``external:<system>`` (e.g.
  ``external:online_retail`` = ``17850``); a number already known keeps its profile (even when
  it was merged into another person since: the answer is the person's id), nothing of it is
  changed;
* facts are keyed like ``record_commerce_fact`` keys them (``<kind>:<id>`` under the internal
  source), so a fact recorded twice, by this module or by an outbox subscriber, is stored once.

Historic data carries no personal data (a customer number and a country), so no data key is
created and no ``customer.created`` event is emitted per profile: a history import is not news
for the subscribers of live events. Services flush, never commit."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from omniretail.core.errors import AppError, invalid
from omniretail.core.ids import new_id
from omniretail.core.timeutil import as_utc, utcnow
from omniretail.customer import domain
from omniretail.customer import service as customer_service
from omniretail.customer.crypto import key_ring
from omniretail.customer.models import CustomerEvent, Identifier, Profile
from omniretail.customer.settings import get_customer_settings
from omniretail.customer.tracking import PROFILE_STATS

INTERNAL_SOURCE = "internal"  # the source of commerce facts (as in customer.service)
FACT_KINDS = frozenset({"order_placed", "return_received"})
CHUNK = 500
Progress = Callable[[str, int, int], None]

_PROFILES = cast(Table, Profile.__table__)
_IDENTIFIERS = cast(Table, Identifier.__table__)
_EVENTS = cast(Table, CustomerEvent.__table__)


class HistoricCustomer(NamedTuple):
    """A customer of another system: its number there and non-personal traits (country)."""

    external_id: str
    traits: Mapping[str, Any] = {}


@dataclass
class CustomersImported:
    created: int = 0
    existing: int = 0
    # external id -> customer id (the person) for every usable number, new or known
    ids: dict[str, str] = field(default_factory=dict)
    # numbers that cannot identify anyone (blocked values such as "0" or "null")
    refused: list[str] = field(default_factory=list)
    # numbers of erased people (the suppression list): no profile, their orders stay guest
    suppressed: list[str] = field(default_factory=list)


class HistoricFact(NamedTuple):
    """An order or a return of a customer's history, for the timeline and the order counts.

    ``kind`` is ``order_placed`` (``ref`` = the order id) or ``return_received`` (``ref`` =
    the return id, ``order_id`` = the order it returns). ``amount_minor`` is the order total,
    or the refunded value of a return (positive)."""

    kind: str
    ref: str
    customer_id: str
    order_id: str | None
    channel: str
    amount_minor: int
    currency: str
    occurred_at: datetime
    properties: Mapping[str, Any] = {}


def external_type(system: str) -> str:
    """``external:<system>``; 422 ``invalid_system`` when the name cannot be an identifier type
    (lower-case letters, digits, ``_ . -``, at most 31 characters)."""
    kind = f"external:{system.strip().lower()}"
    if not domain.is_identifier_type(kind):
        raise invalid(
            "invalid_system",
            f"{system!r} cannot name an external id type: use at most 31 lower-case letters, "
            "digits, '_', '.' or '-'",
            system=system,
        )
    return kind


def import_customers(
    session: Session,
    system: str,
    customers: Sequence[HistoricCustomer],
    *,
    source: str | None = None,
    progress: Progress | None = None,
) -> CustomersImported:
    """One profile per customer number of ``system`` that no profile has yet, with the
    identifier ``external:<system>`` and the given traits. Known numbers are left as they are;
    every usable number is answered with its customer id, except the numbers of erased people
    (on the suppression list), which get no profile. ``source`` is recorded on the new
    identifiers (default ``import:<system>``)."""
    kind = external_type(system)
    notify = progress or (lambda _stage, _done, _total: None)
    ring = key_ring()
    blocked = frozenset(v.strip().lower() for v in get_customer_settings().identity_blocked_values)
    result = CustomersImported()
    wanted: dict[str, tuple[str, Mapping[str, Any]]] = {}  # hash -> (number, traits)
    for customer in customers:
        value = domain.normalise_identifier(kind, customer.external_id)
        if value is None or value.lower() in blocked:
            result.refused.append(str(customer.external_id))
            continue
        wanted.setdefault(ring.blind_index(kind, value), (value, customer.traits))
    for value_hash in customer_service.suppressed_hashes(session, list(wanted)):
        result.suppressed.append(wanted.pop(value_hash)[0])
    hashes = list(wanted)
    notify("customers", 0, len(hashes))
    known: dict[str, str] = {}
    for start in range(0, len(hashes), CHUNK):
        rows = session.execute(
            select(Identifier.value_hash, Profile.root_id)
            .join(Profile, Profile.id == Identifier.profile_id)
            .where(Identifier.value_hash.in_(hashes[start : start + CHUNK]))
        ).all()
        known.update({h: root for h, root in rows})
    now = utcnow()
    profiles: list[dict[str, Any]] = []
    identifiers: list[dict[str, Any]] = []
    for value_hash, (value, traits) in wanted.items():
        if value_hash in known:
            result.ids[value] = known[value_hash]
            continue
        pid = new_id("cus")
        profiles.append(
            {
                "id": pid,
                "root_id": pid,
                "status": "active",
                "traits": dict(traits),
                "channels_mask": 0,
                "event_count": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
        identifiers.append(
            {
                "type": kind,
                "value_hash": value_hash,
                "value": value,
                "profile_id": pid,
                "shared": False,
                "source": (source or f"import:{system}")[:80],
                "created_at": now,
            }
        )
        result.ids[value] = pid
    for start in range(0, len(profiles), CHUNK):
        session.execute(insert(_PROFILES), profiles[start : start + CHUNK])
        session.execute(insert(_IDENTIFIERS), identifiers[start : start + CHUNK])
        notify("customers", min(start + CHUNK, len(profiles)), len(hashes))
    notify("customers", len(hashes), len(hashes))
    result.created = len(profiles)
    result.existing = len(wanted) - len(profiles)
    return result


def _insert_events(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(_EVENTS)
    if dialect == "sqlite":
        return sqlite.insert(_EVENTS)
    raise AppError("unsupported_database", f"history import needs SQLite or PostgreSQL: {dialect}")


def record_history_facts(
    session: Session, facts: Sequence[HistoricFact], *, progress: Progress | None = None
) -> int:
    """Store the facts on the customers' timelines (``kind`` ``order``/``return``) and fold
    them into the profiles' counters (events, first/last seen, channels used), as
    ``record_commerce_fact`` does one at a time. ``customer_id`` must be a customer id (as
    answered by :func:`import_customers`). A fact already stored is skipped; answers how many
    were stored."""
    notify = progress or (lambda _stage, _done, _total: None)
    if not facts:
        return 0
    for fact in facts:
        if fact.kind not in FACT_KINDS:
            raise invalid("invalid_fact_kind", f"history facts are {sorted(FACT_KINDS)}")
    received = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "source_id": INTERNAL_SOURCE,
            "message_id": f"{f.kind}:{f.ref}"[:128],
            "type": "fact",
            "event": f.kind.replace("_", " ").title(),
            "fact": f.kind,
            "profile_id": f.customer_id,
            "channel": f.channel[:20],
            "order_id": f.order_id[:100] if f.order_id else None,
            "amount_minor": f.amount_minor,
            "currency": f.currency.upper()[:3],
            "occurred_at": as_utc(f.occurred_at),
            "received_at": received,
            "data": {"properties": dict(f.properties)},
        }
        for f in facts
    ]
    statement = (
        _insert_events(session)
        .on_conflict_do_nothing(index_elements=["source_id", "message_id"])
        .returning(_EVENTS.c.message_id)
    )
    stored: set[str] = set()
    notify("timeline", 0, len(rows))
    for start in range(0, len(rows), 5_000):
        chunk = rows[start : start + 5_000]
        stored.update(session.connection().execute(statement, chunk).scalars().all())
        notify("timeline", start + len(chunk), len(rows))
    stats: dict[str, list[Any]] = {}
    for row in rows:
        if row["message_id"] not in stored:
            continue
        pid, at = row["profile_id"], row["occurred_at"]
        bit = domain.channel_bit(row["channel"])
        s = stats.get(pid)
        if s is None:
            stats[pid] = [1, bit, at, at]
        else:
            s[0] += 1
            s[1] |= bit
            s[2] = min(s[2], at)
            s[3] = max(s[3], at)
    params = [
        {"pid": pid, "n": n, "bit": bit, "first": first, "last": last}
        for pid, (n, bit, first, last) in sorted(stats.items())
    ]
    if params:
        session.execute(PROFILE_STATS, params)
    session.flush()
    return len(stored)
