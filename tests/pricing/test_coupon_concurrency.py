"""Coupon redemption under real concurrency (PostgreSQL, one unit of work per thread)."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from omniretail.core.errors import AppError
from omniretail.pricing import service
from omniretail.pricing.models import Coupon, CouponRedemption

pytestmark = pytest.mark.postgres


def given_coupon(db, code: str, usage_limit: int | None, per_customer_limit: int | None) -> None:
    with db.unit_of_work() as session:
        promotion = service.create_promotion(
            session,
            service.PromotionSpec(
                name="Flash", kind="percent_off", percent="10", requires_coupon=True
            ),
        )
        service.create_coupons(
            session,
            promotion.id,
            [code],
            usage_limit=usage_limit,
            per_customer_limit=per_customer_limit,
        )


def redeem_concurrently(db, code: str, callers: list[tuple[str, str]]) -> Counter:
    barrier = threading.Barrier(len(callers))

    def attempt(caller: tuple[str, str]) -> str:
        customer_id, order_ref = caller
        barrier.wait()
        try:
            with db.unit_of_work() as session:
                service.redeem_coupon(session, code, customer_id, order_ref)
            return "redeemed"
        except AppError as e:
            return e.code

    with ThreadPoolExecutor(max_workers=len(callers)) as pool:
        return Counter(pool.map(attempt, callers))


def coupon_state(db, code: str) -> tuple[int, int]:
    with db.unit_of_work(write=False) as session:
        used = session.scalar(select(Coupon.used).where(Coupon.code == code))
        rows = session.scalar(select(func.count()).select_from(CouponRedemption))
    return used, rows


def test_twenty_threads_redeem_a_five_use_coupon_exactly_five_times(pg_db):
    # given a coupon that may be used 5 times
    given_coupon(pg_db, "FLASH5", usage_limit=5, per_customer_limit=None)
    # when 20 customers redeem it at the same moment
    outcomes = redeem_concurrently(pg_db, "FLASH5", [(f"cus_{i}", f"ord_{i}") for i in range(20)])
    # then exactly 5 succeed, 15 are told it is exhausted, and the counter says 5
    assert outcomes == Counter({"redeemed": 5, "coupon_exhausted": 15})
    assert coupon_state(pg_db, "FLASH5") == (5, 5)


def test_one_customer_racing_ten_orders_gets_only_the_per_customer_limit(pg_db):
    given_coupon(pg_db, "TWICE", usage_limit=None, per_customer_limit=2)
    outcomes = redeem_concurrently(pg_db, "TWICE", [("cus_1", f"ord_{i}") for i in range(10)])
    assert outcomes == Counter({"redeemed": 2, "coupon_customer_limit": 8})
    assert coupon_state(pg_db, "TWICE") == (2, 2)
