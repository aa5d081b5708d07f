from __future__ import annotations

import msgspec
import pytest

from detector.events import (
    EVENT_TYPES,
    INVALID_REASONS,
    Event,
    EventDecodeError,
    EventFrame,
    EventType,
    decode_event,
    decode_message,
    encode_batch,
    encode_event,
    encode_jsonl,
)

GOOD = {
    "event_id": "e1",
    "ts": 1_700_000_000_000,
    "type": "gift",
    "room_id": 1,
    "user_id": 2,
    "creator_id": 3,
    "region": "BR",
    "platform": "android",
    "app_version": "31.2",
    "creator_tier": "top",
    "network": "wifi",
    "value": 10.0,
}


def raw(**changes: object) -> bytes:
    return msgspec.json.encode({**GOOD, **changes})


def test_all_live_event_types_exist() -> None:
    assert {t.value for t in EVENT_TYPES} == {
        "view_start",
        "view_end",
        "gift",
        "comment",
        "like",
        "share",
        "follow",
        "stall",
        "report",
        "stream_start",
        "stream_end",
    }


def test_round_trip_single_and_batch() -> None:
    event = decode_event(raw())
    assert event.type is EventType.GIFT and event.value == 10.0
    assert decode_event(encode_event(event)) == event
    events, invalid = decode_message(encode_batch([event, event]))
    assert events == [event, event] and invalid == []
    lines = encode_jsonl([event, event]).splitlines()
    assert [decode_event(line) for line in lines] == [event, event]


def test_event_time_is_utc() -> None:
    assert decode_event(raw()).time.isoformat() == "2023-11-14T22:13:20+00:00"


def test_value_defaults_to_zero_when_absent() -> None:
    payload = msgspec.json.encode({k: v for k, v in GOOD.items() if k != "value"})
    assert decode_event(payload).value == 0.0


@pytest.mark.parametrize(
    ("payload", "reason", "field"),
    [
        (raw(type="zap"), "unknown_type", "$.type"),
        (raw(value=-1.0), "bad_value", "$.value"),
        (raw(ts=5), "bad_value", "$.ts"),
        (raw(ts="yesterday"), "schema", "$.ts"),
        (raw(region=""), "schema", "$.region"),
        (raw(room_id=-4), "bad_value", "$.room_id"),
        (msgspec.json.encode({k: v for k, v in GOOD.items() if k != "platform"}), "schema", "platform"),
        (raw().replace(b"10.0", b"1e999"), "bad_value", "$.value"),
        (b'{"event_id": ', "not_json", ""),
        (b"NaN", "not_json", ""),
    ],
)
def test_invalid_event_names_the_field(payload: bytes, reason: str, field: str) -> None:
    with pytest.raises(EventDecodeError) as info:
        decode_event(payload)
    assert info.value.invalid.reason == reason
    assert reason in INVALID_REASONS
    assert field in info.value.invalid.detail
    assert info.value.invalid.raw == payload


def test_one_bad_event_in_a_batch_loses_no_neighbour() -> None:
    good = decode_event(raw())
    batch = b"[" + b",".join([raw(), raw(type="zap"), raw(event_id="e2"), raw(value=-3)]) + b"]"
    events, invalid = decode_message(batch)
    assert [e.event_id for e in events] == ["e1", "e2"]
    assert events[0] == good
    assert [i.reason for i in invalid] == ["unknown_type", "bad_value"]


def test_single_event_message_keeps_the_reason_and_field() -> None:
    # A lone object (not an array) that fails validation is a schema / value problem, not bad JSON.
    cases = ((raw(value=-1.0), "bad_value", "$.value"), (raw(type="zap"), "unknown_type", "$.type"))
    for payload, reason, field in cases:
        events, invalid = decode_message(payload)
        assert events == [] and [i.reason for i in invalid] == [reason]
        assert field in invalid[0].detail


def test_garbage_message_is_one_invalid_record() -> None:
    events, invalid = decode_message(b"\x00\xffnot json")
    assert events == [] and len(invalid) == 1 and invalid[0].reason == "not_json"


def test_events_are_immutable() -> None:
    event = decode_event(raw())
    with pytest.raises(AttributeError):
        event.value = 3.0  # type: ignore[misc]
    assert isinstance(event, Event)


def test_frame_round_trips_events_and_selects_rows() -> None:
    events = [
        decode_event(raw(event_id=f"e{i}", ts=GOOD["ts"] + i, region=("BR", "US")[i % 2], value=float(i)))
        for i in range(5)
    ]
    frame = EventFrame.from_events(events)
    assert len(frame) == 5
    assert frame.vocab["region"] == ("BR", "US")
    assert frame.to_events() == events
    us = frame.take(frame.dims["region"] == frame.vocab["region"].index("US"))
    assert [e.event_id for e in us.to_events()] == ["e1", "e3"]


def test_frame_of_many_synthetic_events_round_trips() -> None:
    from tests.synthetic import synthetic_events

    events = synthetic_events(500, seed=3)
    assert EventFrame.from_events(events).to_events() == events
