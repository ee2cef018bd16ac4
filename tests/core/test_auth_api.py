"""Authentication (401) versus authorisation (403), and the error shape."""

from sqlalchemy import func, select

from omniretail.core import auth
from omniretail.core.models import ApiKey, User
from tests.conftest import auth_header


def test_missing_credentials_is_401_with_error_shape(client):
    response = client.post("/api/v1/api-keys", json={"name": "x", "role": "analyst"})
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "unauthenticated",
            "message": "authentication required: send 'Authorization: Bearer <token or API key>'",
            "details": {},
        }
    }


def test_unknown_key_is_401(client):
    response = client.get("/api/v1/auth/me", headers=auth_header("ok_deadbeef_nope"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_wrong_role_is_403_and_creates_nothing(client, make_key, session):
    headers = make_key("analyst")
    before = session.scalar(select(func.count()).select_from(ApiKey))
    response = client.post(
        "/api/v1/api-keys", json={"name": "x", "role": "analyst"}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert response.json()["error"]["details"]["required_roles"] == ["admin"]
    assert session.scalar(select(func.count()).select_from(ApiKey)) == before


def test_admin_creates_key_shown_once_and_stored_hashed(client, admin, session):
    response = client.post(
        "/api/v1/api-keys", json={"name": "erp", "role": "merchandiser"}, headers=admin
    )
    assert response.status_code == 201
    body = response.json()
    assert body["key"].startswith("ok_")
    row = session.get(ApiKey, body["id"])
    assert row is not None and row.key_hash != body["key"] and body["key"] not in row.key_hash
    me = client.get("/api/v1/auth/me", headers=auth_header(body["key"]))
    assert me.json()["role"] == "merchandiser"


def test_revoked_key_is_rejected(client, admin):
    created = client.post(
        "/api/v1/api-keys", json={"name": "tmp", "role": "analyst"}, headers=admin
    ).json()
    assert client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin).status_code == 204
    response = client.get("/api/v1/auth/me", headers=auth_header(created["key"]))
    assert response.status_code == 401


def test_user_login_issues_token_and_password_is_argon2(client, session):
    auth.create_user(session, "Ana@Example.com", "a long password", "support_agent")
    session.commit()
    stored = session.scalar(select(User).where(User.email == "ana@example.com"))
    assert stored is not None and stored.password_hash.startswith("$argon2")
    response = client.post(
        "/api/v1/auth/token", json={"email": "ana@example.com", "password": "a long password"}
    )
    assert response.status_code == 200
    me = client.get("/api/v1/auth/me", headers=auth_header(response.json()["access_token"]))
    assert me.json()["role"] == "support_agent"


def test_wrong_password_is_401(client, session):
    auth.create_user(session, "bo@example.com", "a long password", "analyst")
    session.commit()
    response = client.post(
        "/api/v1/auth/token", json={"email": "bo@example.com", "password": "wrong password"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_channel_key_requires_channel(client, admin, session):
    before = session.scalar(select(func.count()).select_from(ApiKey))
    response = client.post(
        "/api/v1/api-keys", json={"name": "web", "role": "channel"}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "channel_required"
    assert session.scalar(select(func.count()).select_from(ApiKey)) == before


def test_validation_errors_use_error_shape(client, admin):
    response = client.post("/api/v1/api-keys", json={"role": "analyst"}, headers=admin)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["errors"][0]["loc"] == ["body", "name"]
