"""Categories: creation rules and the flat and tree listings."""

from omniretail.catalog.models import Category
from tests.catalog.factories import count, create_category


def test_create_child_category_reports_its_path(client, make_key, session):
    create_category(session, "mens")
    response = client.post(
        "/api/v1/categories",
        json={"code": "mens-shirts", "name": "Men's shirts", "parent_code": "mens"},
        headers=make_key("merchandiser"),
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["code"], body["name"], body["parent_code"]) == (
        "mens-shirts",
        "Men's shirts",
        "mens",
    )
    assert body["path"] == ["mens", "mens-shirts"]


def test_unknown_parent_is_422_and_creates_nothing(client, admin, session):
    before = count(session, Category)
    response = client.post(
        "/api/v1/categories", json={"code": "x", "name": "X", "parent_code": "nope"}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "category_not_found"
    assert count(session, Category) == before


def test_duplicate_code_is_409(client, admin, session):
    create_category(session, "mens")
    response = client.post("/api/v1/categories", json={"code": "mens", "name": "M"}, headers=admin)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "category_exists"


def test_upper_case_code_is_422(client, admin):
    response = client.post("/api/v1/categories", json={"code": "Mens", "name": "M"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_code"


def test_analyst_cannot_create_category(client, make_key):
    response = client.post(
        "/api/v1/categories", json={"code": "a", "name": "A"}, headers=make_key("analyst")
    )
    assert response.status_code == 403


def test_flat_list_orders_by_code_with_paths(client, make_key, session):
    create_category(session, "women")
    create_category(session, "mens")
    create_category(session, "mens-shirts", parent="mens")
    response = client.get("/api/v1/categories", headers=make_key("analyst"))
    assert [(c["code"], c["path"], c["children"]) for c in response.json()] == [
        ("mens", ["mens"], []),
        ("mens-shirts", ["mens", "mens-shirts"], []),
        ("women", ["women"], []),
    ]


def test_tree_view_nests_children_under_roots(client, admin, session):
    create_category(session, "mens")
    create_category(session, "mens-shirts", parent="mens")
    create_category(session, "mens-oxford", parent="mens-shirts")
    response = client.get("/api/v1/categories", params={"view": "tree"}, headers=admin)
    tree = response.json()
    assert [c["code"] for c in tree] == ["mens"]
    shirts = tree[0]["children"][0]
    assert (shirts["code"], [c["code"] for c in shirts["children"]]) == (
        "mens-shirts",
        ["mens-oxford"],
    )
