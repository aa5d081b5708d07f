"""How long a Prometheus scrape of a worker takes, by series tracked and the export cap.

A scrape runs in the metrics server's thread and holds the GIL, so its time is taken from the worker.
``collect`` is our collectors (reading the snapshot, choosing the series to export); ``scrape`` is
the whole text exposition Prometheus receives (collect + prometheus-client's rendering).

    python -m benchmarks.exporter_scrape
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from detector.export.prometheus import ActiveIncident, LivewatchExporter, PipelineStats, SeriesSnapshot

RESULTS = Path(__file__).resolve().parent / "results" / "exporter_scrape.json"
SERIES_TRACKED = (1_000, 10_000, 100_000)
CAPS = (250, 1_000, 2_000)
REPEATS = 5


class SyntheticState:
    def __init__(self, n_series: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        scores = rng.random(n_series)
        self.rows = [
            SeriesSnapshot(
                metric=f"metric_{i % 8}",
                slice={}
                if i < 8
                else {
                    "region": f"region_{i % 40}",
                    "platform": f"platform_{i % 5}",
                    "app_version": f"9.{i % 97}.0",
                },
                value=100.0,
                expected=100.0,
                lower=80.0,
                upper=120.0,
                score=float(scores[i]),
                anomaly_active=bool(scores[i] > 0.999),
                window_end=1.79e9,
            )
            for i in range(n_series)
        ]

    def series_snapshot(self) -> Iterable[SeriesSnapshot]:
        return self.rows

    def active_incidents(self) -> Iterable[ActiveIncident]:
        return []

    def alerts_fired(self) -> Mapping[tuple[str, str], int]:
        return {}

    def pipeline_stats(self) -> PipelineStats:
        return PipelineStats(events_consumed=1)


def median_ms(action, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    results = []
    print(f"{'series':>8} {'cap':>6} {'collect ms':>11} {'scrape ms':>10} {'bytes':>10}")
    for n_series in SERIES_TRACKED:
        state = SyntheticState(n_series)
        for cap in CAPS:
            registry = CollectorRegistry()
            LivewatchExporter(
                registry,
                series=state,
                incidents=state,
                pipeline=state,
                version="bench",
                max_exported_series=cap,
            )
            collect = median_ms(lambda registry=registry: list(registry.collect()))
            scrape = median_ms(lambda registry=registry: generate_latest(registry))
            size = len(generate_latest(registry))
            results.append(
                {
                    "series": n_series,
                    "cap": cap,
                    "collect_ms": round(collect, 2),
                    "scrape_ms": round(scrape, 2),
                    "bytes": size,
                }
            )
            print(f"{n_series:>8} {cap:>6} {collect:>11.1f} {scrape:>10.1f} {size:>10}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"benchmark": "exporter_scrape", "repeats": REPEATS, "results": results}, indent=2)
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
