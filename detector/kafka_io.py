"""Talking to Kafka: topic names and partition counts, idempotent topic creation, consumers.

Everything here holds on Apache Kafka and on the embedded Tansu broker alike, which means avoiding
two things Tansu gets wrong (see ``docs/broker.md``): kafka-python consumer *groups* hang on it, so
consumers here assign partitions by hand; and ``end_offsets`` is wrong on it, so "have I read
everything?" is answered by counting records, never by comparing offsets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, TopicAlreadyExistsError

from detector.broker import kafka_answers

LIVE_EVENTS = "live-events"
LIVE_EVENTS_DLQ = "live-events-dlq"
METRIC_WINDOWS = "metric-windows"
ANOMALIES = "anomalies"
ALERTS = "alerts"

# Stage 1 is partitioned by room and stage 2 by series, so those two topics carry the parallelism;
# the others are low-volume outputs where one partition keeps a global order.
TOPIC_PARTITIONS: dict[str, int] = {
    LIVE_EVENTS: 6,
    LIVE_EVENTS_DLQ: 1,
    METRIC_WINDOWS: 6,
    ANOMALIES: 1,
    ALERTS: 1,
}

# Seconds to wait for a broker that accepted the connection; an address nobody listens on fails at once.
DEFAULT_TIMEOUT_S = 10.0


class KafkaUnavailable(ConnectionError):
    """No Kafka broker answers at the configured bootstrap address."""


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """``"host:port,host:port"`` as (host, port) pairs; raise ValueError naming a malformed entry."""
    addresses = []
    for entry in bootstrap.split(","):
        host, sep, port = entry.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"bootstrap address {entry.strip()!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def require_broker(bootstrap: str, timeout: float = 2.0) -> None:
    """Raise :class:`KafkaUnavailable` naming the address unless some bootstrap broker answers.

    kafka-python on its own retries an unreachable bootstrap for its whole timeout and then reports
    ``NoBrokersAvailable`` without the address; this probe fails fast and says where it looked.
    """
    if not any(kafka_answers(host, port, timeout) for host, port in bootstrap_addresses(bootstrap)):
        raise KafkaUnavailable(
            f"no Kafka broker answers at {bootstrap}; start one (`livewatch broker`) or fix "
            "--bootstrap / LIVEWATCH_BOOTSTRAP"
        )


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int] | None = None,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, int]:
    """Create the topics that do not exist yet; return every requested topic's partition count.

    ``topics`` maps name to partition count (default :data:`TOPIC_PARTITIONS`); ``configs`` maps a
    topic name to its topic configs (e.g. ``{"retention.ms": "3600000"}``). An existing topic is
    left as it is, also when its partition count differs: the returned counts say what is there.
    """
    wanted = dict(TOPIC_PARTITIONS if topics is None else topics)
    for name, partitions in wanted.items():
        if partitions < 1:
            raise ValueError(f"topic {name!r}: partitions must be >= 1, got {partitions}")
    require_broker(bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs=dict((configs or {}).get(name, {})),
            )
            for name, partitions in wanted.items()
            if name not in existing
        ]
        for topic in missing:
            # One request per topic: a topic created concurrently by another process must not fail
            # the creation of the others.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([topic], timeout_ms=int(timeout * 1000))
        described = admin.describe_topics(list(wanted))
    finally:
        admin.close()
    counts = {}
    for topic in described:
        if topic["error_code"] != 0:
            raise KafkaError(f"topic {topic['name']!r} is not available (error code {topic['error_code']})")
        counts[topic["name"]] = len(topic["partitions"])
    return counts


def assigned_consumer(
    bootstrap: str, topic: str, *, since_ms: int | None = None, **config: Any
) -> KafkaConsumer:
    """A kafka-python consumer reading every partition of ``topic``, assigned by hand (no group).

    From the beginning, or with ``since_ms`` near the first record stamped at or after that time
    (epoch ms): pass the same ``since_ms`` to :func:`poll_records` to drop the older records still
    read. Kafka answers "no such record" with None (the consumer then starts at the end); Tansu
    answers offset 0 with timestamp -1, so there it starts at the beginning and the filter does the work.
    ``config`` goes to :class:`KafkaConsumer` unchanged (e.g. ``fetch_max_wait_ms``).
    """
    require_broker(bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **config)
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        consumer.close()
        raise KafkaError(f"topic {topic!r} does not exist at {bootstrap}")
    assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assignment)
    if since_ms is None:
        consumer.seek_to_beginning(*assignment)
        return consumer
    found = consumer.offsets_for_times({tp: since_ms for tp in assignment})
    for tp in assignment:
        position = found.get(tp)
        if position is None:
            consumer.seek_to_end(tp)
        elif position.timestamp < 0:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, position.offset)
    return consumer


def poll_records(
    consumer: KafkaConsumer, timeout_ms: int = 200, *, since_ms: int | None = None
) -> Iterator[ConsumerRecord]:
    """The records one poll returns, across partitions; with ``since_ms``, only those whose
    timestamp is at or after it."""
    for records in consumer.poll(timeout_ms=timeout_ms).values():
        for record in records:
            if since_ms is None or record.timestamp >= since_ms:
                yield record
