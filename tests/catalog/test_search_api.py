"""GET /products: text, category (with descendants), attributes, status, cursor pages."""

import pytest
from sqlalchemy import event

from tests.catalog.factories import create_category, create_product


@pytest.fixture()
def catalog(session):
    """apparel > tops > tees, plus a mug outside apparel. Ids are created in this order."""
    create_category(session, "apparel")
    create_category(session, "tops", parent="apparel")
    create_category(session, "tees", parent="tops")
    create_category(session, "kitchen")
    return {
        "jacket": create_product(
            session,
            "JKT-1",
            title="Rain jacket",
            category_codes=["apparel"],
            attributes={"color": "Red"},
        ),
        "tee": create_product(
            session,
            "TEE-R",
            title="Organic cotton tee",
            brand="Northwind",
            category_codes=["tees"],
            variants=[
                {"sku": "TEE-R", "attributes": {"color": "red"}, "option_values": {"Color": "Red"}},
                {
                    "sku": "TEE-B",
                    "attributes": {"color": "blue"},
                    "option_values": {"Color": "Blue"},
                },
            ],
            attributes={"material": "cotton"},
        ),
        "shirt": create_product(
            session,
            "SHT-1",
            title="Linen shirt",
            category_codes=["tops"],
            attributes={"color": "blue", "material": "linen"},
        ),
        "mug": create_product(
            session, "MUG-1", title="Red mug", category_codes=["kitchen"], status="draft"
        ),
    }


def _ids(response):
    assert response.status_code == 200, response.json()
    return [p["id"] for p in response.json()["items"]]


def test_text_search_matches_every_word_case_insensitively(client, admin, catalog):
    response = client.get("/api/v1/products", params={"q": "COTTON northwind"}, headers=admin)
    assert _ids(response) == [catalog["tee"].id]


def test_text_search_matches_skus(client, admin, catalog):
    response = client.get("/api/v1/products", params={"q": "tee-b"}, headers=admin)
    assert _ids(response) == [catalog["tee"].id]


def test_text_search_treats_percent_literally(client, admin, catalog):
    response = client.get("/api/v1/products", params={"q": "%"}, headers=admin)
    assert _ids(response) == []


def test_category_filter_includes_descendant_categories(client, admin, catalog):
    # when filtering by "tops", products in "tops" and in its child "tees" match
    response = client.get("/api/v1/products", params={"category": "tops"}, headers=admin)
    assert _ids(response) == [catalog["tee"].id, catalog["shirt"].id]


def test_root_category_filter_includes_grandchildren(client, admin, catalog):
    response = client.get("/api/v1/products", params={"category": "apparel"}, headers=admin)
    assert _ids(response) == [catalog["jacket"].id, catalog["tee"].id, catalog["shirt"].id]


def test_unknown_category_filter_is_422(client, admin, catalog):
    response = client.get("/api/v1/products", params={"category": "nope"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "category_not_found"


def test_attribute_filter_matches_product_or_variant_attributes(client, admin, catalog):
    # the jacket has color Red on the product, the tee has a red variant, the mug has none
    response = client.get("/api/v1/products?attr.color=red", headers=admin)
    assert _ids(response) == [catalog["jacket"].id, catalog["tee"].id]


def test_attribute_filters_must_hold_on_one_variant(client, admin, catalog):
    # the tee's blue variant inherits material=cotton from the product
    response = client.get("/api/v1/products?attr.color=blue&attr.material=cotton", headers=admin)
    assert _ids(response) == [catalog["tee"].id]


def test_repeated_attribute_filter_accepts_any_value(client, admin, catalog):
    response = client.get("/api/v1/products?attr.material=linen&attr.material=wool", headers=admin)
    assert _ids(response) == [catalog["shirt"].id]


def test_status_filter(client, admin, catalog):
    response = client.get("/api/v1/products", params={"status": "draft"}, headers=admin)
    assert _ids(response) == [catalog["mug"].id]


def test_filters_combine(client, admin, catalog):
    response = client.get(
        "/api/v1/products?q=red&category=apparel&attr.color=red&status=active", headers=admin
    )
    assert _ids(response) == [catalog["jacket"].id, catalog["tee"].id]


def test_cursor_pagination_walks_two_pages_in_creation_order(client, admin, catalog):
    # given 3 products in apparel, pages of 2
    first = client.get(
        "/api/v1/products", params={"category": "apparel", "limit": 2}, headers=admin
    )
    assert _ids(first) == [catalog["jacket"].id, catalog["tee"].id]
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    # when the next page is requested
    second = client.get(
        "/api/v1/products",
        params={"category": "apparel", "limit": 2, "cursor": cursor},
        headers=admin,
    )
    # then it holds the rest and no further cursor
    assert _ids(second) == [catalog["shirt"].id]
    assert second.json()["next_cursor"] is None


def test_page_items_include_variants_and_category_codes(client, admin, catalog):
    response = client.get("/api/v1/products", params={"q": "organic"}, headers=admin)
    item = response.json()["items"][0]
    assert [v["sku"] for v in item["variants"]] == ["TEE-R", "TEE-B"]
    assert item["categories"] == ["tees"]


def test_invalid_limit_is_400(client, admin, catalog):
    response = client.get("/api/v1/products", params={"limit": 0}, headers=admin)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_limit"


def _statements(engine, run):
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return [s for s in seen if s.lstrip().upper().startswith("SELECT")]


def test_search_query_count_does_not_grow_with_results(client, admin, session, engine):
    create_category(session, "bulk")

    def add(first, last):
        for i in range(first, last):
            variants = [{"sku": f"B{i}-A"}, {"sku": f"B{i}-B"}]
            create_product(session, f"B{i}-A", category_codes=["bulk"], variants=variants)

    def search():
        response = client.get("/api/v1/products", params={"category": "bulk"}, headers=admin)
        assert response.status_code == 200

    # given 2 products with 2 variants each
    add(0, 2)
    small = len(_statements(engine, search))
    # when 6 more exist
    add(2, 8)
    large = len(_statements(engine, search))
    # then the search issues the same number of SELECTs (variants load in bulk)
    assert large == small


def test_numeric_attribute_matches_its_text(client, admin, session):
    shoe = create_product(
        session, "SHOE-42", variants=[{"sku": "SHOE-42", "attributes": {"size": 42}}]
    )
    create_product(session, "SHOE-43", variants=[{"sku": "SHOE-43", "attributes": {"size": 43}}])
    response = client.get("/api/v1/products?attr.size=42", headers=admin)
    assert _ids(response) == [shoe.id]


def test_invalid_attribute_name_is_422(client, admin):
    response = client.get("/api/v1/products?attr.co'lor=red", headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_attribute_filter"
