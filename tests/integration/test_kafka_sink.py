from __future__ import annotations

import time

import numpy as np
import pytest
from kafka.errors import KafkaTimeoutError

from detector.broker import EmbeddedBroker, free_port
from detector.events import EventFrame, decode_message
from detector.kafka_io import KafkaUnavailable, assigned_consumer, ensure_topics, poll_records
from producers.kafka_sink import DeliveryError, KafkaSink
from tests.integration.kafka_helpers import by_room, consume_events, fingerprint, fresh_topic
from tests.synthetic import synthetic_events

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("options", "max_messages"),
    [
        ({"batch_events": 100}, None),
        ({"batch_events": 100, "compression": "none", "partitions": 3}, None),
        ({"batch_events": 100, "group_by": "partition", "partitions": 3}, None),
        ({"single_events": True}, 3000),
    ],
    ids=["batched-gzip", "batched-plain-by-room-modulo", "batched-by-partition", "single-events"],
)
def test_every_event_is_consumed_back_once_in_room_order(kafka_bootstrap, options, max_messages) -> None:
    topic = fresh_topic(kafka_bootstrap, partitions=3)
    events = synthetic_events(3000, rooms=25, seed=1)
    frame = EventFrame.from_events(events)
    with KafkaSink(kafka_bootstrap, topic, **options) as sink:
        for start in range(0, len(events), 700):
            sink.write(frame.take(np.arange(start, min(start + 700, len(events)))))
    report = sink.report()
    assert report.events == len(events)
    assert report.errors == 0

    consumed, messages = consume_events(kafka_bootstrap, topic, len(events))
    assert fingerprint(consumed) == fingerprint(events)  # nothing lost, nothing duplicated
    assert messages == report.messages
    if max_messages is None:
        assert messages < len(events) / 5, "batched mode must carry many events per message"
    else:
        assert messages == max_messages
    assert by_room(consumed) == by_room(events)  # per-room order survives partitioning and batching


def test_batches_hold_one_room_and_respect_batch_events(kafka_bootstrap) -> None:
    topic = fresh_topic(kafka_bootstrap, partitions=2)
    events = synthetic_events(1000, rooms=5, seed=2)
    with KafkaSink(kafka_bootstrap, topic, batch_events=64, linger_ms=10_000) as sink:
        sink.write_events(events)
    consumer = assigned_consumer(kafka_bootstrap, topic, fetch_max_wait_ms=100)
    sizes, seen = [], 0
    deadline = time.monotonic() + 20
    while seen < len(events) and time.monotonic() < deadline:
        for record in poll_records(consumer):
            batch, _ = decode_message(record.value)
            assert {e.room_id for e in batch} == {int(record.key)}
            sizes.append(len(batch))
            seen += len(batch)
    consumer.close()
    assert seen == len(events)
    assert max(sizes) == 64  # full batches go out at batch_events, the rest at close despite the long linger


def test_batches_over_the_kafka_message_limit_are_split_in_order(kafka_bootstrap) -> None:
    topic = fresh_topic(kafka_bootstrap, partitions=1)
    events = synthetic_events(10_000, rooms=1, seed=7)  # ~2 MB of JSON for one room
    with KafkaSink(kafka_bootstrap, topic, batch_events=10_000, linger_ms=60_000) as sink:
        sink.write_events(events)
    assert sink.report().messages > 1
    assert sink.report().bytes / sink.report().messages <= 1_000_000
    consumed, _ = consume_events(kafka_bootstrap, topic, len(events))
    assert [e.event_id for e in consumed] == [e.event_id for e in events]


def test_linger_sends_a_partial_batch_without_close(kafka_bootstrap) -> None:
    topic = fresh_topic(kafka_bootstrap, partitions=1)
    sink = KafkaSink(kafka_bootstrap, topic, batch_events=10_000, linger_ms=20)
    try:
        sink.write_events(synthetic_events(50, rooms=2, seed=4))
        consumed, _ = consume_events(kafka_bootstrap, topic, 50, timeout=10)
        assert len(consumed) == 50
    finally:
        sink.close()


def test_unreachable_broker_is_a_clear_error() -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(KafkaUnavailable, match=address):
        KafkaSink(address, "live-events")


def test_events_that_cannot_be_delivered_make_close_raise(tmp_path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log").start()
    try:
        ensure_topics(broker.bootstrap, {"doomed": 1})
        sink = KafkaSink(
            broker.bootstrap, "doomed", batch_events=10, resend_attempts=1, delivery_timeout_ms=1500
        )
    finally:
        broker.stop()
    sink.write_events(synthetic_events(30, rooms=1, seed=5))
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="30 events in 3 messages could not be delivered") as failure:
        sink.close()
    assert time.monotonic() - started < 30, "delivery to a dead broker must give up within its timeouts"
    assert failure.value.lost_events == 30
    assert failure.value.report.events == 0
    assert failure.value.report.errors >= 3


def test_partition_batches_mix_rooms_of_one_partition_and_fill_up(kafka_bootstrap) -> None:
    from detector.events import decode_message
    from detector.kafka_io import assigned_consumer

    topic = fresh_topic(kafka_bootstrap, partitions=2)
    events = synthetic_events(1000, rooms=40, seed=6)
    with KafkaSink(
        kafka_bootstrap, topic, batch_events=200, linger_ms=10_000, group_by="partition", partitions=2
    ) as sink:
        sink.write_events(events)
    consumer = assigned_consumer(kafka_bootstrap, topic, fetch_max_wait_ms=100)
    sizes, rooms_per_message, seen = [], [], 0
    deadline = time.monotonic() + 20
    while seen < len(events) and time.monotonic() < deadline:
        for record in poll_records(consumer):
            batch, _ = decode_message(record.value)
            assert record.key is None
            assert {e.room_id % 2 for e in batch} == {record.partition}
            sizes.append(len(batch))
            rooms_per_message.append(len({e.room_id for e in batch}))
            seen += len(batch)
    consumer.close()
    assert seen == len(events)
    assert sizes.count(200) >= 3 and max(rooms_per_message) > 1


def test_a_failed_send_is_counted_and_resent_at_flush(kafka_bootstrap, monkeypatch) -> None:
    topic = fresh_topic(kafka_bootstrap, partitions=2)
    events = synthetic_events(200, rooms=4, seed=8)
    sink = KafkaSink(kafka_bootstrap, topic, batch_events=50, linger_ms=10_000)
    send = sink._producer.send
    failures = iter([True, False, True])  # the 1st and 3rd messages fail once

    def flaky_send(*args, **kwargs):
        if next(failures, False):
            raise KafkaTimeoutError("injected")
        return send(*args, **kwargs)

    monkeypatch.setattr(sink._producer, "send", flaky_send)
    sink.write_events(events)
    report = sink.close()
    assert report.errors == 2
    assert report.events == len(events)
    consumed, _ = consume_events(kafka_bootstrap, topic, len(events))
    assert fingerprint(consumed) == fingerprint(events)


def test_bad_options_are_rejected_by_name(kafka_bootstrap) -> None:
    with pytest.raises(ValueError, match="batch_events"):
        KafkaSink(kafka_bootstrap, "live-events", batch_events=0)
    with pytest.raises(ValueError, match="compression"):
        KafkaSink(kafka_bootstrap, "live-events", compression="brotli")
    with pytest.raises(ValueError, match="needs partitions"):
        KafkaSink(kafka_bootstrap, "live-events", group_by="partition")
