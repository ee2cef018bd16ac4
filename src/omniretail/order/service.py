"""Carts, checkout and the order lifecycle. *Public interface* of the order context for the
contexts above it (fulfilment, analytics): :func:`get_order`, :func:`order_lines`,
:func:`transition`, :func:`cancel_order`, :func:`capture_order`, :func:`customer_orders`.

* A cart belongs to a customer (or, anonymous, to whoever holds its token), not to a channel:
  every channel can read and change it, and it remembers the channel that touched it last.
* Each delivery group of a cart holds its stock with one inventory reservation; a change to
  the cart re-reserves the groups it touched and re-prices the whole cart through the pricing
  service, so the cart always shows what checkout will charge.
* ``complete`` is one transaction: claim the cart, re-price, assess fraud, turn the holds into
  allocations, redeem coupons, authorise the tenders, write the order with its lines and
  payments and the events. Any failure rolls all of it back.

Services flush, never commit.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import String, Table, and_, bindparam, delete, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.catalog.domain import ChannelInfo
from omniretail.core.errors import AppError, conflict, invalid, not_found
from omniretail.core.events import emit
from omniretail.core.ids import new_id
from omniretail.core.money import div_half_up
from omniretail.core.timeutil import as_utc, utcnow
from omniretail.customer import service as customers
from omniretail.inventory import service as inventory
from omniretail.order import payments as pay
from omniretail.order import rates
from omniretail.order.domain import (
    ADDRESS_METHODS,
    EDITABLE,
    LOCATION_RULES,
    PICKUP_METHODS,
    STORE_STOCK_METHODS,
    DeliveryMethod,
    FraudAssessment,
    FraudSignals,
    OrderStatus,
    ShippingRate,
    TaxRule,
    TenderRequest,
    allocate_tenders,
    assess_fraud,
    assign_groups,
    check_group_cover,
    check_location_for,
    check_transition,
    parse_method,
    pick_shipping_rate,
    pick_tax_rule,
    shipping_for,
    taxed,
    validate_address,
    validate_vehicle,
)
from omniretail.order.models import Cart, CartToken, Order, OrderLine, Payment
from omniretail.pricing import service as pricing

CARTS = cast(Table, Cart.__table__)
TOKENS = cast(Table, CartToken.__table__)
ORDERS = cast(Table, Order.__table__)
LINES = cast(Table, OrderLine.__table__)
MAX_CART_LINES = 100
MAX_QUANTITY = 999
S = OrderStatus


def _now(now: datetime | None) -> datetime:
    return utcnow() if now is None else as_utc(now)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- access ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """Who opens a cart or an order. Staff (secret keys, console users) open any; a storefront
    (publishable channel key) needs the cart's or the order's token and acts for its channel."""

    staff: bool
    channel_id: str | None = None
    token: str | None = None

    @classmethod
    def staff_member(cls) -> Access:
        return cls(staff=True)


def _token_match(cart_id_col: Any, token: str | None) -> Any:
    if token is None:
        return false()
    return (
        select(TOKENS.c.cart_id)
        .where(TOKENS.c.cart_id == cart_id_col, TOKENS.c.token_hash == token_hash(token))
        .exists()
    )


def load_cart(session: Session, cart_id: str, access: Access, *, lock: bool = False) -> Cart:
    """A cart the caller may open; an unknown cart and a wrong token are the same 404."""
    query = select(Cart).where(Cart.id == cart_id)
    if not access.staff:
        query = query.where(_token_match(Cart.id, access.token))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    cart = session.scalar(query)
    if cart is None:
        raise not_found("cart", cart_id)
    return cart


def customer_of_token(session: Session, token: str) -> str | None:
    """The customer whose cart this token opens (a signed-in storefront session)."""
    return session.scalar(
        select(Cart.customer_id)
        .join(CartToken, CartToken.cart_id == Cart.id)
        .where(CartToken.token_hash == token_hash(token))
    )


def _active(cart: Cart) -> Cart:
    if cart.status != "active":
        raise conflict(
            "cart_not_active",
            f"cart {cart.id} is {cart.status}",
            status=cart.status,
            order_id=cart.order_id,
            merged_into=cart.merged_into,
        )
    return cart


def _issue_token(session: Session, cart_id: str, channel_id: str, now: datetime) -> str:
    token = "ctk_" + secrets.token_urlsafe(24)
    session.add(
        CartToken(
            token_hash=token_hash(token), cart_id=cart_id, channel_id=channel_id, created_at=now
        )
    )
    return token


def _channel(session: Session, access: Access, fallback: str | None) -> ChannelInfo:
    ref = access.channel_id or fallback
    if not ref:
        raise invalid("channel_required", "give the channel (id or code)")
    channel = catalog.get_channel(session, ref)
    if not channel.active:
        raise conflict("channel_inactive", f"channel {channel.code!r} is not active")
    return channel


# --- carts ----------------------------------------------------------------------------------


def clean_lines(lines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Lines merged per SKU (``{sku, quantity, title, variant_id}``) within the limits."""
    merged: dict[str, dict[str, Any]] = {}
    for line in lines:
        sku, quantity = str(line["sku"]).strip(), line["quantity"]
        if not sku:
            raise invalid("invalid_sku", "a line needs a SKU")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise invalid("invalid_quantity", "quantities are whole numbers >= 1", sku=sku)
        if sku in merged:
            merged[sku]["quantity"] += quantity
        else:
            merged[sku] = {**line, "sku": sku, "quantity": quantity}
    for sku, line in merged.items():
        if line["quantity"] > MAX_QUANTITY:
            raise invalid("invalid_quantity", f"at most {MAX_QUANTITY} per line", sku=sku)
    if len(merged) > MAX_CART_LINES:
        raise invalid("too_many_lines", f"a cart holds at most {MAX_CART_LINES} lines")
    return list(merged.values())


def describe(session: Session, lines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Fill in the title and variant id of lines that lack them (404 for unknown SKUs, 422
    for products that are not for sale)."""
    missing = [line["sku"] for line in lines if "variant_id" not in line]
    if not missing:
        return [dict(line) for line in lines]
    facts = catalog.require_variants(session, missing)
    closed = sorted(s for s in missing if facts[s].status != "active")
    if closed:
        raise invalid("sku_not_sellable", f"not for sale: {', '.join(closed)}", skus=closed)
    out = []
    for line in lines:
        f = facts.get(line["sku"])
        out.append(
            {**line, "title": f.title, "variant_id": f.variant_id} if f is not None else dict(line)
        )
    return out


def _check_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 320 or " " in email:
        raise invalid("invalid_email", f"{email!r} is not an email address")
    return email


def create_cart(
    session: Session,
    access: Access,
    *,
    channel: str | None = None,
    customer_id: str | None = None,
    email: str | None = None,
    lines: Sequence[tuple[str, int]] = (),
    anonymous_id: str | None = None,
    now: datetime | None = None,
) -> tuple[Cart, str]:
    """A new cart (anonymous unless ``customer_id``); returns it and its secret token. A known
    customer who already has an active cart gets that cart back (the cart follows the
    customer), with the new lines added. ``anonymous_id``: the shopper's tracking
    anonymousId, carried to the order so a guest's order converts their tracked visit."""
    at = _now(now)
    info = _channel(session, access, channel)
    anonymous_id = (anonymous_id or "").strip() or None
    if customer_id is not None:
        cart, token = login(session, access, customer_id=customer_id, channel=info.id, now=at)
        if lines:
            cart = _change_lines(session, cart, info, list(lines), mode="add", now=at)
        if email and not cart.email:
            cart.email = _check_email(email)
        if anonymous_id and not cart.anonymous_id:
            cart.anonymous_id = anonymous_id
        return cart, token
    cart = Cart(
        id=new_id("crt"),
        status="active",
        customer_id=None,
        channel_id=info.id,
        currency=info.currency,
        lines=[],
        coupon_codes=[],
        email=_check_email(email),
        anonymous_id=anonymous_id,
        delivery=[],
        holds=[],
        pricing=_empty_pricing(info.currency),
        version=1,
        created_at=at,
        updated_at=at,
    )
    session.add(cart)
    session.flush()
    token = _issue_token(session, cart.id, info.id, at)
    if lines:
        _change_lines(session, cart, info, list(lines), mode="add", now=at)
    session.flush()
    return cart, token


def get_cart(session: Session, cart_id: str, access: Access) -> Cart:
    return load_cart(session, cart_id, access)


def _change_lines(
    session: Session,
    cart: Cart,
    channel: ChannelInfo,
    changes: list[tuple[str, int]],
    *,
    mode: str,
    now: datetime,
) -> Cart:
    current = {line["sku"]: dict(line) for line in cart.lines}
    for sku, quantity in changes:
        sku = sku.strip()
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise invalid("invalid_quantity", "quantities are whole numbers", sku=sku)
        if mode == "add":
            if quantity < 1:
                raise invalid("invalid_quantity", "add at least one unit", sku=sku)
            line = current.setdefault(sku, {"sku": sku, "quantity": 0})
            line["quantity"] += quantity
        else:
            if quantity < 0:
                raise invalid("invalid_quantity", "quantities are >= 0", sku=sku)
            if quantity == 0:
                current.pop(sku, None)
            else:
                current.setdefault(sku, {"sku": sku, "quantity": 0})["quantity"] = quantity
    cart.lines = describe(session, clean_lines(list(current.values())))
    _refresh(session, cart, channel, now)
    return cart


def add_items(
    session: Session,
    cart_id: str,
    access: Access,
    items: Sequence[tuple[str, int]],
    now: datetime | None = None,
) -> Cart:
    """Add units (summed with what the cart has); stock is held and the cart re-priced."""
    at = _now(now)
    cart = _active(load_cart(session, cart_id, access, lock=True))
    info = _touch(session, cart, access)
    return _change_lines(session, cart, info, list(items), mode="add", now=at)


def set_quantity(
    session: Session,
    cart_id: str,
    access: Access,
    sku: str,
    quantity: int,
    now: datetime | None = None,
) -> Cart:
    """Set a line's quantity; 0 removes the line."""
    at = _now(now)
    cart = _active(load_cart(session, cart_id, access, lock=True))
    if quantity == 0 and sku not in {line["sku"] for line in cart.lines}:
        raise not_found("cart_line", sku)
    info = _touch(session, cart, access)
    return _change_lines(session, cart, info, [(sku, quantity)], mode="set", now=at)


def set_coupons(
    session: Session,
    cart_id: str,
    access: Access,
    codes: Sequence[str],
    now: datetime | None = None,
) -> Cart:
    """Replace the cart's coupon codes (checked now; redeemed at checkout)."""
    at = _now(now)
    cart = _active(load_cart(session, cart_id, access, lock=True))
    info = _touch(session, cart, access)
    wanted = list(dict.fromkeys(c.strip().upper() for c in codes if c.strip()))
    pricing.check_coupons(session, wanted, cart.customer_id, at)
    cart.coupon_codes = wanted
    _refresh(session, cart, info, at, holds=False)
    return cart


_UNSET: Any = object()


def set_checkout(
    session: Session,
    cart_id: str,
    access: Access,
    *,
    email: str | None = _UNSET,
    shipping_address: Mapping[str, Any] | None = _UNSET,
    billing_address: Mapping[str, Any] | None = _UNSET,
    delivery: Sequence[Mapping[str, Any]] | None = None,
    now: datetime | None = None,
) -> Cart:
    """Contact, addresses and a delivery method per group of lines. Addresses are checked at
    once (422 ``invalid_address``); groups with a store, locker or ship-from-store location
    re-reserve their stock there; the cart is re-priced with shipping and taxes."""
    at = _now(now)
    cart = _active(load_cart(session, cart_id, access, lock=True))
    info = _touch(session, cart, access)
    if email is not _UNSET:
        cart.email = _check_email(email)
    if shipping_address is not _UNSET:
        cart.shipping_address = (
            validate_address(shipping_address, "shipping address")
            if shipping_address is not None
            else None
        )
    if billing_address is not _UNSET:
        cart.billing_address = (
            validate_address(billing_address, "billing address")
            if billing_address is not None
            else None
        )
    if delivery is not None:
        cart.delivery = _delivery_groups(session, cart, delivery)
    _check_addresses(cart.delivery, cart.shipping_address)
    _refresh(session, cart, info, at)
    return cart


def _delivery_groups(
    session: Session, cart: Cart, raw: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    skus = [line["sku"] for line in cart.lines]
    if not raw:
        raise invalid("delivery_required", "give at least one delivery group")
    groups: list[dict[str, Any]] = []
    for i, g in enumerate(raw, start=1):
        method = parse_method(str(g.get("method")))
        group: dict[str, Any] = {
            "id": f"g{i}",
            "method": method.value,
            "skus": list(g.get("skus") or (skus if len(raw) == 1 else [])),
        }
        location_id = g.get("location_id")
        if method in LOCATION_RULES or (method is DeliveryMethod.SAME_DAY and location_id):
            if not location_id:
                raise invalid(
                    "location_required", f"{method.value} needs a location", method=method.value
                )
            loc = inventory.get_location(session, str(location_id))
            if not loc.active:
                raise conflict("location_inactive", f"location {loc.code!r} is not active")
            if method in LOCATION_RULES:
                check_location_for(method, loc.type, list(loc.capabilities or []))
            address = dict(loc.address or {})
            group["location"] = {
                "id": loc.id,
                "code": loc.code,
                "name": loc.name,
                "type": loc.type,
                "country": str(address.get("country") or "").upper() or None,
                "region": address.get("region"),
            }
        if g.get("address") is not None:
            if method not in ADDRESS_METHODS:
                raise invalid(
                    "address_not_allowed",
                    f"{method.value} is collected at a location, not delivered to an address",
                )
            group["address"] = validate_address(g["address"], "delivery address")
        if method is DeliveryMethod.CURBSIDE:
            group["vehicle"] = validate_vehicle(g.get("vehicle"))
        groups.append(group)
    check_group_cover(groups, skus)
    return groups


def _check_addresses(groups: Sequence[Mapping[str, Any]], shipping: Any) -> None:
    for g in groups:
        method = g.get("method")
        if method in ADDRESS_METHODS and not g.get("address") and not shipping:
            raise invalid(
                "shipping_address_required",
                f"{method} needs a shipping address",
                group=g["id"],
            )


def _touch(session: Session, cart: Cart, access: Access) -> ChannelInfo:
    """The cart moves to the calling storefront's channel (the channel that touched it
    last); its currency follows the channel."""
    info = _channel(session, access, cart.channel_id)
    cart.channel_id = info.id
    cart.currency = info.currency
    return info


# --- holds and quotes -----------------------------------------------------------------------


def _stock_location(group: Mapping[str, Any]) -> str | None:
    method = group.get("method")
    location = group.get("location") or {}
    if method in {m.value for m in STORE_STOCK_METHODS} or (
        method == DeliveryMethod.SAME_DAY.value and location
    ):
        return cast(str, location["id"])
    return None


def _group_items(cart_lines: Sequence[Mapping[str, Any]], group: Mapping[str, Any]) -> list[Any]:
    wanted = set(group["skus"])
    return [(line["sku"], line["quantity"]) for line in cart_lines if line["sku"] in wanted]


def _signature(group: Mapping[str, Any], items: Sequence[tuple[str, int]]) -> str:
    return f"{_stock_location(group) or '*'}|" + ",".join(f"{s}x{q}" for s, q in sorted(items))


def _reserve(
    session: Session,
    channel: ChannelInfo,
    group: Mapping[str, Any],
    items: Sequence[tuple[str, int]],
    reference: str,
    now: datetime,
    kind: str = "cart",
) -> dict[str, Any]:
    location = _stock_location(group)
    if location is None:
        view = inventory.reserve(
            session, list(items), channel=channel.id, reference=reference, kind=kind, now=now
        )
    else:
        ttl = inventory.channel_context(session, channel.id).ttl_seconds
        view = inventory.reserve(
            session,
            list(items),
            locations=[location],
            ttl_seconds=ttl,
            reference=reference,
            kind=kind,
            now=now,
        )
    assert view.expires_at is not None
    return {
        "group": group["id"],
        "reservation_id": view.id,
        "signature": _signature(group, items),
        "expires_at": view.expires_at.isoformat(),
    }


def _release(session: Session, reservation_id: str, now: datetime) -> None:
    inventory.release_reservation(session, reservation_id, now=now)


def _sync_holds(session: Session, cart: Cart, channel: ChannelInfo, now: datetime) -> None:
    """One live reservation per delivery group for exactly the group's lines. Unchanged live
    holds are kept; changed, expired or orphaned ones are released and reserved anew."""
    current = {h["group"]: h for h in cart.holds}
    kept: list[dict[str, Any]] = []
    try:
        for group in cart.delivery:
            items = _group_items(cart.lines, group)
            hold = current.pop(group["id"], None)
            if (
                hold is not None
                and hold["signature"] == _signature(group, items)
                and datetime.fromisoformat(hold["expires_at"]) > now
            ):
                kept.append(hold)
                continue
            if hold is not None:
                _release(session, hold["reservation_id"], now)
            kept.append(_reserve(session, channel, group, items, cart.id, now))
        for hold in current.values():
            _release(session, hold["reservation_id"], now)
        current = {}
    finally:
        cart.holds = kept + list(current.values())


def _refresh(
    session: Session, cart: Cart, channel: ChannelInfo, now: datetime, holds: bool = True
) -> None:
    cart.delivery = assign_groups(cart.delivery, [line["sku"] for line in cart.lines])
    if holds:
        _sync_holds(session, cart, channel, now)
    if cart.lines:
        quote = make_quote(
            session,
            channel=channel,
            lines=cart.lines,
            groups=cart.delivery,
            customer_id=cart.customer_id,
            coupons=cart.coupon_codes,
            shipping_address=cart.shipping_address,
            now=now,
        )
        cart.pricing = quote.snapshot()
    else:
        cart.pricing = _empty_pricing(channel.currency)
    cart.version += 1
    cart.updated_at = now
    if cart.customer_id or cart.email:  # someone who can be reminded of an abandoned cart
        emit(
            session,
            "cart.updated",
            {
                "cart_id": cart.id,
                "customer_id": cart.customer_id,
                "channel_id": channel.id,
                "currency": cart.currency,
                "total_minor": cart.pricing["total"],
                "lines": [{"sku": li["sku"], "quantity": li["quantity"]} for li in cart.lines],
                "occurred_at": now.isoformat(),
            },
            aggregate_id=cart.id,
        )
    session.flush()


def _empty_pricing(currency: str) -> dict[str, Any]:
    return {
        "currency": currency,
        "lines": [],
        "groups": [],
        "subtotal": 0,
        "discount_total": 0,
        "shipping_total": 0,
        "tax_total": 0,
        "total": 0,
        "promotions": [],
    }


@dataclass
class QuoteLine:
    sku: str
    title: str
    variant_id: str | None
    group_id: str
    quantity: int
    unit_price: int
    subtotal: int
    discount: int
    tax: int
    total: int


@dataclass
class GroupQuote:
    id: str
    method: str | None
    shipping: int  # after shipping discounts, before tax when exclusive
    shipping_tax: int
    tax_country: str | None


@dataclass
class Quote:
    currency: str
    lines: list[QuoteLine]
    groups: list[GroupQuote]
    subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int
    total: int
    promotions: list[dict[str, Any]] = field(default_factory=list)
    coupons: list[str] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "lines": [vars(line) for line in self.lines],
            "groups": [vars(g) for g in self.groups],
            "subtotal": self.subtotal,
            "discount_total": self.discount_total,
            "shipping_total": self.shipping_total,
            "tax_total": self.tax_total,
            "total": self.total,
            "promotions": self.promotions,
        }


def _destination(
    group: Mapping[str, Any], shipping_address: Mapping[str, Any] | None, channel: ChannelInfo
) -> tuple[str, str | None]:
    """Where the goods are handed over (the tax place): the delivery address for home
    methods, the store or locker for collection, the channel's country when unknown."""
    method = group.get("method")
    if method in ADDRESS_METHODS or method is None:
        address = group.get("address") or shipping_address
        if address:
            return address["country"], address.get("region")
    location = group.get("location") or {}
    if location.get("country"):
        return location["country"], location.get("region")
    return channel.country, None


def make_quote(
    session: Session,
    *,
    channel: ChannelInfo,
    lines: Sequence[Mapping[str, Any]],
    groups: Sequence[Mapping[str, Any]],
    customer_id: str | None,
    coupons: Sequence[str],
    shipping_address: Mapping[str, Any] | None,
    now: datetime,
    shipping_rates: list[ShippingRate] | None = None,
) -> Quote:
    """Price lines through the pricing service (promotions, coupons), then shipping per group
    (rates, free-over thresholds, free-shipping promotions) and taxes per destination."""
    evaluation = pricing.evaluate_cart(
        session,
        channel=channel,
        lines=[pricing.LineInput(line["sku"], line["quantity"]) for line in lines],
        customer_id=customer_id,
        coupon_codes=list(coupons),
        at=now,
    )
    ev = evaluation.evaluation
    group_of = {sku: g["id"] for g in groups for sku in g["skus"]}
    destinations = {g["id"]: _destination(g, shipping_address, channel) for g in groups}
    needs_rates = shipping_rates is None and any(g.get("method") for g in groups)
    rules, loaded = rates.checkout_settings(
        session, {c for c, _ in destinations.values()}, channel.id if needs_rates else None
    )
    ship_rates = shipping_rates if shipping_rates is not None else loaded
    rule_of: dict[str, TaxRule | None] = {
        gid: pick_tax_rule(rules, country, region)
        for gid, (country, region) in destinations.items()
    }
    net_by_group: dict[str, int] = {}
    for result in ev.lines:
        gid = group_of.get(result.sku, "g1")
        net_by_group[gid] = net_by_group.get(gid, 0) + result.total
    shipping_before: dict[str, int] = {}
    for g in groups:
        method = g.get("method")
        if method is None:
            shipping_before[g["id"]] = 0
            continue
        country = destinations[g["id"]][0]
        rate = pick_shipping_rate(ship_rates, method, channel.id, country)
        amount = shipping_for(DeliveryMethod(method), rate, net_by_group.get(g["id"], 0))
        if amount is None:
            raise invalid(
                "delivery_method_unavailable",
                f"{method} is not offered to {country} on channel {channel.code!r}",
                method=method,
                country=country,
            )
        shipping_before[g["id"]] = amount
    shipping_discount = sum(shipping_before.values()) if ev.free_shipping else 0
    described = {line["sku"]: line for line in lines}
    quote_lines: list[QuoteLine] = []
    tax_total = 0
    total = 0
    for result in ev.lines:
        gid = group_of.get(result.sku, "g1")
        t = taxed(result.total, rule_of.get(gid))
        tax_total += t.tax
        total += t.gross
        quote_lines.append(
            QuoteLine(
                sku=result.sku,
                title=described.get(result.sku, {}).get("title", ""),
                variant_id=described.get(result.sku, {}).get("variant_id"),
                group_id=gid,
                quantity=result.quantity,
                unit_price=result.unit_price,
                subtotal=result.subtotal,
                discount=result.discount_total,
                tax=t.tax,
                total=t.gross,
            )
        )
    group_quotes: list[GroupQuote] = []
    shipping_total = 0
    for g in groups:
        net = 0 if ev.free_shipping else shipping_before[g["id"]]
        t = taxed(net, rule_of.get(g["id"]))
        tax_total += t.tax
        total += t.gross
        shipping_total += net
        group_quotes.append(
            GroupQuote(g["id"], g.get("method"), net, t.tax, destinations[g["id"]][0])
        )
    return Quote(
        currency=channel.currency,
        lines=quote_lines,
        groups=group_quotes,
        subtotal=ev.subtotal,
        discount_total=ev.item_discount_total + shipping_discount,
        shipping_total=shipping_total,
        tax_total=tax_total,
        total=total,
        promotions=[
            {
                "promotion_id": n.promotion_id,
                "name": n.name,
                "amount": n.amount,
                "coupon_code": n.coupon_code,
            }
            for n in ev.notes
            if n.status == "applied"
        ],
        coupons=[code for code, _ in evaluation.coupons],
    )


# --- login and merge ------------------------------------------------------------------------


def _customer_cart(session: Session, customer_id: str) -> Cart | None:
    return session.scalar(
        select(Cart)
        .where(Cart.customer_id == customer_id, Cart.status == "active")
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def login(
    session: Session,
    access: Access,
    *,
    customer_id: str,
    cart_id: str | None = None,
    channel: str | None = None,
    now: datetime | None = None,
) -> tuple[Cart, str]:
    """The shopper signed in: their active cart (from any channel) becomes this channel's
    cart. An anonymous cart given by ``cart_id`` (with its token) is merged into it:
    quantities of the same SKU are summed, kept within the stock that can be held. Returns the
    customer's cart and a new token for this channel."""
    at = _now(now)
    root = customers.resolve_customer_ref(session, customer_id)
    anonymous = _active(load_cart(session, cart_id, access, lock=True)) if cart_id else None
    info = _channel(session, access, channel or (anonymous.channel_id if anonymous else None))
    if anonymous is not None and anonymous.customer_id not in (None, root):
        raise conflict("cart_belongs_to_another_customer", "this cart belongs to another customer")
    existing = _customer_cart(session, root)
    merged_from: str | None = None
    if existing is None and anonymous is not None:
        target = anonymous
        target.customer_id = root
    elif existing is None:
        target = Cart(
            id=new_id("crt"),
            status="active",
            customer_id=root,
            channel_id=info.id,
            currency=info.currency,
            lines=[],
            coupon_codes=[],
            delivery=[],
            holds=[],
            pricing=_empty_pricing(info.currency),
            version=1,
            created_at=at,
            updated_at=at,
        )
        try:
            with session.begin_nested():
                session.add(target)
                session.flush()
        except IntegrityError:  # another request created the customer's cart meanwhile
            existing = _customer_cart(session, root)
            if existing is None:
                raise
            target = existing
    else:
        target = existing
        if anonymous is not None and anonymous.id != existing.id:
            merged_from = anonymous.id
            _merge_into(session, anonymous, existing, at)
    target.channel_id = info.id
    target.currency = info.currency
    if target.lines:  # signing in never fails for stock: short lines are cut and noted
        _fit_to_stock(session, target, info, at)
    token = _issue_token(session, target.id, info.id, at)
    session.flush()
    if merged_from:
        emit(
            session,
            "cart.merged",
            {
                "cart_id": target.id,
                "merged_cart_id": merged_from,
                "customer_id": root,
                "channel_id": info.id,
            },
            aggregate_id=target.id,
        )
    return target, token


def _merge_into(session: Session, source: Cart, target: Cart, now: datetime) -> None:
    merged: dict[str, dict[str, Any]] = {line["sku"]: dict(line) for line in target.lines}
    for line in source.lines:
        if line["sku"] in merged:
            merged[line["sku"]]["quantity"] += line["quantity"]
        else:
            merged[line["sku"]] = dict(line)
    target.lines = [
        {**line, "quantity": min(line["quantity"], MAX_QUANTITY)} for line in merged.values()
    ]
    target.coupon_codes = list(dict.fromkeys([*target.coupon_codes, *source.coupon_codes]))
    target.email = target.email or source.email
    target.shipping_address = target.shipping_address or source.shipping_address
    target.billing_address = target.billing_address or source.billing_address
    for hold in source.holds:
        _release(session, hold["reservation_id"], now)
    source.holds = []
    source.status = "merged"
    source.merged_into = target.id
    source.updated_at = now
    session.execute(update(TOKENS).where(TOKENS.c.cart_id == source.id).values(cart_id=target.id))


def _fit_to_stock(session: Session, cart: Cart, channel: ChannelInfo, now: datetime) -> None:
    """Re-reserve after a merge; a line that cannot be held in full is cut to what is
    available (dropped at zero) and noted in ``pricing.notices``."""
    notices: list[dict[str, Any]] = []
    for _ in range(len(cart.lines) + 1):
        try:
            _refresh(session, cart, channel, now)
            break
        except AppError as exc:
            if exc.code != "insufficient_stock":
                raise
            sku, available = exc.details["sku"], int(exc.details["available"])
            requested = next(line["quantity"] for line in cart.lines if line["sku"] == sku)
            notices.append({"sku": sku, "requested": requested, "kept": available})
            cart.lines = [
                {**line, "quantity": available} if line["sku"] == sku else line
                for line in cart.lines
                if line["sku"] != sku or available > 0
            ]
    if notices:
        cart.pricing = {**cart.pricing, "notices": notices}


# --- checkout -------------------------------------------------------------------------------


@dataclass
class Completed:
    order: Order
    lines: list[OrderLine]
    payments: list[Payment]
    order_token: str | None
    created: bool


def _claim_statement(with_token: bool) -> Any:
    c = CARTS.c
    stmt = update(CARTS).where(c.id == bindparam("cart_id"), c.status == "active")
    if with_token:
        stmt = stmt.where(
            select(TOKENS.c.cart_id)
            .where(TOKENS.c.cart_id == c.id, TOKENS.c.token_hash == bindparam("token_hash"))
            .exists()
        )
    return stmt.values(
        status="ordered",
        order_id=bindparam("order_id"),
        version=c.version + 1,
        updated_at=bindparam("now"),
        channel_id=func.coalesce(bindparam("channel_id", type_=String), c.channel_id),
    ).returning(*CARTS.c)


_CLAIM = {True: _claim_statement(True), False: _claim_statement(False)}


def _claim(session: Session, cart_id: str, access: Access, order_id: str, now: datetime) -> Any:
    """Claim the cart for the new order in one statement: it must be active (and the token
    right). On PostgreSQL the row stays locked until commit, so a concurrent second
    ``complete`` of the same cart waits and then finds it ordered."""
    params = {
        "cart_id": cart_id,
        "order_id": order_id,
        "now": now,
        "channel_id": access.channel_id,
    }
    if not access.staff:
        params["token_hash"] = token_hash(access.token or "")
    return session.execute(_CLAIM[not access.staff], params).first()


def complete(
    session: Session,
    cart_id: str,
    access: Access,
    *,
    tenders: Sequence[TenderRequest],
    client_ip: str | None = None,
    now: datetime | None = None,
) -> Completed:
    """Turn the cart into exactly one order (see the module docstring). Completing a cart that
    already became an order returns that order (``created`` False)."""
    at = _now(now)
    order_id = new_id("ord")
    row = _claim(session, cart_id, access, order_id, at)
    if row is None:
        cart = load_cart(session, cart_id, access)  # 404 for unknown carts and bad tokens
        if cart.status == "ordered" and cart.order_id:
            order = get_order(session, cart.order_id)
            return Completed(
                order,
                order_lines(session, order.id),
                pay.order_payments(session, order.id),
                None,
                False,
            )
        _active(cart)
        raise conflict("cart_changed", "the cart changed meanwhile; try again")
    channel = _channel(session, access, row.channel_id)
    lines: list[dict[str, Any]] = list(row.lines or [])
    groups: list[dict[str, Any]] = list(row.delivery or [])
    if not lines:
        raise invalid("cart_empty", "the cart has no lines")
    for g in groups:
        if not g.get("method"):
            raise invalid(
                "delivery_method_required",
                "choose a delivery method for every group of lines",
                group=g["id"],
            )
    _check_addresses(groups, row.shipping_address)
    if not row.customer_id and not row.email:
        raise invalid("email_required", "a guest checkout needs an email address")
    if row.currency != channel.currency:
        raise conflict("cart_changed", "the cart's currency changed; review the cart")
    quote = make_quote(
        session,
        channel=channel,
        lines=lines,
        groups=groups,
        customer_id=row.customer_id,
        coupons=row.coupon_codes or [],
        shipping_address=row.shipping_address,
        now=at,
    )
    allocations = allocate_tenders(quote.total, list(tenders))
    card = next((t.token for t, _ in allocations if t.type == "card" and t.token), None)
    card_fp = pay.fingerprint(card) if card else None
    billing = row.billing_address or row.shipping_address
    assessment = _assess(
        session,
        total=quote.total,
        customer_id=row.customer_id,
        email=row.email,
        card_fingerprint=card_fp,
        client_ip=client_ip,
        billing_country=(billing or {}).get("country"),
        shipping_country=(row.shipping_address or {}).get("country"),
        now=at,
    )
    # Stock: the holds become allocations (an expired hold is reserved again if it can be).
    allocated: dict[str, list[Any]] = {}
    holds = {h["group"]: h for h in row.holds or []}
    for g in groups:
        hold = holds.get(g["id"])
        items = _group_items(lines, g)
        if hold is None or hold["signature"] != _signature(g, items):
            raise conflict("cart_changed", "the cart's stock holds are out of date; review it")
        view = _allocate_hold(session, channel, g, items, hold, order_id, at)
        g["reservation_id"] = view.id
        allocated[g["id"]] = view.lines
    redemptions = [
        {
            "code": code,
            "redemption_id": pricing.redeem_coupon(session, code, row.customer_id, order_id, at).id,
        }
        for code in quote.coupons
    ]
    payments = pay.authorize_tenders(
        session,
        order_id=order_id,
        currency=quote.currency,
        allocations=allocations,
        customer_id=row.customer_id,
        allowed=pay.ONLINE_TENDERS,
        now=at,
    )
    status = S.ON_HOLD if assessment.hold else S.ALLOCATED
    history = [{"status": S.PLACED.value, "at": at.isoformat()}]
    if assessment.hold:
        history.append({"status": S.ON_HOLD.value, "at": at.isoformat(), "note": "fraud review"})
    else:
        history += [
            {"status": S.AUTHORIZED.value, "at": at.isoformat()},
            {"status": S.ALLOCATED.value, "at": at.isoformat()},
        ]
    order_token = "otk_" + secrets.token_urlsafe(24)
    order = Order(
        id=order_id,
        cart_id=row.id,
        source="online",
        channel_id=channel.id,
        customer_id=row.customer_id,
        email=row.email,
        anonymous_id=row.anonymous_id,
        status=status.value,
        currency=quote.currency,
        subtotal=quote.subtotal,
        discount_total=quote.discount_total,
        shipping_total=quote.shipping_total,
        tax_total=quote.tax_total,
        total=quote.total,
        shipping_address=row.shipping_address,
        billing_address=billing,
        delivery=_order_groups(groups, quote),
        coupons=redemptions,
        fraud_score=assessment.score,
        fraud_reasons=list(assessment.reasons),
        client_ip=client_ip,
        card_fingerprint=card_fp,
        access_token_hash=token_hash(order_token),
        history=history,
        version=1,
        placed_at=at,
        updated_at=at,
    )
    session.add(order)
    session.flush()
    order_lines_rows = line_rows(order_id, quote.lines, allocated)
    session.add_all(order_lines_rows)
    session.add_all(payments)
    _emit_placed(session, order, channel, order_lines_rows, payments, assessment)
    session.flush()
    return Completed(order, order_lines_rows, payments, order_token, True)


def _allocate_hold(
    session: Session,
    channel: ChannelInfo,
    group: Mapping[str, Any],
    items: Sequence[tuple[str, int]],
    hold: Mapping[str, Any],
    order_id: str,
    now: datetime,
) -> inventory.ReservationView:
    try:
        return inventory.allocate_reservation(
            session, hold["reservation_id"], order_reference=order_id, now=now
        )
    except AppError as exc:
        if exc.code != "reservation_expired":
            raise
    # The hold expired: hold the same units again if they are still there.
    _release(session, hold["reservation_id"], now)
    try:
        fresh = _reserve(session, channel, group, items, order_id, now, kind="order")
    except AppError as exc:
        if exc.code != "insufficient_stock":
            raise
        raise conflict(
            "reservation_expired",
            "the cart's stock hold expired and the stock is no longer available",
            reservation_id=hold["reservation_id"],
            sku=exc.details.get("sku"),
            requested=exc.details.get("requested"),
            available=exc.details.get("available"),
        ) from None
    return inventory.allocate_reservation(
        session, fresh["reservation_id"], order_reference=order_id, now=now
    )


def _order_groups(groups: Sequence[Mapping[str, Any]], quote: Quote) -> list[dict[str, Any]]:
    by_id = {g.id: g for g in quote.groups}
    out = []
    for g in groups:
        gq = by_id[g["id"]]
        out.append(
            {
                **{k: v for k, v in g.items() if k != "skus"},
                "skus": list(g["skus"]),
                "shipping": gq.shipping,
                "shipping_tax": gq.shipping_tax,
            }
        )
    return out


def line_rows(
    order_id: str, lines: Sequence[QuoteLine], allocated: Mapping[str, Sequence[Any]]
) -> list[OrderLine]:
    rows = []
    for position, line in enumerate(lines):
        pieces = [
            {"location_id": r.location_id, "quantity": r.quantity}
            for r in allocated.get(line.group_id, [])
            if r.sku == line.sku
        ]
        rows.append(
            OrderLine(
                id=new_id("oln"),
                order_id=order_id,
                position=position,
                group_id=line.group_id,
                sku=line.sku,
                variant_id=line.variant_id,
                title=line.title,
                quantity=line.quantity,
                unit_price=line.unit_price,
                subtotal=line.subtotal,
                discount=line.discount,
                tax=line.tax,
                total=line.total,
                allocations=pieces,
            )
        )
    return rows


def _fraud_statement() -> Any:
    o = ORDERS.c
    customer = bindparam("customer_id", type_=String)
    who = or_(o.customer_id == customer, and_(customer.is_(None), o.email == bindparam("email")))
    card = o.card_fingerprint == bindparam("card", type_=String)
    ip = o.client_ip == bindparam("ip", type_=String)
    recent = o.placed_at >= bindparam("hour")
    return select(
        func.count().filter(who),
        func.count().filter(and_(who, recent)),
        func.count().filter(and_(card, recent)),
        func.count().filter(and_(ip, recent)),
    ).where(or_(who, card, ip), o.source == "online")


_FRAUD = _fraud_statement()


def _assess(
    session: Session,
    *,
    total: int,
    customer_id: str | None,
    email: str | None,
    card_fingerprint: str | None,
    client_ip: str | None,
    billing_country: str | None,
    shipping_country: str | None,
    now: datetime,
) -> FraudAssessment:
    """Velocity (orders in the last hour per customer, card and IP), first order and
    billing/shipping mismatch, counted in one statement (a NULL parameter matches nothing)."""
    counts = session.execute(
        _FRAUD,
        {
            "customer_id": customer_id,
            "email": email,
            "card": card_fingerprint,
            "ip": client_ip,
            "hour": now - timedelta(hours=1),
        },
    ).one()
    signals = FraudSignals(
        order_total=total,
        first_order=int(counts[0] or 0) == 0,
        orders_last_hour_customer=int(counts[1] or 0),
        orders_last_hour_card=int(counts[2] or 0),
        orders_last_hour_ip=int(counts[3] or 0),
        billing_country=billing_country,
        shipping_country=shipping_country,
    )
    return assess_fraud(signals)


def order_payload(
    order: Order, lines: Sequence[OrderLine], channel_code: str | None = None
) -> dict[str, Any]:
    """The rich payload of order events: who, where, what, for how much."""
    return {
        "id": order.id,
        "order_id": order.id,
        "cart_id": order.cart_id,
        "customer_id": order.customer_id,
        "anonymous_id": order.anonymous_id,
        "channel": channel_code,
        "channel_id": order.channel_id,
        "source": order.source,
        "status": order.status,
        "currency": order.currency,
        "subtotal_minor": order.subtotal,
        "discount_minor": order.discount_total,
        "shipping_minor": order.shipping_total,
        "tax_minor": order.tax_total,
        "total_minor": order.total,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price,
                "discount_minor": line.discount,
                "tax_minor": line.tax,
                "total_minor": line.total,
                "group_id": line.group_id,
                "location_id": line.allocations[0]["location_id"] if line.allocations else None,
                "allocations": line.allocations,
            }
            for line in lines
        ],
        "delivery": [
            {
                "group_id": g["id"],
                "method": g.get("method"),
                "location_id": (g.get("location") or {}).get("id"),
                "reservation_id": g.get("reservation_id"),
                "skus": g.get("skus", []),
                "country": ((g.get("address") or order.shipping_address or {}).get("country")),
            }
            for g in order.delivery
        ],
        "occurred_at": as_utc(order.placed_at).isoformat(),
    }


def _emit_placed(
    session: Session,
    order: Order,
    channel: ChannelInfo,
    lines: Sequence[OrderLine],
    payments: Sequence[Payment],
    assessment: FraudAssessment,
) -> None:
    payload = order_payload(order, lines, channel.code)
    payload["fraud"] = {
        "score": assessment.score,
        "reasons": list(assessment.reasons),
        "hold": assessment.hold,
    }
    payload["payments"] = [
        {"payment_id": p.id, "type": p.type, "amount_minor": p.amount} for p in payments
    ]
    emit(session, "order.placed", payload, aggregate_id=order.id)
    emit(
        session,
        "payment.authorized",
        {
            "order_id": order.id,
            "customer_id": order.customer_id,
            "currency": order.currency,
            "amount_minor": sum(p.amount for p in payments),
            "payments": payload["payments"],
        },
        aggregate_id=order.id,
    )
    if assessment.hold:
        emit(
            session,
            "order.held_for_review",
            {
                "order_id": order.id,
                "customer_id": order.customer_id,
                "score": assessment.score,
                "reasons": list(assessment.reasons),
            },
            aggregate_id=order.id,
        )


# --- orders ---------------------------------------------------------------------------------


def get_order(session: Session, order_id: str) -> Order:
    """*Public interface.* An order by id; 404 when unknown."""
    order = session.get(Order, order_id)
    if order is None:
        raise not_found("order", order_id)
    return order


def order_lines(session: Session, order_id: str) -> list[OrderLine]:
    """*Public interface.*"""
    return list(
        session.scalars(
            select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.position)
        )
    )


def open_order(session: Session, order_id: str, access: Access) -> Order:
    """An order the caller may see: staff, or a storefront with the order's token."""
    order = get_order(session, order_id)
    if not access.staff and (
        access.token is None or order.access_token_hash != token_hash(access.token)
    ):
        raise not_found("order", order_id)
    return order


def lock_order(session: Session, order_id: str) -> Order:
    order = session.get(Order, order_id, with_for_update=True, populate_existing=True)
    if order is None:
        raise not_found("order", order_id)
    return order


def customer_orders(
    session: Session, customer_id: str, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[Order], str | None]:
    """*Public interface.* Every order of a person from every channel (web, app, marketplace,
    store registers), newest first; merged customer profiles count as one person."""
    root = customers.resolve_customer_ref(session, customer_id)
    ids = customers.member_ids(session, root)
    query = select(Order).where(Order.customer_id.in_(ids or [root]))
    if cursor:
        query = query.where(Order.id < cursor)
    rows = list(session.scalars(query.order_by(Order.id.desc()).limit(limit + 1)))
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def list_orders(
    session: Session,
    *,
    status: str | None = None,
    channel_id: str | None = None,
    customer_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Order], str | None]:
    if customer_id:
        return customer_orders(session, customer_id, cursor=cursor, limit=limit)
    query = select(Order)
    if status:
        query = query.where(Order.status == status)
    if channel_id:
        query = query.where(Order.channel_id == catalog.get_channel(session, channel_id).id)
    if cursor:
        query = query.where(Order.id < cursor)
    rows = list(session.scalars(query.order_by(Order.id.desc()).limit(limit + 1)))
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].id
    return rows, None


def _record(
    order: Order, status: OrderStatus, at: datetime, by: str | None, note: str | None
) -> str:
    previous = order.status
    order.status = status.value
    entry: dict[str, Any] = {"status": status.value, "at": at.isoformat()}
    if by:
        entry["by"] = by
    if note:
        entry["note"] = note
    order.history = [*order.history, entry]
    order.version += 1
    order.updated_at = at
    return previous


def _status_changed(
    session: Session, order: Order, previous: str, at: datetime, **extra: Any
) -> None:
    emit(
        session,
        "order.status_changed",
        {
            "order_id": order.id,
            "customer_id": order.customer_id,
            "channel_id": order.channel_id,
            "from": previous,
            "to": order.status,
            "occurred_at": at.isoformat(),
            **extra,
        },
        aggregate_id=order.id,
    )


def _reservations(order: Order) -> list[str]:
    """Every reservation of the order: one per delivery group, plus those added when
    fulfilment re-sourced units after a pick exception."""
    out: list[str] = []
    for g in order.delivery:
        if g.get("reservation_id"):
            out.append(g["reservation_id"])
        out.extend(g.get("extra_reservations") or [])
    return out


COLLECTED_IN_STORE = frozenset({DeliveryMethod.BOPIS.value, DeliveryMethod.CURBSIDE.value})


def _check_methods(order: Order, dst: OrderStatus) -> None:
    """Ready for pickup needs a group collected by the customer (store or locker); shipping
    needs a group that is not collected in store."""
    methods = {g.get("method") for g in order.delivery}
    if dst is S.READY_FOR_PICKUP and not methods & {m.value for m in PICKUP_METHODS}:
        raise conflict(
            "invalid_transition",
            "nothing in this order is collected by the customer",
            **{"from": order.status, "to": dst.value, "methods": sorted(map(str, methods))},
        )
    if dst is S.SHIPPED and not methods - COLLECTED_IN_STORE:
        raise conflict(
            "invalid_transition",
            "this order is collected in store, not shipped",
            **{"from": order.status, "to": dst.value, "methods": sorted(map(str, methods))},
        )


def transition(
    session: Session,
    order_id: str,
    target: str,
    *,
    by: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> Order:
    """*Public interface.* Move an order along its lifecycle (409 ``invalid_transition``
    otherwise). Shipping or handing over the goods fulfils the stock and captures the
    payment; ready-for-pickup tells the customer; cancelling gives everything back."""
    at = _now(now)
    order = lock_order(session, order_id)
    dst = check_transition(order.status, target)
    _check_methods(order, dst)
    if dst is S.CANCELLED:
        return cancel_order(session, order_id, reason=note, by=by, now=at)
    if dst in (S.SHIPPED, S.PICKED_UP):
        for rid in _reservations(order):
            if inventory.get_reservation(session, rid, at).status == "released":
                continue  # every unit of it was written off at a pick exception
            inventory.fulfill_reservation(session, rid, now=at)
        pay.capture(session, order, now=at)
        order.fulfilled_at = at
    if dst is S.DELIVERED:
        order.delivered_at = at
    previous = _record(order, dst, at, by, note)
    if previous == S.ON_HOLD.value and dst is S.AUTHORIZED:
        # Released from review: the stock was allocated at checkout already.
        _status_changed(session, order, previous, at)
        previous = _record(order, S.ALLOCATED, at, by, None)
    _status_changed(session, order, previous, at)
    if dst is S.READY_FOR_PICKUP:
        pickup = [g for g in order.delivery if (g.get("location") or {}).get("id")]
        emit(
            session,
            "order.ready_for_pickup",
            {
                "order_id": order.id,
                "customer_id": order.customer_id,
                "channel_id": order.channel_id,
                "groups": [
                    {
                        "group_id": g["id"],
                        "method": g.get("method"),
                        "location_id": g["location"]["id"],
                        "location_name": g["location"].get("name"),
                    }
                    for g in pickup
                ],
                "occurred_at": at.isoformat(),
            },
            aggregate_id=order.id,
        )
    session.flush()
    return order


def review(
    session: Session,
    order_id: str,
    *,
    approve: bool,
    by: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> Order:
    """Decide an order held for fraud review: approve (it goes on to fulfilment) or reject
    (cancelled: stock released, payment voided)."""
    order = get_order(session, order_id)
    if order.status != S.ON_HOLD.value:
        raise conflict("order_not_on_hold", f"order {order_id} is {order.status}")
    return transition(
        session,
        order_id,
        S.AUTHORIZED.value if approve else S.CANCELLED.value,
        by=by,
        note=note or ("review approved" if approve else "review rejected"),
        now=now,
    )


def capture_order(
    session: Session, order_id: str, amount: int | None = None, now: datetime | None = None
) -> Order:
    """*Public interface.* Capture the payment (all of what is authorised by default)."""
    at = _now(now)
    order = lock_order(session, order_id)
    if order.status in (S.CANCELLED.value, S.ON_HOLD.value, S.PLACED.value):
        raise conflict("order_not_capturable", f"order {order_id} is {order.status}")
    pay.capture(session, order, amount, at)
    order.updated_at = at
    session.flush()
    return order


def cancel_order(
    session: Session,
    order_id: str,
    *,
    reason: str | None = None,
    by: str | None = None,
    now: datetime | None = None,
) -> Order:
    """*Public interface.* Cancel: release the stock, void what is authorised, refund what was
    captured, give the coupons back."""
    at = _now(now)
    order = lock_order(session, order_id)
    check_transition(order.status, S.CANCELLED.value)
    for rid in _reservations(order):
        inventory.release_reservation(session, rid, now=at)
    voided = pay.void_open(session, order, at)
    payments = pay.order_payments(session, order.id)
    to_refund = sum(p.captured - p.refunded for p in payments)
    if to_refund:
        pay.refund(session, order, to_refund, reason="order cancelled", now=at)
    for coupon in order.coupons:
        pricing.release_redemption(
            session, coupon["code"], redemption_id=coupon["redemption_id"], at=at
        )
    order.cancelled_at = at
    previous = _record(order, S.CANCELLED, at, by, reason)
    lines = order_lines(session, order.id)
    payload = order_payload(order, lines)
    payload.update(
        {"reason": reason, "voided_minor": voided, "refunded_minor": to_refund, "from": previous}
    )
    emit(session, "order.cancelled", payload, aggregate_id=order.id)
    _status_changed(session, order, previous, at)
    session.flush()
    return order


def check_in(
    session: Session,
    order_id: str,
    access: Access,
    *,
    vehicle: Mapping[str, Any] | None = None,
    bay: str | None = None,
    now: datetime | None = None,
) -> Order:
    """Curbside "I'm here": the customer is in the car park; the store brings the order out."""
    at = _now(now)
    open_order(session, order_id, access)
    order = lock_order(session, order_id)
    groups = [g for g in order.delivery if g.get("method") == DeliveryMethod.CURBSIDE.value]
    if not groups:
        raise conflict("not_curbside", "this order is not a curbside pickup")
    if order.status not in (S.ALLOCATED.value, S.FULFILLING.value, S.READY_FOR_PICKUP.value):
        raise conflict(
            "order_not_collectable", f"order {order_id} is {order.status}", status=order.status
        )
    updated = []
    for g in order.delivery:
        if g in groups:
            g = {
                **g,
                "checked_in_at": at.isoformat(),
                "bay": (bay or "")[:20] or None,
                "vehicle": validate_vehicle(vehicle) if vehicle else g.get("vehicle"),
            }
            arrived = g
        updated.append(g)
    order.delivery = updated
    order.version += 1
    order.updated_at = at
    emit(
        session,
        "order.customer_arrived",
        {
            "order_id": order.id,
            "customer_id": order.customer_id,
            "location_id": arrived["location"]["id"],
            "vehicle": arrived.get("vehicle"),
            "bay": arrived.get("bay"),
            "status": order.status,
            "occurred_at": at.isoformat(),
        },
        aggregate_id=order.id,
    )
    session.flush()
    return order


def edit_order(
    session: Session,
    order_id: str,
    access: Access,
    *,
    lines: Sequence[tuple[str, int]] | None = None,
    shipping_address: Mapping[str, Any] | None = None,
    tenders: Sequence[TenderRequest] = (),
    now: datetime | None = None,
) -> Order:
    """Change an order before fulfilment: quantities (0 removes a line; new SKUs join the
    first group) and/or the shipping address. The order is re-priced and its stock re-held;
    a lower total voids the difference, a higher one needs ``tenders`` for the difference
    (402 ``payment_required`` otherwise)."""
    at = _now(now)
    open_order(session, order_id, access)
    order = lock_order(session, order_id)
    if OrderStatus(order.status) not in EDITABLE:
        raise conflict(
            "order_not_editable",
            f"an order that is {order.status} can no longer be changed",
            status=order.status,
        )
    if order.source != "online":
        raise conflict("order_not_editable", "only online orders can be edited")
    current = order_lines(session, order.id)
    quantities = {line.sku: line.quantity for line in current}
    if lines is not None:
        for sku, q in lines:
            if isinstance(q, bool) or not isinstance(q, int) or q < 0:
                raise invalid("invalid_quantity", "quantities are whole numbers >= 0", sku=sku)
            if q == 0:
                quantities.pop(sku, None)
            else:
                quantities[sku] = q
        if not quantities:
            raise invalid("order_empty", "an order keeps at least one line; cancel it instead")
    titles = {line.sku: (line.title, line.variant_id) for line in current}
    new_lines = describe(
        session,
        clean_lines(
            [
                {"sku": s, "quantity": q, "title": titles[s][0], "variant_id": titles[s][1]}
                if s in titles
                else {"sku": s, "quantity": q}
                for s, q in quantities.items()
            ]
        ),
    )
    address = order.shipping_address
    if shipping_address is not None:
        address = validate_address(shipping_address, "shipping address")
    channel = catalog.get_channel(session, order.channel_id)
    groups = assign_groups(order.delivery, [line["sku"] for line in new_lines])
    # The order's coupons are already redeemed by it: give the uses back while re-pricing and
    # take them again, so a coupon at its usage limit still applies to its own order.
    for coupon in order.coupons:
        pricing.release_redemption(
            session, coupon["code"], redemption_id=coupon["redemption_id"], at=at
        )
    quote = make_quote(
        session,
        channel=channel,
        lines=new_lines,
        groups=groups,
        customer_id=order.customer_id,
        coupons=[c["code"] for c in order.coupons],
        shipping_address=address,
        now=at,
    )
    order.coupons = [
        {
            "code": code,
            "redemption_id": pricing.redeem_coupon(
                session, code, order.customer_id, order.id, at
            ).id,
        }
        for code in quote.coupons
    ]
    # Stock: re-hold each group whose lines changed.
    old_items = {(line.group_id, line.sku): line.quantity for line in current}
    allocated: dict[str, list[Any]] = {}
    for g in groups:
        items = _group_items(new_lines, g)
        before = sorted((s, q) for (gid, s), q in old_items.items() if gid == g["id"])
        if g.get("reservation_id") and sorted(items) == before:
            allocated[g["id"]] = inventory.get_reservation(session, g["reservation_id"]).lines
            continue
        if g.get("reservation_id"):
            _release(session, g["reservation_id"], at)
        fresh = _reserve(session, channel, g, items, order.id, at, kind="order")
        view = inventory.allocate_reservation(
            session, fresh["reservation_id"], order_reference=order.id, now=at
        )
        g["reservation_id"] = view.id
        allocated[g["id"]] = view.lines
    kept = {g["id"] for g in groups}
    for g in order.delivery:
        if g["id"] not in kept and g.get("reservation_id"):
            _release(session, g["reservation_id"], at)
    difference = quote.total - order.total
    if difference < 0:
        pay.void_amount(session, order, -difference, at)
    elif difference > 0:
        if not tenders:
            raise AppError(
                "payment_required",
                "the edited order costs more: give tenders for the difference",
                402,
                {"difference": difference},
            )
        existing = pay.order_payments(session, order.id)
        extra = pay.authorize_tenders(
            session,
            order_id=order.id,
            currency=order.currency,
            allocations=allocate_tenders(difference, list(tenders)),
            customer_id=order.customer_id,
            allowed=pay.ONLINE_TENDERS,
            now=at,
            first_position=len(existing),
        )
        session.add_all(extra)
    before_total = order.total
    session.execute(delete(LINES).where(LINES.c.order_id == order.id))
    session.add_all(line_rows(order.id, quote.lines, allocated))
    order.delivery = _order_groups(groups, quote)
    order.shipping_address = address
    order.subtotal = quote.subtotal
    order.discount_total = quote.discount_total
    order.shipping_total = quote.shipping_total
    order.tax_total = quote.tax_total
    order.total = quote.total
    order.version += 1
    order.updated_at = at
    session.flush()
    emit(
        session,
        "order.updated",
        {
            "order_id": order.id,
            "customer_id": order.customer_id,
            "total_before_minor": before_total,
            "total_minor": order.total,
            "currency": order.currency,
            "lines": [{"sku": line["sku"], "quantity": line["quantity"]} for line in new_lines],
            "occurred_at": at.isoformat(),
        },
        aggregate_id=order.id,
    )
    return order


def refund_order(
    session: Session,
    order_id: str,
    amount: int,
    *,
    destination: str = "original",
    reason: str | None = None,
    now: datetime | None = None,
) -> pay.RefundResult:
    """A goodwill or correction refund (returns refund through :mod:`order.returns`)."""
    at = _now(now)
    order = lock_order(session, order_id)
    result = pay.refund(session, order, amount, destination=destination, reason=reason, now=at)
    order.updated_at = at
    session.flush()
    return result


# --- changes made by fulfilment ---------------------------------------------------------------


def _group(order: Order, group_id: str) -> dict[str, Any]:
    for g in order.delivery:
        if g["id"] == group_id:
            return dict(g)
    raise not_found("delivery_group", group_id)


def _replace_group(order: Order, group: dict[str, Any]) -> None:
    order.delivery = [group if g["id"] == group["id"] else g for g in order.delivery]


def _group_line(session: Session, order: Order, group_id: str, sku: str) -> OrderLine:
    line = session.scalar(
        select(OrderLine).where(
            OrderLine.order_id == order.id, OrderLine.group_id == group_id, OrderLine.sku == sku
        )
    )
    if line is None:
        raise not_found("order_line", f"{group_id}/{sku}")
    return line


def _move_allocation(line: OrderLine, location_id: str, quantity: int) -> list[dict[str, Any]]:
    """The line's allocations with ``quantity`` fewer units at ``location_id``."""
    out = []
    for piece in line.allocations:
        if piece["location_id"] == location_id and quantity:
            take = min(quantity, int(piece["quantity"]))
            quantity -= take
            if piece["quantity"] - take:
                out.append({**piece, "quantity": piece["quantity"] - take})
        else:
            out.append(dict(piece))
    return out


def reallocate(
    session: Session,
    order_id: str,
    *,
    group_id: str,
    from_location: str,
    reservation: inventory.ReservationView,
    note: str | None = None,
    now: datetime | None = None,
) -> Order:
    """*Public interface.* Fulfilment re-sourced units after a pick exception: the new
    (allocated) ``reservation`` joins the delivery group, so shipping, hand-over and
    cancelling act on it as well, and each of its SKUs' allocations move from
    ``from_location`` to where the new reservation holds them."""
    at = _now(now)
    order = lock_order(session, order_id)
    group = _group(order, group_id)
    group["extra_reservations"] = [*(group.get("extra_reservations") or []), reservation.id]
    _replace_group(order, group)
    moved: dict[str, int] = {}
    for x in reservation.lines:
        moved[x.sku] = moved.get(x.sku, 0) + x.quantity
    for sku, quantity in moved.items():
        line = _group_line(session, order, group_id, sku)
        pieces = _move_allocation(line, from_location, quantity)
        pieces += [
            {"location_id": x.location_id, "quantity": x.quantity}
            for x in reservation.lines
            if x.sku == sku
        ]
        line.allocations = pieces
    summary = ", ".join(f"{q} x {sku}" for sku, q in sorted(moved.items()))
    order.history = [
        *order.history,
        {
            "status": order.status,
            "at": at.isoformat(),
            "note": note or f"{summary} re-sourced from {from_location}",
        },
    ]
    order.version += 1
    order.updated_at = at
    session.flush()
    return order


def units_arrived(
    session: Session,
    order_id: str,
    *,
    group_id: str,
    from_location: str,
    to_location: str,
    items: Mapping[str, int],
    now: datetime | None = None,
) -> Order:
    """*Public interface.* Fulfilment brought a group's units from ``from_location`` to
    ``to_location`` (a transfer reached the pickup store): the lines' allocations say where
    the units now are."""
    at = _now(now)
    order = lock_order(session, order_id)
    for sku, quantity in items.items():
        line = _group_line(session, order, group_id, sku)
        there = sum(
            int(p["quantity"]) for p in line.allocations if p["location_id"] == from_location
        )
        take = min(quantity, there)
        if take <= 0:
            continue
        pieces = _move_allocation(line, from_location, take)
        here = next((p for p in pieces if p["location_id"] == to_location), None)
        if here is None:
            pieces.append({"location_id": to_location, "quantity": take})
        else:
            here["quantity"] = int(here["quantity"]) + take
        line.allocations = pieces
    order.version += 1
    order.updated_at = at
    session.flush()
    return order


def settle_unavailable(
    session: Session,
    order_id: str,
    *,
    group_id: str,
    sku: str,
    location_id: str,
    quantity: int,
    reason: str = "item unavailable",
    now: datetime | None = None,
) -> int:
    """*Public interface.* ``quantity`` units of a line cannot be fulfilled from anywhere: the
    customer is not charged for them. Their share of the line total (half-up) is voided from
    the open authorisation, or refunded when already captured; the line keeps its price and
    records the units as unavailable. Emits ``order.items_unavailable``; returns the amount."""
    at = _now(now)
    order = lock_order(session, order_id)
    line = _group_line(session, order, group_id, sku)
    already = sum(int(x["quantity"]) for x in (line.unavailable or []))
    if quantity <= 0 or quantity > line.quantity - already:
        raise invalid(
            "invalid_quantity",
            "quantity must be positive and at most the line's fulfillable units",
            quantity=quantity,
            fulfillable=line.quantity - already,
        )
    amount = div_half_up(line.total * quantity, line.quantity)
    payments = pay.order_payments(session, order.id)
    open_amount = sum(p.amount - p.captured - p.voided for p in payments)
    voided = min(amount, open_amount)
    if voided:
        pay.void_amount(session, order, voided, at)
    if amount - voided:
        pay.refund(session, order, amount - voided, reason=reason, now=at)
    line.unavailable = [
        *(line.unavailable or []),
        {"quantity": quantity, "amount": amount, "reason": reason, "at": at.isoformat()},
    ]
    line.allocations = _move_allocation(line, location_id, quantity)
    order.history = [
        *order.history,
        {"status": order.status, "at": at.isoformat(), "note": f"{quantity} x {sku}: {reason}"},
    ]
    order.version += 1
    order.updated_at = at
    emit(
        session,
        "order.items_unavailable",
        {
            "order_id": order.id,
            "customer_id": order.customer_id,
            "channel_id": order.channel_id,
            "sku": sku,
            "quantity": quantity,
            "amount_minor": amount,
            "voided_minor": voided,
            "refunded_minor": amount - voided,
            "currency": order.currency,
            "reason": reason,
            "occurred_at": at.isoformat(),
        },
        aggregate_id=order.id,
    )
    session.flush()
    return amount


# --- housekeeping -----------------------------------------------------------------------------


def sweep_abandoned_carts(
    session: Session, *, older_than_days: int = 30, limit: int = 500, now: datetime | None = None
) -> int:
    """Delete guest carts (and merged ones) untouched for ``older_than_days``: their stock
    holds are released first and their tokens go with them. Customers' carts persist (the
    cart follows the customer across channels) and ordered carts stay with their orders.
    Returns how many carts were deleted; run it until it returns less than ``limit``."""
    if older_than_days < 1:
        raise invalid("invalid_age", "older_than_days must be at least 1", value=older_than_days)
    at = _now(now)
    cutoff = at - timedelta(days=older_than_days)
    carts = list(
        session.scalars(
            select(Cart)
            .where(
                Cart.updated_at < cutoff,
                or_(
                    Cart.status == "merged",
                    and_(Cart.status == "active", Cart.customer_id.is_(None)),
                ),
            )
            .order_by(Cart.updated_at)
            .limit(limit)
        )
    )
    for cart in carts:
        for hold in cart.holds or []:
            if hold.get("reservation_id"):
                _release(session, hold["reservation_id"], at)
    ids = [c.id for c in carts]
    if ids:
        session.execute(delete(CartToken).where(CartToken.cart_id.in_(ids)))
        session.execute(delete(Cart).where(Cart.id.in_(ids)))
    session.flush()
    return len(ids)
