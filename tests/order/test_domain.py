"""Pure order rules: lifecycle, taxes, tenders, refunds, fraud."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omniretail.core.errors import AppError
from omniretail.order.domain import (
    FraudSignals,
    OrderStatus,
    TaxRule,
    TenderRequest,
    TenderState,
    allocate_tenders,
    assess_fraud,
    check_transition,
    pick_tax_rule,
    plan_refund,
    tax_for,
)


def test_placed_order_can_be_authorized():
    assert check_transition("placed", "authorized") is OrderStatus.AUTHORIZED


def test_shipped_order_cannot_be_cancelled():
    with pytest.raises(AppError) as exc:
        check_transition("shipped", "cancelled")
    assert exc.value.status == 409
    assert exc.value.details == {"from": "shipped", "to": "cancelled", "allowed": ["delivered"]}


def test_inclusive_uk_vat_is_contained_in_price():
    # given 20% VAT included in 12.00, when computing, then 2.00 of it is tax
    assert tax_for(1200, TaxRule("GB", None, 2000, True)) == 200


def test_exclusive_tax_rounds_half_up():
    # given 8.85% (885 bp) of 10.00 = 88.5 minor units, when rounded, then 89
    assert tax_for(1000, TaxRule("US", "NY", 885, False)) == 89


def test_regional_rule_beats_national():
    rules = [TaxRule("US", None, 0, False), TaxRule("US", "CA", 725, False)]
    assert pick_tax_rule(rules, "US", "CA") == rules[1]
    assert pick_tax_rule(rules, "US", "OR") == rules[0]
    assert pick_tax_rule(rules, "FR", None) is None


def test_gift_card_then_card_takes_the_rest():
    tenders = [TenderRequest("gift_card", 2500, "GC1"), TenderRequest("card", None, "tok_visa")]
    plan = allocate_tenders(6000, tenders)
    assert [(t.type, a) for t, a in plan] == [("gift_card", 2500), ("card", 3500)]


def test_tenders_short_of_total_are_refused():
    with pytest.raises(AppError) as exc:
        allocate_tenders(6000, [TenderRequest("gift_card", 2500, "GC1")])
    assert exc.value.code == "tenders_short"
    assert exc.value.details == {"total": 6000, "missing": 3500}


def test_refund_goes_to_last_tender_first_and_never_beyond_captured():
    tenders = [TenderState("gc", 2500, 2500), TenderState("card", 3500, 3500)]
    assert plan_refund(4000, tenders) == [("card", 3500), ("gc", 500)]


def test_refund_above_refundable_is_409():
    tenders = [TenderState("card", 3500, 3500, refunded=3000)]
    with pytest.raises(AppError) as exc:
        plan_refund(600, tenders)
    assert exc.value.code == "refund_exceeds_captured"
    assert exc.value.details == {"requested": 600, "refundable": 500}


@given(
    captured=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=4),
    refunds=st.lists(st.integers(min_value=1, max_value=10_000), max_size=8),
)
def test_refunded_never_exceeds_captured(captured, refunds):
    tenders = [TenderState(str(i), c, c) for i, c in enumerate(captured)]
    for amount in refunds:
        try:
            plan = plan_refund(amount, tenders)
        except AppError:
            continue
        for tid, part in plan:
            tenders[int(tid)].refunded += part
    assert all(t.refunded <= t.captured for t in tenders)


def test_high_value_first_order_with_mismatch_is_held():
    signals = FraudSignals(80_000, True, 0, 0, 0, "GB", "FR")
    result = assess_fraud(signals)
    assert result.score == 60
    assert result.reasons == ("high_value_first_order", "billing_shipping_mismatch")
    assert result.hold is True


def test_ordinary_order_passes():
    result = assess_fraud(FraudSignals(3_000, False, 0, 0, 0, "GB", "GB"))
    assert (result.score, result.hold) == (0, False)
