"""Property: whatever sequence of captures, refunds and returns hits an order, it never has
more refunded than captured (per tender and in total), the gateway agrees, and every refund
is recorded."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from omniretail.core.errors import AppError
from omniretail.order import payments as pay
from omniretail.order import returns, service
from omniretail.order.domain import TenderRequest
from omniretail.order.models import GatewayCharge, Payment, Refund
from tests.order.helpers import ADDRESS

STAFF = service.Access.staff_member()

operation = st.one_of(
    st.tuples(st.just("capture"), st.integers(min_value=1, max_value=6000)),
    st.tuples(st.just("ship"), st.just(0)),
    st.tuples(st.just("refund"), st.integers(min_value=1, max_value=6000)),
    st.tuples(st.just("goodwill_credit"), st.integers(min_value=1, max_value=3000)),
    st.tuples(st.just("return_tee"), st.integers(min_value=1, max_value=2)),
    st.tuples(st.just("return_mug"), st.just(1)),
    st.tuples(st.just("cancel"), st.just(0)),
)


def _place(session, gift_amount: int):
    cart, _ = service.create_cart(session, STAFF, channel="web", lines=[("TEE-M", 2), ("MUG", 1)])
    service.set_checkout(
        session,
        cart.id,
        STAFF,
        email="prop@example.com",
        shipping_address=ADDRESS,
        delivery=[{"method": "standard"}],
    )
    tenders = [TenderRequest("card", None, "tok_visa")]
    if gift_amount:
        code, _ = pay.issue_gift_card(session, amount=gift_amount, currency="GBP")
        tenders.insert(0, TenderRequest("gift_card", gift_amount, code))
    return service.complete(session, cart.id, STAFF, tenders=tenders).order


def _apply(session, order_id: str, op: str, n: int, store: str) -> None:
    if op == "capture":
        service.capture_order(session, order_id, n)
    elif op == "ship":
        service.transition(session, order_id, "fulfilling")
        service.transition(session, order_id, "shipped")
    elif op == "refund":
        service.refund_order(session, order_id, n)
    elif op == "goodwill_credit":
        service.refund_order(session, order_id, n, destination="store_credit")
    elif op == "cancel":
        service.cancel_order(session, order_id, reason="property")
    else:
        sku = "TEE-M" if op == "return_tee" else "MUG"
        rma = returns.create_return(session, order_id, STAFF, lines=[(sku, n, None)])
        returns.receive_return(session, rma.id, location_id=store)


def _check(session, order_id: str) -> None:
    payments = pay.order_payments(session, order_id)
    for p in payments:
        assert 0 <= p.refunded <= p.captured <= p.amount - p.voided
    assert sum(p.refunded for p in payments) <= sum(p.captured for p in payments)
    recorded = session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(Refund.order_id == order_id)
    )
    assert recorded == sum(p.refunded for p in payments)
    for p in payments:
        if p.type != "card":
            continue
        to_card = session.scalar(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.payment_id == p.id, Refund.destination == "original"
            )
        )
        charge = session.get(GatewayCharge, p.reference, populate_existing=True)
        assert (charge.captured, charge.refunded) == (p.captured, to_card)
        assert charge.refunded <= charge.captured


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    gift_amount=st.sampled_from([0, 500, 2500]),
    shipped_first=st.booleans(),
    operations=st.lists(operation, min_size=1, max_size=8),
)
def test_refunded_never_exceeds_captured(shop, session, gift_amount, shipped_first, operations):
    example = session.begin_nested()
    try:
        order = _place(session, gift_amount)
        for op, n in [("ship", 0)] * shipped_first + operations:
            try:
                with session.begin_nested():
                    _apply(session, order.id, op, n, shop.store)
            except AppError as exc:
                assert 400 <= exc.status < 500, exc
            _check(session, order.id)
        assert session.scalar(select(func.count()).select_from(Payment)) >= 1
    finally:
        example.rollback()
