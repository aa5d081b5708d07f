"""Stream worker throughput (stage 1) and window-final -> alert latency, on a real broker.

    python -m benchmarks.bench_stream            # embedded Tansu, or LIVEWATCH_BOOTSTRAP

The worker is a real ``livewatch worker`` subprocess; its aggregation and scoring are the *test double*
of ``tests/stream_double.py`` (count per window and region, threshold alerts), so the figures measure
the stream mechanics plus decoding, not the product's aggregation kernels. Throughput is read from the
worker's own Prometheus counter (events folded), from the first to the last event of a backlog that was
produced before the worker started. Latency is from the moment the events that close a window are
acknowledged by the broker to the moment the window's alert is read from the ``alerts`` topic.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from detector.broker import free_port, kafka_bootstrap
from detector.events import Event, EventFrame, EventType, decode_message, encode_batch
from detector.stream import topics as names
from tests.stream_double import DoubleConfig, RegionCountComponents
from tests.stream_harness import (
    BASE_TS,
    Producer,
    batched_messages,
    create_topics,
    make_events,
    start_worker,
    unique_settings,
)

RESULTS = Path(__file__).parent / "results" / "stream.json"
WINDOW_MS = 60_000


def _events_folded(metrics_port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("livewatch_stream_events_total "):
            return float(line.split()[1])
    return 0.0


def measure_throughput(
    bootstrap: str, tmp: Path, events: list[Event], per_message: int, timeout_s: float, workers: int = 1
) -> dict:
    settings = unique_settings(bootstrap, tmp, idle_timeout_s=600.0, source_partitions=8)
    create_topics(settings)
    messages = batched_messages(events, settings.source_partitions, per_message)
    producer = Producer(bootstrap)
    producer.send(settings.topic(names.LIVE_EVENTS), messages)
    producer.close()
    # Workers start together so they join the first group generation and split the backlog.
    ports = [free_port() for _ in range(workers)]
    started_workers = [
        start_worker(
            replace(settings, metrics_port=port),
            DoubleConfig(window_ms=WINDOW_MS),
            tmp,
            f"throughput-{per_message}-{workers}w-{i}",
        )
        for i, port in enumerate(ports)
    ]
    samples: list[tuple[float, float]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            folded = sum(_events_folded(port) for port in ports)
            samples.append((time.monotonic(), folded))
            if folded >= len(events):
                break
            time.sleep(0.02)
    finally:
        for worker in started_workers:
            worker.stop()
    started = next((t, n) for t, n in samples if n > 0)
    finished = next(((t, n) for t, n in samples if n >= len(events)), samples[-1])
    elapsed = finished[0] - started[0]
    folded = finished[1] - started[1]
    return {
        "workers": workers,
        "events": len(events),
        "events_per_message": per_message,
        "messages": len(messages),
        "folded": finished[1],
        "seconds": round(elapsed, 3),
        "events_per_s": round(folded / elapsed) if elapsed > 0 else None,
        "messages_per_s": round(folded / per_message / elapsed) if elapsed > 0 else None,
    }


def measure_in_process(events: list[Event], per_message: int) -> dict:
    """The Python work of stage 1 without Kafka: decode + EventFrame + fold, per message."""
    payloads = [encode_batch(events[i : i + per_message]) for i in range(0, len(events), per_message)]
    folder = RegionCountComponents(DoubleConfig(window_ms=WINDOW_MS)).new_folder(0)
    started = time.perf_counter()
    for payload in payloads:
        decoded, _ = decode_message(payload)
        folder.add(EventFrame.from_events(decoded))
    elapsed = time.perf_counter() - started
    return {
        "events": len(events),
        "events_per_message": per_message,
        "seconds": round(elapsed, 3),
        "events_per_s": round(len(events) / elapsed),
    }


def measure_latency(bootstrap: str, tmp: Path, rounds: int) -> dict:
    """Alternate loud and quiet windows so every window's close raises (or resolves) an alert."""
    threshold = 1_000
    settings = unique_settings(bootstrap, tmp, idle_timeout_s=600.0)
    create_topics(settings)
    worker = start_worker(
        settings, DoubleConfig(window_ms=WINDOW_MS, alert_threshold=threshold), tmp, "latency"
    )
    reader = KafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=5,
        enable_auto_commit=False,
    )
    reader.assign(
        [TopicPartition(settings.topic(names.ALERTS), p) for p in range(settings.window_partitions)]
    )
    producer = Producer(bootstrap)
    rng = np.random.default_rng(5)
    latencies: list[float] = []
    try:
        worker.wait_log("[^Worker]: Ready", 90)
        for k in range(rounds + 2):
            loud = k % 2 == 0
            window_events = make_events(
                rng,
                2 * threshold if loud else threshold // 10,
                1,
                WINDOW_MS,
                start_ts=BASE_TS + k * WINDOW_MS,
                region_weights=(1.0, 0.0, 0.0),
            )
            producer.send(
                settings.topic(names.LIVE_EVENTS),
                batched_messages(window_events, settings.source_partitions, per_message=100),
            )
            ticks = [
                (
                    p,
                    encode_batch(
                        [
                            Event(
                                event_id=f"tick{k}-{p}",
                                ts=BASE_TS + (k + 1) * WINDOW_MS,
                                type=EventType.LIKE,
                                room_id=0,
                                user_id=0,
                                creator_id=0,
                                region="tick",
                                platform="ios",
                                app_version="1.0",
                                creator_tier="mid",
                                network="wifi",
                            )
                        ]
                    ),
                )
                for p in range(settings.source_partitions)
            ]
            producer.send(settings.topic(names.LIVE_EVENTS), ticks)
            closed_at = time.time()
            window_start = BASE_TS + k * WINDOW_MS
            deadline = time.monotonic() + 30
            found = False
            while not found and time.monotonic() < deadline:
                for records in reader.poll(timeout_ms=100).values():
                    for record in records:
                        if json.loads(record.value)["window_start_ms"] == window_start:
                            found = True
            if not found:
                raise RuntimeError(f"no alert for window {k} within 30 s; see {worker.log}")
            if k >= 2:  # the first windows include the worker's warm-up
                latencies.append(time.time() - closed_at)
    finally:
        producer.close()
        reader.close()
        worker.stop()
    ms = np.asarray(latencies) * 1000
    return {
        "rounds": len(latencies),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batched-events", type=int, default=600_000)
    parser.add_argument("--single-events", type=int, default=30_000)
    parser.add_argument("--latency-rounds", type=int, default=30)
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args()
    console = Console()
    rng = np.random.default_rng(1)
    batched_events = make_events(rng, args.batched_events, windows=30, window_ms=WINDOW_MS)
    single_events = batched_events[: args.single_events]
    with tempfile.TemporaryDirectory() as tmp_dir, kafka_bootstrap(args.bootstrap) as bootstrap:
        tmp = Path(tmp_dir)
        console.print(f"broker {bootstrap}; producing backlogs ...")
        results = {
            "note": "stage 1 throughput of one worker process with the region-count test double "
            "(tests/stream_double.py), not the product aggregator",
            "in_process_500": measure_in_process(batched_events[:200_000], 500),
            "in_process_1": measure_in_process(batched_events[:20_000], 1),
            "batched_500": measure_throughput(bootstrap, tmp, batched_events, 500, timeout_s=300),
            "single_event": measure_throughput(bootstrap, tmp, single_events, 1, timeout_s=300),
            "batched_500_two_workers": measure_throughput(
                bootstrap, tmp, batched_events, 500, timeout_s=300, workers=2
            ),
            "latency": measure_latency(bootstrap, tmp, args.latency_rounds),
        }
    table = Table(title="livewatch stream workers (embedded broker, test-double folder/scorer)")
    for column in ("measurement", "events", "events/msg", "events/s", "messages/s"):
        table.add_column(column, justify="right")
    for key, label in (
        ("batched_500", "1 worker, batched messages"),
        ("batched_500_two_workers", "2 workers, batched messages"),
        ("single_event", "1 worker, single-event messages"),
        ("in_process_500", "decode+frame+fold only, no Kafka"),
        ("in_process_1", "decode+frame+fold only, no Kafka"),
    ):
        row = results[key]
        table.add_row(
            label,
            f"{row['events']:,}",
            str(row["events_per_message"]),
            f"{row['events_per_s']:,}",
            f"{row.get('messages_per_s') or row['events_per_s'] // row['events_per_message']:,}",
        )
    console.print(table)
    latency = results["latency"]
    console.print(
        f"window final -> alert on topic: p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms, "
        f"max {latency['max_ms']} ms over {latency['rounds']} windows"
    )
    ratio = results["batched_500"]["events_per_s"] / results["single_event"]["events_per_s"]
    console.print(f"batched / single-event throughput: {ratio:.1f}x (same run)")
    scaling = results["batched_500_two_workers"]["events_per_s"] / results["batched_500"]["events_per_s"]
    console.print(
        f"two workers / one worker: {scaling:.2f}x (same run, {_cores()} cores shared with the broker)"
    )
    results["two_over_one_worker"] = round(scaling, 2)
    results["batched_over_single"] = round(ratio, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
