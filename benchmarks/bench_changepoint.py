"""Series-updates per second of the change-point kernels beside river's drift detectors, in one run.

    python -m benchmarks.bench_changepoint [--quick]

For N = 1, 1k and 100k series, each detector is fed windows of N standardised values (a level shift
half-way, 1 % missing) and timed on its hot path, ``update(x, out=buffers)``, and with fresh result
arrays per window, ``update(x)``. river's ``drift.PageHinkley`` and ``drift.ADWIN`` keep one Python
object per series, so their cost per update does not depend on N: they are timed on one long stream.
Best of five repeats, in CPU time of the process (the machine is shared). Prints a table and writes
``benchmarks/results/changepoint.json``.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
import river
from rich.console import Console
from rich.table import Table
from river import drift

from detector.scoring.bocpd import Bocpd, BocpdParams
from detector.scoring.change import ChangeDetector, ChangeResult
from detector.scoring.cusum import Cusum, CusumParams
from detector.scoring.page_hinkley import PageHinkley, PageHinkleyParams

RESULTS = Path(__file__).parent / "results" / "changepoint.json"
SERIES_COUNTS = (1, 1_000, 100_000)
REPEATS = 5
SEED = 20261123

DETECTORS: dict[str, Callable[[int], ChangeDetector]] = {
    "cusum": lambda n: Cusum(CusumParams(), n),
    "page_hinkley": lambda n: PageHinkley(PageHinkleyParams(), n),
    "bocpd_r128": lambda n: Bocpd(BocpdParams(max_run_length=128), n),
}


def stream(n_windows: int, n_series: int, seed: int = SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n_windows, n_series))
    values[n_windows // 2 :] += 3.0
    values[rng.random(values.shape) < 0.01] = np.nan
    return values


def windows_for(name: str, n_series: int, quick: bool) -> int:
    """Enough windows for ~0.1-0.5 s per measurement."""
    budget = 2_000_000 if name != "bocpd_r128" else 300_000
    budget //= 10 if quick else 1
    return int(np.clip(budget // n_series, 4, 20_000 if n_series == 1 else 5_000))


def best_rate(run: Callable[[], int]) -> float:
    """Updates per CPU second of this process, best of REPEATS.

    CPU time rather than wall time: on a shared machine wall time mostly measures the other jobs; every
    detector here (ours and river's) runs on one thread, so CPU time is the one-core figure.
    """
    best = 0.0
    for _ in range(REPEATS):
        started = time.process_time()
        updates = run()
        best = max(best, updates / (time.process_time() - started))
    return best


def time_ours(name: str, n_series: int, quick: bool) -> dict[str, float]:
    make = DETECTORS[name]
    values = stream(windows_for(name, n_series, quick), n_series)
    make(n_series).update(values[0])  # compile (or load the cache) outside the timing

    def hot() -> int:
        detector, out = make(n_series), ChangeResult.empty(n_series)
        for row in values:
            detector.update(row, out=out)
        return values.size

    def fresh_results() -> int:
        detector = make(n_series)
        for row in values:
            detector.update(row)
        return values.size

    return {"updates_per_s": best_rate(hot), "updates_per_s_fresh_results": best_rate(fresh_results)}


def time_river(make: Callable[[], Any], n_updates: int) -> tuple[float, int]:
    values = [float(v) for v in stream(n_updates, 1)[:, 0] if v == v]

    def run() -> int:
        detector = make()
        for v in values:
            detector.update(v)
        return len(values)

    return best_rate(run), len(pickle.dumps(make()))


def main() -> None:
    quick = "--quick" in sys.argv
    console = Console(width=120)
    load_before = os.getloadavg()[0]
    river_ph_rate, river_ph_bytes = time_river(drift.PageHinkley, 20_000 if quick else 200_000)
    adwin_rate, adwin_bytes = time_river(drift.ADWIN, 5_000 if quick else 50_000)

    rows: list[dict[str, Any]] = []
    for name in DETECTORS:
        bytes_per_series = DETECTORS[name](1).nbytes_per_series
        for n_series in SERIES_COUNTS:
            rates = time_ours(name, n_series, quick)
            rows.append(
                {
                    "detector": name,
                    "n_series": n_series,
                    **rates,
                    "ratio_vs_river_page_hinkley": rates["updates_per_s"] / river_ph_rate,
                    "state_bytes_per_series": bytes_per_series,
                }
            )
    for name, rate, size in (
        ("river PageHinkley", river_ph_rate, river_ph_bytes),
        ("river ADWIN", adwin_rate, adwin_bytes),
    ):
        rows.append(
            {
                "detector": name,
                "n_series": None,
                "updates_per_s": rate,
                "updates_per_s_fresh_results": None,
                "ratio_vs_river_page_hinkley": rate / river_ph_rate,
                # pickled size of a fresh detector; ADWIN's grows with its window
                "state_bytes_per_series": size,
            }
        )

    table = Table(title="Change-point detectors: series-updates per CPU second (one core, best of 5)")
    for column in (
        "detector",
        "N series",
        "updates/s (out=)",
        "updates/s (fresh)",
        "x river PH",
        "state B/series",
    ):
        table.add_column(column, justify="left" if column == "detector" else "right")
    for row in rows:
        table.add_row(
            row["detector"],
            "any" if row["n_series"] is None else f"{row['n_series']:,}",
            f"{row['updates_per_s'] / 1e6:,.2f} M",
            "-"
            if row["updates_per_s_fresh_results"] is None
            else f"{row['updates_per_s_fresh_results'] / 1e6:,.2f} M",
            f"{row['ratio_vs_river_page_hinkley']:,.1f}",
            f"{row['state_bytes_per_series']:,}",
        )
    console.print(table)
    load_after = os.getloadavg()[0]
    console.print(
        f"1-min load average: {load_before:.2f} before, {load_after:.2f} after ({os.cpu_count()} cores)"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "changepoint",
                "quick": quick,
                "python": platform.python_version(),
                "numpy": np.__version__,
                "numba": numba.__version__,
                "river": river.__version__,
                "machine": platform.machine(),
                # The machine is shared: a load above the core count means the figures are pessimistic.
                "cpu_count": os.cpu_count(),
                "load_average_1min": {"before": load_before, "after": load_after},
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
