"""Milliseconds to attribute one alert over 1k and 10k slices, per metric kind.

    python -m benchmarks.bench_rca [--quick]

A metric sliced by region, platform, app_version and network with four configured pairs (the largest,
region x app_version, holds most series), rolled up from a Poisson leaf cube sized to give about 1k and
10k series. Each measured alert is on the total and has one injected pair incident (a different one per
repeat, generated beforehand); the time covers :func:`detector.alerting.rca.explain` only, with the
:class:`SliceIndex` built once per key set as the caller caches it (its build time is its own column).
Median and p99 over the alerts. Prints a table and writes ``benchmarks/results/rca.json``.
"""

from __future__ import annotations

import itertools
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from detector.alerting.rca import MetricWindow, SliceIndex, SliceKey, explain

RESULTS = Path(__file__).parent / "results" / "rca.json"
SEED = 20261123
DIMS = ("region", "platform", "app_version", "network")
PAIRS = (
    ("region", "platform"),
    ("region", "app_version"),
    ("region", "network"),
    ("platform", "app_version"),
)
# values per dimension giving ~1k and ~10k series (total + singles + the four pair planes)
SIZES = {1_000: (20, 4, 30, 5), 10_000: (70, 4, 130, 5)}
KINDS = ("count", "ratio", "quantile")
TOTAL = 1e7  # events per window of the whole metric
DROP = 0.6  # the incident removes this share of its cell


def roll_up(cube: np.ndarray) -> np.ndarray:
    """Series values in key order (see :func:`series_keys`): total, singles, then each pair plane."""
    parts = [np.array([cube.sum()])]
    axes = range(cube.ndim)
    for axis in axes:
        parts.append(cube.sum(axis=tuple(a for a in axes if a != axis)))
    for d, e in PAIRS:
        i, j = DIMS.index(d), DIMS.index(e)
        parts.append(cube.sum(axis=tuple(a for a in axes if a not in (i, j))).ravel())
    return np.concatenate(parts)


def series_keys(values: dict[str, list[str]]) -> list[SliceKey]:
    keys: list[SliceKey] = [()]
    for d in DIMS:
        keys.extend(((d, v),) for v in values[d])
    for d, e in PAIRS:
        keys.extend(((d, x), (e, y)) for x, y in itertools.product(values[d], values[e]))
    return keys


Cubes = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Incident = tuple[tuple[str, int], ...]


def alerts(shape: tuple[int, ...], n: int, rng: np.random.Generator) -> list[tuple[Cubes, Incident]]:
    """(expected, actual, expected denominators, actual denominators) with one pair incident, and its
    (dimension, value index) pairs.

    The incident cell is drawn in proportion to its traffic (outages hit where users are) and kept only
    when its loss is at least 5 sigma of the total's Poisson noise, i.e. when the total would alert.
    """
    out: list[tuple[Cubes, Incident]] = []
    while len(out) < n:
        expected = TOTAL * np.ones(shape)
        for axis, k in enumerate(shape):
            marginal = rng.dirichlet(np.full(k, 3.0))
            expected *= marginal.reshape([k if a == axis else 1 for a in range(len(shape))])
        d, e = PAIRS[rng.integers(len(PAIRS))]
        i, j = DIMS.index(d), DIMS.index(e)
        plane = expected.sum(axis=tuple(a for a in range(len(shape)) if a not in (i, j)))
        cell = rng.choice(plane.size, p=plane.ravel() / plane.sum())
        x, y = divmod(int(cell), plane.shape[1])
        if DROP * plane[x, y] < 5.0 * np.sqrt(TOTAL):
            continue
        where: list[slice | int] = [slice(None)] * len(shape)
        where[i], where[j] = x, y
        actual_mean = expected.copy()
        actual_mean[tuple(where)] *= 1.0 - DROP
        actual = rng.poisson(actual_mean).astype(np.float64)
        views = rng.poisson(expected * 20).astype(np.float64)
        out.append(((expected, actual, expected * 20, views), ((d, x), (e, y))))
    return out


def window_for(kind: str, keys: SliceIndex, cubes: Cubes) -> MetricWindow:
    expected, actual, views_expected, views = (roll_up(c) for c in cubes)
    z = (actual - expected) / np.sqrt(expected + 1.0)
    score = 1.0 / (1.0 + (3.0 / np.maximum(np.abs(z), 1e-9)) ** 4)  # the seasonal baseline's score map
    if kind == "ratio":
        return MetricWindow(
            keys,
            actual / views,
            expected / views_expected,
            score,
            numerator=actual,
            denominator=views,
            expected_denominator=views_expected,
        )
    return MetricWindow(keys, actual, expected, score)


def measure(n_series: int, repeats: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(SEED + n_series)
    shape = SIZES[n_series]
    values = {d: [f"{d[0]}{i}" for i in range(k)] for d, k in zip(DIMS, shape, strict=True)}
    keys = series_keys(values)
    started = time.perf_counter()
    index = SliceIndex(keys)
    index_ms = (time.perf_counter() - started) * 1000
    cases = alerts(shape, repeats, rng)
    rows = []
    for kind in KINDS:
        windows = [window_for(kind, index, cubes) for cubes, _ in cases]
        explain(windows[0], (), kind)  # warm caches
        times = []
        found_first = 0
        for window, (_, incident) in zip(windows, cases, strict=True):
            started = time.perf_counter()
            causes = explain(window, (), kind)
            times.append((time.perf_counter() - started) * 1000)
            injected = {d: values[d][i] for d, i in incident}
            found_first += bool(causes) and causes[0]["slice"] == injected
        rows.append(
            {
                "kind": kind,
                "series": len(keys),
                "alerts": repeats,
                "median_ms": float(np.median(times)),
                "p99_ms": float(np.percentile(times, 99)),
                "index_build_ms": index_ms,
                "injected_pair_ranked_first": found_first / repeats,
            }
        )
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    repeats = 20 if quick else 100
    rows = [row for n in SIZES for row in measure(n, repeats)]
    table = Table(title="Root-cause attribution: one alert on the total, ms per alert")
    columns = ("kind", "series", "alerts", "median ms", "p99 ms", "SliceIndex build ms (once)", "pair 1st")
    for column in columns:
        table.add_column(column, justify="left" if column == "kind" else "right")
    for row in rows:
        table.add_row(
            str(row["kind"]),
            f"{row['series']:,}",
            str(row["alerts"]),
            f"{row['median_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            f"{row['index_build_ms']:.1f}",
            f"{row['injected_pair_ranked_first']:.0%}",
        )
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "rca",
                "python": sys.version.split()[0],
                "numpy": np.__version__,
                "machine": platform.machine(),
                "quick": quick,
                "target_ms_at_10k": 50,
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
