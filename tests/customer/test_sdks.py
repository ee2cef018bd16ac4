"""Real Segment and RudderStack Python SDKs against a live uvicorn server on loopback."""

import time

import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics import Client as SegmentClient
from sqlalchemy import func, select

from omniretail.customer import service
from omniretail.customer.models import CustomerEvent


def _stored(db):
    with db.unit_of_work(write=False) as s:
        return s.scalars(select(CustomerEvent.event).order_by(CustomerEvent.seq)).all()


def _count(db):
    with db.unit_of_work(write=False) as s:
        return s.scalar(select(func.count()).select_from(CustomerEvent))


def _shed(live):
    gate = getattr(live.app.state, "tracking_gate", None)
    return gate.shed if gate is not None else 0


def _profile(db, user_id):
    with db.unit_of_work(write=False) as s:
        cid = service.find_customer_id(s, "user_id", user_id)
        return service.customer_view(s, cid, pii=True)


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_segment_sdk_events_and_identify_are_visible_after_flush(live, live_db, live_source, gzip):
    errors = []
    client = SegmentClient(
        live_source("server"), host=live.url, gzip=gzip, on_error=lambda e, batch: errors.append(e)
    )
    client.track(
        anonymous_id="anon-7",
        event="Product Viewed",
        properties={"product_id": "p-1", "price": 10, "currency": "EUR"},
    )
    client.identify(
        "user-7",
        {"email": "grace@example.org", "firstName": "Grace", "plan": "pro"},
        anonymous_id="anon-7",
    )
    client.track(
        "user-7",
        "Order Completed",
        {"order_id": "o-7", "total": 42.0, "currency": "EUR"},
        anonymous_id="anon-7",
    )
    client.flush()
    client.join()
    assert errors == []
    assert _stored(live_db) == ["Product Viewed", None, "Order Completed"]
    profile = _profile(live_db, "user-7")
    assert profile["email"] == "grace@example.org"
    assert profile["first_name"] == "Grace"
    assert profile["traits"] == {"plan": "pro"}
    assert profile["event_count"] == 3
    assert profile["orders"] == {"count": 1, "revenue_minor": {"EUR": 4200}}


def test_rudder_sdk_gzip_batches_are_stored(live, live_db, live_source):
    errors = []
    client = RudderClient(
        live_source("app"), host=live.url, gzip=True, on_error=lambda e, batch: errors.append(e)
    )
    for i in range(250):
        client.track(user_id=f"user-{i % 5}", event="Screen Tapped", properties={"n": i})
    client.identify("user-1", {"plan": "basic", "phone": "+44 7700 900111"})
    client.flush()
    client.join()
    assert errors == []
    assert _count(live_db) == 251
    profile = _profile(live_db, "user-1")
    assert profile["phone"] == "+447700900111"
    assert profile["channels_used"] == ["app"]
    assert profile["event_count"] == 51


def test_bad_write_key_is_reported_by_the_sdk_as_401(live, live_db):
    errors = []
    client = SegmentClient("wk_wrong", host=live.url, on_error=lambda e, batch: errors.append(e))
    client.track(anonymous_id="a", event="X")
    client.flush()
    client.join()
    assert [e.status for e in errors] == [401]
    assert _count(live_db) == 0


def test_segment_retries_after_429_and_nothing_is_lost(live, live_db, live_source, settings):
    settings.tracking_retry_after_s = 1
    settings.tracking_max_inflight = 0  # every request is refused: an overload episode
    errors = []
    client = SegmentClient(
        live_source("web"),
        host=live.url,
        upload_interval=0.05,
        on_error=lambda e, batch: errors.append(e),
    )
    for i in range(300):
        client.track(anonymous_id=f"anon-{i % 7}", event="Scrolled", properties={"n": i})
    deadline = time.monotonic() + 10
    while _shed(live) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    settings.tracking_max_inflight = 64  # the episode ends
    client.flush()
    client.join()
    assert _shed(live) >= 2
    assert errors == []
    assert _count(live_db) == 300


def test_rudder_retries_after_429_and_nothing_is_lost(live, live_db, live_source, settings):
    settings.tracking_max_inflight = 0
    errors = []
    client = RudderClient(
        live_source("server"),
        host=live.url,
        upload_interval=0.05,
        on_error=lambda e, batch: errors.append(e),
    )
    for i in range(120):
        client.track(user_id=f"user-{i % 3}", event="Synced", properties={"n": i})
    deadline = time.monotonic() + 10
    while _shed(live) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    settings.tracking_max_inflight = 64
    client.flush()
    client.join()
    assert errors == []
    assert _count(live_db) == 120
