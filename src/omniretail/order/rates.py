"""Checkout settings: tax rates per country/region, shipping rates per delivery method
(optionally per channel and country) and return windows per channel."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Integer, bindparam, cast, delete, literal, or_, select, union_all
from sqlalchemy.orm import Session

from omniretail.catalog import service as catalog
from omniretail.core.errors import invalid
from omniretail.order.domain import (
    CHECKOUT_METHODS,
    ShippingRate,
    TaxRule,
    return_window_days,
)
from omniretail.order.models import ReturnPolicy, ShippingRateRow, TaxRate


def _country(value: str) -> str:
    value = value.strip().upper()
    if len(value) != 2 or not value.isalpha() or not value.isascii():
        raise invalid("invalid_country", f"{value!r} is not an ISO 3166 alpha-2 code")
    return value


def set_tax_rate(
    session: Session, *, country: str, region: str | None, rate_bp: int, inclusive: bool
) -> TaxRate:
    """Create or replace the rate of a country (``region`` None) or one of its regions."""
    if not 0 <= rate_bp <= 10_000:
        raise invalid("invalid_rate", "rate_bp is between 0 and 10000 (basis points)")
    country = _country(country)
    region_key = (region or "").strip().upper()
    row = session.scalar(
        select(TaxRate).where(TaxRate.country == country, TaxRate.region == region_key)
    )
    if row is None:
        row = TaxRate(country=country, region=region_key, rate_bp=rate_bp, inclusive=inclusive)
        session.add(row)
    row.rate_bp, row.inclusive = rate_bp, inclusive
    session.flush()
    return row


def list_tax_rates(session: Session) -> list[TaxRate]:
    return list(session.scalars(select(TaxRate).order_by(TaxRate.country, TaxRate.region)))


def delete_tax_rate(session: Session, country: str, region: str | None) -> None:
    session.execute(
        delete(TaxRate).where(
            TaxRate.country == _country(country), TaxRate.region == (region or "").upper()
        )
    )


def tax_rules(session: Session, countries: Iterable[str]) -> list[TaxRule]:
    wanted = sorted({c for c in countries if c})
    if not wanted:
        return []
    rows = session.execute(
        select(TaxRate.country, TaxRate.region, TaxRate.rate_bp, TaxRate.inclusive).where(
            TaxRate.country.in_(wanted)
        )
    ).all()
    return [TaxRule(c, r or None, bp, inc) for c, r, bp, inc in rows]


def _settings_statements() -> tuple[Any, Any]:
    tax = select(
        literal("tax").label("kind"),
        TaxRate.country.label("a"),
        TaxRate.region.label("b"),
        literal("").label("c"),
        TaxRate.rate_bp.label("n1"),
        cast(TaxRate.inclusive, Integer).label("n2"),
    ).where(TaxRate.country.in_(bindparam("countries", expanding=True)))
    ship = select(
        literal("ship"),
        ShippingRateRow.country,
        ShippingRateRow.channel_id,
        ShippingRateRow.method,
        ShippingRateRow.amount,
        ShippingRateRow.free_over,
    ).where(or_(ShippingRateRow.channel_id == "", ShippingRateRow.channel_id == bindparam("ch")))
    return tax, union_all(tax, ship)


_TAX_ONLY, _TAX_AND_SHIPPING = _settings_statements()


def checkout_settings(
    session: Session, countries: Iterable[str], channel_id: str | None
) -> tuple[list[TaxRule], list[ShippingRate]]:
    """The tax rules of the destination countries and (when ``channel_id`` is given) the
    channel's shipping rates, in one round trip."""
    params: dict[str, Any] = {"countries": sorted({c for c in countries if c}) or [""]}
    if channel_id is not None:
        params["ch"] = channel_id
    query = _TAX_AND_SHIPPING if channel_id is not None else _TAX_ONLY
    rules: list[TaxRule] = []
    shipping: list[ShippingRate] = []
    for kind, a, b, c, n1, n2 in session.execute(query, params):
        if kind == "tax":
            rules.append(TaxRule(a, b or None, int(n1), bool(n2)))
        else:
            shipping.append(ShippingRate(c, int(n1), b or None, a or None, n2))
    return rules, shipping


def set_shipping_rate(
    session: Session,
    *,
    method: str,
    amount: int,
    channel_id: str | None = None,
    country: str | None = None,
    free_over: int | None = None,
) -> ShippingRateRow:
    if method not in {m.value for m in CHECKOUT_METHODS}:
        raise invalid(
            "invalid_delivery_method",
            f"unknown delivery method {method!r}",
            allowed=sorted(m.value for m in CHECKOUT_METHODS),
        )
    if amount < 0 or (free_over is not None and free_over < 0):
        raise invalid("invalid_amount", "amounts cannot be negative")
    channel_key = catalog.get_channel(session, channel_id).id if channel_id else ""
    country_key = _country(country) if country else ""
    row = session.scalar(
        select(ShippingRateRow).where(
            ShippingRateRow.method == method,
            ShippingRateRow.channel_id == channel_key,
            ShippingRateRow.country == country_key,
        )
    )
    if row is None:
        row = ShippingRateRow(
            method=method, channel_id=channel_key, country=country_key, amount=amount
        )
        session.add(row)
    row.amount, row.free_over = amount, free_over
    session.flush()
    return row


def list_shipping_rates(session: Session) -> list[ShippingRateRow]:
    return list(
        session.scalars(
            select(ShippingRateRow).order_by(
                ShippingRateRow.method, ShippingRateRow.channel_id, ShippingRateRow.country
            )
        )
    )


def shipping_rates(session: Session, channel_id: str) -> list[ShippingRate]:
    rows = session.execute(
        select(
            ShippingRateRow.method,
            ShippingRateRow.amount,
            ShippingRateRow.channel_id,
            ShippingRateRow.country,
            ShippingRateRow.free_over,
        ).where(or_(ShippingRateRow.channel_id == "", ShippingRateRow.channel_id == channel_id))
    ).all()
    return [ShippingRate(m, a, ch or None, co or None, f) for m, a, ch, co, f in rows]


def set_return_window(session: Session, channel_ref: str, window_days: int) -> ReturnPolicy:
    if not 0 <= window_days <= 3650:
        raise invalid("invalid_window", "window_days is between 0 and 3650")
    channel = catalog.get_channel(session, channel_ref)
    row = session.get(ReturnPolicy, channel.id)
    if row is None:
        row = ReturnPolicy(channel_id=channel.id, window_days=window_days)
        session.add(row)
    row.window_days = window_days
    session.flush()
    return row


def return_window(session: Session, channel_id: str) -> int:
    channel = catalog.get_channel(session, channel_id)
    row = session.get(ReturnPolicy, channel.id)
    return return_window_days(channel.type, row.window_days if row else None)
