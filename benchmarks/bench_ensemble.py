"""Series-updates per second of the full scoring ensemble beside each family alone and river, in one run.

    python -m benchmarks.bench_ensemble [--quick]

For N = 1, 1k and 100k series: the ensemble with default parameters (seasonal daily + weekly float32
profiles learned for 8 days, CUSUM, Page-Hinkley, BOCPD R = 64 behind its gate), the same ensemble with
BOCPD run for every series (no gate), the seasonal baseline alone, and CUSUM, Page-Hinkley and BOCPD
(R = 128 and 64) alone on standardised values. Streams: a daily curve with N(0, 5) noise, 1 % missing, a
level shift of 6 sd in 1 % of the series half-way. river's PageHinkley, ADWIN (update), HoltWinters
(forecast + learn_one, daily season of 1440 windows) and HalfSpaceTrees (score_one + learn_one) keep one
Python object per series, so they are timed per update on one long stream. Hot path ``update(..., out=)``;
best of 3 in CPU time of this process (one thread: the one-core figure on a shared machine). Also the
state bytes per series. Prints a table and writes ``benchmarks/results/ensemble.json``.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numba
import numpy as np
import river
from rich.console import Console
from rich.table import Table
from river import anomaly, drift, time_series

from benchmarks.bench_seasonal import DAY, MONDAY_MS, WARMUP_DAYS, WINDOW_MS, curve
from detector.aggregation.windows import ClosedWindow
from detector.config import config_from_yaml
from detector.scoring.bocpd import Bocpd, BocpdParams
from detector.scoring.change import ChangeDetector, ChangeResult
from detector.scoring.cusum import Cusum
from detector.scoring.ensemble import Ensemble, EnsembleParams, EnsembleResult
from detector.scoring.page_hinkley import PageHinkley
from detector.scoring.seasonal import BaselineResult, SeasonalBaseline
from detector.scoring.window_scorer import WindowScorer

RESULTS = Path(__file__).parent / "results" / "ensemble.json"
SERIES_COUNTS = (1, 1_000, 100_000)
REPEATS = 3
SEED = 20261124
PARAMS = EnsembleParams()
UNGATED = replace(PARAMS, gate_z=1e-9, gate_cusum=1e-9)  # every present series runs BOCPD every window

FAMILIES: dict[str, Callable[[int], ChangeDetector]] = {
    "cusum": lambda n: Cusum(PARAMS.cusum, n),
    "page_hinkley": lambda n: PageHinkley(PARAMS.page_hinkley, n),
    "bocpd_r128": lambda n: Bocpd(BocpdParams(max_run_length=128), n),
    "bocpd_r64": lambda n: Bocpd(BocpdParams(max_run_length=64, min_instances=10), n),
}


def windows_for(n_series: int, budget: int, quick: bool) -> int:
    budget //= 10 if quick else 1
    return int(np.clip(budget // n_series, 4, 20_000))


def values_stream(n_windows: int, n_series: int, first: int = 0) -> tuple[list[int], np.ndarray]:
    """Window starts from ``first`` windows after the learned week, and (windows, series) values: the
    teacher's curve, noise, a 6-sd shift in 1 % of the series half-way through the stream, 1 % missing."""
    rng = np.random.default_rng(SEED + n_series + first)
    minutes = WARMUP_DAYS * DAY + first + np.arange(n_windows)
    values = curve(minutes)[:, None] + rng.normal(0, 5, (n_windows, n_series))
    shifted = np.random.default_rng(SEED).random(n_series) < 0.01
    values[:, shifted] += np.where(first + np.arange(n_windows) >= 60, 30.0, 0.0)[:, None]
    values[rng.random(values.shape) < 0.01] = np.nan
    return [MONDAY_MS + int(m) * WINDOW_MS for m in minutes], values


def learned_seasonal(n_series: int) -> SeasonalBaseline:
    """N rows holding the state of one series taught WARMUP_DAYS of the curve (the streams continue it)."""
    teacher = SeasonalBaseline(PARAMS.seasonal, capacity=1)
    minutes = np.arange(WARMUP_DAYS * DAY)
    noise = np.random.default_rng(SEED).normal(0, 5, minutes.size)
    teacher.update_batch(MONDAY_MS + minutes * WINDOW_MS, (curve(minutes) + noise)[:, None])
    baseline = SeasonalBaseline(PARAMS.seasonal, capacity=n_series)
    for name, column in baseline.state.columns.items():
        column[:] = teacher.state[name][0]
    return baseline


def timed_chunks(n_series: int, budget: int, quick: bool) -> list[tuple[list[int], np.ndarray]]:
    """REPEATS consecutive chunks of windows: each repeat continues the stream (no state restore, which
    would copy ~0.7 GB at 100k series), so every repeat measures the steady state."""
    n_windows = windows_for(n_series, budget, quick)
    return [values_stream(n_windows, n_series, first=40 + k * n_windows) for k in range(REPEATS)]


def best_of_chunks(
    step: Callable[[int, np.ndarray], object], chunks: list[tuple[list[int], np.ndarray]]
) -> float:
    """Updates per CPU second, best over the chunks (CPU time: the machine is shared; one thread)."""
    best = 0.0
    for times, values in chunks:
        started = time.process_time()
        for t, row in zip(times, values, strict=True):
            step(t, row)
        best = max(best, values.size / max(time.process_time() - started, 1e-9))
    return best


def best_rate(prepare: Callable[[], None], run: Callable[[], int]) -> float:
    """Updates per CPU second of ``run`` after an untimed ``prepare``, best of REPEATS."""
    best = 0.0
    for _ in range(REPEATS):
        prepare()
        started = time.process_time()
        updates = run()
        best = max(best, updates / max(time.process_time() - started, 1e-9))
    return best


def learned_ensemble(params: EnsembleParams, n_series: int) -> Ensemble:
    ensemble = Ensemble(params, capacity=n_series)
    ensemble.baseline.state.columns = learned_seasonal(n_series).state.columns
    return ensemble


def time_ensemble(params: EnsembleParams, n_series: int, quick: bool) -> dict[str, float]:
    ensemble = learned_ensemble(params, n_series)
    out = EnsembleResult.empty(n_series)
    # Past the change detectors' warm-up, untimed: the measured windows are the steady state.
    for t, row in zip(*values_stream(40, n_series), strict=True):
        ensemble.update(t, row, out=out)
    gate_open: list[float] = []

    def step(t: int, row: np.ndarray) -> None:
        ensemble.update(t, row, out=out)
        gate_open.append(float(np.count_nonzero(ensemble.state["gate"][:n_series])) / n_series)

    rate = best_of_chunks(step, timed_chunks(n_series, 3_000_000, quick))
    return {
        "updates_per_s": rate,
        "bocpd_gate_open": float(np.mean(gate_open)),
        "us_per_window": 1e6 * n_series / rate,
    }


def time_seasonal(n_series: int, quick: bool) -> dict[str, float]:
    baseline = learned_seasonal(n_series)
    out = BaselineResult.empty(n_series)
    rate = best_of_chunks(
        lambda t, row: baseline.update(t, row, out=out), timed_chunks(n_series, 4_000_000, quick)
    )
    return {"updates_per_s": rate}


def time_family(name: str, n_series: int, quick: bool) -> dict[str, float]:
    budget = 300_000 if name.startswith("bocpd") else 3_000_000
    rng = np.random.default_rng(SEED)
    z = rng.normal(size=(windows_for(n_series, budget, quick), n_series))
    z[z.shape[0] // 2 :, : max(1, n_series // 100)] += 3.0
    z[rng.random(z.shape) < 0.01] = np.nan
    make = FAMILIES[name]
    make(n_series).update(z[0])  # compile outside the timing
    holder: list[ChangeDetector] = []

    def hot() -> int:
        detector, out = holder[0], ChangeResult.empty(n_series)
        for row in z:
            detector.update(row, out=out)
        return z.size

    def prepare() -> None:
        holder[:] = [make(n_series)]

    return {"updates_per_s": best_rate(prepare, hot)}


def time_window_scorer(quick: bool) -> dict[str, float]:
    """``WindowScorer.step`` on the default config: 10 metrics x 200 series, no incidents."""
    config = config_from_yaml(Path(__file__).parent.parent / "configs" / "default.yaml")
    per_metric = 200
    n_series = len(config.metrics) * per_metric
    keys = [
        (config.metrics[i // per_metric].name, (("region", f"r{i % per_metric}"),)) for i in range(n_series)
    ]
    metric = np.repeat(np.arange(len(config.metrics)), per_metric)
    rng = np.random.default_rng(SEED)
    scorer = WindowScorer(config)
    n_windows = 30 if quick else 300

    def window(k: int) -> ClosedWindow:
        values = 100 + rng.normal(0, 5, n_series)
        return ClosedWindow(
            MONDAY_MS + k * WINDOW_MS,
            MONDAY_MS + (k + 1) * WINDOW_MS,
            np.arange(n_series, dtype=np.int64),
            metric,
            values,
            values,
            np.ones(n_series, bool),
        )

    windows = [window(k) for k in range(50 + n_windows)]
    for w in windows[:50]:
        scorer.step(w, keys.__getitem__)
    started = time.process_time()
    for w in windows[50:]:
        scorer.step(w, keys.__getitem__)
    seconds = (time.process_time() - started) / n_windows
    return {"n_series": n_series, "ms_per_window": 1e3 * seconds, "updates_per_s": n_series / seconds}


def river_rates(quick: bool) -> dict[str, tuple[float, int]]:
    """updates/s and pickled bytes of one river object per series, same daily-curve stream."""
    rng = np.random.default_rng(SEED)
    n = 20_000 // (10 if quick else 1)
    warm = 2 * DAY
    minutes = np.arange(warm + n)
    stream = (curve(minutes) + rng.normal(0, 5, minutes.size)).tolist()
    scaled = [(v - 200.0) / 200.0 for v in stream]  # HalfSpaceTrees expects features in [0, 1]
    results: dict[str, tuple[float, int]] = {}

    def measure(
        name: str, make: Callable[[], Any], step: Callable[[Any, float], None], data: list[float]
    ) -> None:
        models: list[Any] = []

        def prepare() -> None:
            model = make()
            for v in data[:warm]:
                step(model, v)
            models[:] = [model]

        def run() -> int:
            for v in data[warm:]:
                step(models[0], v)
            return len(data) - warm

        rate = best_rate(prepare, run)
        results[name] = (rate, len(pickle.dumps(models[0])))

    def holt_winters_step(model: Any, v: float) -> None:
        if model._initialized:
            model.forecast(horizon=1)
        model.learn_one(v)

    def hst_step(model: Any, v: float) -> None:
        model.score_one({"x": v})
        model.learn_one({"x": v})

    measure("river PageHinkley", drift.PageHinkley, lambda m, v: m.update(v), stream)
    measure("river ADWIN", drift.ADWIN, lambda m, v: m.update(v), stream)
    measure(
        "river HoltWinters",
        lambda: time_series.HoltWinters(alpha=0.3, beta=0.01, gamma=0.1, seasonality=DAY),
        holt_winters_step,
        stream,
    )
    measure("river HalfSpaceTrees", lambda: anomaly.HalfSpaceTrees(seed=1), hst_step, scaled)
    return results


def main(argv: list[str] | None = None) -> None:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    console = Console(width=140)
    load_before = os.getloadavg()[0]
    river_results = river_rates(quick)
    river_ph = river_results["river PageHinkley"][0]

    ensemble_bytes = Ensemble(PARAMS, 1).nbytes_per_series()
    ensemble_bytes_no_profile = Ensemble(PARAMS, 1).nbytes_per_series(with_profile=False)
    rows: list[dict[str, Any]] = []

    def add(name: str, n_series: int | None, figures: dict[str, float], state_bytes: int) -> None:
        rows.append(
            {
                "detector": name,
                "n_series": n_series,
                **figures,
                "ratio_vs_river_page_hinkley": figures["updates_per_s"] / river_ph,
                "state_bytes_per_series": state_bytes,
            }
        )

    for n_series in SERIES_COUNTS:
        add("ensemble (BOCPD R=64 gated)", n_series, time_ensemble(PARAMS, n_series, quick), ensemble_bytes)
    for n_series in SERIES_COUNTS:
        add(
            "ensemble, BOCPD on every series",
            n_series,
            time_ensemble(UNGATED, n_series, quick),
            ensemble_bytes,
        )
    for n_series in SERIES_COUNTS:
        add(
            "seasonal (daily+weekly f32)",
            n_series,
            time_seasonal(n_series, quick),
            SeasonalBaseline(PARAMS.seasonal, 1).nbytes_per_series(),
        )
    for name in FAMILIES:
        for n_series in SERIES_COUNTS:
            add(name, n_series, time_family(name, n_series, quick), FAMILIES[name](1).nbytes_per_series)
    for name, (rate, size) in river_results.items():
        add(name, None, {"updates_per_s": rate}, size)

    table = Table(title="Scoring: series-updates per CPU second, one core, best of 3 (one run)")
    for column in (
        "detector",
        "N series",
        "updates/s",
        "x river PageHinkley",
        "BOCPD gate open",
        "state bytes/series",
    ):
        table.add_column(column, justify="left" if column == "detector" else "right")
    for row in rows:
        gate = row.get("bocpd_gate_open")
        table.add_row(
            row["detector"],
            "any" if row["n_series"] is None else f"{row['n_series']:,}",
            f"{row['updates_per_s'] / 1e6:,.2f} M",
            f"{row['ratio_vs_river_page_hinkley']:,.1f}",
            "-" if gate is None else f"{100 * gate:.1f} %",
            f"{row['state_bytes_per_series']:,}",
        )
    table.caption = (
        f"ensemble state: {ensemble_bytes:,} bytes/series with the seasonal profiles, "
        f"{ensemble_bytes_no_profile:,} without"
    )
    console.print(table)
    scorer_figures = time_window_scorer(quick)
    console.print(
        f"WindowScorer.step, default config, {scorer_figures['n_series']:,} series (10 metrics): "
        f"{scorer_figures['ms_per_window']:.2f} ms per window "
        f"({scorer_figures['updates_per_s'] / 1e6:.2f} M/s)"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "ensemble",
                "quick": quick,
                "unit": "series-updates per CPU second (one thread), best of 3",
                "machine": {
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                    "numba": numba.__version__,
                    "river": river.__version__,
                    "cpus": os.cpu_count(),
                    "load_average_before": load_before,
                    "load_average_after": os.getloadavg()[0],
                },
                "ensemble_bytes_per_series": {
                    "with_profile": ensemble_bytes,
                    "without_profile": ensemble_bytes_no_profile,
                },
                "rows": rows,
                "window_scorer": scorer_figures,
            },
            indent=2,
        )
    )
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
