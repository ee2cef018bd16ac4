"""Pure checkout rules: delivery groups, addresses, shipping rates, taxes, refund shares,
return windows, cash change and register sequences."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omniretail.core.errors import AppError
from omniretail.order.domain import (
    DeliveryMethod,
    ShippingRate,
    TaxRule,
    advance_contiguous,
    assign_groups,
    cash_change,
    check_group_cover,
    check_return_window,
    missing_sequences,
    parse_method,
    pick_shipping_rate,
    refund_share,
    return_window_days,
    shipping_for,
    taxed,
    validate_address,
    validate_vehicle,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_new_skus_join_the_first_group_and_empty_groups_go():
    groups = [
        {"id": "g1", "method": "bopis", "skus": ["A"]},
        {"id": "g2", "method": "standard", "skus": ["B"]},
    ]
    assert assign_groups(groups, ["A", "C"]) == [
        {"id": "g1", "method": "bopis", "skus": ["A", "C"]}
    ]


def test_without_groups_one_undecided_group_holds_everything():
    assert assign_groups([], ["A", "B"]) == [{"id": "g1", "method": None, "skus": ["A", "B"]}]


def test_a_sku_in_two_groups_is_refused():
    with pytest.raises(AppError) as exc:
        check_group_cover([{"skus": ["A"]}, {"skus": ["A"]}], ["A"])
    assert exc.value.code == "sku_in_two_groups"


def test_groups_must_cover_the_cart():
    with pytest.raises(AppError) as exc:
        check_group_cover([{"skus": ["A", "X"]}], ["A", "B"])
    assert exc.value.details == {"not_in_cart": ["X"], "without_group": ["B"]}


def test_in_store_is_not_a_checkout_method():
    with pytest.raises(AppError) as exc:
        parse_method("in_store")
    assert exc.value.code == "invalid_delivery_method"
    assert parse_method("bopis") is DeliveryMethod.BOPIS


def test_address_is_cleaned():
    assert validate_address(
        {
            "name": " Ada  Lovelace ",
            "line1": "12 Market St",
            "city": "London",
            "postal_code": "ec1a 1bb",
            "country": "gb",
        }
    ) == {
        "name": "Ada Lovelace",
        "line1": "12 Market St",
        "city": "London",
        "postal_code": "EC1A 1BB",
        "country": "GB",
    }


def test_us_address_needs_a_state_and_a_zip():
    with pytest.raises(AppError) as exc:
        validate_address(
            {
                "name": "G",
                "line1": "1 Broadway",
                "city": "NYC",
                "postal_code": "1000",
                "country": "US",
            }
        )
    assert exc.value.details["fields"] == {
        "postal_code": "not a valid postal code for US",
        "region": "required for US",
    }


def test_unknown_address_fields_are_named():
    with pytest.raises(AppError) as exc:
        validate_address({"street": "x"})
    assert exc.value.details["fields"]["street"] == "unknown field"


def test_curbside_vehicle_needs_a_plate_or_colour_and_model():
    assert validate_vehicle({"color": "red", "model": "Mini"}) == {"color": "red", "model": "Mini"}
    with pytest.raises(AppError):
        validate_vehicle({"color": "red"})


def test_the_most_specific_shipping_rate_wins():
    rates = [
        ShippingRate("standard", 500),
        ShippingRate("standard", 400, country="GB"),
        ShippingRate("standard", 300, channel_id="chn_web"),
        ShippingRate("standard", 200, channel_id="chn_web", country="GB"),
        ShippingRate("express", 900),
    ]
    assert pick_shipping_rate(rates, "standard", "chn_web", "GB").amount == 200
    assert pick_shipping_rate(rates, "standard", "chn_app", "GB").amount == 400
    assert pick_shipping_rate(rates, "standard", "chn_app", "FR").amount == 500
    assert pick_shipping_rate(rates, "locker", "chn_web", "GB") is None


def test_free_shipping_from_a_threshold_and_free_pickup_without_a_rate():
    rate = ShippingRate("standard", 495, free_over=5000)
    assert shipping_for(DeliveryMethod.STANDARD, rate, 4999) == 495
    assert shipping_for(DeliveryMethod.STANDARD, rate, 5000) == 0
    assert shipping_for(DeliveryMethod.BOPIS, None, 100) == 0
    assert shipping_for(DeliveryMethod.EXPRESS, None, 100) is None


def test_inclusive_tax_is_contained_and_exclusive_tax_is_added():
    assert taxed(1200, TaxRule("GB", None, 2000, True)).gross == 1200
    assert taxed(1000, TaxRule("US", "NY", 888, False)).gross == 1089
    assert taxed(1000, None).tax == 0


def test_refund_shares_of_a_line_add_up_to_the_line_total():
    assert [refund_share(1000, 3, k, 1) for k in range(3)] == [333, 334, 333]


@given(
    total=st.integers(min_value=0, max_value=10**7),
    quantity=st.integers(min_value=1, max_value=50),
    data=st.data(),
)
def test_returning_units_in_any_batches_refunds_exactly_the_line_total(total, quantity, data):
    batches = []
    left = quantity
    while left:
        take = data.draw(st.integers(min_value=1, max_value=left))
        batches.append(take)
        left -= take
    already, refunded = 0, 0
    for take in batches:
        refunded += refund_share(total, quantity, already, take)
        already += take
    assert refunded == total


def test_return_window_per_channel_type():
    assert return_window_days("web", None) == 30
    assert return_window_days("marketplace", None) == 14
    assert return_window_days("marketplace", 60) == 60


def test_a_closed_return_window_is_422():
    check_return_window(T0, datetime(2026, 12, 1, 12, 0, tzinfo=UTC), 30)
    with pytest.raises(AppError) as exc:
        check_return_window(T0, datetime(2026, 12, 1, 12, 1, tzinfo=UTC), 30)
    assert exc.value.details == {"window_days": 30, "closed_at": "2026-12-01T12:00:00+00:00"}


def test_cash_change():
    assert cash_change(3200, 5000) == 1800
    with pytest.raises(AppError) as exc:
        cash_change(3200, 3000)
    assert exc.value.code == "insufficient_cash"


def test_register_sequences_report_gaps_and_advance_when_filled():
    assert missing_sequences(1, [2, 5]) == [3, 4]
    assert advance_contiguous(1, [2, 5]) == 2
    assert advance_contiguous(2, [3, 4, 5]) == 5
