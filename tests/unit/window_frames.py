"""Seeded synthetic windows for window-scorer tests: numpy ``EventFrame``s folded by a real ``Aggregator``.

Windows are 5 minutes from 2026-01-01T00:00Z; with hourly slots and a daily season the first 288 windows
learn the season, so incidents come on the second day.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from detector.aggregation.windows import Aggregator, ClosedWindow
from detector.config import Config, config_from_dict
from detector.events import DIMENSIONS, EVENT_TYPES, EventFrame
from detector.scoring.window_scorer import StepResult, WindowScorer

WINDOW_MS = 300_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
REGIONS = ("eu", "us", "apac")
DROP_AT = 360  # windows 0-287 learn the daily season, the drop comes on the second day
N_WINDOWS = 420

# (event type, {dimension: value}, Poisson mean per window); dimensions not named read "x".
Cell = tuple[str, Mapping[str, str], float]


def detector_settings(**detector: Any) -> dict[str, Any]:
    return {"seasonal": {"slot_s": 3600, "seasons": ["daily"]}, **detector}


def config(**detector: Any) -> Config:
    """Gifts counted per region, 5-minute windows, a daily season of hourly slots."""
    return config_from_dict(
        {
            "window": {"length_s": 300, "allowed_lateness_s": 0},
            "metrics": [
                {
                    "name": "gifts",
                    "aggregation": {"kind": "count", "events": ["gift"]},
                    "dimensions": ["region"],
                    "detector": detector_settings(**detector),
                }
            ],
        }
    )


def cell_frame(window: int, rng: np.random.Generator, cells: Sequence[Cell]) -> EventFrame:
    """The events of one window: Poisson(mean) events per cell, at uniform times within the window."""
    counts = rng.poisson([mean for _, _, mean in cells])
    n = int(counts.sum())
    cell_of_event = rng.permutation(np.repeat(np.arange(len(cells), dtype=np.int32), counts))
    vocab: dict[str, list[str]] = {d: [] for d in DIMENSIONS}
    codes = np.zeros((len(cells), len(DIMENSIONS)), dtype=np.int32)
    for c, (_, dims, _) in enumerate(cells):
        for j, d in enumerate(DIMENSIONS):
            value = dims.get(d, "x")
            if value not in vocab[d]:
                vocab[d].append(value)
            codes[c, j] = vocab[d].index(value)
    types = np.array([EVENT_TYPES.index(t) for t, _, _ in cells], dtype=np.int8)
    return EventFrame(
        event_id=[f"{window}-{i}" for i in range(n)],
        ts=np.sort(START_MS + window * WINDOW_MS + rng.integers(0, WINDOW_MS, n)),
        type=types[cell_of_event],
        room_id=np.zeros(n, dtype=np.int64),
        user_id=np.arange(n, dtype=np.int64),
        creator_id=np.zeros(n, dtype=np.int64),
        dims={d: codes[cell_of_event, j] for j, d in enumerate(DIMENSIONS)},
        vocab={d: tuple(values) for d, values in vocab.items()},
        value=np.ones(n),
    )


def gift_frame(
    window: int,
    rng: np.random.Generator,
    drop_region: str | None,
    regions: tuple[str, ...] = REGIONS,
    drop_at: int = DROP_AT,
) -> EventFrame:
    """Gifts of one window: Poisson(200) per region, 30 % of it in ``drop_region`` from ``drop_at`` on."""
    return cell_frame(
        window,
        rng,
        [
            ("gift", {"region": region}, 200 * (0.3 if region == drop_region and window >= drop_at else 1.0))
            for region in regions
        ],
    )


def aggregate(config: Config, frames: Iterable[EventFrame]) -> tuple[list[ClosedWindow], Aggregator]:
    """The windows a real Aggregator closes over ``frames`` (one partition), and the aggregator."""
    aggregator = Aggregator(config, partitions=[0], clock=None)
    windows: list[ClosedWindow] = []
    for frame in frames:
        aggregator.add(frame, partition=0)
        windows.extend(aggregator.closed_windows())
    return windows, aggregator


@functools.cache
def closed_windows(drop_region: str | None) -> tuple[list[ClosedWindow], Aggregator]:
    """The gift windows of :func:`gift_frame` (seed 3), closed by a real Aggregator, and the aggregator."""
    rng = np.random.default_rng(3)
    return aggregate(config(), (gift_frame(window, rng, drop_region) for window in range(N_WINDOWS)))


def replay(scorer: WindowScorer, drop_region: str | None, windows: slice = slice(None)) -> list[StepResult]:
    closed, aggregator = closed_windows(drop_region)
    return [scorer.step(window, aggregator.series.key) for window in closed[windows]]


def window_index(start_ms: int) -> int:
    return (start_ms - START_MS) // WINDOW_MS
