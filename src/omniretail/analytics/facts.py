"""Recording sales, returns, cancellations, tracked sessions and tracked orders in the
analytics store.

These are the public entry points for the other contexts' facts. They take plain values (no
objects of another context), are idempotent (a fact already recorded is skipped and the call
returns ``False``) and write in the caller's transaction (flush, never commit), so an outbox
subscriber can call them directly (see ``subscribers.py`` for the event payloads).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from omniretail.analytics.domain import Kind, LineType
from omniretail.analytics.models import (
    CustomerDim,
    OrderFact,
    ProductDim,
    SalesLine,
    TrackedSession,
)
from omniretail.core.errors import invalid
from omniretail.core.timeutil import as_utc
from omniretail.customer import service as customers

_CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")  # a channel code or id
_LOCATION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def dialect_insert(session: Session) -> Any:
    """``INSERT ... ON CONFLICT`` constructor of the session's dialect (SQLite/PostgreSQL)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


class AttributionSettings(BaseSettings):
    """How orders that name no session convert tracked sessions (``OMNI_ANALYTICS_*``)."""

    model_config = SettingsConfigDict(env_prefix="OMNI_ANALYTICS_", env_file=".env", extra="ignore")

    attribution_window_h: float = Field(
        default=24.0,
        gt=0,
        description="An order converts its customer's latest tracked session only if that "
        "session started at most this many hours before it",
    )


@lru_cache(maxsize=1)
def get_attribution_settings() -> AttributionSettings:
    return AttributionSettings()


def attribution_window_default() -> timedelta:
    return timedelta(hours=get_attribution_settings().attribution_window_h)


def _person_keys(session: Session, customer_key: str) -> list[str]:
    """The customer keys that may stand for this customer: every profile id of the person
    (a session recorded before a merge carries the absorbed profile's id), or the key itself
    when the customer context does not know it (imported customers)."""
    return customers.person_profile_ids(session, customer_key) or [customer_key]


def _attribute(
    session: Session, order_ref: str, customer_key: str, at: datetime, window: timedelta
) -> str | None:
    """An order that names no session converts its customer's latest tracked session that
    started in ``[at - window, at]``, unless that session already converted: an order never
    reaches back past a converted session (a second order of the same visit, or the order
    also tracked as ``Order Completed``, must not convert an earlier visit). Returns the
    converted session key."""
    s = TrackedSession
    latest = session.execute(
        select(s.session_key, s.order_ref)
        .where(
            s.customer_key.in_(_person_keys(session, customer_key)),
            s.started_at <= at,
            s.started_at >= at - window,
        )
        .order_by(s.started_at.desc(), s.session_key.desc())
        .limit(1)
    ).first()
    if latest is None or latest.order_ref is not None:
        return None
    session.execute(
        update(s)
        .where(s.session_key == latest.session_key, s.order_ref.is_(None))
        .values(order_ref=order_ref)
    )
    return str(latest.session_key)


def _late_session_order(
    session: Session, session_key: str, customer_key: str, started_at: datetime, window: timedelta
) -> str | None:
    """A session recorded after orders that followed it (its announcement was late): the
    earliest order of the customer in ``[started_at, started_at + window]`` that names no
    session and for which this is the latest session. If that order had converted an older
    session (this one was not known yet), the conversion moves here."""
    keys = _person_keys(session, customer_key)
    o, s = OrderFact, TrackedSession
    first = session.execute(
        select(o.order_ref, o.occurred_at)
        .where(
            o.kind == Kind.SALE.value,
            o.session_key.is_(None),
            o.customer_key.in_(keys),
            o.occurred_at >= started_at,
            o.occurred_at <= started_at + window,
        )
        .order_by(o.occurred_at, o.id)
        .limit(1)
    ).first()
    if first is None:
        return None
    between = session.scalar(
        select(s.session_key)
        .where(
            s.customer_key.in_(keys),
            s.session_key != session_key,
            s.started_at > started_at,
            s.started_at <= first.occurred_at,
        )
        .limit(1)
    )
    if between is not None:
        return None  # that order belongs to a later session
    holder = session.execute(
        select(s.session_key, s.started_at).where(s.order_ref == first.order_ref).limit(1)
    ).first()
    if holder is not None:
        if holder.started_at >= started_at:
            return None
        session.execute(update(s).where(s.session_key == holder.session_key).values(order_ref=None))
    return str(first.order_ref)


@dataclass(frozen=True)
class FactLine:
    """A line of a sale or return: positive ``quantity`` units at ``unit_price_minor``.
    ``amount_minor`` is the line's value when it is not quantity × unit price (a discount);
    ``location`` the location that sold or received it when it differs from the order's."""

    sku: str
    quantity: int
    unit_price_minor: int
    line_type: str = LineType.PRODUCT.value
    description: str = ""
    amount_minor: int | None = None
    location: str | None = None

    @property
    def amount(self) -> int:
        return (
            self.quantity * self.unit_price_minor
            if self.amount_minor is None
            else self.amount_minor
        )


def _line(value: FactLine | Mapping[str, Any], index: int) -> FactLine:
    if isinstance(value, FactLine):
        line = value
    else:
        try:
            line = FactLine(
                sku=str(value["sku"]),
                quantity=value["quantity"],
                unit_price_minor=value["unit_price_minor"],
                line_type=str(value.get("line_type") or LineType.PRODUCT.value),
                description=str(value.get("description") or ""),
                amount_minor=value.get("amount_minor"),
                location=value.get("location"),
            )
        except KeyError as exc:
            raise invalid(
                "invalid_fact_line", f"line {index} lacks {exc.args[0]!r}", line=index
            ) from None
    if not 1 <= len(line.sku) <= 64:
        raise invalid("invalid_fact_line", f"line {index}: SKU must be 1–64 characters")
    for name in ("quantity", "unit_price_minor"):
        number = getattr(line, name)
        if isinstance(number, bool) or not isinstance(number, int):
            raise invalid("invalid_fact_line", f"line {index}: {name} must be an integer")
    if line.quantity <= 0:
        raise invalid("invalid_fact_line", f"line {index}: quantity must be positive")
    if line.unit_price_minor < 0:
        raise invalid("invalid_fact_line", f"line {index}: unit price cannot be negative")
    if line.amount_minor is not None and (
        isinstance(line.amount_minor, bool)
        or not isinstance(line.amount_minor, int)
        or line.amount_minor < 0
    ):
        raise invalid("invalid_fact_line", f"line {index}: amount must be an integer >= 0")
    if line.location is not None and not _LOCATION.match(line.location):
        raise invalid("invalid_fact_line", f"line {index}: location {line.location!r} is no code")
    if line.line_type not in {t.value for t in LineType}:
        raise invalid("invalid_fact_line", f"line {index}: unknown line type {line.line_type!r}")
    return line


def _check_header(
    ref: str, occurred_at: datetime, channel: str, location: str | None, currency: str
) -> None:
    if not ref or len(ref) > 64:
        raise invalid("invalid_fact", "the order/return reference must be 1–64 characters")
    if occurred_at.tzinfo is None:
        raise invalid("invalid_fact", "occurred_at must be timezone-aware")
    if not _CODE.match(channel):
        raise invalid("invalid_fact", f"channel {channel!r} must be a code [a-z0-9_-]")
    if location is not None and not _LOCATION.match(location):
        raise invalid("invalid_fact", f"location {location!r} must be a code")
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise invalid("invalid_fact", f"invalid currency {currency!r}")


def _record(
    session: Session,
    *,
    kind: Kind,
    source: str,
    ref: str,
    occurred_at: datetime,
    channel: str,
    lines: Sequence[FactLine | Mapping[str, Any]],
    customer_key: str | None,
    location: str | None,
    currency: str,
    original_order_ref: str | None = None,
    session_key: str | None = None,
    window: timedelta | None = None,
    visitor_key: str | None = None,
) -> bool:
    _check_header(ref, occurred_at, channel, location, currency)
    if not lines:
        raise invalid("invalid_fact", "a sale or return needs at least one line")
    parsed = [_line(v, i) for i, v in enumerate(lines, start=1)]
    sign = -1 if kind is Kind.RETURN else 1
    at = as_utc(occurred_at)
    product = [ln for ln in parsed if ln.line_type == LineType.PRODUCT.value]
    service = [ln for ln in parsed if ln.line_type == LineType.SERVICE.value]
    insert = dialect_insert(session)
    result = session.execute(
        insert(cast(Table, OrderFact.__table__))
        .values(
            source=source,
            order_ref=ref,
            kind=kind.value,
            channel=channel,
            location=location,
            customer_key=customer_key,
            occurred_at=at,
            currency=currency,
            revenue_minor=sign * sum(ln.amount for ln in product),
            service_minor=sign * sum(ln.amount for ln in service),
            units=sign * sum(ln.quantity for ln in product),
            product_lines=len(product),
            cancelled=False,
            original_order_ref=original_order_ref,
            session_key=session_key,
        )
        .on_conflict_do_nothing(index_elements=["source", "order_ref"])
        .returning(OrderFact.id)
    )
    if result.first() is None:
        return False  # recorded before: idempotent
    session.execute(
        insert(cast(Table, SalesLine.__table__)).on_conflict_do_nothing(
            index_elements=["source", "order_ref", "line_no"]
        ),
        [
            {
                "source": source,
                "order_ref": ref,
                "line_no": number,
                "kind": kind.value,
                "line_type": ln.line_type,
                "channel": channel,
                "location": ln.location or location,
                "customer_key": customer_key,
                "sku": ln.sku,
                "quantity": sign * ln.quantity,
                "unit_price_minor": ln.unit_price_minor,
                "amount_minor": sign * ln.amount,
                "currency": currency,
                "occurred_at": at,
            }
            for number, ln in enumerate(parsed, start=1)
        ],
    )
    session.execute(
        insert(cast(Table, ProductDim.__table__)).on_conflict_do_nothing(index_elements=["sku"]),
        [
            {
                "sku": ln.sku,
                "description": ln.description[:300],
                "line_type": "service" if ln.line_type == "service" else "product",
            }
            for ln in {ln.sku: ln for ln in parsed}.values()
        ],
    )
    if customer_key:
        session.execute(
            insert(cast(Table, CustomerDim.__table__))
            .values(customer_key=customer_key, country=None, first_seen_at=at)
            .on_conflict_do_nothing(index_elements=["customer_key"])
        )
    if session_key and kind is Kind.SALE:
        session.execute(
            update(TrackedSession)
            .where(TrackedSession.session_key == session_key, TrackedSession.order_ref.is_(None))
            .values(order_ref=ref)
        )
    elif (customer_key or visitor_key) and kind is Kind.SALE:
        who = customer_key or visitor_key
        assert who is not None
        _attribute(session, ref, who, at, window or attribution_window_default())
    session.flush()
    return True


def record_sale_fact(
    session: Session,
    *,
    order_ref: str,
    occurred_at: datetime,
    channel: str,
    lines: Sequence[FactLine | Mapping[str, Any]],
    customer_key: str | None = None,
    location: str | None = None,
    currency: str = "GBP",
    source: str = "order",
    session_key: str | None = None,
    attribution_window: timedelta | None = None,
    visitor_key: str | None = None,
) -> bool:
    """*Public interface.* Record a placed order or POS sale (lines with positive quantities;
    ``customer_key`` ``None`` for a guest). A ``session_key`` marks that tracked session as
    converted; without one, the customer's latest tracked session that started within the
    attribution window before the order (``OMNI_ANALYTICS_ATTRIBUTION_WINDOW_H``, 24 h) is
    converted unless it already was. ``visitor_key``: for a guest order, the tracked visitor
    (the profile of the cart's anonymous id), whose latest session converts the same way; the
    fact stays a guest's. Returns ``False`` when ``(source, order_ref)`` was recorded
    before."""
    return _record(
        session,
        kind=Kind.SALE,
        source=source,
        ref=order_ref,
        occurred_at=occurred_at,
        channel=channel,
        lines=lines,
        customer_key=customer_key,
        location=location,
        currency=currency,
        session_key=session_key,
        window=attribution_window,
        visitor_key=visitor_key,
    )


def record_return_fact(
    session: Session,
    *,
    return_ref: str,
    occurred_at: datetime,
    channel: str,
    lines: Sequence[FactLine | Mapping[str, Any]],
    customer_key: str | None = None,
    location: str | None = None,
    currency: str = "GBP",
    source: str = "order",
    original_order_ref: str | None = None,
) -> bool:
    """*Public interface.* Record a received return (positive quantities of returned units;
    stored negative). ``channel``/``location`` are where it was returned, which may differ
    from where it was bought. Idempotent by ``(source, return_ref)``."""
    return _record(
        session,
        kind=Kind.RETURN,
        source=source,
        ref=return_ref,
        occurred_at=occurred_at,
        channel=channel,
        lines=lines,
        customer_key=customer_key,
        location=location,
        currency=currency,
        original_order_ref=original_order_ref,
    )


def record_cancellation_fact(session: Session, *, order_ref: str, source: str = "order") -> bool:
    """*Public interface.* An order cancelled before fulfilment drops out of revenue and order
    counts (KPIs are net of cancellations). Returns ``False`` if unknown or already cancelled."""
    result = session.execute(
        update(OrderFact)
        .where(
            OrderFact.source == source,
            OrderFact.order_ref == order_ref,
            OrderFact.kind == Kind.SALE.value,
            OrderFact.cancelled.is_(False),
        )
        .values(cancelled=True)
    )
    session.flush()
    return bool(getattr(result, "rowcount", 0))


def record_session_fact(
    session: Session,
    *,
    session_key: str,
    channel: str,
    started_at: datetime,
    customer_key: str | None = None,
    attribution_window: timedelta | None = None,
) -> bool:
    """*Public interface.* Record a tracked storefront session (for conversion). Idempotent by
    key. A session recorded after its order is converted at once: an order that carries this
    ``session_key``, else the customer's first order within the attribution window after the
    start that names no session and has no later session before it. A session first written
    by its tracked order (``record_tracked_order`` before the announcement) keeps that
    conversion and takes the announced start. Returns ``False`` if the key was known."""
    if not session_key or len(session_key) > 80:
        raise invalid("invalid_fact", "the session key must be 1–80 characters")
    _check_header("session", started_at, channel, None, "GBP")
    at = as_utc(started_at)
    s = TrackedSession
    known = session.execute(
        select(s.started_at, s.customer_key).where(s.session_key == session_key)
    ).first()
    if known is not None:
        changes: dict[str, Any] = {}
        if at < known.started_at:
            changes["started_at"] = at
        if known.customer_key is None and customer_key:
            changes["customer_key"] = customer_key
        if changes:
            session.execute(update(s).where(s.session_key == session_key).values(**changes))
            session.flush()
        return False
    converted = session.scalar(
        select(OrderFact.order_ref)
        .where(OrderFact.session_key == session_key, OrderFact.kind == Kind.SALE.value)
        .limit(1)
    )
    if converted is None and customer_key:
        window = attribution_window or attribution_window_default()
        converted = _late_session_order(session, session_key, customer_key, at, window)
    created = _insert_session(session, session_key, channel, customer_key, at, converted)
    session.flush()
    return created


def _insert_session(
    session: Session,
    session_key: str,
    channel: str,
    customer_key: str | None,
    started_at: datetime,
    order_ref: str | None,
) -> bool:
    """A tracked session row unless one with that key exists; True when it was written."""
    result = session.execute(
        dialect_insert(session)(cast(Table, TrackedSession.__table__))
        .values(
            session_key=session_key,
            channel=channel,
            customer_key=customer_key,
            started_at=started_at,
            order_ref=order_ref,
        )
        .on_conflict_do_nothing(index_elements=["session_key"])
        .returning(TrackedSession.session_key)
    )
    return result.first() is not None


def record_tracked_order(
    session: Session,
    *,
    order_ref: str,
    occurred_at: datetime,
    channel: str,
    customer_key: str | None = None,
    session_key: str | None = None,
    attribution_window: timedelta | None = None,
) -> str | None:
    """*Public interface.* An order tracked by the storefront (Segment ``Order Completed``):
    it converts the session it was tracked in (``session_key``; a session not recorded yet is
    written now, started at the order, and takes its announced start when it arrives), else
    the customer's latest session by the same rule as a sale without a session. It is not a
    sale fact (the order context announces the sale itself), so revenue is not counted
    twice. Returns the converted session key; idempotent."""
    _check_header(order_ref, occurred_at, channel, None, "GBP")
    at = as_utc(occurred_at)
    s = TrackedSession
    if session_key:
        if len(session_key) > 80:
            raise invalid("invalid_fact", "the session key must be 1–80 characters")
        found = session.execute(select(s.order_ref).where(s.session_key == session_key)).first()
        if found is None:
            _insert_session(session, session_key, channel, customer_key, at, order_ref)
            session.flush()
            return session_key
        if found.order_ref is not None:
            return None
        session.execute(
            update(s)
            .where(s.session_key == session_key, s.order_ref.is_(None))
            .values(order_ref=order_ref)
        )
        session.flush()
        return session_key
    if not customer_key:
        return None
    converted = _attribute(
        session, order_ref, customer_key, at, attribution_window or attribution_window_default()
    )
    session.flush()
    return converted
