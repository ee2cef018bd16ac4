"""Coupons: creation, evaluation with codes, redemption and release. Every refused coupon is
a 4xx with a clear code and writes nothing."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from omniretail.core.errors import AppError
from omniretail.core.timeutil import utcnow
from omniretail.pricing import service
from omniretail.pricing.models import Coupon, CouponRedemption
from tests.pricing.helpers import count, make_book, make_channel, make_product, set_price


def given_coupon(
    session, code="SAVE10", usage_limit=None, per_customer_limit=None, expires_at=None
):
    """Channel 'web' with MUG at 1000 and a 10%-off promotion unlocked by ``code``."""
    make_channel(session, "web")
    make_product(session, "MUG")
    book = make_book(session, "base")
    service.assign_price_book(session, book, "web", 0)
    set_price(session, book, "MUG", 1000)
    promotion = service.create_promotion(
        session,
        service.PromotionSpec(
            name="Ten off", kind="percent_off", percent="10", requires_coupon=True
        ),
    )
    service.create_coupons(
        session,
        promotion.id,
        [code],
        usage_limit=usage_limit,
        per_customer_limit=per_customer_limit,
        expires_at=expires_at,
    )
    return promotion.id


def used(session, code="SAVE10") -> int:
    session.expire_all()
    return session.scalar(select(Coupon.used).where(Coupon.code == code))


def redeem(client, headers, code="SAVE10", order_ref="ord_1", customer_id=None, key=None):
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(
        f"/api/v1/coupons/{code}/redemptions",
        json={"order_ref": order_ref, "customer_id": customer_id},
        headers={**headers, **extra},
    )


CART = {"channel": "web", "lines": [{"sku": "MUG", "quantity": 1}]}


# --- creation -------------------------------------------------------------------------------


def test_create_coupons_normalises_codes(client, admin, session):
    promotion = given_coupon(session)
    session.commit()
    response = client.post(
        f"/api/v1/promotions/{promotion}/coupons",
        json={"codes": [" summer-a ", "SUMMER-B"], "usage_limit": 100, "per_customer_limit": 1},
        headers=admin,
    )
    assert response.status_code == 201
    assert [(c["code"], c["remaining"]) for c in response.json()["items"]] == [
        ("SUMMER-A", 100),
        ("SUMMER-B", 100),
    ]


def test_existing_code_is_409_and_no_code_of_the_batch_is_written(client, admin, session):
    promotion = given_coupon(session)
    session.commit()
    before = count(session, Coupon)
    response = client.post(
        f"/api/v1/promotions/{promotion}/coupons",
        json={"codes": ["FRESH-1", "save10"]},
        headers=admin,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "coupon_exists"
    assert count(session, Coupon) == before


def test_automatic_promotion_cannot_get_coupons(client, admin, session):
    promotion = service.create_promotion(
        session, service.PromotionSpec(name="Auto", kind="percent_off", percent="5")
    )
    session.commit()
    response = client.post(
        f"/api/v1/promotions/{promotion.id}/coupons", json={"codes": ["AUTO-1"]}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "promotion_not_coupon_based"
    assert count(session, Coupon) == 0


# --- evaluation with codes ------------------------------------------------------------------


def test_evaluate_with_a_valid_coupon_applies_its_promotion(client, admin, session):
    promotion = given_coupon(session)
    session.commit()
    body = client.post(
        "/api/v1/promotions/evaluate", json={**CART, "coupon_codes": ["save10"]}, headers=admin
    ).json()
    assert body["total"] == 900
    assert body["coupons"] == [
        {"code": "SAVE10", "promotion_id": promotion, "applied": True, "reason": "stackable"}
    ]
    assert body["explanations"][0]["coupon_code"] == "SAVE10"


def test_evaluate_without_the_code_does_not_apply_the_promotion(client, admin, session):
    given_coupon(session)
    session.commit()
    body = client.post("/api/v1/promotions/evaluate", json=CART, headers=admin).json()
    assert (body["total"], body["explanations"]) == (1000, [])


def test_evaluate_with_an_unknown_coupon_is_404(client, admin, session):
    given_coupon(session)
    session.commit()
    response = client.post(
        "/api/v1/promotions/evaluate", json={**CART, "coupon_codes": ["NOPE1"]}, headers=admin
    )
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "coupon_not_found",
        "message": "coupon 'NOPE1' not found",
        "details": {"coupon": "NOPE1"},
    }


def test_evaluate_with_an_expired_coupon_is_422(client, admin, session):
    given_coupon(session, expires_at=utcnow() - timedelta(days=1))
    session.commit()
    response = client.post(
        "/api/v1/promotions/evaluate", json={**CART, "coupon_codes": ["SAVE10"]}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "coupon_expired"


def test_evaluate_with_an_exhausted_coupon_is_409(client, admin, session):
    given_coupon(session, usage_limit=1)
    service.redeem_coupon(session, "SAVE10", None, "ord_1")
    session.commit()
    response = client.post(
        "/api/v1/promotions/evaluate", json={**CART, "coupon_codes": ["SAVE10"]}, headers=admin
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "coupon_exhausted"


def test_evaluate_checks_the_customer_limit_for_a_known_customer(client, admin, session):
    given_coupon(session, per_customer_limit=1)
    service.redeem_coupon(session, "SAVE10", "cus_1", "ord_1")
    session.commit()
    response = client.post(
        "/api/v1/promotions/evaluate",
        json={**CART, "coupon_codes": ["SAVE10"], "customer_id": "cus_1"},
        headers=admin,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "coupon_customer_limit"


# --- redemption -----------------------------------------------------------------------------


def test_redeeming_counts_one_use_and_records_the_order(client, admin, session):
    given_coupon(session, usage_limit=5)
    session.commit()
    response = redeem(client, admin, order_ref="ord_1", customer_id="cus_1")
    assert response.status_code == 201
    body = response.json()
    assert (body["code"], body["order_ref"], body["customer_id"], body["coupon_used"]) == (
        "SAVE10",
        "ord_1",
        "cus_1",
        1,
    )
    assert used(session) == 1
    assert count(session, CouponRedemption) == 1


def test_redeeming_again_for_the_same_order_counts_once(client, admin, session):
    given_coupon(session, usage_limit=5)
    session.commit()
    first = redeem(client, admin, order_ref="ord_1").json()
    second = redeem(client, admin, order_ref="ord_1").json()
    assert second["id"] == first["id"]
    assert used(session) == 1


def test_idempotency_key_replays_the_redemption(client, admin, session):
    given_coupon(session, usage_limit=5)
    session.commit()
    first = redeem(client, admin, order_ref="ord_1", key="k-1")
    replay = redeem(client, admin, order_ref="ord_1", key="k-1")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert used(session) == 1


def test_unknown_coupon_redemption_is_404_and_writes_nothing(client, admin, session):
    given_coupon(session)
    session.commit()
    response = redeem(client, admin, code="NOPE1")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "coupon_not_found"
    assert count(session, CouponRedemption) == 0


def test_expired_coupon_redemption_is_422_and_writes_nothing(client, admin, session):
    given_coupon(session, expires_at=utcnow() - timedelta(seconds=1))
    session.commit()
    response = redeem(client, admin)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "coupon_expired"
    assert (used(session), count(session, CouponRedemption)) == (0, 0)


def test_exhausted_coupon_redemption_is_409_and_writes_nothing(client, admin, session):
    given_coupon(session, usage_limit=2)
    session.commit()
    assert redeem(client, admin, order_ref="ord_1").status_code == 201
    assert redeem(client, admin, order_ref="ord_2").status_code == 201
    response = redeem(client, admin, order_ref="ord_3")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "coupon_exhausted"
    assert (used(session), count(session, CouponRedemption)) == (2, 2)


def test_customer_limit_is_409_and_writes_nothing(client, admin, session):
    given_coupon(session, per_customer_limit=1)
    session.commit()
    assert redeem(client, admin, order_ref="ord_1", customer_id="cus_1").status_code == 201
    response = redeem(client, admin, order_ref="ord_2", customer_id="cus_1")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "coupon_customer_limit"
    assert (used(session), count(session, CouponRedemption)) == (1, 1)
    assert redeem(client, admin, order_ref="ord_3", customer_id="cus_2").status_code == 201


def test_customer_limited_coupon_needs_a_customer(client, admin, session):
    given_coupon(session, per_customer_limit=1)
    session.commit()
    response = redeem(client, admin, order_ref="ord_1", customer_id=None)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "customer_required"
    assert count(session, CouponRedemption) == 0


def test_analyst_cannot_redeem(client, make_key, session):
    given_coupon(session)
    session.commit()
    assert redeem(client, make_key("analyst")).status_code == 403
    assert count(session, CouponRedemption) == 0


def test_release_gives_the_use_back_once(client, admin, session):
    given_coupon(session, usage_limit=1)
    session.commit()
    redemption = redeem(client, admin, order_ref="ord_1").json()
    path = f"/api/v1/coupons/SAVE10/redemptions/{redemption['id']}/release"
    released = client.post(path, headers=admin)
    assert released.status_code == 200
    assert released.json()["released_at"] is not None
    assert released.json()["coupon_used"] == 0
    again = client.post(path, headers=admin)
    assert (again.status_code, again.json()["coupon_used"]) == (200, 0)
    assert redeem(client, admin, order_ref="ord_2").status_code == 201


def test_released_order_can_redeem_again(session):
    given_coupon(session, usage_limit=1)
    first = service.redeem_coupon(session, "SAVE10", None, "ord_1")
    service.release_redemption(session, "SAVE10", order_ref="ord_1")
    second = service.redeem_coupon(session, "SAVE10", None, "ord_1")
    assert (second.id, second.released_at, used(session)) == (first.id, None, 1)


def test_unknown_redemption_release_is_404(client, admin, session):
    given_coupon(session)
    session.commit()
    response = client.post("/api/v1/coupons/SAVE10/redemptions/rdm_nope/release", headers=admin)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "redemption_not_found"


def test_service_refuses_an_expired_coupon_at_the_given_instant(session):
    given_coupon(session, expires_at=datetime(2026, 7, 1, tzinfo=UTC))
    with pytest.raises(AppError) as raised:
        service.redeem_coupon(session, "SAVE10", None, "ord_1", at=datetime(2026, 7, 1, tzinfo=UTC))
    assert (raised.value.code, raised.value.status) == ("coupon_expired", 422)
    assert count(session, CouponRedemption) == 0
