"""The transactional outbox: events exist with their change and reach subscribers once."""

import asyncio
import contextlib
import json
import socket

import pytest
from sqlalchemy import select

from omniretail.core import events
from omniretail.core.models import OutboxEvent


@pytest.fixture()
def received():
    seen: list[tuple[str, dict]] = []

    def handler(_session, event):
        seen.append((event.topic, event.payload))

    events.subscribe("test.thing_happened")(handler)
    yield seen
    events.unsubscribe("test.thing_happened", handler)


def test_emitted_event_reaches_subscriber_once(session, received):
    events.emit(session, "test.thing_happened", {"n": 1}, aggregate_id="x1")
    session.flush()
    assert events.dispatch_pending(session) >= 1
    assert events.dispatch_pending(session) == 0
    assert received == [("test.thing_happened", {"n": 1})]


def test_events_emitted_together_reach_subscribers_once_each(session, received):
    # Given two events written in one multi-row insert
    events.emit_many(
        session,
        [("test.thing_happened", {"n": 1}, "a1"), ("test.thing_happened", {"n": 2}, None)],
    )
    # When the outbox is dispatched twice
    first = events.dispatch_pending(session)
    second = events.dispatch_pending(session)
    # Then each reached the subscriber once, with its aggregate id stored
    assert (first, second) == (2, 0)
    assert sorted(p["n"] for _, p in received) == [1, 2]
    stored = session.execute(
        select(OutboxEvent.aggregate_id).where(OutboxEvent.topic == "test.thing_happened")
    ).all()
    assert sorted((r[0] or "") for r in stored) == ["", "a1"]


def test_rolled_back_change_has_no_event(session, received):
    nested = session.begin_nested()
    events.emit(session, "test.thing_happened", {"n": 2})
    nested.rollback()
    events.dispatch_pending(session)
    assert received == []


def test_failing_subscriber_is_retried_and_does_not_block_others(session, received):
    broken = _broken

    events.subscribe("test.broken")(broken)
    try:
        bad = events.emit(session, "test.broken", {})
        events.emit(session, "test.thing_happened", {"n": 3})
        session.flush()
        events.dispatch_pending(session)
        session.refresh(bad)
        assert received == [("test.thing_happened", {"n": 3})]
        assert bad.published_at is None
        assert bad.attempts == 1
        assert bad.last_error == "tests.core.test_events._broken: boom"
    finally:
        events.unsubscribe("test.broken", broken)


def _nats_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _nats_up(), reason="NATS JetStream not running on 127.0.0.1:4222")
def test_nats_publisher_delivers_to_jetstream(session):
    import nats

    stream = "OMNI_TEST_EVENTS"

    async def reset() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()

    asyncio.run(reset())
    event = events.emit(session, "test.published", {"sku": "A-1"})
    session.flush()
    events.dispatch_pending(
        session, publisher=events.NatsPublisher("nats://127.0.0.1:4222", stream)
    )

    async def fetch() -> dict:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        sub = await js.pull_subscribe("omni.test.published", durable="t", stream=stream)
        msgs = await sub.fetch(1, timeout=5)
        await msgs[0].ack()
        await js.delete_stream(stream)
        await nc.close()
        return json.loads(msgs[0].data)

    body = asyncio.run(fetch())
    assert body["id"] == event.id
    assert body["payload"] == {"sku": "A-1"}
    stored = session.scalar(select(OutboxEvent).where(OutboxEvent.id == event.id))
    assert stored is not None and stored.published_at is not None


def _broken(_session, _event):
    raise RuntimeError("boom")


def test_failing_handler_does_not_undo_another_handler_of_the_same_event(session, received):
    events.subscribe("test.thing_happened")(_broken)
    try:
        events.emit(session, "test.thing_happened", {"n": 4})
        session.flush()
        events.dispatch_pending(session)
        assert received == [("test.thing_happened", {"n": 4})]
    finally:
        events.unsubscribe("test.thing_happened", _broken)


@pytest.fixture()
def commits_with_events():
    calls: list[str] = []
    events.after_commit_with_events(lambda: calls.append("committed"))
    yield calls
    events.clear_after_commit_callbacks()


def test_a_commit_that_emitted_events_calls_back_once(db, commits_with_events):
    # Given a unit of work that emits two events
    # When it commits
    with db.unit_of_work() as s:
        events.emit(s, "test.thing_happened", {"n": 1})
        events.emit(s, "test.thing_happened", {"n": 2})
    # Then the callback ran once
    assert commits_with_events == ["committed"]


def test_a_commit_after_events_emitted_together_calls_back_once(db, commits_with_events):
    with db.unit_of_work() as s:
        events.emit_many(s, [("test.thing_happened", {"n": 4}, None)])
    assert commits_with_events == ["committed"]


def test_a_commit_without_events_calls_nothing(db, commits_with_events):
    # Given a unit of work that writes no event
    with db.unit_of_work() as s:
        s.execute(select(OutboxEvent.id).limit(1)).all()
    # Then nothing was called
    assert commits_with_events == []


def test_a_rolled_back_emit_calls_nothing_then_or_at_the_next_commit(db, commits_with_events):
    # Given a session whose transaction emitted an event and rolled back
    s = db.session()
    events.emit(s, "test.thing_happened", {"n": 3})
    s.flush()
    s.rollback()
    # When the same session commits a transaction without events
    s.execute(select(OutboxEvent.id).limit(1)).all()
    s.commit()
    s.close()
    # Then nothing was called
    assert commits_with_events == []
