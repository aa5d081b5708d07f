from __future__ import annotations

import numpy as np
import pytest

from producers.replay import Pacer, parse_speed, read_log
from tests.synthetic import synthetic_events, write_log


def test_truncated_gzip_keeps_the_complete_lines(tmp_path) -> None:
    events = synthetic_events(5000, seed=13)
    log = tmp_path / "events.jsonl.gz"
    write_log(log, events)
    data = log.read_bytes()
    log.write_bytes(data[: len(data) * 2 // 3])
    decoded, bad = [], []
    for chunk_events, chunk_bad, _ in read_log(log, chunk_lines=1000):
        decoded += chunk_events
        bad += chunk_bad
    assert 0 < len(decoded) < len(events)
    assert decoded == events[: len(decoded)]  # the readable prefix, intact
    assert [b.reason for b in bad] == ["truncated"]
    assert bad[0].line == len(decoded) + 1


def test_pacer_releases_rows_when_due_and_never_reorders() -> None:
    now = [0.0]
    stop_calls: list[float] = []

    class FakeStop:
        def is_set(self) -> bool:
            return False

        def wait(self, seconds: float) -> bool:
            stop_calls.append(seconds)
            now[0] += seconds
            return False

    pacer = Pacer(10.0, clock=lambda: now[0])
    pacer.stop = FakeStop()  # type: ignore[assignment]
    ts = np.array([0, 0, 1000, 500, 3000], dtype=np.int64)  # the 500 is late: goes with the 1000
    parts = [(s.start, s.stop) for s in pacer.slices(ts)]
    assert parts == [(0, 2), (2, 4), (4, 5)]
    assert stop_calls == pytest.approx([0.1, 0.2])  # event-time gaps / speed 10


def test_parse_speed() -> None:
    assert parse_speed("max") is None
    assert parse_speed("realtime") == 1.0
    assert parse_speed("60") == 60.0
    for bad in ("0", "-1", "fast", "nan", "inf"):
        with pytest.raises(ValueError, match="--speed"):
            parse_speed(bad)
