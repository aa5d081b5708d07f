from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from rich.console import Console

from detector.demo import run_demo
from detector.events import EventFrame
from detector.kafka_io import LIVE_EVENTS, TOPIC_PARTITIONS
from tests.synthetic import START_MS, synthetic_events

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
