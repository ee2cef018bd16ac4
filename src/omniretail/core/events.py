"""Domain events through a transactional outbox.

``emit(session, topic, payload)`` writes an outbox row in the caller's transaction, so an
event exists exactly when the change that caused it committed. ``dispatch_pending`` hands
unpublished rows to in-process subscribers (per topic, ``"*"`` for all) and, when
``OMNI_NATS_URL`` is set, to NATS JetStream; the worker (``omni worker``, or ``omni serve
--with-worker``) calls it every minute and on demand (``jobs.dispatch_outbox``).

``after_commit_with_events(callback)``: ``callback()`` runs after any session commits a
transaction that emitted events; the API server uses it (``OMNI_DISPATCH_ON_COMMIT``) to wake
the worker's dispatch at once instead of at its next minute.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy import event as sqla_event
from sqlalchemy.orm import Session

from omniretail.core.bulk import insert_rows
from omniretail.core.ids import new_id
from omniretail.core.models import OutboxEvent
from omniretail.core.timeutil import utcnow

log = logging.getLogger("omniretail.events")

Handler = Callable[[Session, OutboxEvent], None]
MAX_ATTEMPTS = 10  # after this many failed deliveries an event is parked (see last_error)
_subscribers: dict[str, list[Handler]] = defaultdict(list)


def subscribe(topic: str) -> Callable[[Handler], Handler]:
    """Register ``fn(session, event)`` for ``topic`` (or ``"*"``). Handlers must be idempotent."""

    def register(fn: Handler) -> Handler:
        if fn not in _subscribers[topic]:
            _subscribers[topic].append(fn)
        return fn

    return register


def unsubscribe(topic: str, fn: Handler) -> None:
    if fn in _subscribers.get(topic, []):
        _subscribers[topic].remove(fn)


def emit(
    session: Session, topic: str, payload: dict[str, Any], aggregate_id: str | None = None
) -> OutboxEvent:
    event = OutboxEvent(
        id=new_id("evt"), topic=topic, aggregate_id=aggregate_id, payload=payload, attempts=0
    )
    session.add(event)
    session.info[_EMITTED] = True
    return event


def emit_many(session: Session, items: Sequence[tuple[str, dict[str, Any], str | None]]) -> None:
    """:func:`emit` for many ``(topic, payload, aggregate_id)`` at once: the same outbox rows in
    the caller's transaction, written in one multi-row insert instead of one ORM object each
    (the tracking ingest announces hundreds of sessions per batch)."""
    if not items:
        return
    now = utcnow()
    rows = [
        (new_id("evt"), topic, aggregate, payload, now, 0) for topic, payload, aggregate in items
    ]
    insert_rows(session.connection(), _OUTBOX, _OUTBOX_COLUMNS, rows)
    session.info[_EMITTED] = True


_OUTBOX = cast(Table, OutboxEvent.__table__)
_OUTBOX_COLUMNS = ("id", "topic", "aggregate_id", "payload", "created_at", "attempts")
_EMITTED = "omniretail.outbox_emitted"
_after_commit: list[Callable[[], None]] = []


def after_commit_with_events(callback: Callable[[], None]) -> None:
    """Call ``callback()`` (no arguments, quick, must not raise) after every commit of a
    session that emitted at least one event; a rolled-back transaction calls nothing."""
    if not _after_commit:
        sqla_event.listen(Session, "after_commit", _committed)
        sqla_event.listen(Session, "after_rollback", _rolled_back)
    if callback not in _after_commit:
        _after_commit.append(callback)


def clear_after_commit_callbacks() -> None:
    if _after_commit:
        sqla_event.remove(Session, "after_commit", _committed)
        sqla_event.remove(Session, "after_rollback", _rolled_back)
        _after_commit.clear()


def _committed(session: Session) -> None:
    if session.info.pop(_EMITTED, False):
        for callback in list(_after_commit):
            try:
                callback()
            except Exception:  # the events are committed; the minute tick delivers them
                log.exception("after-commit callback failed")


def _rolled_back(session: Session) -> None:
    session.info.pop(_EMITTED, None)


class NatsPublisher:
    """Publishes outbox events to a JetStream stream (subject ``omni.<topic>``)."""

    def __init__(self, url: str, stream: str) -> None:
        self.url = url
        self.stream = stream

    def publish(self, events: list[OutboxEvent]) -> None:
        asyncio.run(self._publish(events))

    async def _publish(self, events: list[OutboxEvent]) -> None:
        import nats

        nc = await nats.connect(self.url, connect_timeout=2, max_reconnect_attempts=1)
        try:
            js = nc.jetstream()
            try:
                await js.stream_info(self.stream)
            except Exception:
                await js.add_stream(name=self.stream, subjects=["omni.>"])
            for ev in events:
                body = json.dumps(
                    {
                        "id": ev.id,
                        "topic": ev.topic,
                        "aggregate_id": ev.aggregate_id,
                        "payload": ev.payload,
                        "created_at": ev.created_at.isoformat(),
                    }
                ).encode()
                # Msg-Id makes JetStream drop duplicates if a batch is re-sent after a crash.
                await js.publish(f"omni.{ev.topic}", body, headers={"Nats-Msg-Id": ev.id})
        finally:
            await nc.close()


def dispatch_pending(
    session: Session, limit: int = 500, publisher: NatsPublisher | None = None
) -> int:
    """Deliver up to ``limit`` unpublished events in creation order; returns how many."""
    query = (
        select(OutboxEvent)
        .where(OutboxEvent.published_at.is_(None), OutboxEvent.attempts < MAX_ATTEMPTS)
        .order_by(OutboxEvent.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    events = list(session.scalars(query))
    if not events:
        return 0
    delivered: list[OutboxEvent] = []
    for ev in events:
        failures: list[str] = []
        for fn in [*_subscribers.get(ev.topic, []), *_subscribers.get("*", [])]:
            # Each handler in its own savepoint: a failing one rolls back only its own work
            # and never blocks the other subscribers of the event.
            try:
                with session.begin_nested():
                    fn(session, ev)
            except Exception as exc:
                log.exception(
                    "event handler failed",
                    extra={"event_id": ev.id, "topic": ev.topic, "handler": fn.__qualname__},
                )
                failures.append(f"{fn.__module__}.{fn.__qualname__}: {exc}")
        if not failures:
            delivered.append(ev)
            continue
        # Redelivered later to every handler (handlers are idempotent), up to MAX_ATTEMPTS.
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == ev.id)
            .values(attempts=OutboxEvent.attempts + 1, last_error="; ".join(failures)[:2000])
        )
    if publisher is not None and delivered:
        publisher.publish(delivered)
    now = utcnow()
    for ev in delivered:
        ev.published_at = now
        ev.attempts = ev.attempts + 1
    session.flush()
    return len(delivered)
