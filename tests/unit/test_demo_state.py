from __future__ import annotations

from collections import Counter

import pytest

from detector.demo import DemoState
from detector.events import encode_batch
from tests.synthetic import START_MS, synthetic_events


def test_recent_breakdown_covers_the_last_minute_of_event_time() -> None:
    state = DemoState(bootstrap="x:1", embedded=True, speed=1.0)
    old = synthetic_events(10, start_ms=START_MS, step_ms=1)
    new = synthetic_events(30, start_ms=START_MS + 120_000, step_ms=1, seed=1)
    state.add(encode_batch(old), now=1.0)
    state.add(encode_batch(new), now=2.0)
    state.add(b'[{"event_id": 1}]', now=2.5)
    by_type, by_region, seconds = state.recent()
    assert sum(by_type.values()) == sum(by_region.values()) == 30  # the old minute has left the view
    assert seconds == 1
    assert by_region == Counter(e.region for e in new)
    assert state.consumed_events == 40 and state.invalid_events == 1
    assert state.events_per_second(now=2.5) == pytest.approx(30.0)
    assert state.watermark_ms == new[-1].ts


def test_watermark_waits_for_the_partition_that_lags() -> None:
    state = DemoState(bootstrap="x:1", embedded=True, speed=1.0)
    ahead = synthetic_events(50, start_ms=START_MS + 600_000, step_ms=1000)  # 10 min later, 50 s long
    behind = synthetic_events(20, start_ms=START_MS, step_ms=1000, seed=1)
    state.add(encode_batch(ahead), now=1.0, partition=0)
    state.add(encode_batch(behind), now=1.0, partition=1)
    assert state.watermark_ms == behind[-1].ts
    by_type, _, seconds = state.recent()
    assert sum(by_type.values()) == 20 and seconds == 20  # the events ahead wait for the watermark
    state.add(encode_batch(synthetic_events(1, start_ms=ahead[-1].ts, seed=2)), now=2.0, partition=1)
    by_type, _, seconds = state.recent()
    assert sum(by_type.values()) == 50 + 1 and seconds == 50
