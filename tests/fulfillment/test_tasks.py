"""Store fulfilment over HTTP: tasks created from placed orders, the pick/pack/ready/hand-over
steps moving the order along, shipments, and pick exceptions with re-sourcing.

The shop (tests/order/helpers.py): warehouse ``wh`` with 10 of each SKU, store ``soho`` with 5
of each, web channel sourced from the warehouse (some tests add the store as a second source).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from omniretail.core.events import dispatch_pending
from omniretail.core.models import OutboxEvent
from omniretail.core.timeutil import as_utc
from omniretail.fulfillment.models import FulfillmentTask, Shipment
from omniretail.fulfillment.tasks import check_timers, create_tasks_for_order
from omniretail.inventory import service as inventory
from omniretail.order.models import Order
from tests.order.helpers import ADDRESS, checkout, complete, start_cart, stock

BOPIS = {"delivery": [{"method": "bopis"}]}
STANDARD = {"shipping_address": ADDRESS, "delivery": [{"method": "standard"}]}


def _events(session, topic):
    return [
        e.payload
        for e in session.scalars(
            select(OutboxEvent).where(OutboxEvent.topic == topic).order_by(OutboxEvent.id)
        )
    ]


def _place(client, session, shop, lines, details):
    cart_id, token = start_cart(client, shop, lines)
    body = {"email": "ada@example.com", **details}
    if details is BOPIS:
        body["delivery"] = [{"method": "bopis", "location_id": shop.store}]
    response = checkout(client, shop, cart_id, token, body)
    assert response.status_code == 200, response.text
    placed = complete(client, shop, cart_id, token)
    assert placed.status_code == 201, placed.text
    dispatch_pending(session)
    return placed.json()


def _tasks(client, shop, order_id, headers=None):
    response = client.get(
        "/api/v1/fulfillment/tasks", params={"order_id": order_id}, headers=headers or shop.admin
    )
    assert response.status_code == 200, response.text
    return response.json()


def _step(client, shop, task_id, step, json=None, headers=None, expect=200):
    response = client.post(
        f"/api/v1/fulfillment/tasks/{task_id}/{step}", json=json, headers=headers or shop.admin
    )
    assert response.status_code == expect, response.text
    return response.json()


def _when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _order(session, order_id):
    session.expire_all()
    return session.get(Order, order_id)


def _also_source_from_store(session, shop):
    inventory.set_channel_sourcing(
        session, "web", rules=[{"location_id": shop.wh}, {"location_id": shop.store}]
    )
    session.commit()


# --- tasks from orders ----------------------------------------------------------------------


def test_a_click_and_collect_order_becomes_one_pickup_task_at_the_store(client, session, shop):
    # Given a click & collect order of 2 tees at Soho
    order = _place(client, session, shop, [("TEE-M", 2)], BOPIS)

    # Then Soho has one pickup task with the line, due two hours after placement
    [task] = _tasks(client, shop, order["id"])
    assert (task["kind"], task["state"], task["location_id"]) == ("pickup", "assigned", shop.store)
    assert [(x["sku"], x["quantity"], x["picked"]) for x in task["lines"]] == [("TEE-M", 2, 0)]
    placed = _order(session, order["id"]).placed_at
    assert _when(task["due_at"]) == as_utc(placed) + timedelta(minutes=120)


def test_tasks_are_created_once_however_often_the_event_arrives(client, session, shop):
    # Given an order whose placement event was delivered
    order = _place(client, session, shop, [("MUG", 1)], STANDARD)
    # When the event is delivered again
    again = create_tasks_for_order(session, order["id"])
    # Then no second task exists
    assert again == []
    count = session.scalar(
        select(func.count())
        .select_from(FulfillmentTask)
        .where(FulfillmentTask.order_id == order["id"])
    )
    assert count == 1


def test_the_pick_list_sums_a_stores_open_tasks_per_sku(client, session, shop):
    # Given two click & collect orders at Soho
    first = _place(client, session, shop, [("TEE-M", 2), ("MUG", 1)], BOPIS)
    second = _place(client, session, shop, [("TEE-M", 1)], BOPIS)

    # When the store asks for its pick list
    response = client.get(f"/api/v1/locations/{shop.store}/pick-list", headers=shop.associate)

    # Then each SKU appears once with the units of both orders
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tasks"], body["units"]) == (2, 4)
    lines = {x["sku"]: x for x in body["lines"]}
    assert lines["TEE-M"]["quantity"] == 3
    assert sorted(t["order_id"] for t in lines["TEE-M"]["tasks"]) == sorted(
        [first["id"], second["id"]]
    )
    assert lines["MUG"]["quantity"] == 1


# --- pickup ---------------------------------------------------------------------------------


def test_pickup_steps_move_the_order_to_ready_then_picked_up(client, session, shop):
    # Given a click & collect order
    order = _place(client, session, shop, [("TEE-L", 1)], BOPIS)
    [task] = _tasks(client, shop, order["id"])

    # When the associate picks, bags and puts it on the counter
    started = _step(client, shop, task["id"], "start", headers=shop.associate)
    assert _order(session, order["id"]).status == "fulfilling"
    outcome = _step(
        client, shop, task["id"], "pick", {"lines": [{"sku": "TEE-L", "picked": 1}]}, shop.associate
    )
    _step(client, shop, task["id"], "pack", headers=shop.associate)
    ready = _step(client, shop, task["id"], "ready", headers=shop.associate)

    # Then the order is ready, the customer is told, with a collect-by date a week later
    assert started["state"] == "picking"
    assert outcome["short"] == {} and outcome["task"]["state"] == "picked"
    assert _order(session, order["id"]).status == "ready_for_pickup"
    [told] = _events(session, "fulfillment.ready_for_pickup")
    assert (told["order_id"], told["location_name"]) == (order["id"], "Soho")
    assert ready["collect_by"] is not None

    # And when the customer collects, the unit leaves the store and the payment is captured
    done = _step(client, shop, task["id"], "hand-over", headers=shop.associate)
    assert done["state"] == "handed_over"
    assert _order(session, order["id"]).status == "picked_up"
    assert stock(session, "TEE-L", shop.store) == {
        "on_hand": 4,
        "allocated": 0,
        "held": 0,
        "available": 4,
    }
    captured = _events(session, "payment.captured")
    assert [e["amount_minor"] for e in captured if e["order_id"] == order["id"]] == [2000]


def test_a_step_out_of_order_is_a_409_and_changes_nothing(client, session, shop):
    # Given a task still assigned
    order = _place(client, session, shop, [("TEE-L", 1)], BOPIS)
    [task] = _tasks(client, shop, order["id"])

    # When someone tries to pack it before picking
    error = _step(client, shop, task["id"], "pack", expect=409)

    # Then the error names the allowed steps and the task did not move
    assert error["error"]["code"] == "invalid_task_transition"
    assert error["error"]["details"]["allowed"] == ["picking", "cancelled"]
    [after] = _tasks(client, shop, order["id"])
    assert (after["state"], after["history"]) == ("assigned", task["history"])


def test_an_associate_of_another_store_cannot_work_the_task(client, session, shop, make_key):
    # Given a task at Soho and an associate of the warehouse
    order = _place(client, session, shop, [("TEE-L", 1)], BOPIS)
    [task] = _tasks(client, shop, order["id"])
    other = make_key("store_associate", location_ids=[shop.wh])

    # When they try to start it
    error = _step(client, shop, task["id"], "start", headers=other, expect=403)

    # Then it is forbidden and the task is untouched
    assert error["error"]["code"] == "forbidden_location"
    assert _tasks(client, shop, order["id"])[0]["state"] == "assigned"


# --- shipping -------------------------------------------------------------------------------


def _pick_all(client, shop, task):
    _step(client, shop, task["id"], "start")
    lines = [{"sku": x["sku"], "picked": x["quantity"]} for x in task["lines"]]
    _step(client, shop, task["id"], "pick", {"lines": lines})
    _step(client, shop, task["id"], "pack")


def test_shipping_in_two_packages_gives_two_tracking_numbers_and_ships_the_order(
    client, session, shop
):
    # Given a delivery order of 2 tees and a mug, picked and packed at the warehouse
    order = _place(client, session, shop, [("TEE-M", 2), ("MUG", 1)], STANDARD)
    [task] = _tasks(client, shop, order["id"])
    _pick_all(client, shop, task)

    # When it ships in two boxes, one with a tracking number booked elsewhere
    shipment = _step(
        client,
        shop,
        task["id"],
        "ship",
        {
            "carrier": "manual",
            "service": "next_day",
            "packages": [
                {"lines": [{"sku": "TEE-M", "quantity": 2}], "weight_g": 400},
                {"lines": [{"sku": "MUG", "quantity": 1}], "tracking_number": "JD0001"},
            ],
        },
        expect=201,
    )

    # Then the shipment has two labelled packages and the order is shipped
    assert [p["number"] for p in shipment["packages"]] == [1, 2]
    assert shipment["packages"][1]["tracking_number"] == "JD0001"
    assert shipment["packages"][0]["tracking_number"].startswith("M")
    assert "TO:\n  Ada Lovelace" in shipment["packages"][0]["label"]["content"]
    assert _order(session, order["id"]).status == "shipped"
    assert stock(session, "TEE-M", shop.wh)["on_hand"] == 8
    assert stock(session, "MUG", shop.wh)["on_hand"] == 9
    [event] = _events(session, "shipment.shipped")
    assert (event["partial"], event["tracking_numbers"][1]) == (False, "JD0001")

    # And when the carrier reports delivery, the order is delivered
    tracked = client.post(
        f"/api/v1/shipments/{shipment['id']}/tracking",
        json={"status": "delivered"},
        headers=shop.admin,
    )
    assert tracked.status_code == 200, tracked.text
    assert tracked.json()["state"] == "delivered"
    assert _order(session, order["id"]).status == "delivered"


def test_packages_must_hold_exactly_what_was_picked(client, session, shop):
    # Given a packed task of 2 tees
    order = _place(client, session, shop, [("TEE-M", 2)], STANDARD)
    [task] = _tasks(client, shop, order["id"])
    _pick_all(client, shop, task)

    # When the packages hold only one
    error = _step(
        client,
        shop,
        task["id"],
        "ship",
        {"packages": [{"lines": [{"sku": "TEE-M", "quantity": 1}]}]},
        expect=422,
    )

    # Then nothing shipped and no stock left
    assert error["error"]["code"] == "packages_mismatch"
    assert session.scalar(select(func.count()).select_from(Shipment)) == 0
    assert stock(session, "TEE-M", shop.wh)["on_hand"] == 10
    assert _tasks(client, shop, order["id"])[0]["state"] == "packed"


def test_an_order_from_two_locations_ships_partially_then_fully(client, session, shop):
    # Given the web channel sources the warehouse, then the store, and an order of 12 tees
    _also_source_from_store(session, shop)
    order = _place(client, session, shop, [("TEE-M", 12)], STANDARD)
    tasks = {t["location_id"]: t for t in _tasks(client, shop, order["id"])}
    assert {k: t["lines"][0]["quantity"] for k, t in tasks.items()} == {shop.wh: 10, shop.store: 2}

    # When the warehouse parcel leaves first
    _pick_all(client, shop, tasks[shop.wh])
    _step(client, shop, tasks[shop.wh]["id"], "ship", {}, expect=201)

    # Then that shipment is partial and the order is still being fulfilled
    assert [e["partial"] for e in _events(session, "shipment.shipped")] == [True]
    assert _order(session, order["id"]).status == "fulfilling"
    assert stock(session, "TEE-M", shop.wh)["on_hand"] == 0
    assert stock(session, "TEE-M", shop.store)["allocated"] == 2

    # And when the store's parcel leaves too, the order is shipped
    _pick_all(client, shop, tasks[shop.store])
    _step(client, shop, tasks[shop.store]["id"], "ship", {}, expect=201)
    assert [e["partial"] for e in _events(session, "shipment.shipped")] == [True, False]
    assert _order(session, order["id"]).status == "shipped"
    assert stock(session, "TEE-M", shop.store)["on_hand"] == 3


# --- pick exceptions ------------------------------------------------------------------------


def test_a_pick_exception_writes_off_and_re_sources_from_another_location(client, session, shop):
    # Given the web channel sources the warehouse then the store, and a delivery order of 2
    _also_source_from_store(session, shop)
    order = _place(client, session, shop, [("TEE-M", 2)], STANDARD)
    [task] = _tasks(client, shop, order["id"])
    assert task["location_id"] == shop.wh
    _step(client, shop, task["id"], "start")

    # When the picker finds none of them
    outcome = _step(client, shop, task["id"], "pick", {"lines": [{"sku": "TEE-M", "picked": 0}]})

    # Then the 2 units are written off at the warehouse and re-sourced from the store
    assert outcome["short"] == {"TEE-M": 2}
    assert outcome["unavailable"] == {}
    assert outcome["task"]["state"] == "cancelled"
    [new] = outcome["resourced"]
    assert (new["location_id"], new["kind"], new["parent_id"]) == (shop.store, "ship", task["id"])
    assert [(x["sku"], x["quantity"]) for x in new["lines"]] == [("TEE-M", 2)]
    assert stock(session, "TEE-M", shop.wh) == {
        "on_hand": 8,
        "allocated": 0,
        "held": 0,
        "available": 8,
    }
    assert stock(session, "TEE-M", shop.store)["allocated"] == 2
    line = client.get(f"/api/v1/orders/{order['id']}", headers=shop.admin).json()["lines"][0]
    assert line["allocations"] == [{"location_id": shop.store, "quantity": 2}]
    assert inventory.verify(session).drift == []

    # And shipping the new task ships the order from the store
    _pick_all(client, shop, new)
    _step(client, shop, new["id"], "ship", {}, expect=201)
    assert _order(session, order["id"]).status == "shipped"
    assert stock(session, "TEE-M", shop.store)["on_hand"] == 3


def test_a_click_and_collect_short_at_the_store_comes_by_transfer(client, session, shop):
    # Given a click & collect order of 1 mug at Soho, and the warehouse also feeding the web
    _also_source_from_store(session, shop)
    order = _place(client, session, shop, [("MUG", 1)], BOPIS)
    [task] = _tasks(client, shop, order["id"])
    _step(client, shop, task["id"], "start", headers=shop.associate)

    # When the mug is not on Soho's shelf
    outcome = _step(
        client, shop, task["id"], "pick", {"lines": [{"sku": "MUG", "picked": 0}]}, shop.associate
    )

    # Then the warehouse sends it by transfer
    [transfer] = outcome["resourced"]
    assert (transfer["kind"], transfer["location_id"]) == ("transfer", shop.wh)
    _pick_all(client, shop, transfer)
    sent = _step(client, shop, transfer["id"], "ship", {}, expect=201)
    assert sent["kind"] == "transfer" and sent["destination"]["location_id"] == shop.store

    # And Soho gets a collect task that goes ready, then handed over, completing the order
    collect = [t for t in _tasks(client, shop, order["id"]) if t["kind"] == "collect"]
    assert [(t["location_id"], t["state"]) for t in collect] == [(shop.store, "assigned")]
    _step(client, shop, collect[0]["id"], "ready", headers=shop.associate)
    assert _order(session, order["id"]).status == "ready_for_pickup"
    # (the mug arrived: it left the warehouse's stock and waits in Soho's, still allocated)
    assert stock(session, "MUG", shop.wh) == {
        "on_hand": 9,
        "allocated": 0,
        "held": 0,
        "available": 9,
    }
    assert stock(session, "MUG", shop.store) == {
        "on_hand": 5,
        "allocated": 1,
        "held": 0,
        "available": 4,
    }
    body = client.get(f"/api/v1/orders/{order['id']}", headers=shop.admin).json()
    assert [x["allocations"] for x in body["lines"]] == [
        [{"location_id": shop.store, "quantity": 1}]
    ]
    _step(client, shop, collect[0]["id"], "hand-over", headers=shop.associate)
    assert _order(session, order["id"]).status == "picked_up"
    assert stock(session, "MUG", shop.wh)["on_hand"] == 9
    assert stock(session, "MUG", shop.store)["on_hand"] == 4  # the missing one written off


def test_a_transferred_pickup_not_collected_returns_its_unit_to_the_store(client, session, shop):
    # Given a click & collect mug that came to Soho by transfer and is ready there
    _also_source_from_store(session, shop)
    order = _place(client, session, shop, [("MUG", 1)], BOPIS)
    [task] = _tasks(client, shop, order["id"])
    _step(client, shop, task["id"], "start")
    [transfer] = _step(client, shop, task["id"], "pick", {"lines": [{"sku": "MUG", "picked": 0}]})[
        "resourced"
    ]
    _pick_all(client, shop, transfer)
    _step(client, shop, transfer["id"], "ship", {}, expect=201)
    [collect] = [t for t in _tasks(client, shop, order["id"]) if t["kind"] == "collect"]
    ready = _step(client, shop, collect["id"], "ready")

    # When the hold runs out
    expiry = check_timers(session, now=_when(ready["ready_at"]) + timedelta(hours=169))

    # Then the order is cancelled and the mug is sellable where it is, at Soho; the warehouse
    # is one down (it sent it), and the ledger still rebuilds every balance
    assert expiry.expired == [collect["id"]]
    assert _order(session, order["id"]).status == "cancelled"
    assert stock(session, "MUG", shop.store) == {
        "on_hand": 5,
        "allocated": 0,
        "held": 0,
        "available": 5,
    }
    assert stock(session, "MUG", shop.wh)["available"] == 9
    assert inventory.verify(session).drift == []


def test_units_found_nowhere_are_not_charged(client, session, shop):
    # Given a delivery order of 2 mugs sourced only from the warehouse (2 x 1200)
    order = _place(client, session, shop, [("MUG", 2)], STANDARD)
    [task] = _tasks(client, shop, order["id"])
    _step(client, shop, task["id"], "start")

    # When only one is found and no other location feeds the channel
    outcome = _step(client, shop, task["id"], "pick", {"lines": [{"sku": "MUG", "picked": 1}]})

    # Then the missing one is settled: its 1200 voided from the authorisation
    assert outcome["unavailable"] == {"MUG": 1}
    assert outcome["resourced"] == []
    [event] = _events(session, "order.items_unavailable")
    assert (event["quantity"], event["amount_minor"], event["voided_minor"]) == (1, 1200, 1200)
    body = client.get(f"/api/v1/orders/{order['id']}", headers=shop.admin).json()
    assert body["payment_totals"]["voided"] == 1200

    # And shipping the one found captures the rest only
    _step(client, shop, task["id"], "pack")
    _step(client, shop, task["id"], "ship", {}, expect=201)
    body = client.get(f"/api/v1/orders/{order['id']}", headers=shop.admin).json()
    assert body["payment_totals"]["captured"] == order["total"] - 1200
    assert stock(session, "MUG", shop.wh) == {
        "on_hand": 8,
        "allocated": 0,
        "held": 0,
        "available": 8,
    }


def test_a_pick_naming_an_unknown_line_is_a_422_and_writes_nothing(client, session, shop):
    # Given a task being picked
    order = _place(client, session, shop, [("MUG", 2)], STANDARD)
    [task] = _tasks(client, shop, order["id"])
    _step(client, shop, task["id"], "start")
    before = stock(session, "MUG", shop.wh)

    # When the pick names a SKU the task does not have (and forgets its own)
    error = _step(
        client, shop, task["id"], "pick", {"lines": [{"sku": "TEE-M", "picked": 1}]}, expect=422
    )

    # Then nothing moved
    assert error["error"]["code"] == "pick_lines_mismatch"
    assert error["error"]["details"] == {"unknown": ["TEE-M"], "missing": ["MUG"]}
    assert stock(session, "MUG", shop.wh) == before
    assert _tasks(client, shop, order["id"])[0]["state"] == "picking"


# --- timers ---------------------------------------------------------------------------------


def test_timers_flag_a_late_pick_once(client, session, shop):
    # Given a click & collect task due two hours after placement
    order = _place(client, session, shop, [("MUG", 1)], BOPIS)
    [task] = _tasks(client, shop, order["id"])
    late = _order(session, order["id"]).placed_at + timedelta(minutes=121)

    # When the timers run past the deadline, twice
    first = check_timers(session, now=late)
    second = check_timers(session, now=late + timedelta(minutes=5))

    # Then one overdue alert was sent
    assert (first.overdue, second.overdue) == ([task["id"]], [])
    assert [e["task_id"] for e in _events(session, "fulfillment.task_overdue")] == [task["id"]]


def test_an_order_not_collected_in_time_is_cancelled_and_its_stock_returns(client, session, shop):
    # Given a click & collect order ready at Soho (the hold is 168 hours)
    order = _place(client, session, shop, [("TEE-L", 1)], BOPIS)
    [task] = _tasks(client, shop, order["id"])
    for step, body in (
        ("start", None),
        ("pick", {"lines": [{"sku": "TEE-L", "picked": 1}]}),
        ("pack", None),
        ("ready", None),
    ):
        _step(client, shop, task["id"], step, body)
    ready_at = _tasks(client, shop, order["id"])[0]["ready_at"]
    assert stock(session, "TEE-L", shop.store)["available"] == 4
    start = _when(ready_at)

    # When the timers run a day before the end of the hold, then after it
    reminder = check_timers(session, now=start + timedelta(hours=150))
    expiry = check_timers(session, now=start + timedelta(hours=169))

    # Then the customer was reminded once, and the order is cancelled with its stock back
    assert reminder.reminded == [task["id"]]
    assert expiry.expired == [task["id"]]
    assert _order(session, order["id"]).status == "cancelled"
    assert stock(session, "TEE-L", shop.store)["available"] == 5
    assert _tasks(client, shop, order["id"])[0]["state"] == "cancelled"


@pytest.mark.parametrize("body", [{"pickup_hold_hours": 0}, {"pick_minutes": {"bopis": -5}}])
def test_bad_sla_settings_are_a_422_and_change_nothing(client, shop, body):
    before = client.get("/api/v1/fulfillment/sla", headers=shop.admin).json()
    response = client.put("/api/v1/fulfillment/sla", json=body, headers=shop.admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_duration"
    assert client.get("/api/v1/fulfillment/sla", headers=shop.admin).json() == before


def test_re_sourcing_uses_the_sourcing_engine_when_locations_have_coordinates(
    client, session, shop
):
    # Given Soho in London, the warehouse in Birmingham and a second warehouse in Manchester
    # that comes first in the web channel's sourcing rules, all holding mugs
    for location_id, lat, lon in (
        (shop.store, 51.5136, -0.1365),
        (shop.wh, 52.4862, -1.8904),
    ):
        inventory.update_location(session, location_id, {"latitude": lat, "longitude": lon})
    north = inventory.create_location(
        session,
        code="north",
        name="North",
        type="warehouse",
        timezone="Europe/London",
        capabilities=["ship"],
        latitude=53.4808,
        longitude=-2.2426,
        address={"country": "GB", "city": "Manchester"},
    )
    inventory.record_movement(session, location_id=north.id, reason="receipt", lines=[("MUG", 10)])
    inventory.set_channel_sourcing(
        session,
        "web",
        rules=[{"location_id": north.id}, {"location_id": shop.wh}, {"location_id": shop.store}],
    )
    session.commit()
    order = _place(client, session, shop, [("MUG", 1)], BOPIS)
    [task] = _tasks(client, shop, order["id"])
    _step(client, shop, task["id"], "start")

    # When Soho cannot find the mug
    outcome = _step(client, shop, task["id"], "pick", {"lines": [{"sku": "MUG", "picked": 0}]})

    # Then the engine sends it from the nearer Birmingham warehouse (not the first rule),
    # and its decision is stored against the order and task
    [transfer] = outcome["resourced"]
    assert (transfer["kind"], transfer["location_id"]) == ("transfer", shop.wh)
    decisions = client.get(
        "/api/v1/sourcing/decisions",
        params={"reference": f"{order['id']}/{task['id']}"},
        headers=shop.admin,
    ).json()
    assert [d["packages"][0]["location_id"] for d in decisions] == [shop.wh]
    assert stock(session, "MUG", north.id)["allocated"] == 0


def test_a_curbside_customer_arriving_puts_their_task_first_with_the_bay(client, session, shop):
    # Given two curbside orders at Soho, the second placed later (due later)
    curbside = {
        "delivery": [
            {
                "method": "curbside",
                "location_id": shop.store,
                "vehicle": {"plate": "AB12 CDE", "color": "blue"},
            }
        ]
    }
    first = _place(client, session, shop, [("MUG", 1)], curbside)
    second = _place(client, session, shop, [("TEE-M", 1)], curbside)
    queue = client.get(
        "/api/v1/fulfillment/tasks", params={"location": shop.store}, headers=shop.associate
    ).json()
    assert [t["order_id"] for t in queue] == [first["id"], second["id"]]

    # When the second customer checks in at bay 3
    arrived = client.post(
        f"/api/v1/orders/{second['id']}/check-in",
        json={"bay": "3"},
        headers={**shop.web_key, "X-Order-Token": second["order_token"]},
    )
    assert arrived.status_code == 200, arrived.text
    dispatch_pending(session)

    # Then their task comes first and says where they wait
    queue = client.get(
        "/api/v1/fulfillment/tasks", params={"location": shop.store}, headers=shop.associate
    ).json()
    assert [t["order_id"] for t in queue] == [second["id"], first["id"]]
    assert queue[0]["history"][-1]["note"] == "customer arrived (bay 3, AB12 CDE blue)"


def test_a_task_of_a_cancelled_order_cannot_be_started(client, session, shop):
    # Given an order cancelled before its cancellation reached the store's queue
    order = _place(client, session, shop, [("MUG", 1)], STANDARD)
    [task] = _tasks(client, shop, order["id"])
    cancelled = client.post(f"/api/v1/orders/{order['id']}/cancel", json={}, headers=shop.admin)
    assert cancelled.status_code == 200, cancelled.text

    # When the picker starts the task
    error = _step(client, shop, task["id"], "start", expect=409)

    # Then they are told to put the items back and the task did not start
    assert error["error"]["code"] == "order_cancelled"
    assert _tasks(client, shop, order["id"])[0]["state"] == "assigned"
    dispatch_pending(session)
    assert _tasks(client, shop, order["id"])[0]["state"] == "cancelled"


def test_an_order_edited_before_picking_gets_tasks_for_its_new_lines(client, session, shop):
    # Given a delivery order of 2 tees and a mug whose task is still untouched
    order = _place(client, session, shop, [("TEE-M", 2), ("MUG", 1)], STANDARD)
    [old] = _tasks(client, shop, order["id"])

    # When customer service changes the tees to one (the mug stays)
    edited = client.patch(
        f"/api/v1/orders/{order['id']}",
        json={"lines": [{"sku": "TEE-M", "quantity": 1}]},
        headers=shop.admin,
    )
    assert edited.status_code == 200, edited.text
    dispatch_pending(session)

    # Then the old task is cancelled and the new one asks for what the order now holds
    tasks = {t["id"]: t for t in _tasks(client, shop, order["id"])}
    assert tasks[old["id"]]["state"] == "cancelled"
    [new] = [t for t in tasks.values() if t["state"] == "assigned"]
    assert sorted((x["sku"], x["quantity"]) for x in new["lines"]) == [("MUG", 1), ("TEE-M", 1)]
