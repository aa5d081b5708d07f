"""Synthetic events and event logs for tests: seeded, in event-time order, over a few skewed rooms."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from detector.events import EVENT_TYPES, Event, encode_jsonl

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


def write_log(path: Path, events: list[Event], *, bad_lines: dict[int, bytes] | None = None) -> None:
    """Events as JSONL; ``bad_lines`` inserts raw lines before the event with that index."""
    lines = encode_jsonl(events).splitlines(keepends=True)
    for index, raw in sorted((bad_lines or {}).items(), reverse=True):
        lines.insert(index, raw + b"\n")
    data = b"".join(lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
