"""Synthetic events and a counting consumer for the Kafka I/O tests."""

from __future__ import annotations

import itertools
import time
import uuid

import numpy as np

from detector.events import EVENT_TYPES, Event, decode_message
from detector.kafka_io import assigned_consumer, ensure_topics, poll_records

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def synthetic_events(
    n: int, *, rooms: int = 20, seed: int = 0, start_ms: int = START_MS, step_ms: int = 10
) -> list[Event]:
    """``n`` events in event-time order, ``step_ms`` apart, spread over ``rooms`` rooms (skewed)."""
    rng = np.random.default_rng(seed)
    room_ids = (rng.zipf(1.6, size=n) - 1) % rooms
    types = rng.integers(0, len(EVENT_TYPES), size=n)
    values = np.round(rng.exponential(5.0, size=n), 3)
    return [
        Event(
            event_id=f"s{seed}-{i}",
            ts=start_ms + i * step_ms,
            type=EVENT_TYPES[int(types[i])],
            room_id=int(room_ids[i]),
            user_id=i % 997,
            creator_id=int(room_ids[i]) + 1000,
            region=("eu", "us", "apac")[i % 3],
            platform=("ios", "android", "web")[i % 3 - 1],
            app_version="7.1.0",
            creator_tier="gold",
            network=("wifi", "4g")[i % 2],
            value=float(values[i]),
        )
        for i in range(n)
    ]


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
