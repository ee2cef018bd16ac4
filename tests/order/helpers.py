"""A small shop for order tests: every value a test depends on is visible here.

* channels ``web`` and ``app`` (GBP, GB), ``market`` (marketplace), ``shop-floor`` (stores);
* a warehouse ``wh`` (10 of each SKU), a store ``soho`` (5 of each; pickup, curbside,
  ship-from-store, same-day, returns) and a parcel locker ``locker-1``;
* prices: TEE-M 2000, TEE-L 2000, MUG 1200 (GBP minor units) on every channel;
* tax: GB 20 % included in prices; shipping: standard 495 (free from 5000), express 995,
  same_day 1495, locker 295, ship_from_store 495; bopis and curbside are free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.customer import service as customers
from omniretail.inventory import service as inventory
from omniretail.order import payments as pay
from omniretail.order import rates
from omniretail.order.models import (
    GatewayCharge,
    Order,
    OrderLine,
    Payment,
    PosDiscrepancy,
    PosSale,
    Refund,
    ReturnAuthorization,
)
from omniretail.pricing import service as pricing
from omniretail.pricing.service import PriceInput

PRICES = {"TEE-M": 2000, "TEE-L": 2000, "MUG": 1200}
BARCODES = {"TEE-M": "4006381333931", "TEE-L": "5901234123457", "MUG": "9780201379624"}
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Market Street",
    "city": "London",
    "postal_code": "EC1A 1BB",
    "country": "GB",
}
GB = {"country": "GB", "city": "London"}


@dataclass
class Shop:
    web: str
    app: str
    market: str
    floor: str
    wh: str
    store: str
    locker: str
    web_key: dict[str, str]
    app_key: dict[str, str]
    market_key: dict[str, str]
    admin: dict[str, str]
    associate: dict[str, str]


def build_shop(session: Session, make_key: Any) -> Shop:
    ids = {}
    for code, type_ in (
        ("web", "web"),
        ("app", "app"),
        ("market", "marketplace"),
        ("shop-floor", "store"),
    ):
        ids[code] = catalog.create_channel(
            session,
            code=code,
            name=code.title(),
            type=type_,
            currency="GBP",
            country="GB",
            locale="en-GB",
        ).id
    book = pricing.create_price_book(session, code="gbp", name="GBP", currency="GBP")
    for channel_id in ids.values():
        pricing.assign_price_book(session, book.id, channel_id)
    catalog.create_product(
        session,
        title="Organic tee",
        variants=[
            {"sku": "TEE-M", "title": "Organic tee M", "barcode": BARCODES["TEE-M"]},
            {"sku": "TEE-L", "title": "Organic tee L", "barcode": BARCODES["TEE-L"]},
        ],
    )
    catalog.create_product(
        session, title="Mug", variants=[{"sku": "MUG", "title": "Mug", "barcode": BARCODES["MUG"]}]
    )
    pricing.upsert_prices(session, book.id, [PriceInput(s, a) for s, a in PRICES.items()])
    wh = inventory.create_location(
        session,
        code="wh",
        name="Warehouse",
        type="warehouse",
        timezone="Europe/London",
        capabilities=["ship", "returns"],
        address=GB,
    )
    store = inventory.create_location(
        session,
        code="soho",
        name="Soho",
        type="store",
        timezone="Europe/London",
        capabilities=["pickup", "curbside", "ship_from_store", "same_day", "returns"],
        address=GB,
    )
    locker = inventory.create_location(
        session,
        code="locker-1",
        name="Locker 1",
        type="locker",
        timezone="Europe/London",
        capabilities=["pickup"],
        address=GB,
    )
    for loc, qty in ((wh.id, 10), (store.id, 5)):
        inventory.record_movement(
            session, location_id=loc, reason="receipt", lines=[(s, qty) for s in PRICES]
        )
    # Online channels ship from the warehouse; the store sells its own shelf.
    for code in ("web", "app", "market"):
        inventory.set_channel_sourcing(session, code, rules=[{"location_id": wh.id}])
    inventory.set_channel_sourcing(session, "shop-floor", rules=[{"location_id": store.id}])
    rates.set_tax_rate(session, country="GB", region=None, rate_bp=2000, inclusive=True)
    for method, amount, free_over in (
        ("standard", 495, 5000),
        ("express", 995, None),
        ("same_day", 1495, None),
        ("locker", 295, None),
        ("ship_from_store", 495, None),
    ):
        rates.set_shipping_rate(session, method=method, amount=amount, free_over=free_over)
    session.commit()
    return Shop(
        web=ids["web"],
        app=ids["app"],
        market=ids["market"],
        floor=ids["shop-floor"],
        wh=wh.id,
        store=store.id,
        locker=locker.id,
        web_key=make_key("channel", channel_id=ids["web"]),
        app_key=make_key("channel", channel_id=ids["app"]),
        market_key=make_key("channel", channel_id=ids["market"]),
        admin=make_key("admin"),
        associate=make_key("store_associate", location_ids=[store.id]),
    )


def make_customer(session: Session, email: str) -> str:
    cid = customers.create_customer(session, customers.NewCustomer(email=email), actor="test")
    session.commit()
    return cid


def gift_card(session: Session, amount: int, code: str = "GC-TEST-0001") -> str:
    pay.issue_gift_card(session, amount=amount, currency="GBP", code=code)
    session.commit()
    return code


def count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def stock(session: Session, sku: str, location_id: str) -> dict[str, int]:
    b = inventory.stock_balance(session, sku, location_id)
    return {
        "on_hand": b.on_hand,
        "allocated": b.allocated,
        "held": b.held,
        "available": b.available,
    }


def state(session: Session) -> dict[str, Any]:
    """What a failed call must leave unchanged."""
    return {
        "orders": count(session, Order),
        "lines": count(session, OrderLine),
        "payments": count(session, Payment),
        "refunds": count(session, Refund),
        "charges": count(session, GatewayCharge),
        "returns": count(session, ReturnAuthorization),
        "pos_sales": count(session, PosSale),
        "discrepancies": count(session, PosDiscrepancy),
        "stock": [
            (b.sku, b.location_id, b.on_hand, b.allocated, b.held)
            for b in inventory.stock_balances(session)
        ],
        "gift_cards": sorted(
            session.execute(select(pay.ACCOUNTS.c.id, pay.ACCOUNTS.c.balance)).all()
        ),
    }


def with_token(headers: dict[str, str], token: str, name: str = "X-Cart-Token") -> dict[str, str]:
    return {**headers, name: token}


def start_cart(client, shop: Shop, lines: list[tuple[str, int]], key: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/v1/carts",
        json={"lines": [{"sku": s, "quantity": q} for s, q in lines]},
        headers=key or shop.web_key,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["cart_token"]


def checkout(client, shop: Shop, cart_id: str, token: str, body: dict[str, Any], key=None):  # type: ignore[no-untyped-def]
    return client.put(
        f"/api/v1/carts/{cart_id}/checkout",
        json=body,
        headers=with_token(key or shop.web_key, token),
    )


def complete(client, shop: Shop, cart_id: str, token: str, tenders=None, key=None, idem=None):  # type: ignore[no-untyped-def]
    headers = with_token(key or shop.web_key, token)
    if idem:
        headers["Idempotency-Key"] = idem
    return client.post(
        f"/api/v1/carts/{cart_id}/complete",
        json={"tenders": tenders or [{"type": "card", "token": "tok_visa"}]},
        headers=headers,
    )
