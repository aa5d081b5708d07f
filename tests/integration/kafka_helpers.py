"""A counting consumer and fresh topics for the Kafka I/O tests."""

from __future__ import annotations

import itertools
import time
import uuid

from detector.events import Event, decode_message
from detector.kafka_io import assigned_consumer, ensure_topics, poll_records


def fresh_topic(bootstrap: str, partitions: int = 3) -> str:
    topic = f"test-{uuid.uuid4().hex[:10]}"
    ensure_topics(bootstrap, {topic: partitions})
    return topic


def consume_events(
    bootstrap: str, topic: str, expected: int, timeout: float = 20.0
) -> tuple[list[Event], int]:
    """Events read back from every partition (in partition order) until ``expected`` arrived or
    ``timeout`` passed, and the number of messages they came in. Counts records: end_offsets is wrong
    on Tansu."""
    consumer = assigned_consumer(bootstrap, topic, fetch_max_wait_ms=100)
    events: list[Event] = []
    messages = 0
    deadline = time.monotonic() + timeout
    try:
        while len(events) < expected and time.monotonic() < deadline:
            for record in poll_records(consumer):
                decoded, invalid = decode_message(record.value)
                assert not invalid, invalid
                events.extend(decoded)
                messages += 1
        # Anything beyond the expected count would be a duplicate: give it a moment to show up.
        for record in itertools.chain.from_iterable(poll_records(consumer) for _ in range(2)):
            events.extend(decode_message(record.value)[0])
            messages += 1
    finally:
        consumer.close()
    return events, messages


def fingerprint(events: list[Event]) -> list[tuple[str, int, int, float]]:
    return sorted((e.event_id, e.ts, e.room_id, e.value) for e in events)


def by_room(events: list[Event]) -> dict[int, list[str]]:
    rooms: dict[int, list[str]] = {}
    for event in events:
        rooms.setdefault(event.room_id, []).append(event.event_id)
    return rooms
