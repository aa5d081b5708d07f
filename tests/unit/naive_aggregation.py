"""Plain-Python reference of the windowed aggregation, event by event with dicts and sets.

It shares nothing with :mod:`detector.aggregation` but the config, so agreement between the two checks the
plan compilation, the fold kernel, the lateness rule and the value computation together.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from detector.config import Config, MetricConfig, Tally
from detector.events import Event

Key = tuple[str, tuple[tuple[str, str], ...]]


class _Cell:
    def __init__(self) -> None:
        self.primary = 0.0
        self.denominator = 0.0
        self.events = 0
        self.ids: set[int] = set()
        self.values: list[float] = []


def _tally(tally: Tally, event: Event) -> float | None:
    if event.type not in tally.events or (tally.positive_only and not event.value > 0):
        return None
    return 1.0 if tally.kind == "count" else event.value


def _fold(metric: MetricConfig, cell: _Cell, event: Event, origin_ms: int) -> None:
    agg = metric.aggregation
    if agg.kind in ("count", "sum"):
        amount = _tally(agg, event)
        if amount is not None:
            cell.primary += amount
            cell.events += 1
    elif agg.kind == "ratio":
        numerator, denominator = _tally(agg.numerator, event), _tally(agg.denominator, event)
        if numerator is not None:
            cell.primary += numerator
            cell.events += 1
        if denominator is not None:
            cell.denominator += denominator
    elif agg.kind == "gauge":
        if event.type in agg.up:
            cell.primary += 1
            cell.events += 1
        if event.type in agg.down and not (
            agg.down_value_is_duration and event.ts - event.value * 1000 < origin_ms
        ):
            cell.primary -= 1
            cell.events += 1
    elif event.type in agg.events and (not agg.positive_only or event.value > 0):
        cell.events += 1
        if agg.kind == "distinct":
            cell.ids.add(getattr(event, agg.field))
        else:
            cell.values.append(event.value)


def reference_cells(config: Config, events: Sequence[Event], now_ms: int) -> dict[int, dict[Key, _Cell]]:
    """Per window start, per series key: accumulators of the events that were neither late nor future."""
    window = config.window.length_s * 1000
    lateness = config.window.allowed_lateness_s * 1000
    newest: int | None = None
    origin: int | None = None
    cells: dict[int, dict[Key, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    for event in events:
        if event.ts > now_ms + config.window.max_future_skew_s * 1000:
            continue
        start = event.ts // window * window
        late = newest is not None and start + window <= newest - lateness
        newest = event.ts if newest is None else max(newest, event.ts)
        if late:
            continue
        origin = event.ts if origin is None else origin
        for metric in config.metrics:
            for dims in metric.slices():
                key = (metric.name, tuple((d, event.dimension(d)) for d in dims))
                before = cells[start].get(key)
                cell = cells[start][key]
                _fold(metric, cell, event, origin)
                if before is None and not (cell.events or cell.denominator):
                    del cells[start][key]
    return cells


def reference_values(config: Config, cells: dict[int, dict[Key, _Cell]]) -> dict[int, dict[Key, float]]:
    """Values per window (consecutive windows, gauges carried over) for every key with a contribution."""
    values: dict[int, dict[Key, float]] = {}
    level: dict[Key, float] = defaultdict(float)
    window = config.window.length_s * 1000
    if not cells:
        return values
    for start in range(min(cells), max(cells) + 1, window):
        out: dict[Key, float] = {}
        for key, cell in cells.get(start, {}).items():
            agg = config.metric(key[0]).aggregation
            if agg.kind == "ratio":
                out[key] = (
                    cell.primary / cell.denominator if cell.denominator >= agg.min_denominator else math.nan
                )
            elif agg.kind == "gauge":
                level[key] += cell.primary
            elif agg.kind == "distinct":
                out[key] = float(len(cell.ids))
            elif agg.kind == "quantile":
                out[key] = exact_quantile(cell.values, agg.q) if cell.values else math.nan
            else:
                out[key] = cell.primary
        for key, held in level.items():
            out[key] = held
        values[start] = out
    return values


def exact_quantile(values: list[float], q: float) -> float:
    """The smallest value whose normalised rank (share of values <= it) reaches q, as KLL defines it."""
    ordered = sorted(values)
    index = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[index]
