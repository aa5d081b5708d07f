"""Detection quality of the ensemble on seeded synthetic streams: delay, kind, false alerts.

    python -m benchmarks.ensemble_quality

8 days of 60 s windows, a daily sine (amplitude 10 sd) plus N(0, 1) noise, the first day learning.
Groups of series with one incident from day 3.5 on: a level shift of +3, -4 or +6 sd, a drift of
+0.05 or -0.03 sd per window, an 8 sd spike, and clean series. Per group: windows from the incident to
the first score >= 0.9 (median, and how many series never reach it within 300 windows), the kind at that
window and at the first confirmed change; on every series, before the incident and after learning:
confirmed changes and windows scoring >= 0.9 per series-day (the false-alert rates). Default
``EnsembleParams`` except a daily-only season. Prints a table and writes
``benchmarks/results/ensemble_quality.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from detector.scoring.ensemble import KIND_NAMES, Ensemble, EnsembleParams, EnsembleResult
from detector.scoring.seasonal import SeasonalParams

RESULTS = Path(__file__).parent / "results" / "ensemble_quality.json"
SEED = 7
DAY = 1440
N_WINDOWS = 8 * DAY
INCIDENT = 5000
HORIZON = 300
T0_MS = 1_767_225_600_000  # a midnight, UTC
GROUPS = {
    "clean": 100,
    "shift +3 sd": 30,
    "shift -4 sd": 30,
    "shift +6 sd": 30,
    "drift +0.05 sd/window": 30,
    "drift -0.03 sd/window": 30,
    "spike +8 sd": 30,
}


def streams() -> tuple[np.ndarray, dict[str, slice]]:
    rng = np.random.default_rng(SEED)
    n_series = sum(GROUPS.values())
    t = np.arange(N_WINDOWS)
    values = (50 + 10 * np.sin(2 * np.pi * t / DAY))[:, None] + rng.normal(0, 1, (N_WINDOWS, n_series))
    columns, start = {}, 0
    for name, count in GROUPS.items():
        columns[name] = slice(start, start + count)
        start += count
    after = np.arange(N_WINDOWS - INCIDENT)[:, None]
    values[INCIDENT:, columns["shift +3 sd"]] += 3
    values[INCIDENT:, columns["shift -4 sd"]] -= 4
    values[INCIDENT:, columns["shift +6 sd"]] += 6
    values[INCIDENT:, columns["drift +0.05 sd/window"]] += 0.05 * after
    values[INCIDENT:, columns["drift -0.03 sd/window"]] -= 0.03 * after
    values[INCIDENT, columns["spike +8 sd"]] += 8
    return values, columns


def main() -> None:
    values, columns = streams()
    ensemble = Ensemble(EnsembleParams(seasonal=SeasonalParams(seasons=("daily",))), capacity=values.shape[1])
    out = EnsembleResult.empty(values.shape[1])
    score = np.empty(values.shape)
    kind = np.empty(values.shape, dtype=np.int8)
    changed = np.empty(values.shape, dtype=bool)
    for t in range(N_WINDOWS):
        ensemble.update(T0_MS + t * 60_000, values[t], out=out)
        score[t], kind[t], changed[t] = out.score, out.kind, out.changed

    rows = []
    for name, cols in columns.items():
        days = (INCIDENT - DAY) / DAY * (cols.stop - cols.start)
        after = score[INCIDENT : INCIDENT + HORIZON, cols] >= 0.9
        reached = after.any(axis=0)
        first = np.argmax(after, axis=0)
        kinds_first = Counter(
            KIND_NAMES[kind[INCIDENT + f, cols][j]] for j, f in enumerate(first) if reached[j]
        )
        confirmed = changed[INCIDENT : INCIDENT + HORIZON, cols]
        kinds_confirmed = Counter(
            KIND_NAMES[kind[INCIDENT + int(np.argmax(confirmed[:, j])), cols][j]]
            for j in range(confirmed.shape[1])
            if confirmed[:, j].any()
        )
        rows.append(
            {
                "group": name,
                "series": cols.stop - cols.start,
                "false_confirmations_per_series_day": float(changed[DAY:INCIDENT, cols].sum() / days),
                "false_windows_over_0.9_per_series_day": float(
                    (score[DAY:INCIDENT, cols] >= 0.9).sum() / days
                ),
                "delay_median": float(np.median(first[reached])) if reached.any() else None,
                "missed": int((~reached).sum()),
                "kind_at_first_alarm": dict(kinds_first.most_common()),
                "kind_at_first_confirmation": dict(kinds_confirmed.most_common()),
            }
        )

    table = Table(title="Ensemble detection quality (seeded synthetic streams, 60 s windows, daily season)")
    for column in (
        "group",
        "false changes /series-day",
        "false >= 0.9 /series-day",
        "delay median",
        "missed",
        "kind at first >= 0.9",
        "kind when confirmed",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["group"],
            f"{row['false_confirmations_per_series_day']:.3f}",
            f"{row['false_windows_over_0.9_per_series_day']:.2f}",
            "-" if row["delay_median"] is None else f"{row['delay_median']:g}",
            str(row["missed"]),
            ", ".join(f"{k} {v}" for k, v in row["kind_at_first_alarm"].items()),
            ", ".join(f"{k} {v}" for k, v in row["kind_at_first_confirmation"].items()),
        )
    Console(width=160).print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "ensemble_quality", "seed": SEED, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
