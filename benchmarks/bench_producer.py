"""Producer throughput: events/s generated in memory, encoded to JSONL, and written to .jsonl(.gz) files.

``python -m benchmarks.bench_producer [--rate 10000] [--minutes 10]`` — all figures come from one run,
side by side, on the same simulated events (best of ``--repeat`` runs, since the machine is shared).
The msgspec row encodes the same events one ``Event`` struct at a time, the straightforward way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from detector.events import EventFrame, encode_jsonl
from producers.jsonl import encode_frame
from producers.model import LiveModel, ModelParams
from producers.sinks import JsonlSink

RESULTS = Path(__file__).resolve().parent / "results" / "producer.json"
START = datetime(2026, 11, 23, 18, tzinfo=UTC)


def _model(rate: float, minutes: float) -> LiveModel:
    return LiveModel(ModelParams(rate=rate), seed=1, start=START, duration=timedelta(minutes=minutes))


def _best(repeat: int, run: Callable[[], int]) -> tuple[int, float, float]:
    """Events, and the shortest wall time and CPU time (all threads of this process) over ``repeat`` runs.

    CPU time is what one core would need: it does not grow when other processes share the machine.
    """
    wall = cpu = float("inf")
    events = 0
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        events = run()
        wall = min(wall, time.perf_counter() - began)
        cpu = min(cpu, time.process_time() - began_cpu)
    return events, wall, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=10_000.0, help="simulated mean events per second")
    parser.add_argument("--minutes", type=float, default=10.0, help="simulated minutes of event time")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    def generate() -> int:
        return sum(len(frame) for frame in _model(args.rate, args.minutes).chunks())

    frames: list[EventFrame] = list(_model(args.rate, args.minutes).chunks())

    def encode() -> int:
        return sum(len(encode_frame(frame)) > 0 and len(frame) for frame in frames)

    sample = frames[0].take(frames[0].ts.argsort()[:100_000])

    def encode_msgspec() -> int:
        encode_jsonl(sample.to_events())
        return len(sample)

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as scratch:

        def to_file(name: str) -> Callable[[], int]:
            def run() -> int:
                with JsonlSink(Path(scratch) / name) as sink:
                    for frame in _model(args.rate, args.minutes).chunks():
                        sink.write(frame)
                rows_bytes[name] = (Path(scratch) / name).stat().st_size
                return sink.close().events

            return run

        rows_bytes: dict[str, int] = {}
        cases: list[tuple[str, Callable[[], int]]] = [
            ("generate (in memory)", generate),
            ("encode JSONL, columnar (in memory)", encode),
            ("encode JSONL, msgspec per event (in memory)", encode_msgspec),
            ("generate + write .jsonl", to_file("events.jsonl")),
            ("generate + write .jsonl.gz", to_file("events.jsonl.gz")),
        ]
        for name, run in cases:
            events, wall, cpu = _best(args.repeat, run)
            rows.append(
                {
                    "case": name,
                    "events": events,
                    "seconds": round(wall, 3),
                    "cpu_seconds": round(cpu, 3),
                    "events_per_s": round(events / wall),
                    "events_per_cpu_s": round(events / cpu),
                }
            )
        for row in rows:
            file = "events.jsonl.gz" if ".gz" in str(row["case"]) else "events.jsonl"
            if str(row["case"]).startswith("generate + write"):
                row["bytes_per_event"] = round(rows_bytes[file] / int(row["events"]), 1)  # type: ignore[call-overload]

    table = Table(title=f"producer throughput (rate {args.rate:g}/s, {args.minutes:g} min of event time)")
    for column in ("case", "events", "wall s", "events/s", "CPU s", "events/CPU-s", "bytes/event"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for row in rows:
        table.add_row(
            str(row["case"]),
            f"{row['events']:,}",
            f"{row['seconds']:.2f}",
            f"{row['events_per_s']:,}",
            f"{row['cpu_seconds']:.2f}",
            f"{row['events_per_cpu_s']:,}",
            str(row.get("bytes_per_event", "")),
        )
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "producer",
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "machine": {
                    "python": platform.python_version(),
                    "cpu": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(),
                },
                "parameters": vars(args),
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
