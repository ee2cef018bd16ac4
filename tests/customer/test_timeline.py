"""Timeline: orders from every channel, returns, tracked events and consent, newest first."""

from omniretail.core import events
from omniretail.customer import service
from tests.customer.helpers import create_customer, customer_of, send, track


def _kinds(items):
    return [(i["kind"], i["event"]) for i in items]


def test_timeline_merges_tracked_orders_pos_sales_returns_and_consent(
    client, make_source, session, admin
):
    cid = create_customer(session, email="ada@example.org", user_id="u-1")
    session.commit()
    key, _ = make_source("web")
    send(
        client,
        key,
        track("Product Viewed", userId="u-1", timestamp="2025-01-01T10:00:00Z"),
        track(
            "Order Completed",
            userId="u-1",
            timestamp="2025-01-01T10:05:00Z",
            properties={"order_id": "web-1", "total": 20, "currency": "EUR"},
        ),
    )
    service.record_commerce_fact(
        session,
        {"email": "ADA@example.org"},
        "pos_sale",
        {
            "id": "sale-9",
            "total_minor": 1500,
            "currency": "EUR",
            "channel": "store",
            "occurred_at": "2025-01-02T09:00:00Z",
        },
    )
    service.record_commerce_fact(
        session,
        cid,
        "return_received",
        {
            "return_id": "r-1",
            "order_id": "web-1",
            "amount_minor": 500,
            "currency": "EUR",
            "occurred_at": "2025-01-03T09:00:00Z",
        },
    )
    service.set_consent(session, cid, "analytics", True, "web", "test")
    session.commit()

    items = client.get(f"/api/v1/customers/{cid}/timeline", headers=admin).json()["items"]

    assert _kinds(items) == [
        ("consent", "Consent Granted"),
        ("return", "Return Received"),
        ("order", "Pos Sale"),
        ("order", "Order Completed"),
        ("event", "Product Viewed"),
    ]
    assert [(i["order_id"], i["amount_minor"]) for i in items[1:4]] == [
        ("web-1", 500),
        ("sale-9", 1500),
        ("web-1", 2000),
    ]
    assert [i["channel"] for i in items[1:4]] == ["server", "store", "web"]


def test_timeline_is_cursor_paginated_without_gaps(client, make_source, session, admin):
    key, _ = make_source()
    send(
        client,
        key,
        *[track(f"E{i}", anonymousId="a-1", timestamp=f"2025-01-01T10:0{i}:00Z") for i in range(5)],
    )
    cid = customer_of(session, "anonymous_id", "a-1")
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/api/v1/customers/{cid}/timeline", params=params, headers=admin).json()
        seen += [i["event"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["E4", "E3", "E2", "E1", "E0"]


def test_bad_cursor_is_400(client, make_source, session, admin):
    key, _ = make_source()
    send(client, key, track("X", anonymousId="a-1"))
    cid = customer_of(session, "anonymous_id", "a-1")
    response = client.get(f"/api/v1/customers/{cid}/timeline?cursor=zzz", headers=admin)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_outbox_order_event_becomes_a_fact_once(session):
    cid = create_customer(session, email="ada@example.org")
    payload = {
        "customer": {"email": "ada@example.org", "loyalty_card": "LC-9"},
        "id": "ord-1",
        "total_minor": 4999,
        "currency": "GBP",
        "channel": "web",
    }
    events.emit(session, "order.placed", payload)
    events.emit(session, "order.placed", payload)  # a redelivery
    session.flush()
    events.dispatch_pending(session)
    items, _ = service.timeline(session, cid, None, None)
    assert [(i["fact"], i["order_id"], i["amount_minor"]) for i in items] == [
        ("order_placed", "ord-1", 4999)
    ]
    assert customer_of(session, "loyalty_card", "LC-9") == cid  # the order linked the card


def test_fact_payload_keeps_no_personal_fields(session):
    cid = create_customer(session, email="ada@example.org")
    service.record_commerce_fact(
        session,
        cid,
        "order_placed",
        {
            "id": "o-1",
            "email": "ada@example.org",
            "shipping_address": {"line1": "x"},
            "total_minor": 1,
            "currency": "EUR",
        },
    )
    items, _ = service.timeline(session, cid, None, None)
    assert items[0]["properties"] == {"id": "o-1", "total_minor": 1, "currency": "EUR"}
