"""Delivery promise: cut-offs, opening hours in the location's zone, handling time, transit
bands, carrier days, holidays, and the daylight-saving changes of 2026 (29 March in London,
8 March in New York)."""

from datetime import UTC, date, datetime

from omniretail.fulfillment.promise import (
    WEEKDAYS,
    CarrierCalendar,
    LocationCalendar,
    Source,
    promise_delivery,
    promise_pickup,
)

CARRIER = CarrierCalendar()  # collects Mon-Fri, delivers Mon-Sat, 08:00-18:00, cut-off 16:00
EVERY_DAY = {d: [["00:00", "24:00"]] for d in WEEKDAYS}


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def warehouse(**overrides):
    fields = {
        "location_id": "loc_dc",
        "code": "dc-daventry",
        "name": "DC Daventry",
        "timezone": "Europe/London",
    }
    return LocationCalendar(**{**fields, **overrides})


def new_york_store(**overrides):
    fields = {
        "location_id": "loc_ny",
        "code": "ny-5th",
        "name": "Fifth Avenue",
        "timezone": "America/New_York",
        "opening_hours": {d: [["10:00", "19:00"]] for d in WEEKDAYS},
        "handling_minutes": 90,
    }
    return LocationCalendar(**{**fields, **overrides})


def london_store(**overrides):
    fields = {
        "location_id": "loc_cg",
        "code": "st-covent",
        "name": "Covent Garden",
        "timezone": "Europe/London",
        "opening_hours": {d: [["09:00", "17:00"]] for d in WEEKDAYS},
    }
    return LocationCalendar(**{**fields, **overrides})


def test_an_order_before_the_cut_off_ships_today_and_arrives_tomorrow():
    # Thursday 13:50; 2 h handling makes the 16:00 collection: order by 14:00.
    promise = promise_delivery(
        "standard", [Source(warehouse(), 109.2)], CARRIER, utc(2026, 11, 26, 13, 50)
    )
    assert promise.text == "Order within 10 min for delivery tomorrow"
    assert (promise.earliest, promise.latest, promise.order_by) == (
        utc(2026, 11, 27, 8),
        utc(2026, 11, 27, 18),
        utc(2026, 11, 26, 14),
    )


def test_one_minute_before_the_cut_off_still_makes_it():
    promise = promise_delivery(
        "standard", [Source(warehouse(), 109.2)], CARRIER, utc(2026, 11, 26, 13, 59)
    )
    assert promise.text == "Order within 1 min for delivery tomorrow"


def test_one_second_after_the_cut_off_moves_to_the_next_collection():
    promise = promise_delivery(
        "standard", [Source(warehouse(), 109.2)], CARRIER, utc(2026, 11, 26, 14, 0, 1)
    )
    assert promise.text == "Order within 23 h 59 min for delivery on Saturday 28 November"
    assert promise.order_by == utc(2026, 11, 27, 14)


def test_after_friday_cut_off_the_carrier_collects_on_monday():
    promise = promise_delivery(
        "standard", [Source(warehouse(), 109.2)], CARRIER, utc(2026, 11, 27, 17)
    )
    assert (promise.text, promise.earliest) == (
        "Delivery on Tuesday 1 December",
        utc(2026, 12, 1, 8),
    )


def test_transit_days_follow_the_distance_band():
    now = utc(2026, 11, 23, 9)  # Monday
    near = promise_delivery("standard", [Source(warehouse(), 40.0)], CARRIER, now)
    far = promise_delivery("standard", [Source(warehouse(), 800.0)], CARRIER, now)
    assert (near.earliest.date(), far.earliest.date()) == (date(2026, 11, 24), date(2026, 11, 26))


def test_express_arrives_next_day_whatever_the_distance():
    promise = promise_delivery(
        "express", [Source(warehouse(), 800.0)], CARRIER, utc(2026, 11, 23, 9)
    )
    assert (promise.text, promise.order_by) == (
        "Order within 3 h for delivery tomorrow",
        utc(2026, 11, 23, 12),  # express cut-off 14:00 minus 2 h handling
    )


def test_the_last_package_sets_the_promise_and_the_first_cut_off_the_deadline():
    now = utc(2026, 11, 23, 9)
    promise = promise_delivery(
        "standard",
        [Source(warehouse(), 40.0), Source(warehouse(location_id="loc_far"), 800.0)],
        CARRIER,
        now,
    )
    assert (promise.earliest, promise.order_by) == (utc(2026, 11, 26, 8), utc(2026, 11, 23, 14))


def test_a_location_holiday_skips_its_collection():
    calendar = warehouse(holidays=frozenset({date(2026, 11, 27)}))
    promise = promise_delivery(
        "standard", [Source(calendar, 109.2)], CARRIER, utc(2026, 11, 26, 17)
    )
    assert promise.earliest == utc(2026, 12, 1, 8)  # Friday off: Monday collection


def test_carrier_holidays_are_not_delivery_days():
    carrier = CarrierCalendar(holidays=frozenset({date(2026, 12, 25), date(2026, 12, 26)}))
    promise = promise_delivery(
        "standard", [Source(warehouse(), 109.2)], carrier, utc(2026, 12, 24, 9)
    )
    assert (promise.text, promise.earliest) == (
        "Order within 5 h for delivery on Monday 28 December",
        utc(2026, 12, 28, 8),
    )


def test_a_location_cut_off_overrides_the_carrier_default():
    calendar = warehouse(cutoffs={"standard": "12:00"})
    promise = promise_delivery("standard", [Source(calendar, 109.2)], CARRIER, utc(2026, 11, 26, 9))
    assert promise.order_by == utc(2026, 11, 26, 10)


def test_pickup_is_ready_after_handling_rounded_to_the_quarter_hour_in_store_time():
    # 15:47 UTC is 10:47 in New York (EST): 90 minutes of handling, ready 12:17 -> 12:30.
    promise = promise_pickup(new_york_store(), [], CARRIER, utc(2026, 11, 26, 15, 47))
    assert (promise.text, promise.earliest) == (
        "Ready for pickup today 12:30 at Fifth Avenue",
        utc(2026, 11, 26, 17, 30),
    )


def test_handling_that_runs_past_closing_finishes_the_next_morning():
    # 18:00 EST: one hour today until 19:00, the last 30 minutes from 10:00 tomorrow.
    promise = promise_pickup(new_york_store(), [], CARRIER, utc(2026, 11, 26, 23))
    assert (promise.text, promise.earliest) == (
        "Ready for pickup tomorrow 10:30 at Fifth Avenue",
        utc(2026, 11, 27, 15, 30),
    )


def test_stock_moved_in_by_transfer_is_ready_after_the_lead_time():
    store = london_store(handling_minutes=60)
    source = Source(warehouse(), 173.9, lead_time_hours=48)
    promise = promise_pickup(store, [source], CARRIER, utc(2026, 11, 26, 10))
    assert (promise.text, promise.earliest) == (
        "Ready for pickup on Saturday 28 November 11:00 at Covent Garden",
        utc(2026, 11, 28, 11),
    )


def test_pickup_across_the_london_clock_change_opens_in_summer_time():
    # Saturday 28 March 16:30 GMT: 30 minutes today, 90 from Sunday's 09:00 BST (08:00 UTC).
    promise = promise_pickup(
        london_store(handling_minutes=120), [], CARRIER, utc(2026, 3, 28, 16, 30)
    )
    assert (promise.text, promise.earliest) == (
        "Ready for pickup tomorrow 10:30 at Covent Garden",
        utc(2026, 3, 29, 9, 30),
    )


def test_handling_through_the_missing_hour_counts_real_time():
    # 00:30 GMT on 29 March, a 24-hour location: two real hours end at 03:30 BST.
    store = london_store(opening_hours=EVERY_DAY, handling_minutes=120)
    promise = promise_pickup(store, [], CARRIER, utc(2026, 3, 29, 0, 30))
    assert (promise.text, promise.earliest) == (
        "Ready for pickup today 03:30 at Covent Garden",
        utc(2026, 3, 29, 2, 30),
    )


def test_same_day_cut_off_on_the_new_york_clock_change_uses_daylight_time():
    # 15:30 UTC on 8 March 2026 is 11:30 EDT (UTC-4): the 12:00 cut-off is 30 minutes away.
    carrier = CarrierCalendar(
        collection_days=frozenset(WEEKDAYS), delivery_days=frozenset(WEEKDAYS)
    )
    location = new_york_store(opening_hours=EVERY_DAY, handling_minutes=0)
    promise = promise_delivery(
        "same_day", [Source(location, 4.0)], carrier, utc(2026, 3, 8, 15, 30), "America/New_York"
    )
    assert (promise.text, promise.order_by, promise.earliest, promise.latest) == (
        "Order within 30 min for delivery today 18:00–22:00",
        utc(2026, 3, 8, 16),
        utc(2026, 3, 8, 22),
        utc(2026, 3, 9, 2),
    )


def test_delivery_texts_use_the_customer_time_zone():
    # 23:30 UTC Thursday is 18:30 Thursday in New York; the parcel arrives Friday there.
    promise = promise_delivery(
        "standard",
        [Source(warehouse(), 109.2)],
        CARRIER,
        utc(2026, 11, 26, 11),
        destination_timezone="America/New_York",
    )
    assert (promise.earliest, promise.text) == (
        utc(2026, 11, 27, 13),  # 08:00 EST
        "Order within 3 h for delivery tomorrow",
    )


def test_carrier_calendar_round_trips_through_its_dict():
    carrier = CarrierCalendar(holidays=frozenset({date(2026, 12, 25)}), express_days=2)
    assert CarrierCalendar.from_dict(carrier.to_dict()) == carrier
