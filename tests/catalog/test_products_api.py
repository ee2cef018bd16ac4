"""Products and variants over HTTP: create, read, ETag/If-Match updates, barcode lookup."""

from sqlalchemy import select

from omniretail.catalog.models import Product, ProductCategory, Variant
from omniretail.core.models import OutboxEvent
from tests.catalog.factories import count, create_category, create_product, product_body

EAN = "4006381333931"
UPC_A = "036000291452"


def test_create_product_returns_it_with_variants_options_and_etag(client, make_key, session):
    # given a category and a merchandiser
    create_category(session, "tees")
    headers = make_key("merchandiser")
    body = {
        "title": "Organic tee",
        "handle": "organic-tee",
        "brand": "Northwind",
        "categories": ["tees"],
        "attributes": {"material": "cotton"},
        "media": ["https://cdn.example.com/tee.jpg", {"url": "https://cdn.example.com/b.jpg"}],
        "variants": [
            {"sku": "TEE-M", "barcode": EAN, "option_values": {"Size": "M"}, "weight_grams": 180},
            {"sku": "TEE-L", "option_values": {"Size": "L"}},
        ],
    }
    # when
    response = client.post("/api/v1/products", json=body, headers=headers)
    # then
    assert response.status_code == 201
    product = response.json()
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/api/v1/products/{product['id']}"
    assert product["id"].startswith("prd_")
    assert product["handle"] == "organic-tee"
    assert product["status"] == "active"
    assert product["categories"] == ["tees"]
    assert product["options"] == [{"name": "Size", "values": ["M", "L"]}]
    assert product["media"] == [
        {"url": "https://cdn.example.com/tee.jpg", "alt": None},
        {"url": "https://cdn.example.com/b.jpg", "alt": None},
    ]
    assert [(v["sku"], v["title"], v["barcode"], v["position"]) for v in product["variants"]] == [
        ("TEE-M", "M", EAN, 0),
        ("TEE-L", "L", None, 1),
    ]
    assert product["version"] == 1


def test_get_product_returns_the_stored_product(client, admin, session):
    # given
    product = create_product(session, "MUG-1", title="Mug", attributes={"color": "red"})
    # when
    response = client.get(f"/api/v1/products/{product.id}", headers=admin)
    # then
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    body = response.json()
    assert (body["title"], body["handle"], body["attributes"]) == ("Mug", "mug", {"color": "red"})
    assert [v["sku"] for v in body["variants"]] == ["MUG-1"]


def test_create_emits_product_created_event(client, admin, session):
    before = count(session, OutboxEvent)
    response = client.post("/api/v1/products", json=product_body("EV-1"), headers=admin)
    assert response.status_code == 201
    assert count(session, OutboxEvent) == before + 1


def test_unknown_product_is_404(client, admin):
    response = client.get("/api/v1/products/prd_nope", headers=admin)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "product_not_found"


def test_duplicate_sku_is_409_and_writes_nothing(client, admin, session):
    # given a product holding SKU TEE-M
    create_product(session, "TEE-M")
    products, variants = count(session, Product), count(session, Variant)
    # when another product claims TEE-M next to a new SKU
    body = product_body(variants=[{"sku": "NEW-1"}, {"sku": "TEE-M"}])
    response = client.post("/api/v1/products", json=body, headers=admin)
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "sku_exists"
    assert response.json()["error"]["details"]["skus"] == ["TEE-M"]
    assert (count(session, Product), count(session, Variant)) == (products, variants)


def test_invalid_barcode_is_422_and_writes_nothing(client, admin, session):
    products, variants = count(session, Product), count(session, Variant)
    body = product_body(variants=[{"sku": "TEE-M", "barcode": "4006381333932"}])
    response = client.post("/api/v1/products", json=body, headers=admin)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_barcode"
    assert error["message"] == "barcode '4006381333932' is not a valid GTIN"
    assert (count(session, Product), count(session, Variant)) == (products, variants)


def test_barcode_of_another_variant_in_other_spelling_is_409(client, admin, session):
    # given a variant with a UPC-A barcode
    create_product(session, "CAN-1", variants=[{"sku": "CAN-1", "barcode": UPC_A}])
    # when a new variant uses the same GTIN written as EAN-13
    body = product_body(variants=[{"sku": "CAN-2", "barcode": "0" + UPC_A}])
    response = client.post("/api/v1/products", json=body, headers=admin)
    # then
    assert response.status_code == 409
    assert response.json()["error"]["details"]["used_by"] == "CAN-1"


def test_unknown_category_is_422_and_writes_nothing(client, admin, session):
    products = count(session, Product)
    body = product_body(categories=["nope"])
    response = client.post("/api/v1/products", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "category_not_found"
    assert response.json()["error"]["details"] == {"categories": ["nope"]}
    assert count(session, Product) == products


def test_variant_option_not_declared_is_422(client, admin):
    body = product_body(
        options=[{"name": "Size", "values": ["M"]}],
        variants=[{"sku": "T-1", "option_values": {"Size": "XL"}}],
    )
    response = client.post("/api/v1/products", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_option_values"


def test_product_without_variants_is_422(client, admin):
    response = client.post("/api/v1/products", json=product_body(variants=[]), headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["details"]["errors"][0]["loc"] == ["body", "variants"]


def test_analyst_cannot_create_product(client, make_key, session):
    products = count(session, Product)
    response = client.post("/api/v1/products", json=product_body(), headers=make_key("analyst"))
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_roles"] == ["admin", "merchandiser"]
    assert count(session, Product) == products


def test_create_with_idempotency_key_replays_without_second_product(client, admin, session):
    headers = {**admin, "Idempotency-Key": "prd-1"}
    products = count(session, Product)
    first = client.post("/api/v1/products", json=product_body("IDEM-1"), headers=headers)
    second = client.post("/api/v1/products", json=product_body("IDEM-1"), headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count(session, Product) == products + 1


def test_explicit_handle_taken_is_409(client, admin, session):
    create_product(session, "H-1", handle="tee")
    response = client.post(
        "/api/v1/products", json=product_body("H-2", handle="tee"), headers=admin
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "handle_exists"


# --- ETag / If-Match ------------------------------------------------------------------------


def test_patch_with_current_if_match_changes_and_bumps_version(client, admin, session):
    # given
    product = create_product(session, "P-1", title="Old")
    # when
    response = client.patch(
        f"/api/v1/products/{product.id}",
        json={"title": "New", "status": "draft"},
        headers={**admin, "If-Match": '"1"'},
    )
    # then
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    assert (response.json()["title"], response.json()["status"]) == ("New", "draft")
    assert response.json()["version"] == 2


def test_patch_with_stale_if_match_is_412_and_changes_nothing(client, admin, session):
    # given a product already changed once (version 2)
    product = create_product(session, "P-1", title="Old")
    url = f"/api/v1/products/{product.id}"
    client.patch(url, json={"title": "Second"}, headers={**admin, "If-Match": '"1"'})
    # when a client that read version 1 tries to write
    response = client.patch(url, json={"title": "Lost"}, headers={**admin, "If-Match": '"1"'})
    # then
    assert response.status_code == 412
    assert response.json()["error"] == {
        "code": "precondition_failed",
        "message": f"product {product.id!r} is at version 2; "
        "read it again and re-apply your change",
        "details": {"product_id": product.id, "current_version": 2},
    }
    stored = client.get(url, headers=admin).json()
    assert (stored["title"], stored["version"]) == ("Second", 2)


def test_patch_with_no_change_keeps_version(client, admin, session):
    product = create_product(session, "P-1", title="Same")
    response = client.patch(f"/api/v1/products/{product.id}", json={"title": "Same"}, headers=admin)
    assert response.status_code == 200
    assert response.json()["version"] == 1


def test_patch_categories_replaces_them(client, admin, session):
    create_category(session, "a")
    b = create_category(session, "b")
    product = create_product(session, "P-1", category_codes=["a"])
    response = client.patch(
        f"/api/v1/products/{product.id}", json={"categories": ["b"]}, headers=admin
    )
    assert response.json()["categories"] == ["b"]
    links = session.scalars(
        select(ProductCategory.category_id).where(ProductCategory.product_id == product.id)
    ).all()
    assert links == [b.id]


def test_get_with_matching_if_none_match_is_304(client, admin, session):
    product = create_product(session, "P-1")
    response = client.get(
        f"/api/v1/products/{product.id}", headers={**admin, "If-None-Match": '"1"'}
    )
    assert response.status_code == 304
    assert response.headers["ETag"] == '"1"'


def test_store_associate_can_read_products(client, make_key, session):
    product = create_product(session, "P-1")
    headers = make_key("store_associate", location_ids=["loc_1"])
    assert client.get(f"/api/v1/products/{product.id}", headers=headers).status_code == 200


# --- variants -------------------------------------------------------------------------------


def test_add_variant_extends_options_and_bumps_version(client, admin, session):
    # given a product with size M
    product = create_product(
        session, "TEE-M", variants=[{"sku": "TEE-M", "option_values": {"Size": "M"}}]
    )
    # when a size L variant is added
    response = client.post(
        f"/api/v1/products/{product.id}/variants",
        json={"sku": "TEE-L", "option_values": {"Size": "L"}, "barcode": EAN},
        headers={**admin, "If-Match": '"1"'},
    )
    # then
    assert response.status_code == 201
    assert response.headers["ETag"] == '"2"'
    assert (response.json()["sku"], response.json()["title"], response.json()["position"]) == (
        "TEE-L",
        "L",
        1,
    )
    stored = client.get(f"/api/v1/products/{product.id}", headers=admin).json()
    assert stored["options"] == [{"name": "Size", "values": ["M", "L"]}]


def test_add_variant_with_existing_sku_is_409(client, admin, session):
    product = create_product(session, "TEE-M")
    create_product(session, "OTHER-1")
    variants = count(session, Variant)
    response = client.post(
        f"/api/v1/products/{product.id}/variants", json={"sku": "OTHER-1"}, headers=admin
    )
    assert response.status_code == 409
    assert count(session, Variant) == variants


def test_patch_variant_sets_barcode_and_bumps_product_version(client, admin, session):
    create_product(session, "TEE-M")
    response = client.patch(
        "/api/v1/variants/TEE-M",
        json={"barcode": EAN, "weight_grams": 200},
        headers={**admin, "If-Match": '"1"'},
    )
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    assert (response.json()["barcode"], response.json()["weight_grams"]) == (EAN, 200)


def test_patch_variant_with_stale_if_match_is_412_and_changes_nothing(client, admin, session):
    create_product(session, "TEE-M")
    response = client.patch(
        "/api/v1/variants/TEE-M", json={"title": "X"}, headers={**admin, "If-Match": '"7"'}
    )
    assert response.status_code == 412
    assert client.get("/api/v1/variants/TEE-M", headers=admin).json()["title"] == "Product TEE-M"


def test_get_variant_by_sku_includes_product(client, admin, session):
    product = create_product(session, "TEE-M", title="Tee")
    response = client.get("/api/v1/variants/TEE-M", headers=admin)
    assert response.status_code == 200
    assert response.json()["product"]["id"] == product.id
    assert response.json()["product"]["title"] == "Tee"


def test_unknown_sku_is_404(client, admin):
    response = client.get("/api/v1/variants/NOPE", headers=admin)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "variant_not_found"


def test_barcode_lookup_finds_upc_a_scanned_as_ean_13(client, make_key, session):
    # given a variant stored with its 12-digit UPC-A
    create_product(session, "CAN-1", variants=[{"sku": "CAN-1", "barcode": UPC_A}])
    headers = make_key("store_associate", location_ids=["loc_1"])
    # when the POS scanner reports the 13-digit EAN form
    response = client.get("/api/v1/variants", params={"barcode": "0" + UPC_A}, headers=headers)
    # then
    assert response.status_code == 200
    assert [(v["sku"], v["barcode"]) for v in response.json()["items"]] == [("CAN-1", UPC_A)]


def test_barcode_lookup_of_unknown_code_is_empty(client, admin):
    response = client.get("/api/v1/variants", params={"barcode": EAN}, headers=admin)
    assert response.status_code == 200
    assert response.json() == {"items": []}


def test_barcode_lookup_with_bad_check_digit_is_422(client, admin):
    response = client.get("/api/v1/variants", params={"barcode": "4006381333932"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_barcode"


def test_variant_lookup_without_filter_is_422(client, admin):
    response = client.get("/api/v1/variants", headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "filter_required"
