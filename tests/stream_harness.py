"""Drive stream workers as subprocesses against a real broker: topics, events, workers, readers.

Shared by the stream integration tests and ``benchmarks/bench_stream.py``. Every wait is bounded.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec
import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from detector.broker import free_port
from detector.events import Event, EventType, encode_batch, encode_event
from detector.stream import topics as names
from detector.stream.settings import StreamSettings
from tests.stream_double import DoubleConfig

REPO = Path(__file__).resolve().parents[1]
REGIONS = ("eu", "us", "apac")
BASE_TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def unique_settings(bootstrap: str, tmp_path: Path, **overrides: object) -> StreamSettings:
    """Settings with topics, group and data dir of their own (the broker is shared by the session)."""
    tag = uuid.uuid4().hex[:8]
    settings = StreamSettings(
        bootstrap=bootstrap,
        app_id=f"lw-{tag}",
        topic_prefix=f"t{tag}-",
        components="tests.stream_double:components",
        source_partitions=4,
        window_partitions=2,
        datadir=str(tmp_path / f"faust-{tag}"),
        session_timeout_s=6.0,
        heartbeat_interval_s=0.5,
        idle_timeout_s=30.0,
        watermark_heartbeat_s=0.5,
        snapshot_every_batches=5,
        snapshot_interval_s=1.0,
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]


def create_topics(settings: StreamSettings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        admin.create_topics(
            [
                NewTopic(settings.topic(name), num_partitions=partitions, replication_factor=1)
                for name, partitions in (
                    (names.LIVE_EVENTS, settings.source_partitions),
                    (names.DEAD_LETTERS, settings.source_partitions),
                    (names.METRIC_WINDOWS, settings.window_partitions),
                    (names.ANOMALIES, settings.window_partitions),
                    (names.ALERTS, settings.window_partitions),
                )
            ]
        )
    finally:
        admin.close()


def make_events(
    rng: np.random.Generator,
    n: int,
    windows: int,
    window_ms: int,
    *,
    start_ts: int = BASE_TS,
    region_weights: tuple[float, ...] = (0.5, 0.3, 0.2),
) -> list[Event]:
    """``n`` valid events over ``windows`` windows, sorted by event time."""
    ts = np.sort(start_ts + rng.integers(0, windows * window_ms, n))
    region = rng.choice(len(REGIONS), n, p=region_weights)
    types = list(EventType)
    kind = rng.integers(0, len(types), n)
    return [
        Event(
            event_id=f"e{i}",
            ts=int(ts[i]),
            type=types[kind[i]],
            room_id=int(rng.integers(0, 500)),
            user_id=int(rng.integers(0, 10_000)),
            creator_id=int(rng.integers(0, 100)),
            region=REGIONS[region[i]],
            platform="ios",
            app_version="1.0",
            creator_tier="mid",
            network="wifi",
            value=float(rng.integers(0, 100)),
        )
        for i in range(n)
    ]


def closing_events(settings: StreamSettings, after_ts: int, window_ms: int) -> list[tuple[int, bytes]]:
    """One event per source partition far ahead in event time, so every earlier window closes."""
    return [
        (
            p,
            encode_event(
                Event(
                    event_id=f"close{p}",
                    ts=after_ts + 5 * window_ms,
                    type=EventType.LIKE,
                    room_id=0,
                    user_id=0,
                    creator_id=0,
                    region="closing",
                    platform="ios",
                    app_version="1.0",
                    creator_tier="mid",
                    network="wifi",
                )
            ),
        )
        for p in range(settings.source_partitions)
    ]


def batched_messages(events: list[Event], partitions: int, per_message: int) -> list[tuple[int, bytes]]:
    """Events split by partition (event index mod partitions, keeping time order), ``per_message`` each;
    the partitions' messages interleaved, so any prefix of the list advances every partition."""
    per_partition = []
    for p in range(partitions):
        own = events[p::partitions]
        per_partition.append(
            [
                (p, encode_batch(own[i : i + per_message]) if per_message > 1 else encode_event(own[i]))
                for i in range(0, len(own), per_message)
            ]
        )
    return [m for group in itertools.zip_longest(*per_partition) for m in group if m is not None]


def expected_counts(events: Iterable[Event], window_ms: int) -> dict[tuple[str, int], int]:
    counts: dict[tuple[str, int], int] = {}
    for event in events:
        key = (event.region, event.ts - event.ts % window_ms)
        counts[key] = counts.get(key, 0) + 1
    return counts


class Producer:
    def __init__(self, bootstrap: str) -> None:
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=5, max_request_size=8 * 1024 * 1024
        )

    def send(
        self, topic: str, messages: Iterable[tuple[int, bytes]], *, pace: Callable[[int], None] | None = None
    ) -> None:
        for i, (partition, value) in enumerate(messages):
            self._producer.send(topic, value=value, partition=partition)
            if pace is not None:
                pace(i)
        self._producer.flush(timeout=30)

    def close(self) -> None:
        self._producer.close(timeout=10)


class TopicReader:
    """Reads every partition of a topic from the beginning, incrementally (manual assignment)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
        )
        self._consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        self.records: list[tuple[bytes | None, bytes, float]] = []  # key, value, receive time

    def poll(self, timeout_s: float = 0.2) -> int:
        batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000))
        now = time.time()
        new = [(r.key, r.value, now) for records in batches.values() for r in records]
        self.records += new
        return len(new)

    def json(self) -> list[dict]:
        return [msgspec.json.decode(value) for _, value, _ in self.records]

    def wait_for(self, done: Callable[[TopicReader], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if done(self):
                return
        raise AssertionError(
            f"timed out after {timeout_s:.0f} s waiting for {what}; have {len(self.records)} records"
        )

    def close(self) -> None:
        self._consumer.close()


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    web_port: int

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_log(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log.read_text(errors="replace"):
            if not self.alive():
                raise AssertionError(f"worker exited with {self.process.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker did not log {text!r} within {timeout_s:.0f} s; see {self.log}")
            time.sleep(0.1)


def start_worker(settings: StreamSettings, config: DoubleConfig, log_dir: Path, name: str) -> Worker:
    config_path = log_dir / f"{settings.app_id}-double.json"
    config_path.write_bytes(msgspec.json.encode(config))
    web_port = free_port()
    log = log_dir / f"{name}.log"
    env = {
        **os.environ,
        **replace(settings, web_port=web_port, config=str(config_path)).to_env(),
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "detector.cli",
            "worker",
            "--loglevel",
            os.environ.get("LIVEWATCH_TEST_WORKER_LOGLEVEL", "info"),
        ],
        cwd=REPO,
        env=env,
        stdout=open(log, "ab"),  # noqa: SIM115 -- the child owns the log file for its lifetime
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return Worker(process, log, web_port)


@contextmanager
def workers(
    settings: StreamSettings, config: DoubleConfig, log_dir: Path, count: int = 1
) -> Iterator[list[Worker]]:
    started = [start_worker(settings, config, log_dir, f"worker{i}") for i in range(count)]
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def anomaly_counts(reader: TopicReader) -> dict[tuple[str, int], int]:
    """(region, window start) -> count, checking that repeats (after a crash) agree."""
    counts: dict[tuple[str, int], int] = {}
    for anomaly in reader.json():
        key = (anomaly["region"], anomaly["window_start_ms"])
        if key in counts and counts[key] != anomaly["count"]:
            raise AssertionError(f"window {key} published with counts {counts[key]} and {anomaly['count']}")
        counts[key] = anomaly["count"]
    return counts


def events_with_burst(
    rng: np.random.Generator,
    n: int,
    windows: int,
    window_ms: int,
    *,
    burst_region: str,
    burst_window: int,
    burst_events: int,
) -> list[Event]:
    """Background events plus a burst in one region and window (what the threshold double alerts on)."""
    base = make_events(rng, n, windows, window_ms)
    burst = make_events(
        rng,
        burst_events,
        1,
        window_ms,
        start_ts=BASE_TS + burst_window * window_ms,
        region_weights=tuple(1.0 if r == burst_region else 0.0 for r in REGIONS),
    )
    burst = [msgspec.structs.replace(e, event_id=f"b{i}") for i, e in enumerate(burst)]
    return sorted(base + burst, key=lambda e: e.ts)


def expected_alert_ids(counts: dict[tuple[str, int], int], threshold: int) -> set[str]:
    """What an uninterrupted run of the threshold double publishes, window by window in time order."""
    from tests.stream_double import RegionWindow, ThresholdScorer

    scorers: dict[str, ThresholdScorer] = {}
    ids: set[str] = set()
    for (region, start), count in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        scorer = scorers.setdefault(region, ThresholdScorer(threshold))
        ids |= {
            str(a["alert_id"]) for a in scorer.score(RegionWindow(region, start, start + 1, count)).alerts
        }
    return ids
