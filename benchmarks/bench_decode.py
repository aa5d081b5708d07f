"""Event decoding: events/s from batched JSON messages to typed events, and from events to columns.

``python -m benchmarks.bench_decode [--events 200000] [--batch 500]`` — one run, side by side: msgspec
into our typed ``Event`` (validation included), msgspec into plain dicts (no validation, for scale),
and ``EventFrame.from_events``, the step every consumed message goes through before aggregation.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from rich.console import Console
from rich.table import Table

from detector.events import EventFrame, decode_message, encode_batch
from tests.synthetic import synthetic_events

RESULTS = Path(__file__).resolve().parent / "results" / "decode.json"


def _best_cpu(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        run()
        best = min(best, time.process_time() - began)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500, help="events per Kafka message")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    events = synthetic_events(args.events, seed=1)
    messages = [encode_batch(events[i : i + args.batch]) for i in range(0, len(events), args.batch)]
    decoded = [decode_message(m)[0] for m in messages]
    plain = msgspec.json.Decoder()

    cases: dict[str, Callable[[], object]] = {
        "decode_message (typed, validated)": lambda: [decode_message(m) for m in messages],
        "msgspec to dicts (no validation)": lambda: [plain.decode(m) for m in messages],
        "EventFrame.from_events": lambda: [EventFrame.from_events(batch) for batch in decoded],
        "decode + frame": lambda: [EventFrame.from_events(decode_message(m)[0]) for m in messages],
    }
    rows = [
        {"case": name, "events_per_cpu_second": args.events / _best_cpu(args.repeat, run)}
        for name, run in cases.items()
    ]
    table = Table(title=f"decoding {args.events:,} events in messages of {args.batch} (best of {args.repeat})")
    table.add_column("case")
    table.add_column("events per CPU-second", justify="right")
    for row in rows:
        table.add_row(row["case"], f"{row['events_per_cpu_second']:,.0f}")
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"events": args.events, "batch": args.batch, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
