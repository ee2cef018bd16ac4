"""Small factories for customer tests."""

from __future__ import annotations

import itertools
from typing import Any

from omniretail.customer import service
from tests.customer.conftest import basic

_ids = itertools.count(1)


def send(client, key: str, *events: dict[str, Any]) -> None:
    batch = [{"messageId": f"msg-{next(_ids)}", **e} for e in events]
    response = client.post("/v1/batch", json={"batch": batch}, headers=basic(key))
    assert response.status_code == 200, response.text


def track(event: str = "Page Scrolled", **ids: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, **ids}


def identify(user_id: str, anonymous_id: str | None = None, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user_id, "anonymousId": anonymous_id, "traits": traits}


def customer_of(session, kind: str, value: str) -> str | None:
    return service.find_customer_id(session, kind, value)


def create_customer(session, **fields: Any) -> str:
    addresses = fields.pop("addresses", [])
    data = service.NewCustomer(**fields, addresses=addresses)
    cid = service.create_customer(session, data, actor="test")
    session.flush()
    return cid
