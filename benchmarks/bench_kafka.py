"""Events per second from EventFrames into the embedded broker: batched messages vs one event each.

Every configuration writes the same seeded events to a fresh topic of the embedded Tansu broker in
the same run, so the ratios compare like with like. A rate counts from the sink's creation until
``close()`` returns, i.e. until the broker acknowledged every event (acks=all). CPU seconds are
counted separately for this process (encoding, the Kafka client and its threads) and for the broker;
events per client CPU second is the "events/s on one core" figure.

    python -m benchmarks.bench_kafka [--events 200000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from detector.broker import EmbeddedBroker
from detector.events import DIMENSIONS, EVENT_TYPES, EventFrame
from detector.kafka_io import ensure_topics
from producers.kafka_sink import KafkaSink, frame_events

RESULTS = Path(__file__).parent / "results" / "kafka.json"
START_MS = 1_767_225_600_000
FRAME_EVENTS = 10_000
PARTITIONS = 6
VOCAB = {
    "region": ("eu-west", "us-east", "us-west", "apac-south", "latam"),
    "platform": ("android", "ios", "web", "tv"),
    "app_version": ("7.0.3", "7.1.0", "7.2.0-beta"),
    "creator_tier": ("bronze", "silver", "gold", "partner"),
    "network": ("wifi", "5g", "4g", "3g"),
}


@dataclass(frozen=True)
class Config:
    name: str
    batch_events: int = 500
    compression: str = "gzip"
    single_events: bool = False
    group_by: str = "room"
    events_share: float = 1.0  # single-event messages are slow: they get a share of the events


CONFIGS = (
    Config("per room ≤500, gzip", batch_events=500),
    Config("per partition ≤100, gzip", batch_events=100, group_by="partition"),
    Config("per partition ≤500, gzip", batch_events=500, group_by="partition"),
    Config("per partition ≤2000, gzip", batch_events=2000, group_by="partition"),
    Config("per partition ≤500, none", batch_events=500, group_by="partition", compression="none"),
    Config("single events, gzip", single_events=True, events_share=0.1),
    Config("single events, none", single_events=True, compression="none", events_share=0.1),
)


def synthetic_frames(n: int, seed: int = 42, rooms: int = 2000, rate_per_s: int = 2000) -> list[EventFrame]:
    """``n`` events in event-time order over Zipf-popular rooms, in frames of FRAME_EVENTS."""
    rng = np.random.default_rng(seed)
    ts = START_MS + np.sort(rng.integers(0, n * 1000 // rate_per_s, size=n)).astype(np.int64)
    room = ((rng.zipf(1.3, size=n) - 1) % rooms).astype(np.int64)
    frame = EventFrame(
        event_id=[f"b{seed}-{i}" for i in range(n)],
        ts=ts,
        type=rng.integers(0, len(EVENT_TYPES), size=n).astype(np.int8),
        room_id=room,
        user_id=rng.integers(0, 1_000_000, size=n).astype(np.int64),
        creator_id=room + 10_000,
        dims={d: rng.integers(0, len(VOCAB[d]), size=n).astype(np.int32) for d in DIMENSIONS},
        vocab=VOCAB,
        value=np.round(rng.exponential(20.0, size=n), 1),
    )
    return [frame.take(np.arange(i, min(i + FRAME_EVENTS, n))) for i in range(0, n, FRAME_EVENTS)]


def broker_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_config(bootstrap: str, broker_pid: int, frames: list[EventFrame], config: Config, topic: str) -> dict:
    ensure_topics(bootstrap, {topic: PARTITIONS})
    total = sum(len(f) for f in frames)
    wanted = max(1, int(total * config.events_share))
    chosen, count = [], 0
    for frame in frames:
        if count >= wanted:
            break
        chosen.append(frame)
        count += len(frame)
    cpu0, broker0, wall0 = time.process_time(), broker_cpu_seconds(broker_pid), time.perf_counter()
    sink = KafkaSink(
        bootstrap,
        topic,
        batch_events=config.batch_events,
        compression=config.compression,
        single_events=config.single_events,
        group_by=config.group_by,
        partitions=PARTITIONS,
    )
    for frame in chosen:
        sink.write(frame)
    report = sink.close()
    wall = time.perf_counter() - wall0
    cpu, broker_cpu = time.process_time() - cpu0, broker_cpu_seconds(broker_pid) - broker0
    return {
        "config": config.name,
        "events": report.events,
        "messages": report.messages,
        "events_per_message": report.events / max(report.messages, 1),
        "payload_mb": report.bytes / 1e6,
        "errors": report.errors,
        "seconds": wall,
        "events_per_s": report.events / wall,
        "client_cpu_us_per_event": cpu / report.events * 1e6,
        "events_per_client_cpu_s": report.events / cpu,
        "broker_cpu_us_per_event": broker_cpu / report.events * 1e6,
    }


def encode_only(frames: list[EventFrame]) -> dict:
    """The client-side floor: frames to per-event JSON, without Kafka."""
    import msgspec

    encode = msgspec.json.Encoder().encode
    cpu0, wall0 = time.process_time(), time.perf_counter()
    events = 0
    for frame in frames:
        for event in frame_events(frame):
            encode(event)
        events += len(frame)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "config": "encode only (no Kafka)",
        "events": events,
        "seconds": wall,
        "events_per_s": events / wall,
        "client_cpu_us_per_event": cpu / events * 1e6,
        "events_per_client_cpu_s": events / cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration; the fastest is kept")
    args = parser.parse_args()
    frames = synthetic_frames(args.events)
    results = [encode_only(frames)]
    with EmbeddedBroker() as broker:
        assert broker._process is not None
        pid = broker._process.pid
        for index, config in enumerate(CONFIGS):
            runs = [
                run_config(broker.bootstrap, pid, frames, config, f"bench-{index}-{r}")
                for r in range(args.repeats)
            ]
            results.append(max(runs, key=lambda run: run["events_per_s"]))

    # On a shared machine wall-clock rates swing with other load; CPU seconds per event do not, so
    # the ratio is taken on events per client CPU second ("per core").
    baseline = next(r for r in results if r["config"] == "single events, gzip")["events_per_client_cpu_s"]
    table = Table(title=f"to the embedded broker ({args.events:,} events, best of {args.repeats})")
    for column in (
        "configuration",
        "events",
        "events/msg",
        "events/s",
        "events/CPU-s",
        "vs single",
        "broker µs/ev",
    ):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for r in results:
        table.add_row(
            r["config"],
            f"{r['events']:,}",
            f"{r.get('events_per_message', 0):.0f}",
            f"{r['events_per_s']:,.0f}",
            f"{r['events_per_client_cpu_s']:,.0f}",
            f"{r['events_per_client_cpu_s'] / baseline:.1f}x",
            f"{r.get('broker_cpu_us_per_event', 0):.1f}",
        )
    Console(width=120).print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "kafka",
                "events": args.events,
                "repeats": args.repeats,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "configs": [asdict(c) for c in CONFIGS],
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    Console().print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
