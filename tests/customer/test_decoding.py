"""Request decoding: a batch is parsed element by element, which gives each event's length in
the request; the event limit still applies to each event's compact JSON."""

import json

import pytest
from sqlalchemy import select

from omniretail.core.errors import AppError
from omniretail.customer import tracking
from omniretail.customer.models import CustomerEvent, TrackingReject
from tests.customer.conftest import basic


def test_a_batch_body_decodes_like_json_loads_with_the_length_of_each_event():
    # given a body as an SDK formats it (spaces, a nested object, non-ASCII text)
    text = '{ "batch" : [ {"type": "track", "n": [1, 2]} ,\n {"é": "ü"} ], "sentAt": null }'
    # when
    decoded = tracking.decode_body(text.encode(), None, 10_000)
    # then
    assert decoded.value == json.loads(text)
    assert decoded.spans == [len('{"type": "track", "n": [1, 2]}'), len('{"é": "ü"}')]
    assert (decoded.size, decoded.ascii) == (len(text.encode()), False)


def test_a_body_without_a_batch_array_has_no_event_lengths():
    decoded = tracking.decode_body(b'{"type": "track", "event": "X"}', None, 10_000)
    assert (decoded.value["event"], decoded.spans) == ("X", None)


def test_malformed_json_is_still_refused_with_its_position():
    with pytest.raises(AppError) as refused:
        tracking.decode_body(b'{"batch": [1,]}', None, 10_000)
    assert (refused.value.code, refused.value.message) == (
        "malformed_json",
        "malformed JSON: Expecting value: line 1 column 14 (char 13)",
    )


def test_an_event_whose_numbers_grow_when_reserialised_is_measured_compact(
    client, make_source, session, settings
):
    # given a 1,000-byte event limit and an event of 60 numbers written "1e15": about 330
    # bytes in the request, 1,200 as compact JSON ("1000000000000000.0")
    settings.tracking_max_event_bytes = 1000
    key, _ = make_source()
    grown = {"type": "track", "event": "Big", "anonymousId": "a-1", "messageId": "m-big"}
    body = json.dumps(
        {
            "batch": [
                {**grown, "properties": {"v": "__NUMBERS__"}},
                {"type": "track", "event": "Pad", "anonymousId": "a-1", "messageId": "m-pad",
                 "properties": {"text": "x" * 700}},
            ]
        }
    ).replace('"__NUMBERS__"', "[" + ", ".join(["1e15"] * 60) + "]")  # fmt: skip
    # when
    response = client.post("/v1/batch", content=body, headers=basic(key))
    # then the grown event is rejected alone, with its compact size
    assert response.status_code == 200
    assert session.scalars(select(CustomerEvent.message_id)).all() == ["m-pad"]
    reject = session.execute(select(TrackingReject.code, TrackingReject.size_bytes)).one()
    size = len(json.dumps({**grown, "properties": {"v": [1e15] * 60}}, separators=(",", ":")))
    assert tuple(reject) == ("event_too_large", size)
