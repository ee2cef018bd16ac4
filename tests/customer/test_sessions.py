"""Tracked sessions: the tracking ingest announces the sessions new events start (outbox)."""

from sqlalchemy import select

from omniretail.core.models import OutboxEvent
from tests.customer.conftest import basic
from tests.customer.helpers import customer_of, send, track


def _announced(session, topic="tracking.session.started"):
    rows = session.scalars(select(OutboxEvent.payload).where(OutboxEvent.topic == topic)).all()
    return sorted(rows, key=lambda p: (p.get("started_at") or p["occurred_at"], p["session_id"]))


def _page(anonymous_id, timestamp, **context):
    event = {"type": "page", "name": "Home", "anonymousId": anonymous_id, "timestamp": timestamp}
    return {**event, "context": context} if context else event


def test_first_event_of_a_person_starts_a_session_on_the_source_channel(
    client, make_source, session
):
    # given
    key, source_id = make_source("app")
    # when
    send(client, key, _page("a-1", "2025-03-01T10:00:00Z"))
    # then
    [started] = _announced(session)
    assert {k: v for k, v in started.items() if k != "session_id"} == {
        "channel": "app",
        "started_at": "2025-03-01T10:00:00+00:00",
        "customer_id": customer_of(session, "anonymous_id", "a-1"),
        "source_id": source_id,
        "sdk_session_id": None,
    }
    assert started["session_id"].startswith("ses_")


def test_events_within_30_minutes_of_the_previous_one_stay_in_its_session(
    client, make_source, session
):
    # given a session started at 10:00
    key, _ = make_source()
    send(client, key, _page("a-1", "2025-03-01T10:00:00Z"))
    # when the next events come 29 and 58 minutes later (each within 30 min of the last)
    send(client, key, _page("a-1", "2025-03-01T10:29:00Z"), _page("a-1", "2025-03-01T10:58:00Z"))
    # then
    assert [p["started_at"] for p in _announced(session)] == ["2025-03-01T10:00:00+00:00"]


def test_an_event_after_more_than_30_minutes_without_events_starts_a_new_session(
    client, make_source, session
):
    # given the person's last event at 10:20 (stored: the next batch reads their last-seen)
    key, _ = make_source()
    send(client, key, _page("a-1", "2025-03-01T10:00:00Z"), _page("a-1", "2025-03-01T10:20:00Z"))
    # when
    send(client, key, _page("a-1", "2025-03-01T10:51:00Z"), _page("a-1", "2025-03-01T11:10:00Z"))
    # then
    assert [p["started_at"] for p in _announced(session)] == [
        "2025-03-01T10:00:00+00:00",
        "2025-03-01T10:51:00+00:00",
    ]


def test_the_session_timeout_is_configurable(client, make_source, session, settings):
    # given
    settings.tracking_session_timeout_min = 10
    key, _ = make_source()
    # when
    send(client, key, _page("a-1", "2025-03-01T10:00:00Z"), _page("a-1", "2025-03-01T10:11:00Z"))
    # then
    assert len(_announced(session)) == 2


def test_a_late_event_older_than_the_last_seen_starts_no_session(client, make_source, session):
    # given
    key, _ = make_source()
    send(client, key, _page("a-1", "2025-03-01T12:00:00Z"))
    # when an event from two hours earlier arrives (an offline device)
    send(client, key, _page("a-1", "2025-03-01T10:00:00Z"))
    # then
    assert [p["started_at"] for p in _announced(session)] == ["2025-03-01T12:00:00+00:00"]


def test_a_resent_batch_announces_no_session_again(client, make_source, session):
    # given
    key, _ = make_source()
    batch = {"batch": [{"messageId": "m-1", **_page("a-1", "2025-03-01T10:00:00Z")}]}
    client.post("/v1/batch", json=batch, headers=basic(key))
    # when the SDK resends it (same messageId)
    client.post("/v1/batch", json=batch, headers=basic(key))
    # then
    assert len(_announced(session)) == 1


def test_the_sdk_session_id_names_the_session_and_its_start_flag_starts_one(
    client, make_source, session
):
    # given a RudderStack session 111 (flagged start, then more events of it)
    key, _ = make_source()
    send(
        client,
        key,
        _page("a-1", "2025-03-01T10:00:00Z", sessionId=111, sessionStart=True),
        _page("a-1", "2025-03-01T10:05:00Z", sessionId=111),
    )
    # when the SDK starts session 222 five minutes later (no inactivity gap)
    send(client, key, _page("a-1", "2025-03-01T10:10:00Z", sessionId=222, sessionStart=True))
    # then two sessions, named after the SDK's ids
    announced = _announced(session)
    assert [(p["sdk_session_id"], p["started_at"]) for p in announced] == [
        ("111", "2025-03-01T10:00:00+00:00"),
        ("222", "2025-03-01T10:10:00+00:00"),
    ]
    assert announced[0]["session_id"] != announced[1]["session_id"]


def test_the_same_sdk_session_id_on_two_devices_is_two_sessions(client, make_source, session):
    # given / when: two devices whose SDKs picked the same session id (a start time)
    key, _ = make_source()
    send(
        client,
        key,
        _page("a-1", "2025-03-01T10:00:00Z", sessionId=111, sessionStart=True),
        _page("a-2", "2025-03-01T10:00:00Z", sessionId=111, sessionStart=True),
    )
    # then
    assert len({p["session_id"] for p in _announced(session)}) == 2


def test_a_tracked_order_completed_is_announced_with_its_session(client, make_source, session):
    # given / when: a visit that ends with an order, in one batch
    key, _ = make_source()
    send(
        client,
        key,
        _page("a-1", "2025-03-01T10:00:00Z"),
        track(
            "Order Completed",
            anonymousId="a-1",
            timestamp="2025-03-01T10:12:00Z",
            properties={"order_id": "o-1", "total": 27.5, "currency": "EUR"},
        ),
    )
    # then
    [started] = _announced(session)
    [order] = _announced(session, "tracking.order.completed")
    assert order == {
        "order_id": "o-1",
        "occurred_at": "2025-03-01T10:12:00+00:00",
        "channel": "web",
        "customer_id": customer_of(session, "anonymous_id", "a-1"),
        "session_id": started["session_id"],
        "amount_minor": 2750,
        "currency": "EUR",
        "source_id": started["source_id"],
    }
