"""The Segment-compatible tracking API over HTTP: auth, decoding, limits, dedup, rejects."""

import gzip
import json

from sqlalchemy import func, select

from omniretail.customer.models import CustomerEvent, Profile, TrackingReject
from tests.customer.conftest import basic


def _events(session):
    return session.scalars(select(CustomerEvent.message_id).order_by(CustomerEvent.seq)).all()


def _rejects(session):
    return session.execute(
        select(TrackingReject.position, TrackingReject.code).order_by(TrackingReject.id)
    ).all()


def _track(message_id, **extra):
    return {
        "type": "track",
        "event": "Clicked",
        "anonymousId": "anon-1",
        "messageId": message_id,
        **extra,
    }


def test_batch_with_basic_auth_is_stored_and_answers_success(client, make_source, session):
    key, _ = make_source()
    response = client.post(
        "/v1/batch", json={"batch": [_track("m-1"), _track("m-2")]}, headers=basic(key)
    )
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert _events(session) == ["m-1", "m-2"]


def test_write_key_in_body_authenticates(client, make_source, session):
    key, _ = make_source()
    response = client.post("/v1/batch", json={"writeKey": key, "batch": [_track("m-1")]})
    assert response.status_code == 200
    assert _events(session) == ["m-1"]


def test_unknown_write_key_is_401_and_stores_nothing(client, session):
    response = client.post("/v1/batch", json={"batch": [_track("m-1")]}, headers=basic("wk_nope"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_write_key"
    assert _events(session) == []


def test_missing_write_key_is_401(client, session):
    response = client.post("/v1/batch", json={"batch": [_track("m-1")]})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert _events(session) == []


def test_deactivated_source_key_is_refused(client, make_source, admin, session):
    key, source_id = make_source()
    client.post(f"/api/v1/tracking/sources/{source_id}/deactivate", headers=admin)
    response = client.post("/v1/batch", json={"batch": [_track("m-1")]}, headers=basic(key))
    assert response.status_code == 401
    assert _events(session) == []


def test_gzip_body_labelled_form_urlencoded_is_accepted(client, make_source, session):
    key, _ = make_source()
    body = gzip.compress(json.dumps({"batch": [_track("m-1")]}).encode())
    headers = {
        **basic(key),
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Encoding": "gzip",
    }
    response = client.post("/v1/batch", content=body, headers=headers)
    assert response.status_code == 200
    assert _events(session) == ["m-1"]


def test_gzip_is_detected_by_magic_bytes_without_header(client, make_source, session):
    key, _ = make_source()
    body = gzip.compress(json.dumps({"batch": [_track("m-1")]}).encode())
    response = client.post("/v1/batch", content=body, headers=basic(key))
    assert response.status_code == 200
    assert _events(session) == ["m-1"]


def test_no_content_type_at_all_is_accepted(client, make_source, session):
    key, _ = make_source()
    response = client.post(
        "/v1/track",
        content=json.dumps({"anonymousId": "a", "event": "X", "messageId": "m-1"}).encode(),
        headers=basic(key),
    )
    assert response.status_code == 200
    assert _events(session) == ["m-1"]


def test_retried_batch_is_deduplicated_on_message_id(client, make_source, session):
    key, _ = make_source()
    body = {"batch": [_track("m-1"), _track("m-2")]}
    client.post("/v1/batch", json=body, headers=basic(key))
    again = client.post(
        "/v1/batch", json={"batch": [_track("m-2"), _track("m-3")]}, headers=basic(key)
    )
    assert again.status_code == 200
    assert _events(session) == ["m-1", "m-2", "m-3"]
    profile = session.scalar(select(Profile))
    assert profile.event_count == 3


def test_same_message_id_from_two_sources_is_two_events(client, make_source, session):
    web, _ = make_source("web")
    app, _ = make_source("app")
    client.post("/v1/batch", json={"batch": [_track("m-1")]}, headers=basic(web))
    client.post("/v1/batch", json={"batch": [_track("m-1")]}, headers=basic(app))
    assert _events(session) == ["m-1", "m-1"]


def test_explicit_nulls_are_accepted(client, make_source, session):
    key, _ = make_source()
    event = {
        "type": "track",
        "event": "Clicked",
        "userId": None,
        "anonymousId": "a-1",
        "messageId": "m-1",
        "properties": None,
        "context": None,
        "integrations": None,
        "timestamp": None,
        "traits": None,
    }
    response = client.post("/v1/batch", json={"batch": [event], "sentAt": None}, headers=basic(key))
    assert response.status_code == 200
    assert _events(session) == ["m-1"]


def test_malformed_json_is_400_and_stores_nothing(client, make_source, session):
    key, _ = make_source()
    response = client.post("/v1/batch", content=b'{"batch": [', headers=basic(key))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert _events(session) == []


def test_batch_without_batch_array_is_400(client, make_source, session):
    key, _ = make_source()
    response = client.post("/v1/batch", json={"events": []}, headers=basic(key))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_batch"


def test_single_call_with_unknown_type_is_400_and_stores_nothing(client, make_source, session):
    key, _ = make_source()
    response = client.post(
        "/v1/batch", json={"batch": []}, headers=basic(key)
    )  # an empty batch is fine
    assert response.status_code == 200
    bad = client.post(
        "/v1/track", json={"anonymousId": "a", "messageId": "m-1"}, headers=basic(key)
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "missing_event"
    assert _events(session) == []
    assert _rejects(session) == []


def test_single_call_without_user_or_anonymous_id_is_400(client, make_source, session):
    key, _ = make_source()
    response = client.post(
        "/v1/identify", json={"traits": {"plan": "x"}, "messageId": "m-1"}, headers=basic(key)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_identity"
    assert _events(session) == []
    assert session.scalar(select(func.count()).select_from(Profile)) == 0


def test_bad_events_in_a_batch_are_rejected_alone(client, make_source, session):
    key, _ = make_source()
    batch = [
        _track("m-1"),
        {"type": "launch", "anonymousId": "a", "messageId": "m-2"},
        {"type": "track", "event": "X", "messageId": "m-3"},
        _track("m-4", timestamp="yesterday"),
        _track("m-5"),
    ]
    response = client.post("/v1/batch", json={"batch": batch}, headers=basic(key))
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert _events(session) == ["m-1", "m-5"]
    assert _rejects(session) == [
        (1, "unknown_type"),
        (2, "missing_identity"),
        (3, "invalid_timestamp"),
    ]


def test_rejects_are_listed_for_operators(client, make_source, admin):
    key, source_id = make_source()
    client.post(
        "/v1/batch",
        json={"batch": [{"type": "nope", "anonymousId": "a", "messageId": "m-9"}]},
        headers=basic(key),
    )
    listed = client.get("/api/v1/tracking/rejects", headers=admin).json()["items"]
    assert [(r["source_id"], r["code"], r["message_id"]) for r in listed] == [
        (source_id, "unknown_type", "m-9")
    ]


def test_oversized_event_in_batch_is_rejected_alone(client, make_source, session):
    key, _ = make_source()
    big = _track("m-2", properties={"blob": "x" * 33_000})
    response = client.post("/v1/batch", json={"batch": [_track("m-1"), big]}, headers=basic(key))
    assert response.status_code == 200
    assert _events(session) == ["m-1"]
    assert _rejects(session) == [(1, "event_too_large")]


def test_oversized_single_event_is_400(client, make_source, session):
    key, _ = make_source()
    response = client.post(
        "/v1/track", json=_track("m-1", properties={"blob": "x" * 33_000}), headers=basic(key)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "event_too_large"
    assert _events(session) == []


def test_event_limit_is_configurable(client, make_source, session, settings):
    settings.tracking_max_event_bytes = 200
    key, _ = make_source()
    response = client.post(
        "/v1/batch",
        json={"batch": [_track("m-1", properties={"blob": "x" * 300})]},
        headers=basic(key),
    )
    assert response.status_code == 200
    assert _rejects(session) == [(0, "event_too_large")]


def test_request_over_the_limit_is_400_even_when_gzip_is_small(
    client, make_source, session, settings
):
    settings.tracking_max_request_bytes = 50_000
    key, _ = make_source()
    batch = [_track(f"m-{i}", properties={"pad": "y" * 1000}) for i in range(60)]
    body = gzip.compress(json.dumps({"batch": batch}).encode())
    assert len(body) < 50_000
    response = client.post("/v1/batch", content=body, headers=basic(key))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "request_too_large"
    assert response.json()["error"]["details"] == {"limit_bytes": 50_000}
    assert _events(session) == []


def test_default_limits_are_32_kib_per_event_and_4000_kb_per_request(settings):
    assert settings.tracking_max_event_bytes == 32 * 1024
    assert settings.tracking_max_request_bytes == 4_000_000


def test_overload_answers_429_with_retry_after(client, make_source, session, settings):
    settings.tracking_max_inflight = 0
    settings.tracking_retry_after_s = 2
    key, _ = make_source()
    response = client.post("/v1/batch", json={"batch": [_track("m-1")]}, headers=basic(key))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["error"]["code"] == "overloaded"
    assert _events(session) == []


def test_every_single_call_endpoint_stores_its_type(client, make_source, session):
    key, _ = make_source()
    calls = {
        "track": {"event": "Signed Up"},
        "identify": {"traits": {"plan": "gold"}},
        "page": {"name": "Home"},
        "screen": {"name": "Basket"},
        "group": {"groupId": "g-1"},
        "alias": {"previousId": "anon-1"},
    }
    for i, (kind, extra) in enumerate(calls.items()):
        body = {"userId": "u-1", "anonymousId": "anon-1", "messageId": f"m-{i}", **extra}
        assert client.post(f"/v1/{kind}", json=body, headers=basic(key)).status_code == 200
    stored = session.scalars(select(CustomerEvent.type).order_by(CustomerEvent.seq)).all()
    assert stored == ["track", "identify", "page", "screen", "group", "alias"]


def test_commerce_events_become_facts(client, make_source, session):
    key, _ = make_source()
    batch = [
        _track(
            "m-1",
            event="Product Viewed",
            properties={"product_id": "p-1", "price": 9.99, "currency": "GBP"},
        ),
        _track("m-2", event="Checkout Started", properties={"order_id": "o-1"}),
        _track(
            "m-3",
            event="Order Completed",
            properties={"order_id": "o-1", "total": 27.5, "currency": "GBP"},
        ),
    ]
    client.post("/v1/batch", json={"batch": batch}, headers=basic(key))
    rows = session.execute(
        select(
            CustomerEvent.fact,
            CustomerEvent.order_id,
            CustomerEvent.amount_minor,
            CustomerEvent.currency,
        ).order_by(CustomerEvent.seq)
    ).all()
    assert rows == [
        ("product_viewed", None, 999, "GBP"),
        ("checkout_started", "o-1", None, None),
        ("order_completed", "o-1", 2750, "GBP"),
    ]


def test_identify_projects_traits_last_seen_and_channels(client, make_source, session, admin):
    web, _ = make_source("web")
    pos, _ = make_source("pos")
    client.post(
        "/v1/batch",
        json={
            "batch": [
                {
                    "type": "identify",
                    "userId": "u-1",
                    "messageId": "m-1",
                    "timestamp": "2025-03-01T10:00:00Z",
                    "traits": {"plan": "gold", "email": "ada@example.org"},
                }
            ]
        },
        headers=basic(web),
    )
    client.post(
        "/v1/batch",
        json={
            "batch": [
                {
                    "type": "track",
                    "event": "Purchased",
                    "userId": "u-1",
                    "messageId": "m-2",
                    "timestamp": "2025-03-02T10:00:00Z",
                }
            ]
        },
        headers=basic(pos),
    )
    cid = client.get("/api/v1/customers?user_id=u-1", headers=admin).json()["items"][0]
    assert cid["traits"] == {"plan": "gold"}
    assert cid["email"] == "ada@example.org"
    assert cid["channels_used"] == ["web", "pos"]
    assert cid["first_seen_at"] == "2025-03-01T10:00:00Z"
    assert cid["last_seen_at"] == "2025-03-02T10:00:00Z"
    assert cid["event_count"] == 2


def test_original_timestamp_is_corrected_by_sent_at_clock_skew(client, make_source, session):
    key, _ = make_source()
    # the device clock is one hour ahead: sent "at 11:00" an event of "10:59"
    body = {
        "batch": [_track("m-1", originalTimestamp="2030-01-01T10:59:00Z")],
        "sentAt": "2030-01-01T11:00:00Z",
    }
    client.post("/v1/batch", json=body, headers=basic(key))
    event = session.scalar(select(CustomerEvent))
    assert (event.received_at - event.occurred_at).total_seconds() == 60
