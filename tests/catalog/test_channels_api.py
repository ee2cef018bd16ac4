"""Sales channels, publication, and what a publishable channel key may see and do."""

from omniretail.catalog.models import Channel, Product, ProductPublication
from tests.catalog.factories import count, create_channel, create_product, product_body

CHANNEL = {
    "code": "web-uk",
    "name": "UK web shop",
    "type": "web",
    "currency": "gbp",
    "country": "gb",
    "locale": "en-GB",
}


def test_create_channel_normalises_codes(client, make_key):
    response = client.post("/api/v1/channels", json=CHANNEL, headers=make_key("merchandiser"))
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("chn_")
    assert {k: body[k] for k in ("code", "currency", "country", "active", "publish_all")} == {
        "code": "web-uk",
        "currency": "GBP",
        "country": "GB",
        "active": True,
        "publish_all": False,
    }


def test_create_channel_with_bad_currency_is_422_and_creates_nothing(client, admin, session):
    before = count(session, Channel)
    response = client.post("/api/v1/channels", json={**CHANNEL, "currency": "POUND"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "invalid_currency",
        "message": "'POUND' is not an ISO 4217 code",
        "details": {},
    }
    assert count(session, Channel) == before


def test_create_channel_with_unknown_type_is_422(client, admin, session):
    before = count(session, Channel)
    response = client.post("/api/v1/channels", json={**CHANNEL, "type": "fax"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["loc"] == ["body", "type"]
    assert count(session, Channel) == before


def test_create_channel_with_bad_code_is_422(client, admin):
    response = client.post("/api/v1/channels", json={**CHANNEL, "code": "Web UK"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_code"


def test_create_channel_with_bad_locale_is_422(client, admin):
    response = client.post("/api/v1/channels", json={**CHANNEL, "locale": "english"}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_locale"


def test_duplicate_channel_code_is_409(client, admin, session):
    create_channel(session, "web-uk")
    before = count(session, Channel)
    response = client.post("/api/v1/channels", json=CHANNEL, headers=admin)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "channel_exists"
    assert count(session, Channel) == before


def test_get_channel_by_code_or_id(client, admin, session):
    channel = create_channel(session, "pos-soho", type="store")
    by_code = client.get("/api/v1/channels/pos-soho", headers=admin)
    by_id = client.get(f"/api/v1/channels/{channel.id}", headers=admin)
    assert by_code.json() == by_id.json()
    assert by_code.json()["type"] == "store"


def test_list_channels_orders_by_code(client, make_key, session):
    create_channel(session, "web-uk")
    create_channel(session, "app-uk", type="app")
    response = client.get("/api/v1/channels", headers=make_key("analyst"))
    assert [c["code"] for c in response.json()["items"]] == ["app-uk", "web-uk"]


def test_patch_channel_changes_only_given_fields(client, admin, session):
    channel = create_channel(session, "web-uk")
    response = client.patch(f"/api/v1/channels/{channel.id}", json={"active": False}, headers=admin)
    assert response.status_code == 200
    assert (response.json()["active"], response.json()["name"]) == (False, "WEB-UK")


def test_publish_unknown_product_is_422_and_publishes_nothing(client, admin, session):
    channel = create_channel(session, "web-uk")
    product = create_product(session, "P-1")
    before = count(session, ProductPublication)
    response = client.post(
        f"/api/v1/channels/{channel.id}/publications",
        json={"product_ids": [product.id, "prd_nope"]},
        headers=admin,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"products": ["prd_nope"]}
    assert count(session, ProductPublication) == before


def test_publish_twice_counts_new_publications_only(client, admin, session):
    channel = create_channel(session, "web-uk")
    product = create_product(session, "P-1")
    url = f"/api/v1/channels/{channel.code}/publications"
    first = client.post(url, json={"product_ids": [product.id]}, headers=admin)
    second = client.post(url, json={"product_ids": [product.id]}, headers=admin)
    assert (first.json()["published"], second.json()["published"]) == (1, 0)


def test_unpublishing_an_unpublished_product_is_404(client, admin, session):
    channel = create_channel(session, "web-uk")
    product = create_product(session, "P-1")
    response = client.delete(
        f"/api/v1/channels/{channel.id}/publications/{product.id}", headers=admin
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "publication_not_found"


# --- channel keys ---------------------------------------------------------------------------


def _storefront(session, client, admin, make_key):
    """Channel web-uk with a published active product, a published draft product, an
    unpublished active product; a second channel app-uk with its own published product."""
    web = create_channel(session, "web-uk")
    app = create_channel(session, "app-uk", type="app")
    products = {
        "published": create_product(session, "PUB-1", title="Published tee"),
        "draft": create_product(session, "DRF-1", title="Draft tee", status="draft"),
        "unpublished": create_product(session, "UNP-1", title="Hidden tee"),
        "other": create_product(session, "APP-1", title="App tee"),
    }
    ids = [products[k].id for k in ("published", "draft")]
    client.post(f"/api/v1/channels/{web.id}/publications", json={"product_ids": ids}, headers=admin)
    client.post(
        f"/api/v1/channels/{app.id}/publications",
        json={"product_ids": [products["other"].id]},
        headers=admin,
    )
    return web, products, make_key("channel", channel_id=web.id)


def test_channel_key_search_sees_only_published_active_products(client, admin, make_key, session):
    # given
    _, products, key = _storefront(session, client, admin, make_key)
    # when
    response = client.get("/api/v1/products", headers=key)
    # then
    assert [p["id"] for p in response.json()["items"]] == [products["published"].id]


def test_channel_key_cannot_widen_search_with_status(client, admin, make_key, session):
    _, _, key = _storefront(session, client, admin, make_key)
    response = client.get("/api/v1/products", params={"status": "draft"}, headers=key)
    assert response.json()["items"] == []


def test_channel_key_cannot_search_another_channel(client, admin, make_key, session):
    _, _, key = _storefront(session, client, admin, make_key)
    response = client.get("/api/v1/products", params={"channel": "app-uk"}, headers=key)
    assert response.status_code == 403


def test_channel_key_gets_published_product_but_not_others(client, admin, make_key, session):
    _, products, key = _storefront(session, client, admin, make_key)
    ok = client.get(f"/api/v1/products/{products['published'].id}", headers=key)
    hidden = client.get(f"/api/v1/products/{products['unpublished'].id}", headers=key)
    draft = client.get(f"/api/v1/products/{products['draft'].id}", headers=key)
    assert (ok.status_code, hidden.status_code, draft.status_code) == (200, 404, 404)
    assert hidden.json()["error"]["code"] == "product_not_found"


def test_channel_key_variant_lookup_hides_unpublished_variants(client, admin, make_key, session):
    _, _, key = _storefront(session, client, admin, make_key)
    response = client.get("/api/v1/variants", params={"sku": ["PUB-1", "UNP-1"]}, headers=key)
    assert [v["sku"] for v in response.json()["items"]] == ["PUB-1"]
    assert client.get("/api/v1/variants/UNP-1", headers=key).status_code == 404


def test_unpublished_product_disappears_for_channel_key(client, admin, make_key, session):
    web, products, key = _storefront(session, client, admin, make_key)
    pid = products["published"].id
    response = client.delete(f"/api/v1/channels/{web.id}/publications/{pid}", headers=admin)
    assert response.status_code == 204
    assert client.get(f"/api/v1/products/{pid}", headers=key).status_code == 404


def test_publish_all_channel_shows_every_active_product(client, admin, make_key, session):
    # given a channel that publishes everything and two products, one of them draft
    channel = create_channel(session, "pos-all", type="store", publish_all=True)
    active = create_product(session, "ACT-1")
    create_product(session, "DRF-1", status="draft")
    key = make_key("channel", channel_id=channel.id)
    # when / then
    response = client.get("/api/v1/products", headers=key)
    assert [p["id"] for p in response.json()["items"]] == [active.id]


def test_inactive_channel_key_is_refused(client, admin, make_key, session):
    web, _, key = _storefront(session, client, admin, make_key)
    client.patch(f"/api/v1/channels/{web.id}", json={"active": False}, headers=admin)
    response = client.get("/api/v1/products", headers=key)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "channel_inactive"


def test_channel_key_sees_only_its_own_channel(client, admin, make_key, session):
    _, _, key = _storefront(session, client, admin, make_key)
    listed = client.get("/api/v1/channels", headers=key)
    other = client.get("/api/v1/channels/app-uk", headers=key)
    assert [c["code"] for c in listed.json()["items"]] == ["web-uk"]
    assert other.status_code == 404


def test_channel_key_cannot_create_products(client, make_key, session):
    channel = create_channel(session, "web-uk")
    key = make_key("channel", channel_id=channel.id)
    before = count(session, Product)
    response = client.post("/api/v1/products", json=product_body(), headers=key)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert count(session, Product) == before


def test_channel_key_cannot_create_channels_or_publish(client, make_key, session):
    channel = create_channel(session, "web-uk")
    product = create_product(session, "P-1")
    key = make_key("channel", channel_id=channel.id)
    before = count(session, ProductPublication)
    created = client.post("/api/v1/channels", json={**CHANNEL, "code": "x"}, headers=key)
    published = client.post(
        f"/api/v1/channels/{channel.id}/publications",
        json={"product_ids": [product.id]},
        headers=key,
    )
    assert (created.status_code, published.status_code) == (403, 403)
    assert count(session, ProductPublication) == before


def test_channel_key_can_read_categories(client, make_key, session):
    channel = create_channel(session, "web-uk")
    key = make_key("channel", channel_id=channel.id)
    assert client.get("/api/v1/categories", headers=key).status_code == 200
