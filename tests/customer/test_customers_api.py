"""Customer 360 API: create, read with and without PII permission, search, update."""

from sqlalchemy import func, select

from omniretail.customer.models import Identifier, Profile

ADA = {
    "email": "Ada@Example.org",
    "phone": "+44 7700 900123",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "loyalty_card": "lc-100 200",
    "external_ids": {"shopify": "7781"},
    "addresses": [
        {"line1": "12 High Street", "city": "Leeds", "postal_code": "LS1 4AP", "country": "GB"}
    ],
    "traits": {"tier": "gold"},
    "preferred_store_id": "loc_leeds",
    "preferred_channel": "store",
}


def _create(client, headers, body=ADA):
    response = client.post("/api/v1/customers", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_the_customer_360_to_an_admin(client, admin):
    created = _create(client, admin)
    assert created["email"] == "ada@example.org"
    assert created["phone"] == "+447700900123"
    assert (created["first_name"], created["last_name"]) == ("Ada", "Lovelace")
    assert sorted((i["type"], i["value"]) for i in created["identifiers"]) == [
        ("email", "ada@example.org"),
        ("external:shopify", "7781"),
        ("loyalty_card", "LC100200"),
        ("phone", "+447700900123"),
    ]
    assert created["addresses"][0]["line1"] == "12 High Street"
    assert created["traits"] == {"tier": "gold"}
    assert (created["preferred_store_id"], created["preferred_channel"]) == ("loc_leeds", "store")


def test_roles_without_pii_permission_see_masked_values(client, admin, make_key):
    cid = _create(client, admin)["id"]
    seen = client.get(f"/api/v1/customers/{cid}", headers=make_key("analyst")).json()
    assert seen["email"] == "a***@example.org"
    assert seen["phone"] == "+**********23"
    assert (seen["first_name"], seen["last_name"]) == ("A***", "L***")
    assert seen["addresses"][0]["line1"] == "***"
    assert seen["addresses"][0]["country"] == "GB"
    emails = [i["value"] for i in seen["identifiers"] if i["type"] == "email"]
    assert emails == ["a***@example.org"]


def test_support_agent_sees_pii(client, admin, make_key):
    cid = _create(client, admin)["id"]
    seen = client.get(f"/api/v1/customers/{cid}", headers=make_key("support_agent")).json()
    assert seen["email"] == "ada@example.org"


def test_search_by_email_and_phone_uses_the_blind_index(client, admin):
    cid = _create(client, admin)["id"]
    by_email = client.get("/api/v1/customers", params={"email": " ADA@example.org"}, headers=admin)
    by_phone = client.get(
        "/api/v1/customers", params={"phone": "+44 (7700) 900-123"}, headers=admin
    )
    by_card = client.get("/api/v1/customers", params={"loyalty_card": "LC100200"}, headers=admin)
    assert [c["id"] for c in by_email.json()["items"]] == [cid]
    assert [c["id"] for c in by_phone.json()["items"]] == [cid]
    assert [c["id"] for c in by_card.json()["items"]] == [cid]


def test_search_for_unknown_email_is_empty(client, admin):
    _create(client, admin)
    response = client.get(
        "/api/v1/customers", params={"email": "nobody@example.org"}, headers=admin
    )
    assert response.json() == {"items": [], "next_cursor": None}


def test_list_is_cursor_paginated(client, admin):
    first = _create(client, admin, {"email": "one@example.org"})["id"]
    second = _create(client, admin, {"email": "two@example.org"})["id"]
    page = client.get("/api/v1/customers", params={"limit": 1}, headers=admin).json()
    rest = client.get(
        "/api/v1/customers", params={"limit": 1, "cursor": page["next_cursor"]}, headers=admin
    ).json()
    assert [c["id"] for c in page["items"]] == [first]
    assert [c["id"] for c in rest["items"]] == [second]
    assert rest["next_cursor"] is None


def test_existing_email_is_409_and_creates_nothing(client, admin, session):
    cid = _create(client, admin)["id"]
    before = session.scalar(select(func.count()).select_from(Profile))
    response = client.post("/api/v1/customers", json={"email": "ada@example.org"}, headers=admin)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "customer_exists"
    assert response.json()["error"]["details"]["customer_id"] == cid
    assert session.scalar(select(func.count()).select_from(Profile)) == before


def test_invalid_email_is_422_and_creates_nothing(client, admin, session):
    response = client.post("/api/v1/customers", json={"email": "not-an-email"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_email"
    assert session.scalar(select(func.count()).select_from(Profile)) == 0


def test_blocked_email_is_422(client, admin, session):
    response = client.post("/api/v1/customers", json={"email": "test@example.com"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "blocked_identifier"
    assert session.scalar(select(func.count()).select_from(Profile)) == 0


def test_analyst_may_not_create_customers(client, make_key, session):
    response = client.post("/api/v1/customers", json=ADA, headers=make_key("analyst"))
    assert response.status_code == 403
    assert session.scalar(select(func.count()).select_from(Profile)) == 0


def test_unknown_customer_is_404(client, admin):
    response = client.get("/api/v1/customers/cus_nope", headers=admin)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"


def test_update_changes_names_traits_and_adds_the_new_email(client, admin, session):
    cid = _create(client, admin)["id"]
    response = client.patch(
        f"/api/v1/customers/{cid}",
        json={
            "email": "ada.l@example.org",
            "last_name": "King",
            "traits": {"tier": None, "vip": True},
        },
        headers=admin,
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["email"], body["last_name"], body["traits"]) == (
        "ada.l@example.org",
        "King",
        {"vip": True},
    )
    emails = session.scalar(
        select(func.count()).select_from(Identifier).where(Identifier.type == "email")
    )
    assert emails == 2


def test_identifier_of_another_customer_is_409_and_changes_nothing(client, admin, session):
    a = _create(client, admin, {"email": "a@example.org"})["id"]
    _create(client, admin, {"email": "b@example.org", "loyalty_card": "L-1"})
    before = session.scalar(select(func.count()).select_from(Identifier))
    response = client.post(
        f"/api/v1/customers/{a}/identifiers",
        json={"type": "loyalty_card", "value": "L1"},
        headers=admin,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "identifier_in_use"
    assert session.scalar(select(func.count()).select_from(Identifier)) == before


def test_add_address(client, admin):
    cid = _create(client, admin, {"email": "a@example.org"})["id"]
    response = client.post(
        f"/api/v1/customers/{cid}/addresses",
        json={"line1": "1 Quay", "city": "Cork", "country": "IE", "is_default": True},
        headers=admin,
    )
    assert response.status_code == 200
    assert [(a["line1"], a["is_default"]) for a in response.json()["addresses"]] == [
        ("1 Quay", True)
    ]
