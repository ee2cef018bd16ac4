"""The fulfilment API over HTTP: plan stored with its explanation, idempotent replays, the
error shape with nothing written, configuration, delivery promise, roles, CLI."""

from typer.testing import CliRunner

from omniretail.cli import app as cli
from tests.fulfillment.factories import counts, make_channel, make_location, make_skus, receive

LONDON = {"latitude": 51.5074, "longitude": -0.1278}


def _stocked(session):
    make_skus(session, "A", "B")
    daventry = make_location(session, "wh-daventry")
    receive(session, "A", daventry.id, 5)
    session.commit()
    return daventry.id


def test_a_plan_is_stored_and_read_back_with_its_explanation(client, admin, session):
    daventry = _stocked(session)
    body = {
        "lines": [{"sku": "A", "quantity": 2, "line_id": "1"}],
        "destination": LONDON,
        "reference": "ord_1",
    }
    response = client.post("/api/v1/sourcing/plan", json=body, headers=admin)
    assert response.status_code == 201
    plan = response.json()
    assert (plan["outcome"], plan["state"], plan["total_cost"], plan["currency"]) == (
        "planned",
        "open",
        507,
        "GBP",
    )
    assert [(p["location_id"], p["kind"], p["units"], p["lines"]) for p in plan["packages"]] == [
        (daventry, "ship", 2, [{"line_id": "1", "sku": "A", "quantity": 2}])
    ]
    assert plan["explanation"].startswith("Strategy cost_optimal")
    stored = client.get(f"/api/v1/sourcing/decisions/{plan['id']}", headers=admin)
    assert stored.json() == plan


def test_a_replayed_plan_returns_the_first_decision_once(client, admin, session):
    _stocked(session)
    headers = {**admin, "Idempotency-Key": "order-7-sourcing"}
    body = {"lines": [{"sku": "A", "quantity": 1}], "destination": LONDON}
    first = client.post("/api/v1/sourcing/plan", json=body, headers=headers)
    second = client.post("/api/v1/sourcing/plan", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert counts(session)["decisions"] == 1


def test_a_dry_run_answers_200_and_stores_nothing(client, admin, session):
    _stocked(session)
    before = counts(session)
    body = {"lines": [{"sku": "A", "quantity": 1}], "destination": LONDON, "dry_run": True}
    response = client.post("/api/v1/sourcing/plan", json=body, headers=admin)
    assert (response.status_code, response.json()["id"], response.json()["stored"]) == (
        200,
        None,
        False,
    )
    assert counts(session) == before


def test_a_zero_quantity_is_422_with_the_error_shape_and_nothing_written(client, admin, session):
    _stocked(session)
    before = counts(session)
    body = {"lines": [{"sku": "A", "quantity": 0}], "destination": LONDON}
    response = client.post("/api/v1/sourcing/plan", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_quantity",
            "message": "quantity must be a positive whole number",
            "details": {"sku": "A", "quantity": 0},
        }
    }
    assert counts(session) == before


def test_an_unknown_field_is_a_validation_error(client, admin, session):
    _stocked(session)
    body = {"lines": [{"sku": "A", "quantity": 1}], "destination": LONDON, "colour": "red"}
    response = client.post("/api/v1/sourcing/plan", json=body, headers=admin)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_error")


def test_no_stock_is_409_named_after_the_reason_and_nothing_written(client, admin, session):
    _stocked(session)
    before = counts(session)
    body = {"lines": [{"sku": "B", "quantity": 1}], "destination": LONDON}
    response = client.post("/api/v1/sourcing/plan", json=body, headers=admin)
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["message"], error["details"]["lines"]) == (
        "insufficient_stock",
        "not enough stock for B",
        [{"sku": "B", "requested": 1, "available": 0}],
    )
    assert counts(session) == before


def test_a_home_delivery_without_destination_is_422(client, admin, session):
    _stocked(session)
    response = client.post(
        "/api/v1/sourcing/plan", json={"lines": [{"sku": "A", "quantity": 1}]}, headers=admin
    )
    assert response.json()["error"] == {
        "code": "destination_required",
        "message": "method 'standard' needs a destination",
        "details": {},
    }


def test_an_unknown_decision_is_404(client, admin):
    response = client.get("/api/v1/sourcing/decisions/src_nope", headers=admin)
    assert (response.status_code, response.json()["error"]["code"]) == (
        404,
        "sourcing_decision_not_found",
    )


def test_a_channel_strategy_is_set_and_used(client, admin, session):
    _stocked(session)
    make_channel(session, "web")
    session.commit()
    put = client.put(
        "/api/v1/sourcing/strategies/web",
        json={"strategy": "fewest_splits", "max_packages": 2},
        headers=admin,
    )
    assert put.json() == {
        "channel_id": put.json()["channel_id"],
        "channel_code": "web",
        "strategy": "fewest_splits",
        "max_packages": 2,
        "split_lines": True,
        "allow_partial": False,
        "allow_transfers": True,
    }
    body = {"lines": [{"sku": "A", "quantity": 1}], "destination": LONDON, "channel": "web"}
    plan = client.post("/api/v1/sourcing/plan", json=body, headers=admin).json()
    assert plan["strategy"] == "fewest_splits"


def test_an_unknown_strategy_is_refused(client, admin, session):
    make_channel(session, "web")
    session.commit()
    response = client.put(
        "/api/v1/sourcing/strategies/web", json={"strategy": "cheapest"}, headers=admin
    )
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_strategy")


def test_the_cost_model_changes_and_bad_values_are_refused(client, admin):
    changed = client.put("/api/v1/sourcing/cost-model", json={"split_penalty": 300}, headers=admin)
    assert (changed.status_code, changed.json()["split_penalty"]) == (200, 300)
    bad = client.put("/api/v1/sourcing/cost-model", json={"per_km_unit": -1}, headers=admin)
    assert bad.json()["error"] == {
        "code": "invalid_cost_model",
        "message": "per_km_unit must be a number >= 0",
        "details": {"per_km_unit": -1},
    }
    assert client.get("/api/v1/sourcing/cost-model", headers=admin).json()["split_penalty"] == 300


def test_only_admins_change_the_cost_model(client, make_key):
    response = client.put(
        "/api/v1/sourcing/cost-model", json={"split_penalty": 1}, headers=make_key("analyst")
    )
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")


def test_a_channel_key_gets_a_promise_but_cannot_plan(client, make_key, session):
    _stocked(session)
    web = make_channel(session, "web")
    session.commit()
    key = make_key("channel", channel_id=web.id)
    body = {
        "lines": [{"sku": "A", "quantity": 1}],
        "destination": {**LONDON, "timezone": "Europe/London"},
        "methods": ["standard"],
        "now": "2026-11-26T12:00:00Z",
    }
    promise = client.post("/api/v1/delivery-promise", json=body, headers=key)
    assert promise.status_code == 200
    assert promise.json()["options"] == [
        {
            "method": "standard",
            "available": True,
            "earliest": "2026-11-27T08:00:00Z",
            "latest": "2026-11-27T18:00:00Z",
            "order_by": "2026-11-26T14:00:00Z",
            "text": "Order within 2 h for delivery tomorrow",
            "reason": None,
            "location_id": None,
            "location_code": None,
            "locations": [promise.json()["options"][0]["locations"][0]],
        }
    ]
    plan = client.post(
        "/api/v1/sourcing/plan",
        json={"lines": [{"sku": "A", "quantity": 1}], "destination": LONDON},
        headers=key,
    )
    assert plan.status_code == 403


def test_a_location_calendar_is_set_and_read(client, admin, session):
    _stocked(session)
    put = client.put(
        "/api/v1/sourcing/locations/wh-daventry/calendar",
        json={"cutoffs": {"standard": "15:00"}, "holidays": ["2026-12-25"], "handling_minutes": 90},
        headers=admin,
    )
    assert put.status_code == 200
    got = client.get("/api/v1/sourcing/locations/wh-daventry/calendar", headers=admin).json()
    assert (got["cutoffs"], got["holidays"], got["handling_minutes"], got["timezone"]) == (
        {"standard": "15:00"},
        ["2026-12-25"],
        90,
        "Europe/London",
    )


def test_cli_plans_a_dry_run_and_has_help(session):
    _stocked(session)
    runner = CliRunner()
    assert runner.invoke(cli, ["sourcing", "reoptimize", "--help"]).exit_code == 0
    result = runner.invoke(
        cli, ["sourcing", "plan", "A=1", "--lat", "51.5074", "--lon", "-0.1278", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "wh-daventry" in result.output
    assert "4.66 GBP" in result.output


def test_cli_reoptimize_reports_the_open_decisions(session):
    _stocked(session)
    planned = CliRunner().invoke(
        cli, ["sourcing", "plan", "A=1", "--lat", "51.5074", "--lon", "-0.1278"]
    )
    assert planned.exit_code == 0, planned.output
    result = CliRunner().invoke(cli, ["sourcing", "reoptimize"])
    assert result.exit_code == 0, result.output
    assert "1 open decisions, 0 cheaper with the exact solver" in result.output
