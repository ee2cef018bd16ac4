"""Store registers: scan, sell, receipt; offline sales synced later with replays as no-ops
and oversells flagged as discrepancies, never dropped."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from omniretail.core.models import OutboxEvent
from omniretail.inventory import service as inventory
from omniretail.order.models import Order, PosSale
from tests.order.helpers import BARCODES, count, state, stock

SOLD_AT = "2026-11-20T10:15:00+00:00"


def _register(client, shop, code="soho-1"):
    response = client.post(
        "/api/v1/pos/registers",
        json={"code": code, "location_id": shop.store, "channel": "shop-floor"},
        headers=shop.admin,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _offline_sale(seq, lines, tenders=None, client_id=None):
    total = sum(q * p for _, q, p in lines)
    return {
        "client_id": client_id or str(uuid.UUID(int=seq)),
        "sequence": seq,
        "sold_at": SOLD_AT,
        "lines": [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines],
        "tenders": tenders or [{"type": "cash", "tendered": total}],
        "total": total,
    }


def _sync(client, shop, register, sales):
    return client.post(
        "/api/v1/pos/sync",
        json={"register_id": register, "sales": sales},
        headers=shop.associate,
    )


def test_scanning_a_barcode_gives_price_and_store_stock(client, shop):
    register = _register(client, shop)
    response = client.get(
        "/api/v1/pos/lookup",
        params={"register_id": register, "barcode": BARCODES["TEE-M"]},
        headers=shop.associate,
    )
    assert response.status_code == 200
    [item] = response.json()
    assert (item["sku"], item["price"], item["currency"], item["available_here"]) == (
        "TEE-M",
        2000,
        "GBP",
        5,
    )


def test_an_unknown_barcode_is_404(client, shop):
    register = _register(client, shop)
    response = client.get(
        "/api/v1/pos/lookup",
        params={"register_id": register, "barcode": "96385074"},
        headers=shop.associate,
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "variant_not_found"


def test_a_cash_sale_gives_change_and_a_receipt(client, shop, session):
    register = _register(client, shop)
    response = client.post(
        "/api/v1/pos/sales",
        json={
            "register_id": register,
            "lines": [{"sku": "TEE-M", "quantity": 1}, {"sku": "MUG", "quantity": 1}],
            "tenders": [{"type": "cash", "tendered": 5000}],
        },
        headers=shop.associate,
    )
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert (receipt["total"], receipt["tax_total"], receipt["change_due"]) == (3200, 533, 1800)
    assert receipt["tenders"] == [{"type": "cash", "amount": 3200}]
    assert [(li["sku"], li["total"]) for li in receipt["lines"]] == [("TEE-M", 2000), ("MUG", 1200)]
    assert stock(session, "TEE-M", shop.store)["on_hand"] == 4
    order = session.get(Order, receipt["order_id"])
    assert (order.status, order.source, order.channel_id) == ("completed", "pos", shop.floor)


def test_card_terminal_and_gift_card_split(client, shop, session):
    from tests.order.helpers import gift_card

    code = gift_card(session, 500, "GC-TILL-0001")
    register = _register(client, shop)
    receipt = client.post(
        "/api/v1/pos/sales",
        json={
            "register_id": register,
            "lines": [{"sku": "MUG", "quantity": 1}],
            "tenders": [
                {"type": "gift_card", "reference": code, "amount": 500},
                {"type": "card_terminal", "reference": "APPROVED-1234"},
            ],
        },
        headers=shop.associate,
    ).json()
    assert receipt["tenders"] == [
        {"type": "gift_card", "amount": 500},
        {"type": "card_terminal", "amount": 700, "reference": "APPROVED-1234"},
    ]
    payments = client.get(f"/api/v1/orders/{receipt['order_id']}", headers=shop.admin).json()
    assert payments["payment_totals"]["captured"] == 1200


def test_cash_short_of_the_total_is_422_and_nothing_is_sold(client, shop, session):
    register = _register(client, shop)
    before = state(session)
    response = client.post(
        "/api/v1/pos/sales",
        json={
            "register_id": register,
            "lines": [{"sku": "TEE-M", "quantity": 1}],
            "tenders": [{"type": "cash", "tendered": 1500}],
        },
        headers=shop.associate,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"due": 2000, "tendered": 1500}
    assert state(session) == before


def test_an_associate_of_another_store_cannot_use_the_register(client, shop, make_key):
    register = _register(client, shop)
    other = make_key("store_associate", location_ids=[shop.wh])
    response = client.post(
        "/api/v1/pos/sales",
        json={
            "register_id": register,
            "lines": [{"sku": "MUG", "quantity": 1}],
            "tenders": [{"type": "cash"}],
        },
        headers=other,
    )
    assert response.status_code == 403


def test_an_offline_batch_synced_three_times_is_one_set_of_sales(client, shop, session):
    # Given three sales rung up while the network was down
    register = _register(client, shop)
    batch = [
        _offline_sale(1, [("TEE-M", 1, 2000)]),
        _offline_sale(2, [("MUG", 2, 1200)], [{"type": "card_terminal", "reference": "OFF-2"}]),
        _offline_sale(3, [("TEE-L", 1, 2000), ("MUG", 1, 1200)]),
    ]

    # When the register syncs the same batch three times
    answers = [_sync(client, shop, register, batch).json() for _ in range(3)]

    # Then the first sync books them and the replays change nothing
    assert [(a["created"], a["duplicates"], a["needs_review"]) for a in answers] == [
        (3, 0, 0),
        (0, 3, 0),
        (0, 3, 0),
    ]
    assert [i["order_id"] for i in answers[2]["items"]] == [
        i["order_id"] for i in answers[0]["items"]
    ]
    assert count(session, PosSale) == 3
    assert session.scalar(select(Order).where(Order.source == "pos").limit(1)) is not None
    assert stock(session, "MUG", shop.store)["on_hand"] == 2
    assert stock(session, "TEE-M", shop.store)["on_hand"] == 4
    assert answers[2]["contiguous_through"] == 3
    sales_events = session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "pos.sale")).all()
    assert len(sales_events) == 3
    assert sales_events[0].payload["offline"] is True


def test_an_offline_oversell_is_accepted_and_flagged(client, shop, session):
    # Given 5 TEE-M in the store, and 4 of them sold online (click & collect) meanwhile
    register = _register(client, shop)
    inventory.record_movement(session, location_id=shop.store, reason="sale", lines=[("TEE-M", 4)])
    session.commit()

    # When the register syncs an offline sale of 3 TEE-M
    answer = _sync(client, shop, register, [_offline_sale(1, [("TEE-M", 3, 2000)])]).json()

    # Then the sale is booked in full (6000 taken), the unit the store had is sold, and the 2
    # it did not have are a discrepancy to resolve (stock never goes below zero)
    [item] = answer["items"]
    assert (item["status"], item["stock_discrepancies"]) == (
        "created",
        [{"sku": "TEE-M", "quantity": 2}],
    )
    order = client.get(f"/api/v1/orders/{item['order_id']}", headers=shop.admin).json()
    assert (order["total"], order["lines"][0]["quantity"]) == (6000, 3)
    assert stock(session, "TEE-M", shop.store) == {
        "on_hand": 0,
        "allocated": 0,
        "held": 0,
        "available": 0,
    }
    tasks = client.get(
        "/api/v1/pos/discrepancies", params={"location_id": shop.store}, headers=shop.associate
    ).json()
    assert [(t["kind"], t["sku"], t["quantity"], t["status"]) for t in tasks] == [
        ("stock_shortfall", "TEE-M", 2, "open")
    ]
    event = session.scalar(
        select(OutboxEvent).where(OutboxEvent.topic == "pos.stock_discrepancy")
    ).payload
    assert (event["sku"], event["quantity"], event["location_id"], event["offline"]) == (
        "TEE-M",
        2,
        shop.store,
        True,
    )
    # and the store closes the task after counting
    closed = client.post(
        f"/api/v1/pos/discrepancies/{tasks[0]['id']}/resolve",
        json={"resolution": "counted: 0 on the shelf, online order re-sourced"},
        headers=shop.associate,
    )
    assert (closed.status_code, closed.json()["status"]) == (200, "resolved")


def test_a_sale_that_cannot_be_booked_is_kept_for_review(client, shop, session):
    register = _register(client, shop)
    answer = _sync(
        client,
        shop,
        register,
        [_offline_sale(1, [("GONE-SKU", 1, 999)]), _offline_sale(2, [("MUG", 1, 1200)])],
    ).json()
    assert [(i["sequence"], i["status"]) for i in answer["items"]] == [
        (1, "needs_review"),
        (2, "created"),
    ]
    assert answer["items"][0]["error"]["code"] == "sku_not_found"
    kept = session.scalar(select(PosSale).where(PosSale.sequence == 1))
    assert kept.payload["lines"] == [
        {"sku": "GONE-SKU", "quantity": 1, "unit_price": 999, "discount": 0}
    ]
    tasks = client.get("/api/v1/pos/discrepancies", headers=shop.associate).json()
    assert [t["kind"] for t in tasks] == ["sale_needs_review"]
    # a replay finds it as well and does not add a second review task
    again = _sync(client, shop, register, [_offline_sale(1, [("GONE-SKU", 1, 999)])]).json()
    assert again["duplicates"] == 1
    assert len(client.get("/api/v1/pos/discrepancies", headers=shop.associate).json()) == 1


def test_gaps_in_the_sequence_are_reported(client, shop, session):
    register = _register(client, shop)
    answer = _sync(
        client,
        shop,
        register,
        [_offline_sale(1, [("MUG", 1, 1200)]), _offline_sale(4, [("MUG", 1, 1200)])],
    ).json()
    assert (answer["contiguous_through"], answer["missing_sequences"]) == (1, [2, 3])
    later = _sync(
        client,
        shop,
        register,
        [_offline_sale(2, [("MUG", 1, 1200)]), _offline_sale(3, [("MUG", 1, 1200)])],
    ).json()
    assert (later["contiguous_through"], later["missing_sequences"]) == (4, [])


def test_an_offline_sale_keeps_its_sale_time(client, shop, session):
    register = _register(client, shop)
    answer = _sync(client, shop, register, [_offline_sale(1, [("MUG", 1, 1200)])]).json()
    order = session.get(Order, answer["items"][0]["order_id"])
    assert order.placed_at.astimezone(UTC) == datetime(2026, 11, 20, 10, 15, tzinfo=UTC)


def test_an_online_sale_of_stock_the_system_lacks_still_sells_and_flags(client, shop, session):
    register = _register(client, shop)
    inventory.record_movement(session, location_id=shop.store, reason="sale", lines=[("MUG", 5)])
    session.commit()
    response = client.post(
        "/api/v1/pos/sales",
        json={
            "register_id": register,
            "lines": [{"sku": "MUG", "quantity": 1}],
            "tenders": [{"type": "card_terminal", "reference": "OK-77"}],
        },
        headers=shop.associate,
    )
    assert response.status_code == 201
    assert response.json()["stock_discrepancies"] == [{"sku": "MUG", "quantity": 1}]
    assert stock(session, "MUG", shop.store)["on_hand"] == 0
