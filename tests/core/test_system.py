def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_reports_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_unknown_route_uses_error_shape(client):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert response.headers["X-Request-ID"] == "req-123"


def test_a_request_without_an_id_gets_a_new_one_on_success_and_on_error(client, caplog):
    # Given no X-Request-ID
    # When a found and a missing resource are asked for
    with caplog.at_level("INFO", logger="omniretail.http"):
        ok = client.get("/healthz")
        missing = client.get("/api/v1/nope")
    # Then each answer carries its own 26-character ULID, and the access log names both
    ids = [ok.headers["X-Request-ID"], missing.headers["X-Request-ID"]]
    assert [len(i) for i in ids] == [26, 26] and ids[0] != ids[1]
    lines = [r.getMessage() for r in caplog.records if r.name == "omniretail.http"]
    assert lines == ["GET /healthz 200", "GET /api/v1/nope 404"]


def test_openapi_lists_routes(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/auth/token" in spec["paths"]
