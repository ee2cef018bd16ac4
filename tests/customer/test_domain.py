"""Pure rules: identifier normalisation, masking, identity rules, event validation."""

from datetime import UTC, datetime

import pytest

from omniretail.customer import domain
from omniretail.customer.domain import EventRejected

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("email", "  Ada@Example.ORG ", "ada@example.org"),
        ("email", "not-an-email", None),
        ("phone", "+44 (7700) 900-123", "+447700900123"),
        ("phone", "12", None),
        ("loyalty_card", "lc-100 200", "LC100200"),
        ("user_id", 42, "42"),
        ("anonymous_id", "", None),
        ("user_id", True, None),
    ],
)
def test_identifiers_are_normalised(kind, raw, expected):
    assert domain.normalise_identifier(kind, raw) == expected


def test_masks_keep_only_hints():
    assert domain.mask_email("ada@example.org") == "a***@example.org"
    assert domain.mask_phone("+447700900123") == "+**********23"
    assert domain.mask_name("Ada") == "A***"
    assert domain.mask_address({"line1": "1 Road", "city": "Leeds", "country": "GB"}) == {
        "line1": "***",
        "city": "***",
        "country": "GB",
    }


def test_two_user_ids_exceed_the_default_limit():
    limits = {"user_id": 1, "email": 5}
    assert domain.merge_violation({"user_id": 1}, {"user_id": 1}, limits) == "limit:user_id"
    assert domain.merge_violation({"user_id": 1}, {"email": 1}, limits) is None


def test_external_ids_are_limited_per_channel():
    limits = {"external": 1}
    assert domain.merge_violation({"external:shop": 1}, {"external:pos": 1}, limits) is None
    assert (
        domain.merge_violation({"external:shop": 1}, {"external:shop": 1}, limits)
        == "limit:external:shop"
    )


def test_known_profile_survives_an_anonymous_one_even_if_younger():
    old = datetime(2024, 1, 1, tzinfo=UTC)
    assert domain.choose_survivor(("cus_a", False, old), ("cus_b", True, NOW)) == ("cus_b", "cus_a")
    assert domain.choose_survivor(("cus_a", True, old), ("cus_b", True, NOW)) == ("cus_a", "cus_b")


def test_identify_traits_are_split_into_personal_and_plain():
    event = domain.normalise_event(
        {
            "type": "identify",
            "userId": "u",
            "messageId": "m",
            "traits": {"email": "a@b.co", "firstName": "Ada", "plan": "gold"},
            "context": {"ip": "1.2.3.4", "locale": "en"},
        },
        NOW,
        None,
    )
    assert event.traits == {"plan": "gold"}
    assert event.pii_traits == {"email": "a@b.co", "firstName": "Ada"}
    assert event.data == {"traits": {"plan": "gold"}, "context": {"locale": "en"}}
    assert event.pii == {"context.ip": "1.2.3.4", "traits": {"email": "a@b.co", "firstName": "Ada"}}


def test_order_completed_becomes_an_order_fact_in_minor_units():
    event = domain.normalise_event(
        {
            "type": "track",
            "event": "Order Completed",
            "anonymousId": "a",
            "messageId": "m",
            "properties": {"order_id": 77, "total": "19.995", "currency": "jpy"},
        },
        NOW,
        None,
    )
    assert (event.fact, event.order_id, event.amount_minor, event.currency) == (
        "order_completed",
        "77",
        20,
        "JPY",
    )


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ({"type": "launch", "userId": "u"}, "unknown_type"),
        ({"type": "track", "event": "X"}, "missing_identity"),
        ({"type": "track", "userId": "u"}, "missing_event"),
        ({"type": "group", "userId": "u"}, "missing_group"),
        ({"type": "alias", "anonymousId": "a", "previousId": "b"}, "missing_alias"),
        ({"type": "track", "event": "X", "userId": "u", "timestamp": "soon"}, "invalid_timestamp"),
        ({"type": "track", "event": "X", "userId": "u", "properties": []}, "invalid_field"),
        ({"type": "track", "event": "X", "userId": {"a": 1}}, "invalid_id"),
        ([1, 2], "invalid_event"),
    ],
)
def test_invalid_events_are_rejected_with_a_code(raw, code):
    with pytest.raises(EventRejected) as caught:
        domain.normalise_event(raw, NOW, None)
    assert caught.value.code == code


def test_future_timestamps_are_clamped_to_the_receive_time():
    event = domain.normalise_event(
        {"type": "track", "event": "X", "userId": "u", "timestamp": "2099-01-01T00:00:00Z"},
        NOW,
        None,
    )
    assert event.occurred_at == NOW
