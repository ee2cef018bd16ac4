"""Pure rules: scores, segments, demand classes, KPI arithmetic, replenishment math."""

import math

import pytest

from omniretail.analytics.domain import (
    NodePlan,
    NodeStock,
    average_minor,
    classify_demand,
    is_service_code,
    plan_moves,
    plan_node,
    quintile_scores,
    rfm_segment,
    safety_stock,
    seasonal_scale,
    z_value,
)


def test_quintile_scores_of_distinct_values_are_ranks_in_fifths():
    assert quintile_scores([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]) == [
        1, 1, 2, 2, 3, 3, 4, 4, 5, 5,
    ]  # fmt: skip


def test_equal_values_share_the_lowest_score_of_their_block():
    # six customers with one order and four with more: the single-order block scores 1
    assert quintile_scores([1, 1, 1, 1, 1, 1, 2, 2, 3, 9]) == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_recency_scores_are_reversed():
    assert quintile_scores([5, 50, 500, 1, 100], higher_is_better=False) == [4, 3, 1, 5, 2]


@pytest.mark.parametrize(
    ("r", "f", "segment"),
    [
        (5, 5, "champions"),
        (5, 4, "champions"),
        (4, 5, "loyal"),
        (3, 4, "loyal"),
        (5, 1, "new_customers"),
        (4, 1, "promising"),
        (5, 2, "potential_loyalists"),
        (3, 3, "need_attention"),
        (3, 1, "about_to_sleep"),
        (2, 4, "at_risk"),
        (1, 5, "cannot_lose_them"),
        (1, 1, "hibernating"),
    ],
)
def test_rf_grid_names_segments(r, f, segment):
    assert rfm_segment(r, f) == segment


def test_every_rf_cell_has_exactly_one_segment():
    names = {rfm_segment(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert len(names) == 10


def test_aov_rounds_half_up():
    assert (average_minor(8250, 8), average_minor(2811, 6), average_minor(5, 0)) == (
        1031,
        469,
        None,
    )


@pytest.mark.parametrize(
    ("code", "service"),
    [("POST", True), ("m", True), ("BANK CHARGES", True), ("gift_0001_20", True),
     ("20001A", False), ("DCGSSGIRL", False)],
)  # fmt: skip
def test_service_codes(code, service):
    assert is_service_code(code) is service


def test_demand_classes_follow_syntetos_boylan():
    # smooth: demand every period, similar sizes
    assert classify_demand([10, 11, 9, 10]).demand_class == "smooth"
    # erratic: every period, sizes vary: sizes 1 and 9 → mean 5, sd 4, CV² 0.64
    assert classify_demand([1, 9, 1, 9]).demand_class == "erratic"
    # intermittent: ADI 8/2 = 4, equal sizes
    assert classify_demand([0, 0, 0, 5, 0, 0, 0, 5]).demand_class == "intermittent"
    # lumpy: ADI 4, sizes 1 and 9
    assert classify_demand([0, 0, 0, 1, 0, 0, 0, 9]).demand_class == "lumpy"


def test_demand_profile_values():
    profile = classify_demand([0, 0, 0, 1, 0, 0, 0, 9])
    assert (profile.adi, profile.cv2) == (4.0, pytest.approx(0.64))


def test_seasonal_scale_is_the_mean_absolute_m_step_difference():
    assert seasonal_scale([1, 3, 2, 6], 1) == pytest.approx((2 + 1 + 4) / 3)
    assert seasonal_scale([1, 3, 2, 6], 2) == pytest.approx((1 + 3) / 2)
    assert seasonal_scale([1, 3], 2) == 0.0


def test_safety_stock_is_z_sigma_root_lead_time_rounded_up():
    # z(0.95) = 1.6449; 1.6449 × 10 × √4 = 32.9 → 33
    assert round(z_value(0.95), 4) == 1.6449
    assert safety_stock(10, 4, 0.95) == 33
    assert safety_stock(0, 4, 0.95) == 0


def test_service_level_must_be_a_probability_above_one_half():
    with pytest.raises(ValueError):
        z_value(1.0)


def test_node_at_its_reorder_point_needs_the_order_up_to_level():
    # μ 10/period, σ 5, L 2, R 1, 95 %: SS ⌈1.6449·5·√2⌉ = 12, ROP 20 + 12 = 32, S 30 + 12 = 42
    plan = plan_node(NodeStock("loc_a", 30, 2, 4, 10.0, 5.0), 2, 1, 0.95)
    # then IP = 30 − 2 + 4 = 32 ≤ ROP: need 42 − 32
    assert plan == NodePlan("loc_a", 12, 32, 42, 32, 10, 0)


def test_node_above_its_order_up_to_level_has_unreserved_excess():
    plan = plan_node(NodeStock("loc_b", 60, 5, 0, 10.0, 5.0), 2, 1, 0.95)
    # IP 55 − S 42 = 13, on hand − reserved = 55
    assert (plan.need, plan.excess) == (0, 13)


def test_excess_cannot_exceed_the_unreserved_units_on_hand():
    # 30 units incoming do not count as movable stock
    plan = plan_node(NodeStock("loc_c", 20, 0, 30, 5.0, 0.0), 1, 1, 0.95)
    # S = 10, IP = 50, excess min(40, 20)
    assert plan.excess == 20


def test_needs_are_covered_by_transfers_first_then_purchases_in_packs():
    plans = [
        NodePlan("loc_a", 0, 10, 20, 0, 20, 0),  # needs 20
        NodePlan("loc_b", 0, 10, 20, 5, 15, 0),  # needs 15
        NodePlan("loc_c", 0, 10, 20, 45, 0, 25),  # gives 25
    ]
    moves = plan_moves(plans, pack_size=6)
    assert [(m.kind, m.from_location_id, m.to_location_id, m.quantity) for m in moves] == [
        ("transfer", "loc_c", "loc_a", 20),
        ("transfer", "loc_c", "loc_b", 5),
        ("purchase", None, "loc_b", 12),  # 10 rounded up to two packs of 6
    ]


def test_transfers_below_the_minimum_are_not_suggested():
    plans = [NodePlan("loc_a", 0, 10, 20, 0, 20, 0), NodePlan("loc_c", 0, 10, 20, 22, 0, 2)]
    moves = plan_moves(plans, min_transfer=5)
    assert [(m.kind, m.quantity) for m in moves] == [("purchase", 20)]


def test_no_moves_when_nobody_needs_stock():
    plans = [NodePlan("loc_a", 0, 10, 20, 15, 0, 0)]
    assert plan_moves(plans) == []
    assert math.isclose(z_value(0.5), 0.0, abs_tol=1e-12)
