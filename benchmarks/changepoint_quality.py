"""False alarms and detection delay of the change-point detectors on standardised noise.

    python -m benchmarks.changepoint_quality

Each detector watches 2000 series of N(0, 1) values (what the ensemble feeds: standardised residuals)
for 3000 windows. Clean: alarms per 10k windows after warm-up. Shifted: at window 500 half the series
step up and half step down by 1, 2 or 3 sd; the delay is the first alarm at or after the shift minus
500 (missed if none within 200 windows), and whether that alarm points the right way. Seeded. Prints
a table and writes ``benchmarks/results/changepoint_quality.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from detector.scoring.bocpd import Bocpd, BocpdParams
from detector.scoring.change import ChangeDetector, ChangeResult
from detector.scoring.cusum import Cusum, CusumParams
from detector.scoring.page_hinkley import PageHinkley, PageHinkleyParams

RESULTS = Path(__file__).parent / "results" / "changepoint_quality.json"
N_SERIES = 2000
N_WINDOWS = 3000
SHIFT_AT = 500
HORIZON = 200
SHIFTS = (1.0, 2.0, 3.0)
SEED = 7

DETECTORS: dict[str, Callable[[int], ChangeDetector]] = {
    "cusum (k=0.5, h=5)": lambda n: Cusum(CusumParams(), n),
    "page_hinkley (river defaults)": lambda n: PageHinkley(PageHinkleyParams(), n),
    "page_hinkley (threshold=15)": lambda n: PageHinkley(PageHinkleyParams(threshold=15.0), n),
    "bocpd (defaults, R=128)": lambda n: Bocpd(BocpdParams(), n),
}


def alarms(make: Callable[[int], ChangeDetector], stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alarm flags and directions, (windows, series)."""
    detector = make(stream.shape[1])
    out = ChangeResult.empty(stream.shape[1])
    detected = np.zeros(stream.shape, dtype=bool)
    direction = np.zeros(stream.shape, dtype=np.int8)
    for t, row in enumerate(stream):
        detector.update(row, out=out)
        detected[t] = out.detected
        direction[t] = out.direction
    return detected, direction


def main() -> None:
    rng = np.random.default_rng(SEED)
    noise = rng.normal(size=(N_WINDOWS, N_SERIES))
    signs = np.where(np.arange(N_SERIES) % 2 == 0, 1, -1)
    rows: list[dict[str, Any]] = []
    for name, make in DETECTORS.items():
        detected, _ = alarms(make, noise)
        row: dict[str, Any] = {
            "detector": name,
            "false_alarms_per_10k_windows": float(
                detected[100:].sum() / ((N_WINDOWS - 100) * N_SERIES) * 1e4
            ),
        }
        for shift in SHIFTS:
            stream = noise[: SHIFT_AT + HORIZON].copy()
            stream[SHIFT_AT:] += shift * signs
            detected, direction = alarms(make, stream)
            after = detected[SHIFT_AT:]
            hit = after.any(axis=0)
            first = np.argmax(after, axis=0)
            right_way = direction[SHIFT_AT + first[hit], np.flatnonzero(hit)] == signs[hit]
            row[f"shift_{shift:g}sd"] = {
                "median_delay": float(np.median(first[hit])) if hit.any() else None,
                "p90_delay": float(np.percentile(first[hit], 90)) if hit.any() else None,
                "missed_fraction": float(1 - hit.mean()),
                "right_direction_fraction": float(right_way.mean()) if hit.any() else None,
            }
        rows.append(row)

    table = Table(title=f"Change-point quality on N(0,1) ({N_SERIES} series, seed {SEED})")
    table.add_column("detector")
    table.add_column("false alarms / 10k windows", justify="right")
    for shift in SHIFTS:
        table.add_column(f"{shift:g} sd: delay median / p90, missed, right way", justify="right")
    for row in rows:
        cells = [row["detector"], f"{row['false_alarms_per_10k_windows']:.2f}"]
        for shift in SHIFTS:
            r = row[f"shift_{shift:g}sd"]
            if r["median_delay"] is None:
                cells.append(f"- , missed {r['missed_fraction']:.0%}")
            else:
                cells.append(
                    f"{r['median_delay']:.0f} / {r['p90_delay']:.0f}, {r['missed_fraction']:.0%}, "
                    f"{r['right_direction_fraction']:.0%}"
                )
        table.add_row(*cells)
    console = Console(width=160)
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"benchmark": "changepoint_quality", "seed": SEED, "rows": rows}, indent=2) + "\n"
    )
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
