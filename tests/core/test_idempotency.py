"""Idempotency-Key: a replay returns the first result without a second effect."""

from sqlalchemy import func, select

from omniretail.core.models import ApiKey


def _count(session):
    return session.scalar(select(func.count()).select_from(ApiKey))


def test_replay_with_same_key_returns_same_result_and_creates_once(client, admin, session):
    headers = {**admin, "Idempotency-Key": "abc-1"}
    before = _count(session)
    first = client.post("/api/v1/api-keys", json={"name": "a", "role": "analyst"}, headers=headers)
    second = client.post("/api/v1/api-keys", json={"name": "a", "role": "analyst"}, headers=headers)
    assert first.status_code == 201 and second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _count(session) == before + 1


def test_same_key_with_other_body_is_409_and_changes_nothing(client, admin, session):
    headers = {**admin, "Idempotency-Key": "abc-2"}
    client.post("/api/v1/api-keys", json={"name": "a", "role": "analyst"}, headers=headers)
    after_first = _count(session)
    response = client.post(
        "/api/v1/api-keys", json={"name": "b", "role": "analyst"}, headers=headers
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert _count(session) == after_first


def test_failed_request_is_not_remembered(client, admin, session):
    headers = {**admin, "Idempotency-Key": "abc-3"}
    bad = client.post("/api/v1/api-keys", json={"name": "a", "role": "nope"}, headers=headers)
    assert bad.status_code == 422
    good = client.post("/api/v1/api-keys", json={"name": "a", "role": "nope"}, headers=headers)
    assert good.status_code == 422  # re-executed, still invalid; nothing stored
