"""Both stages end to end on the real broker, with the region-count test double (tests/stream_double.py)."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from detector.events import encode_batch, encode_event
from detector.stream import topics as names
from tests.stream_double import INTERNAL_ERROR_PROBE, DoubleConfig
from tests.stream_harness import (
    Producer,
    TopicReader,
    anomaly_counts,
    batched_messages,
    closing_events,
    create_topics,
    expected_counts,
    make_events,
    unique_settings,
    workers,
)

pytestmark = pytest.mark.integration

WINDOW_MS = 60_000


def test_good_events_counted_once_and_bad_inputs_dead_lettered(kafka_bootstrap, tmp_path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    rng = np.random.default_rng(7)
    good = make_events(rng, 6_000, windows=6, window_ms=WINDOW_MS)
    messages = batched_messages(good[:3_000], settings.source_partitions, per_message=50)
    messages += batched_messages(good[3_000:5_000], settings.source_partitions, per_message=1)
    # One batch with a broken event in the middle: its neighbours must be counted.
    mixed = good[5_000:5_010]
    broken = encode_batch(mixed[:5])[:-1] + b',{"event_id":"x"},' + encode_batch(mixed[5:])[1:]
    bad = [
        (0, b"this is not json"),
        (1, encode_event(good[0]).replace(b'"type":"', b'"type":"teleport_', 1)),
        (2, encode_event(good[0]).replace(b'"value":', b'"value":-', 1)),
        (3, b'{"event_id": "e-missing-fields", "ts": 1767225600000}'),
        (0, broken),
    ]
    messages += bad + batched_messages(good[5_010:], settings.source_partitions, per_message=25)
    future = msgspec.structs.replace(good[0], event_id="future", ts=4_000_000_000_000)
    late = msgspec.structs.replace(good[0], event_id="late")
    messages += [(1, encode_event(future))]
    # The folder raises on this one: dead-lettered as "internal", and the stream goes on.
    messages += [(3, encode_event(msgspec.structs.replace(good[0], region=INTERNAL_ERROR_PROBE)))]
    last_ts = max(e.ts for e in good)

    producer = Producer(settings.bootstrap)
    anomalies = TopicReader(settings.bootstrap, settings.topic(names.ANOMALIES), settings.window_partitions)
    dead = TopicReader(settings.bootstrap, settings.topic(names.DEAD_LETTERS), settings.source_partitions)
    expected = expected_counts(good, WINDOW_MS)
    try:
        with workers(settings, DoubleConfig(window_ms=WINDOW_MS), tmp_path):
            producer.send(settings.topic(names.LIVE_EVENTS), messages)
            producer.send(settings.topic(names.LIVE_EVENTS), closing_events(settings, last_ts, WINDOW_MS))
            anomalies.wait_for(lambda r: len(anomaly_counts(r)) >= len(expected), 60, "every window scored")
            # Window 0 of partition 2 is closed by now: an event for it is late.
            producer.send(settings.topic(names.LIVE_EVENTS), [(2, encode_event(late))])
            dead.wait_for(lambda r: len(r.records) >= 8, 30, "dead letters")
        assert anomaly_counts(anomalies) == expected
        reasons = sorted(letter["reason"] for letter in dead.json())
        assert reasons == sorted(
            ["not_json", "unknown_type", "bad_value", "schema", "schema", "future", "late", "internal"]
        )
        by_reason = {letter["reason"]: letter for letter in dead.json()}
        assert by_reason["not_json"]["raw"] == "this is not json"
        assert by_reason["late"]["source"]["partition"] == 2
        assert "value" in by_reason["bad_value"]["detail"]
        assert "RuntimeError" in by_reason["internal"]["detail"]
    finally:
        producer.close()
        anomalies.close()
        dead.close()
