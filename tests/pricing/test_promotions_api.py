"""Promotions CRUD and cart evaluation through the API."""

from omniretail.pricing import service
from omniretail.pricing.models import Promotion, PromotionTarget
from tests.pricing.helpers import (
    count,
    counting_statements,
    make_book,
    make_category,
    make_channel,
    make_product,
    set_price,
)


def given_shop(session):
    """Channel 'web' (EUR) with a shared base book: TEE-M 1000 (category 'tops' under
    'clothing'), MUG 500; channel 'app' (EUR) without promotions."""
    web = make_channel(session, "web")
    make_channel(session, "app")
    make_category(session, "clothing")
    make_category(session, "tops", parent="clothing")
    make_product(session, "TEE-M", categories=["tops"])
    make_product(session, "MUG")
    base = make_book(session, "base")
    service.assign_price_book(session, base, "web", 0)
    set_price(session, base, "TEE-M", 1000)
    set_price(session, base, "MUG", 500)
    return web


def create(client, headers, **body):
    response = client.post("/api/v1/promotions", json=body, headers=headers)
    assert response.status_code == 201, response.json()
    return response.json()


def evaluate(client, headers, **body):
    return client.post("/api/v1/promotions/evaluate", json=body, headers=headers)


def test_create_promotion_returns_it_with_an_etag(client, admin, session):
    given_shop(session)
    session.commit()
    response = client.post(
        "/api/v1/promotions",
        json={
            "name": "Tops 10%",
            "kind": "percent_off",
            "percent": "10",
            "category_codes": ["clothing"],
            "channels": ["web"],
        },
        headers=admin,
    )
    assert response.status_code == 201
    assert response.headers["ETag"] == '"1"'
    body = response.json()
    assert (body["percent"], body["cart_wide"], body["targets"]["category_codes"]) == (
        "10",
        False,
        ["clothing"],
    )
    assert len(body["channel_ids"]) == 1
    assert count(session, PromotionTarget) == 1


def test_promotion_on_an_unknown_category_writes_nothing(client, admin, session):
    given_shop(session)
    session.commit()
    response = client.post(
        "/api/v1/promotions",
        json={"name": "x", "kind": "percent_off", "percent": 10, "category_codes": ["nope"]},
        headers=admin,
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "category_not_found"
    assert count(session, Promotion) == 0


def test_promotion_on_an_unknown_product_writes_nothing(client, admin, session):
    # Given a shop without product "prd_nope"
    given_shop(session)
    session.commit()
    # When a promotion targets it
    response = client.post(
        "/api/v1/promotions",
        json={"name": "x", "kind": "percent_off", "percent": 10, "product_ids": ["prd_nope"]},
        headers=admin,
    )
    # Then it is a 404 naming the id, and no promotion exists
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("product_not_found", {"product_ids": ["prd_nope"]})
    assert count(session, Promotion) == 0


def test_invalid_percent_is_422(client, admin, session):
    response = client.post(
        "/api/v1/promotions",
        json={"name": "x", "kind": "percent_off", "percent": 150},
        headers=admin,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_percent"
    assert count(session, Promotion) == 0


def test_amount_off_needs_a_currency(client, admin, session):
    response = client.post(
        "/api/v1/promotions", json={"name": "x", "kind": "amount_off", "amount": 500}, headers=admin
    )
    assert response.json()["error"]["code"] == "currency_required"


def test_patch_with_a_stale_etag_is_412_and_changes_nothing(client, admin, session):
    promo = create(client, admin, name="Cart 5%", kind="percent_off", percent=5)
    ok = client.patch(
        f"/api/v1/promotions/{promo['id']}",
        json={"priority": 7},
        headers={**admin, "If-Match": '"1"'},
    )
    assert (ok.status_code, ok.headers["ETag"], ok.json()["priority"]) == (200, '"2"', 7)
    stale = client.patch(
        f"/api/v1/promotions/{promo['id']}",
        json={"priority": 9},
        headers={**admin, "If-Match": '"1"'},
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "precondition_failed"
    assert client.get(f"/api/v1/promotions/{promo['id']}", headers=admin).json()["priority"] == 7


def test_patch_cannot_change_the_kind(client, admin):
    promo = create(client, admin, name="Cart 5%", kind="percent_off", percent=5)
    response = client.patch(
        f"/api/v1/promotions/{promo['id']}", json={"kind": "amount_off"}, headers=admin
    )
    assert response.status_code == 422


def test_patch_retargets_the_index(client, admin, session):
    given_shop(session)
    session.commit()
    promo = create(client, admin, name="Tee", kind="percent_off", percent=5, skus=["TEE-M"])
    client.patch(f"/api/v1/promotions/{promo['id']}", json={"skus": ["MUG"]}, headers=admin)
    body = evaluate(
        client,
        admin,
        channel="web",
        lines=[{"sku": "TEE-M", "quantity": 1}, {"sku": "MUG", "quantity": 1}],
    ).json()
    assert [line["discount_total"] for line in body["lines"]] == [0, 25]


def test_list_promotions_for_a_channel(client, admin, session):
    given_shop(session)
    session.commit()
    everywhere = create(client, admin, name="All", kind="percent_off", percent=5)
    web_only = create(client, admin, name="Web", kind="percent_off", percent=5, channels=["web"])
    create(client, admin, name="App", kind="percent_off", percent=5, channels=["app"])
    listed = client.get("/api/v1/promotions?channel=web", headers=admin).json()["items"]
    assert [p["id"] for p in listed] == [everywhere["id"], web_only["id"]]


def test_evaluate_prices_the_cart_and_applies_promotions(client, admin, session):
    given_shop(session)
    session.commit()
    tops = create(
        client, admin, name="Tops 10%", kind="percent_off", percent=10, category_codes=["clothing"]
    )
    cart5 = create(
        client,
        admin,
        name="5 off 20",
        kind="amount_off",
        amount=500,
        currency="EUR",
        min_subtotal=2000,
    )
    ship = create(client, admin, name="Free shipping", kind="free_shipping")
    response = evaluate(
        client,
        admin,
        channel="web",
        lines=[{"sku": "TEE-M", "quantity": 2}, {"sku": "MUG", "quantity": 1}],
        shipping_amount=495,
    )
    assert response.status_code == 200
    body = response.json()
    assert [(line["unit_price"], line["subtotal"], line["total"]) for line in body["lines"]] == [
        (1000, 2000, 1409),
        (500, 500, 391),
    ]
    assert body["lines"][0]["price"]["price_book"] == "base"
    assert [(d["promotion_id"], d["amount"]) for d in body["lines"][0]["discounts"]] == [
        (tops["id"], 200),
        (cart5["id"], 391),
    ]
    # 500 off is spread over what is left of the lines (1800 and 500): 391.30 and 108.70,
    # the spare minor unit goes to the larger remainder (the mug)
    assert body["order_discounts"] == [
        {"promotion_id": cart5["id"], "name": "5 off 20", "amount": 500, "allocation": [391, 109]}
    ]
    assert body["shipping"] == {"amount": 495, "discount": 495, "total": 0, "free_shipping": True}
    assert (
        body["subtotal"],
        body["item_discount_total"],
        body["discount_total"],
        body["total"],
    ) == (
        2500,
        700,
        1195,
        1800,
    )
    assert sorted(body["applied_promotions"]) == sorted([tops["id"], cart5["id"], ship["id"]])


def test_evaluate_uses_a_given_unit_price(client, admin, session):
    given_shop(session)
    session.commit()
    body = evaluate(
        client, admin, channel="web", lines=[{"sku": "MUG", "quantity": 3, "unit_price": 333}]
    ).json()
    assert (body["lines"][0]["unit_price"], body["lines"][0]["price"], body["total"]) == (
        333,
        None,
        999,
    )


def test_evaluate_explains_promotions_that_did_not_apply(client, admin, session):
    given_shop(session)
    session.commit()
    vip = create(client, admin, name="VIP", kind="percent_off", percent=20, customer_groups=["vip"])
    body = evaluate(client, admin, channel="web", lines=[{"sku": "MUG", "quantity": 1}]).json()
    assert body["explanations"] == [
        {
            "promotion_id": vip["id"],
            "name": "VIP",
            "status": "not_applicable",
            "reason": "only for customer groups: vip",
            "amount": 0,
            "coupon_code": None,
        }
    ]
    with_group = evaluate(
        client, admin, channel="web", customer_group="vip", lines=[{"sku": "MUG", "quantity": 1}]
    ).json()
    assert with_group["total"] == 400


def test_promotion_of_another_channel_does_not_apply(client, admin, session):
    given_shop(session)
    session.commit()
    create(client, admin, name="App only", kind="percent_off", percent=50, channels=["app"])
    body = evaluate(client, admin, channel="web", lines=[{"sku": "MUG", "quantity": 1}]).json()
    assert (body["total"], body["explanations"]) == (500, [])


def test_evaluate_unknown_sku_is_404(client, admin, session):
    given_shop(session)
    session.commit()
    response = evaluate(client, admin, channel="web", lines=[{"sku": "NOPE", "quantity": 1}])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "sku_not_found"


def test_evaluate_sku_without_price_is_404(client, admin, session):
    given_shop(session)
    make_product(session, "POSTER")
    session.commit()
    response = evaluate(client, admin, channel="web", lines=[{"sku": "POSTER", "quantity": 1}])
    assert response.status_code == 404
    assert response.json()["error"]["details"]["skus"] == ["POSTER"]


def test_storefront_key_evaluates_its_own_channel(client, make_key, session):
    web = given_shop(session)
    session.commit()
    headers = make_key("channel", channel_id=web)
    ok = evaluate(client, headers, lines=[{"sku": "MUG", "quantity": 2}])
    assert (ok.status_code, ok.json()["channel"], ok.json()["total"]) == (200, "web", 1000)
    other = evaluate(client, headers, channel="app", lines=[{"sku": "MUG", "quantity": 2}])
    assert other.json()["error"]["code"] == "channel_forbidden"


def test_storefront_key_cannot_set_prices(client, make_key, session):
    web = given_shop(session)
    session.commit()
    response = evaluate(
        client,
        make_key("channel", channel_id=web),
        lines=[{"sku": "MUG", "quantity": 1, "unit_price": 1}],
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "unit_price_not_allowed"


def test_storefront_key_cannot_create_promotions(client, make_key, session):
    web = given_shop(session)
    session.commit()
    response = client.post(
        "/api/v1/promotions",
        json={"name": "x", "kind": "percent_off", "percent": 10},
        headers=make_key("channel", channel_id=web),
    )
    assert response.status_code == 403
    assert count(session, Promotion) == 0


def test_exclusive_strategy_can_be_chosen_per_request(client, admin, session):
    given_shop(session)
    session.commit()
    create(
        client,
        admin,
        name="Excl 5%",
        kind="percent_off",
        percent=5,
        stacking="exclusive",
        priority=9,
    )
    create(client, admin, name="Stack 20%", kind="percent_off", percent=20, priority=1)
    lines = [{"sku": "TEE-M", "quantity": 1}]
    best = evaluate(client, admin, channel="web", lines=lines).json()
    by_priority = evaluate(
        client, admin, channel="web", lines=lines, exclusive_strategy="priority_wins"
    ).json()
    assert (best["total"], by_priority["total"]) == (800, 950)


def test_evaluation_issues_the_same_queries_for_one_or_twenty_lines(session):
    # given 20 priced SKUs, a promotion per SKU and a cart-wide one
    given_shop(session)
    base = service.get_price_book(session, "base").id
    skus = [f"SKU-{i:02d}" for i in range(20)]
    for sku in skus:
        make_product(session, sku, categories=["tops"])
    service.upsert_prices(session, base, [service.PriceInput(sku=s, amount=1000) for s in skus])
    for sku in skus:
        service.create_promotion(
            session, service.PromotionSpec(name=sku, kind="percent_off", percent="5", skus=[sku])
        )
    service.create_promotion(
        session, service.PromotionSpec(name="cart", kind="amount_off", amount=100, currency="EUR")
    )
    session.flush()
    channel = service.catalog.get_channel(session, "web")

    def statements(lines):
        with counting_statements(session) as seen:
            result = service.evaluate_cart(session, channel=channel, lines=lines)
        return len(seen), result

    # when evaluating one line and twenty lines
    one, _ = statements([service.LineInput(skus[0], 1)])
    twenty, result = statements([service.LineInput(s, 1) for s in skus])
    # then the number of statements does not grow with the cart
    assert one == twenty
    assert len(result.evaluation.applied) == 21
