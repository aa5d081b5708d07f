from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from rich.console import Console

from detector.demo import DemoState, run_demo
from detector.events import EventFrame, encode_batch
from detector.kafka_io import LIVE_EVENTS, TOPIC_PARTITIONS
from tests.integration.kafka_helpers import START_MS, synthetic_events

pytestmark = pytest.mark.integration


def synthetic_frames(seconds: int, per_second: int = 200, seed: int = 0) -> Iterator[EventFrame]:
    for second in range(seconds):
        events = synthetic_events(
            per_second,
            seed=seed * 1000 + second,
            start_ms=START_MS + second * 1000,
            step_ms=1000 // per_second,
        )
        yield EventFrame.from_events(events)


def test_demo_shows_every_produced_event_and_stops_by_itself(kafka_bootstrap) -> None:
    out = io.StringIO()
    frames = list(synthetic_frames(90))
    expected = [e for f in frames for e in f.to_events()]
    summary = run_demo(
        iter(frames),
        bootstrap=kafka_bootstrap,
        speed=None,
        max_seconds=60,
        console=Console(file=out, width=140),
    )

    assert summary.producer_error is None and not summary.interrupted
    assert summary.produced_events == summary.consumed_events == len(expected)
    assert summary.by_type == dict(Counter(e.type.value for e in expected))
    assert summary.by_region == dict(Counter(e.region for e in expected))
    partitions = TOPIC_PARTITIONS[LIVE_EVENTS]
    newest = {p: max(e.ts for e in expected if e.room_id % partitions == p) for p in range(partitions)}
    assert summary.watermark_ms == min(newest.values())  # the oldest partition's newest event
    screen = out.getvalue()
    assert kafka_bootstrap in screen
    assert f"{len(expected):,} events" in screen
    assert "by region, last minute" in screen


def test_demo_stops_at_max_seconds_while_the_producer_is_still_pacing(kafka_bootstrap) -> None:
    out = io.StringIO()
    # An hour of event time at 60x would take a minute; the demo must stop after ~2 s and clean up.
    summary = run_demo(
        synthetic_frames(3600, per_second=20),
        bootstrap=kafka_bootstrap,
        speed=60.0,
        max_seconds=2,
        console=Console(file=out, width=140),
    )
    assert 0 < summary.consumed_events <= summary.produced_events < 3600 * 20
    assert summary.seconds < 20
    assert not any(t.name == "demo-producer" for t in threading.enumerate())


def test_demo_starts_and_stops_its_own_broker_when_no_bootstrap_is_given(monkeypatch, tmp_path) -> None:
    from detector.broker import kafka_answers

    monkeypatch.delenv("LIVEWATCH_BOOTSTRAP", raising=False)
    summary = run_demo(
        synthetic_frames(5),
        speed=None,
        max_seconds=30,
        broker_log=tmp_path / "tansu.log",
        console=Console(file=io.StringIO()),
    )
    assert summary.consumed_events == 5 * 200
    host, port = summary.bootstrap.rsplit(":", 1)
    assert not kafka_answers(host, int(port), timeout=0.2)


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


def test_ctrl_c_stops_producer_consumer_and_embedded_broker(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time
    from pathlib import Path

    from detector.broker import kafka_answers

    script = textwrap.dedent(
        """
        import sys
        from rich.console import Console
        from detector.demo import run_demo
        from tests.integration.test_demo import synthetic_frames

        def announced(frames):
            for i, frame in enumerate(frames):
                if i == 30:
                    print("flowing", flush=True)  # the producer thread runs: the demo is in its loop
                yield frame

        summary = run_demo(announced(synthetic_frames(3600, per_second=20)), speed=60.0,
                           console=Console(file=sys.stderr, width=120, force_terminal=False))
        print(summary.bootstrap, summary.interrupted, summary.consumed_events, flush=True)
        """
    )
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "LIVEWATCH_BOOTSTRAP"} | {"PYTHONPATH": str(root)}
    demo = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root,
    )
    assert demo.stdout is not None
    assert demo.stdout.readline().strip() == "flowing"
    time.sleep(0.5)
    demo.send_signal(signal.SIGINT)
    out, err = demo.communicate(timeout=30)
    assert demo.returncode == 0, err
    bootstrap, interrupted, consumed = out.split()
    assert interrupted == "True" and int(consumed) > 0
    host, port = bootstrap.rsplit(":", 1)
    assert not kafka_answers(host, int(port), timeout=0.2)
