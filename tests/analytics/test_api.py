"""The analytics API over HTTP: roles, KPIs, charts, forecasts and replenishment."""

from datetime import timedelta

import pytest

from omniretail.catalog import service as catalog
from omniretail.inventory import service as inventory
from tests.analytics.factories import handmade, sale

Q1 = "start=2024-01-01&end=2024-04-01"


@pytest.fixture()
def shop(session):
    handmade(session)
    session.commit()
    return session


@pytest.fixture()
def analyst(make_key):
    return make_key("analyst")


def test_analyst_reads_kpis(client, shop, analyst):
    response = client.get(f"/api/v1/analytics/kpis?{Q1}", headers=analyst)
    assert response.status_code == 200
    body = response.json()
    assert (body["revenue_minor"], body["orders"], body["aov_minor"], body["units_per_order"]) == (
        8250,
        8,
        1031,
        1.875,
    )
    assert (body["start"], body["end"], body["currency"]) == ("2024-01-01", "2024-04-01", "GBP")


def test_admin_passes_the_analyst_check(client, shop, admin):
    assert client.get(f"/api/v1/analytics/kpis?{Q1}", headers=admin).status_code == 200


def test_merchandiser_may_not_read_analytics(client, shop, make_key):
    response = client.get(f"/api/v1/analytics/kpis?{Q1}", headers=make_key("merchandiser"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert response.json()["error"]["details"] == {"required_roles": ["admin", "analyst"]}


def test_analytics_needs_authentication(client, shop):
    response = client.get("/api/v1/analytics/cohorts")
    assert response.status_code == 401


def test_cohorts_endpoint(client, shop, analyst):
    body = client.get(f"/api/v1/analytics/cohorts?{Q1}", headers=analyst).json()
    assert [(r["cohort"], r["active"]) for r in body["rows"]] == [
        ("2024-01", [2, 1, 1]),
        ("2024-02", [1, 1]),
        ("2024-03", [1]),
    ]


def test_rfm_endpoint_lists_customers_by_monetary_value(client, shop, analyst):
    body = client.get(f"/api/v1/analytics/rfm?{Q1}&limit=2", headers=analyst).json()
    assert body["customers"] == 4
    assert [(c["customer_key"], c["cell"], c["segment"]) for c in body["items"]] == [
        ("A", "244", "at_risk"),
        ("C", "333", "need_attention"),
    ]


def test_channel_mix_endpoint(client, shop, analyst):
    body = client.get(f"/api/v1/analytics/channel-mix?{Q1}", headers=analyst).json()
    assert [(g["channels"], g["customers"]) for g in body["groups"]] == [
        ("1", 3),
        ("2", 0),
        ("3+", 1),
    ]
    assert body["channels"] == {"app": 1, "store": 2, "web": 5}


def test_bad_dates_are_a_422_in_the_error_shape(client, shop, analyst):
    response = client.get("/api/v1/analytics/kpis?start=2024-13-01", headers=analyst)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    ("fmt", "media_type", "magic"),
    [("png", "image/png", b"\x89PNG\r\n\x1a\n"), ("svg", "image/svg+xml", b"<?xml")],
)
@pytest.mark.parametrize("name", ["cohort-retention", "channel-mix", "rfm-segments"])
def test_charts_are_served_as_png_and_svg(client, shop, analyst, name, fmt, media_type, magic):
    response = client.get(f"/api/v1/analytics/charts/{name}.{fmt}?{Q1}", headers=analyst)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.content.startswith(magic)
    if fmt == "svg":
        assert b"<svg" in response.content


def test_svg_charts_are_reproducible(client, shop, analyst):
    url = f"/api/v1/analytics/charts/cohort-retention.svg?{Q1}"
    first = client.get(url, headers=analyst).content
    assert client.get(url, headers=analyst).content == first


def test_unknown_chart_is_404(client, shop, analyst):
    response = client.get("/api/v1/analytics/charts/pie.png", headers=analyst)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "chart_not_found"


def test_unknown_chart_format_is_422(client, shop, analyst):
    response = client.get("/api/v1/analytics/charts/channel-mix.gif", headers=analyst)
    assert response.status_code == 422


def _weekly_sales(session, weeks=16):
    from datetime import date

    start = date(2024, 1, 1)
    for week in range(weeks):
        day = start + timedelta(weeks=week)
        sale(session, f"a{week}", "A", day, [("MUG", 9 + week % 2, 500)], channel="store",
             location="store-a")  # fmt: skip
        sale(session, f"b{week}", "B", day, [("MUG", 1, 500)], channel="store",
             location="store-b")  # fmt: skip
    session.commit()


def test_forecast_run_and_chart_over_http(client, session, analyst):
    # given
    _weekly_sales(session)
    # when
    created = client.post(
        "/api/v1/analytics/forecasts",
        json={"by": "location", "horizon": 4, "windows": 2},
        headers=analyst,
    )
    # then
    assert created.status_code == 201, created.text
    run = created.json()
    assert (run["node_kind"], run["metrics"]["series"]) == ("location", 2)
    latest = client.get("/api/v1/analytics/forecasts/latest?by=location", headers=analyst)
    assert latest.json()["id"] == run["id"]
    series = client.get(f"/api/v1/analytics/forecasts/{run['id']}/series", headers=analyst)
    assert [s["node"] for s in series.json()] == ["store-a", "store-b"]
    assert len(series.json()[0]["forecast"]) == 4
    chart = client.get(
        "/api/v1/analytics/charts/forecast.png?by=location&node=store-a", headers=analyst
    )
    assert chart.content.startswith(b"\x89PNG")


def test_replenishment_suggestion_accepted_over_http_becomes_a_transfer(client, session, analyst):
    # given store A sells ~10 a week and has none; store B sells 1 and holds 80
    _weekly_sales(session)
    catalog.create_product(session, title="Mug", variants=[{"sku": "MUG"}])
    for code in ("store-a", "store-b"):
        inventory.create_location(
            session, code=code, name=code, type="store", timezone="Europe/London"
        )
    store_b = inventory.get_location(session, "store-b").id
    inventory.record_movement(session, location_id=store_b, reason="receipt", lines=[("MUG", 80)])
    session.commit()
    client.post("/api/v1/analytics/forecasts", json={"by": "location", "windows": 2},
                headers=analyst)  # fmt: skip
    # when
    made = client.post("/api/v1/analytics/replenishment/suggestions", json={}, headers=analyst)
    suggestion = made.json()["suggestions"][0]
    accepted = client.post(
        f"/api/v1/analytics/replenishment/suggestions/{suggestion['id']}/accept",
        json={},
        headers={**analyst, "Idempotency-Key": "accept-1"},
    )
    # then
    assert made.status_code == 201
    assert (suggestion["kind"], suggestion["from_location_id"]) == ("transfer", store_b)
    assert accepted.status_code == 200, accepted.text
    transfer = inventory.get_transfer(session, accepted.json()["accepted_ref"])
    assert transfer.lines[0].quantity_shipped == suggestion["quantity"]
    again = client.post(
        f"/api/v1/analytics/replenishment/suggestions/{suggestion['id']}/accept",
        json={},
        headers=analyst,
    )
    assert again.status_code == 409


def test_merchandiser_may_not_accept_suggestions(client, session, make_key):
    response = client.post(
        "/api/v1/analytics/replenishment/suggestions/rpl_x/accept",
        json={},
        headers=make_key("merchandiser"),
    )
    assert response.status_code == 403
