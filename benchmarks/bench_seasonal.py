"""Series-updates per second of the seasonal baseline beside river's HoltWinters, in one run.

    python -m benchmarks.bench_seasonal [--quick]

Default parameters (60 s windows, 15-minute slots, daily + weekly seasons). The state is first learned
on one series over eight days (so the weekly profile is in use, the expensive path), then tiled to N
rows with per-series levels, and N = 1, 1k and 100k series are timed on the hot path
``update(t, x, out=buffers)``, with fresh result arrays per window, ``update(t, x)``, and as one
``update_batch`` call over all windows, for float32 and float64 profiles. river's
``time_series.HoltWinters`` (daily season of 1440 windows, additive) keeps one Python object per series,
so its cost per update (``learn_one`` + ``forecast(horizon=1)``) does not depend on N: it is timed on
one long stream right beside each of our measurements, and the "x river HW" ratio uses that figure and
the ``update(out=)`` column (the river row shows the median). Best of three repeats (the
machine is shared). Prints a table and writes ``benchmarks/results/seasonal.json``.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import river
from rich.console import Console
from rich.table import Table
from river import time_series

from detector.scoring.seasonal import BaselineResult, SeasonalBaseline, SeasonalParams

RESULTS = Path(__file__).parent / "results" / "seasonal.json"
SERIES_COUNTS = (1, 1_000, 100_000)
REPEATS = 3
SEED = 20261123
MONDAY_MS = 1_700_438_400_000
WINDOW_MS = 60_000
DAY = 1440
WARMUP_DAYS = 8


def curve(minutes: np.ndarray) -> np.ndarray:
    return 300.0 + 100.0 * np.sin(2 * np.pi * minutes / DAY)


def learned_baseline(params: SeasonalParams, n_series: int) -> SeasonalBaseline:
    """A baseline whose N rows all hold a learned state (one series learned, tiled with varied levels)."""
    rng = np.random.default_rng(SEED)
    teacher = SeasonalBaseline(params, capacity=1)
    minutes = np.arange(WARMUP_DAYS * DAY)
    values = curve(minutes) + rng.normal(0, 5, minutes.size)
    out = BaselineResult.empty(1)
    for k in range(values.size):
        teacher.update(MONDAY_MS + k * WINDOW_MS, values[k : k + 1], out=out)
    baseline = SeasonalBaseline(params, capacity=n_series)
    offsets = rng.uniform(-50, 50, n_series)
    for name, column in baseline.state.columns.items():
        column[:] = teacher.state[name][0]
    for name in ("level", "short_level"):
        baseline.state[name][:] += offsets
    return baseline


def windows_for(n_series: int, quick: bool) -> int:
    """Enough windows for ~0.2-1 s per measurement."""
    budget = 4_000_000 // (10 if quick else 1)
    return int(np.clip(budget // n_series, 4, 20_000))


def best_rate(prepare: Callable[[], None], run: Callable[[], int]) -> float:
    """Updates per second of ``run`` (after an untimed ``prepare``), best of REPEATS."""
    best = 0.0
    for _ in range(REPEATS):
        prepare()
        started = time.perf_counter()
        updates = run()
        best = max(best, updates / (time.perf_counter() - started))
    return best


def time_ours(params: SeasonalParams, n_series: int, quick: bool) -> dict[str, float]:
    rng = np.random.default_rng(SEED + n_series)
    n_windows = windows_for(n_series, quick)
    start = WARMUP_DAYS * DAY
    minutes = start + np.arange(n_windows)
    values = curve(minutes)[:, None] + rng.normal(0, 5, (n_windows, n_series))
    values[rng.random(values.shape) < 0.01] = np.nan
    template = learned_baseline(params, n_series)
    snapshot = {name: column.copy() for name, column in template.state.columns.items()}
    times = [MONDAY_MS + int(m) * WINDOW_MS for m in minutes]

    out = BaselineResult.empty(n_series)

    def restore_state() -> None:
        for name, column in snapshot.items():
            template.state.columns[name][:] = column

    def hot() -> int:
        for t, row in zip(times, values, strict=True):
            template.update(t, row, out=out)
        return values.size

    def allocating() -> int:
        for t, row in zip(times, values, strict=True):
            template.update(t, row)
        return values.size

    def batch() -> int:
        template.update_batch(np.asarray(times), values)
        return values.size

    hot_rate = best_rate(restore_state, hot)
    return {
        "windows": n_windows,
        "updates_per_s": hot_rate,
        "updates_per_s_fresh_outputs": best_rate(restore_state, allocating),
        "updates_per_s_update_batch": best_rate(restore_state, batch),
        "us_per_window": 1e6 * n_series / hot_rate,
    }


def time_river(quick: bool) -> float:
    rng = np.random.default_rng(SEED)
    warmup = 2 * DAY
    n_updates = 20_000 // (10 if quick else 1)
    minutes = np.arange(warmup + n_updates)
    values = (curve(minutes) + rng.normal(0, 5, minutes.size)).tolist()

    def seconds_per_run() -> float:
        """Time of the measured updates only: the warm-up fills river's first seasons untimed."""
        model = time_series.HoltWinters(alpha=0.3, beta=0.01, gamma=0.1, seasonality=DAY)
        for v in values[:warmup]:
            model.learn_one(v)
        started = time.perf_counter()
        for v in values[warmup:]:
            model.forecast(horizon=1)  # score before learning, as ours does
            model.learn_one(v)
        return time.perf_counter() - started

    return max(n_updates / seconds_per_run() for _ in range(REPEATS))


def river_state_bytes() -> int:
    model = time_series.HoltWinters(alpha=0.3, beta=0.01, gamma=0.1, seasonality=DAY)
    for k in range(2 * DAY):
        model.learn_one(float(curve(np.array([k]))[0]))
    return len(pickle.dumps(model))


def main(argv: list[str] | None = None) -> None:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    console = Console(width=132)
    configs = {
        "daily+weekly f32": SeasonalParams(),
        "daily+weekly f64": SeasonalParams(profile_dtype="float64"),
        "daily f32": SeasonalParams(seasons=("daily",)),
    }
    rows = []
    river_rates = []
    for label, params in configs.items():
        for n_series in SERIES_COUNTS:
            if label == "daily f32" and n_series != SERIES_COUNTS[-1]:
                continue
            # river is timed right beside each of our measurements, so the shared machine's load
            # drifts the same way for both sides of every ratio.
            river_rate = time_river(quick)
            figures = time_ours(params, n_series, quick)
            river_rates.append(river_rate)
            rows.append(
                {
                    "config": label,
                    "n_series": n_series,
                    **figures,
                    "river_holtwinters_updates_per_s_median": river_rate,
                    "vs_river_holtwinters": figures["updates_per_s"] / river_rate,
                }
            )
    river_rate = float(np.median(river_rates))

    memory = {}
    for label, params in configs.items():
        baseline = SeasonalBaseline(params, capacity=1)
        memory[label] = {
            "bytes_per_series_without_profile": baseline.nbytes_per_series(with_profile=False),
            "bytes_per_series_with_profile": baseline.nbytes_per_series(),
        }
    river_bytes = river_state_bytes()

    table = Table(title="Seasonal baseline: series-updates/s (best of 3, one core)")
    table.add_column("seasons / profile", no_wrap=True)
    for column in ("N series", "update(out=)", "update()", "update_batch", "µs / window", "x river HW"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        rates = (row["updates_per_s"], row["updates_per_s_fresh_outputs"], row["updates_per_s_update_batch"])
        table.add_row(
            row["config"],
            f"{row['n_series']:,}",
            *(f"{rate:,.0f}" for rate in rates),
            f"{row['us_per_window']:,.1f}",
            f"{row['vs_river_holtwinters']:,.1f}x",
        )
    table.add_row(
        "river HoltWinters (median)",
        "any (1 object each)",
        f"{river_rate:,.0f}",
        "",
        "",
        f"{1e6 / river_rate:,.1f}",
        "1x",
    )
    console.print(table)
    mem_table = Table(title="State per series (bytes)")
    mem_table.add_column("seasons / profile", no_wrap=True)
    for column in ("without profile", "with profile"):
        mem_table.add_column(column, justify="right", no_wrap=True)
    for label, figures in memory.items():
        mem_table.add_row(
            label,
            str(figures["bytes_per_series_without_profile"]),
            str(figures["bytes_per_series_with_profile"]),
        )
    mem_table.add_row("river HoltWinters (pickled)", "", str(river_bytes))
    console.print(mem_table)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "seasonal",
                "quick": quick,
                "python": platform.python_version(),
                "numba": numba.__version__,
                "river": river.__version__,
                "machine": platform.machine(),
                "params": {label: dataclasses.asdict(params) for label, params in configs.items()},
                "results": rows,
                "river_holtwinters_updates_per_s_median": river_rate,
                "memory": memory,
                "river_holtwinters_pickled_bytes": river_bytes,
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
