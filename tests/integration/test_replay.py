from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from producers.kafka_sink import KafkaSink
from producers.replay import BadLine, replay
from tests.integration.kafka_helpers import by_room, consume_events, fingerprint, fresh_topic
from tests.synthetic import synthetic_events, write_log

pytestmark = pytest.mark.integration


def test_replay_keeps_room_order_event_times_and_scaled_spacing(kafka_bootstrap, tmp_path) -> None:
    events = synthetic_events(2000, rooms=15, seed=11, step_ms=50)  # 100 s of event time
    log = tmp_path / "events.jsonl.gz"
    write_log(log, events)
    topic = fresh_topic(kafka_bootstrap)
    speed = 200.0  # 100 s of events in 0.5 s
    started = time.monotonic()
    report = replay(log, KafkaSink(kafka_bootstrap, topic, partitions=3, linger_ms=10), speed=speed)
    wall = time.monotonic() - started

    assert report.events == len(events)
    assert report.bad_lines == 0
    assert (report.first_ts, report.last_ts) == (events[0].ts, events[-1].ts)
    assert wall >= (events[-1].ts - events[0].ts) / 1000 / speed  # spacing was kept, not collapsed
    consumed, _ = consume_events(kafka_bootstrap, topic, len(events))
    assert fingerprint(consumed) == fingerprint(events)  # ids, event times and values unchanged
    assert by_room(consumed) == by_room(events)


def test_bad_lines_are_reported_and_skipped_and_the_rest_delivered(kafka_bootstrap, tmp_path) -> None:
    events = synthetic_events(300, rooms=4, seed=12)
    log = tmp_path / "events.jsonl"
    write_log(
        log,
        events,
        bad_lines={
            10: b'{"event_id": "x", "ts": "soon"}',
            100: b"not json at all",
            200: b'{"event_id":"y","ts":1767225600000,"type":"teleport"}',
        },
    )
    topic = fresh_topic(kafka_bootstrap)
    seen: list[BadLine] = []
    report = replay(log, KafkaSink(kafka_bootstrap, topic), speed=None, on_bad_line=seen.append)

    assert report.bad_lines == 3
    assert [(b.line, b.reason) for b in seen] == [(11, "schema"), (102, "not_json"), (203, "unknown_type")]
    assert "$.ts" in seen[0].detail
    assert report.lines == 303
    consumed, _ = consume_events(kafka_bootstrap, topic, len(events))
    assert fingerprint(consumed) == fingerprint(events)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl.gz"], "does not exist"),
        (["{log}", "--speed", "0"], "--speed"),
        (["{log}", "--batch-events", "0"], "--batch-events"),
        (["{log}", "--compression", "brotli"], "--compression"),
        (["{log}", "--bootstrap", "127.0.0.1:not-a-port"], "not host:port"),
    ],
)
def test_cli_rejects_bad_arguments_with_exit_2(tmp_path, args, message) -> None:
    log = tmp_path / "ok.jsonl"
    write_log(log, synthetic_events(3))
    argv = [a.format(log=log) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "detector.cli", "replay", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path.parent,
        timeout=60,
        env=_env(),
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_cli_replays_a_log_and_prints_a_summary(kafka_bootstrap, tmp_path) -> None:
    events = synthetic_events(500, seed=14)
    log = tmp_path / "events.jsonl.gz"
    write_log(log, events, bad_lines={3: b"{oops"})
    topic = fresh_topic(kafka_bootstrap)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "detector.cli",
            "replay",
            str(log),
            "--speed",
            "max",
            "--bootstrap",
            kafka_bootstrap,
            "--topic",
            topic,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "line 4:" in result.stderr and "not_json" in result.stderr
    assert re.search(r"events delivered\W+500\b", result.stderr), result.stderr
    assert re.search(r"bad lines skipped\W+1\b", result.stderr), result.stderr
    consumed, _ = consume_events(kafka_bootstrap, topic, len(events))
    assert fingerprint(consumed) == fingerprint(events)


def _env() -> dict[str, str]:
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    return {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200"}
