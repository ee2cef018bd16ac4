"""Abandoned guest carts are deleted after 30 days with their holds and tokens; customers'
carts and ordered carts stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from omniretail.core.errors import AppError
from omniretail.core.timeutil import utcnow
from omniretail.order import service
from omniretail.order.models import Cart, CartToken
from tests.order.helpers import make_customer, start_cart, stock


def _age(session, cart_id, days):
    session.execute(
        update(Cart).where(Cart.id == cart_id).values(updated_at=utcnow() - timedelta(days=days))
    )
    session.commit()


def _exists(session, cart_id):
    session.expire_all()
    return session.get(Cart, cart_id) is not None


def test_a_guest_cart_untouched_for_31_days_is_deleted_with_its_hold(client, shop, session):
    # Given a guest cart holding 2 mugs, untouched for 31 days (its hold long expired)
    cart_id, _ = start_cart(client, shop, [("MUG", 2)])
    _age(session, cart_id, 31)

    # When the sweep runs
    deleted = service.sweep_abandoned_carts(session)

    # Then the cart and its token are gone and the warehouse holds nothing for it
    assert deleted == 1
    assert not _exists(session, cart_id)
    tokens = select(func.count()).select_from(CartToken).where(CartToken.cart_id == cart_id)
    assert session.scalar(tokens) == 0
    assert stock(session, "MUG", shop.wh) == {
        "on_hand": 10,
        "allocated": 0,
        "held": 0,
        "available": 10,
    }


def test_recent_guest_carts_and_customer_carts_stay(client, shop, session):
    # Given a guest cart touched 29 days ago and a customer's cart untouched for a year
    recent, _ = start_cart(client, shop, [("MUG", 1)])
    _age(session, recent, 29)
    customer = make_customer(session, "kept@example.com")
    kept, _ = service.create_cart(
        session,
        service.Access.staff_member(),
        channel="web",
        customer_id=customer,
        lines=[("MUG", 1)],
    )
    session.commit()
    _age(session, kept.id, 365)

    # When the sweep runs
    deleted = service.sweep_abandoned_carts(session)

    # Then both carts are still there
    assert deleted == 0
    assert _exists(session, recent) and _exists(session, kept.id)


def test_a_sweep_age_below_one_day_is_refused(session):
    with pytest.raises(AppError) as error:
        service.sweep_abandoned_carts(session, older_than_days=0)
    assert error.value.code == "invalid_age"
