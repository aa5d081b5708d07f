from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaProducer

from detector.broker import free_port
from detector.kafka_io import (
    TOPIC_PARTITIONS,
    KafkaUnavailable,
    assigned_consumer,
    bootstrap_addresses,
    ensure_topics,
    poll_records,
)

pytestmark = pytest.mark.integration


def test_ensure_topics_is_idempotent_and_reports_what_exists(kafka_bootstrap) -> None:
    assert ensure_topics(kafka_bootstrap) == TOPIC_PARTITIONS
    assert ensure_topics(kafka_bootstrap) == TOPIC_PARTITIONS
    name = f"t-{uuid.uuid4().hex[:8]}"
    assert ensure_topics(kafka_bootstrap, {name: 2}, {name: {"retention.ms": "3600000"}}) == {name: 2}
    assert ensure_topics(kafka_bootstrap, {name: 5}) == {name: 2}  # an existing topic is left as it is


def test_bad_topic_requests_and_addresses_are_named() -> None:
    with pytest.raises(ValueError, match="'x': partitions must be >= 1"):
        ensure_topics("127.0.0.1:1", {"x": 0})
    with pytest.raises(ValueError, match="'kafka' is not host:port"):
        bootstrap_addresses("127.0.0.1:9092,kafka")
    assert bootstrap_addresses("a:1, [::1]:2") == [("a", 1), ("::1", 2)]


def test_unreachable_broker_fails_fast_naming_the_address() -> None:
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable, match=address):
        ensure_topics(address)
    assert time.monotonic() - started < 5


def test_since_ms_reads_only_records_written_after_it(kafka_bootstrap) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_bootstrap, {topic: 2})
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    for i in range(20):
        producer.send(topic, f"old-{i}".encode(), partition=i % 2)
    producer.flush()
    time.sleep(0.05)
    since_ms = int(time.time() * 1000)
    time.sleep(0.05)
    consumer = assigned_consumer(kafka_bootstrap, topic, since_ms=since_ms, fetch_max_wait_ms=100)
    for i in range(10):
        producer.send(topic, f"new-{i}".encode(), partition=i % 2)
    producer.flush()
    producer.close()
    values: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(values) < 10 and time.monotonic() < deadline:
        values += [record.value for record in poll_records(consumer, since_ms=since_ms)]
    values += [record.value for record in poll_records(consumer, since_ms=since_ms)]
    consumer.close()
    assert sorted(values) == sorted(f"new-{i}".encode() for i in range(10))
