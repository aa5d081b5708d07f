"""Config compiled to arrays for the fold kernel, and the mapping from series keys to stable indices.

A *series* is one metric over one *slice*: the total, one dimension value (``region=BR``) or a pair of
values (``platform=android, app_version=31.2``). Its key is the hashable tuple
``(metric_name, ((dimension, value), ...))`` with ``()`` for the total and dimensions in the canonical
order of :data:`detector.events.DIMENSIONS`; the scoring registry and the partial aggregates exchanged
between workers use these keys. Inside one process a series is an integer index, stable for its
lifetime, so the kernels work on dense arrays.

Dimension values are interned to integer codes as they appear (a new app version simply gets the next
code). Per metric and slice a dense lookup table maps the value codes to the series index, so routing an
event to its series is an array read, not a dictionary lookup. A metric may hold at most ``max_series``
series; a slice beyond the cap is *dropped*: its table cell is marked, the dropped series and every
contribution that could not be folded are counted per metric, and never silently lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from detector.config import Config, MetricConfig, Tally
from detector.events import DIMENSIONS, EVENT_TYPE_CODE, EVENT_TYPES

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]

KIND_CODES: dict[str, int] = {"count": 0, "sum": 1, "ratio": 2, "gauge": 3, "distinct": 4, "quantile": 5}

# Where a route's contribution goes: the primary accumulator, the ratio denominator, or a sketch.
TARGET_PRIMARY, TARGET_DENOMINATOR, TARGET_SKETCH = 0, 1, 2
# What a route adds: one, the event value, or minus one (gauge down events).
WEIGHT_ONE, WEIGHT_VALUE, WEIGHT_MINUS_ONE = 0, 1, 2

UNASSIGNED = -1  # table cell not seen yet
DROPPED = -2  # table cell refused because its metric reached max_series

_INITIAL_DIMENSION_CAPACITY = 16


@dataclass(frozen=True, slots=True)
class _Route:
    event_type: int
    metric: int
    target: int
    weight: int
    positive_only: bool
    skip_before_origin: bool


def _tally_routes(metric: int, tally: Tally, target: int) -> list[_Route]:
    weight = WEIGHT_ONE if tally.kind == "count" else WEIGHT_VALUE
    return [
        _Route(EVENT_TYPE_CODE[t], metric, target, weight, tally.positive_only, False) for t in tally.events
    ]


def _metric_routes(index: int, metric: MetricConfig) -> list[_Route]:
    agg = metric.aggregation
    if agg.kind in ("count", "sum"):
        return _tally_routes(index, agg, TARGET_PRIMARY)
    if agg.kind == "ratio":
        return _tally_routes(index, agg.numerator, TARGET_PRIMARY) + _tally_routes(
            index, agg.denominator, TARGET_DENOMINATOR
        )
    if agg.kind == "gauge":
        up = [_Route(EVENT_TYPE_CODE[t], index, TARGET_PRIMARY, WEIGHT_ONE, False, False) for t in agg.up]
        down = [
            _Route(
                EVENT_TYPE_CODE[t], index, TARGET_PRIMARY, WEIGHT_MINUS_ONE, False, agg.down_value_is_duration
            )
            for t in agg.down
        ]
        return up + down
    return [
        _Route(EVENT_TYPE_CODE[t], index, TARGET_SKETCH, WEIGHT_VALUE, agg.positive_only, False)
        for t in agg.events
    ]


class Plan:
    """A :class:`Config` compiled to the flat arrays the fold kernel reads.

    Routes are grouped by event type (``route_ptr[t]:route_ptr[t+1]``); each route feeds one metric, whose
    slices are ``mslice_ptr[m]:mslice_ptr[m+1]`` with their dimension indices (``-1`` for none).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = config.metrics
        self.metric_names = tuple(m.name for m in config.metrics)
        self.metric_index = {name: i for i, name in enumerate(self.metric_names)}
        n_metrics = len(self.metrics)
        self.kind = np.array([KIND_CODES[m.aggregation.kind] for m in self.metrics], dtype=np.int8)
        self.max_series = np.array([m.max_series for m in self.metrics], dtype=np.int64)
        self.min_volume = np.array([m.min_volume for m in self.metrics], dtype=np.float64)
        self.min_denominator = np.array(
            [m.aggregation.min_denominator if m.aggregation.kind == "ratio" else np.nan for m in self.metrics]
        )
        self.window_ms = config.window.length_s * 1000
        self.lateness_ms = config.window.allowed_lateness_s * 1000
        self.future_skew_ms = config.window.max_future_skew_s * 1000

        dim_index = {d: i for i, d in enumerate(DIMENSIONS)}
        self.slices: list[tuple[str, ...]] = []  # per mslice (metric's slice)
        mslice_metric, mslice_d1, mslice_d2, mslice_ptr = [], [], [], [0]
        self.mslice_of: dict[tuple[int, tuple[str, ...]], int] = {}
        for m, metric in enumerate(self.metrics):
            for dims in metric.slices():
                self.mslice_of[(m, dims)] = len(self.slices)
                self.slices.append(dims)
                mslice_metric.append(m)
                indices = [dim_index[d] for d in dims] + [-1, -1]
                mslice_d1.append(indices[0])
                mslice_d2.append(indices[1])
            mslice_ptr.append(len(self.slices))
        self.mslice_metric = np.array(mslice_metric, dtype=np.int64)
        self.mslice_d1 = np.array(mslice_d1, dtype=np.int64)
        self.mslice_d2 = np.array(mslice_d2, dtype=np.int64)
        self.mslice_ptr = np.array(mslice_ptr, dtype=np.int64)

        routes = sorted(
            (r for m, metric in enumerate(self.metrics) for r in _metric_routes(m, metric)),
            key=lambda r: (r.event_type, r.metric, r.target),
        )
        self.route_ptr = np.searchsorted(
            np.array([r.event_type for r in routes], dtype=np.int64), np.arange(len(EVENT_TYPES) + 1)
        ).astype(np.int64)
        self.route_metric = np.array([r.metric for r in routes], dtype=np.int64)
        self.route_target = np.array([r.target for r in routes], dtype=np.int64)
        self.route_weight = np.array([r.weight for r in routes], dtype=np.int64)
        self.route_positive_only = np.array([r.positive_only for r in routes], dtype=np.bool_)
        self.route_skip_before_origin = np.array([r.skip_before_origin for r in routes], dtype=np.bool_)

        slices_per_metric = np.diff(self.mslice_ptr)
        per_route = slices_per_metric[self.route_metric]
        type_of_route = np.array([r.event_type for r in routes], dtype=np.int64)
        n_types = len(EVENT_TYPES)
        # Upper bounds per event type, to size the kernel's scratch and sketch buffers exactly once.
        self.contributions_per_type = np.bincount(type_of_route, weights=per_route, minlength=n_types).astype(
            np.int64
        )
        sketch = self.route_target == TARGET_SKETCH
        self.sketch_contributions_per_type = np.bincount(
            type_of_route[sketch], weights=per_route[sketch], minlength=n_types
        ).astype(np.int64)
        self.n_metrics = n_metrics

    @property
    def n_mslices(self) -> int:
        return len(self.slices)

    def estimated_series(self, cardinality: dict[str, int] | None = None) -> list[int]:
        """Series per metric if every combination of the expected dimension values occurs, capped."""
        cardinality = {**self.config.cardinality, **(cardinality or {})}
        estimates = []
        for metric in self.metrics:
            total = sum(int(np.prod([cardinality.get(d, 1) for d in dims])) for dims in metric.slices())
            estimates.append(min(total, metric.max_series))
        return estimates


class SeriesKeys:
    """Stable series indices for (metric, slice) keys; interns dimension values; counts dropped series.

    The lookup table holds, per metric slice, a dense block indexed by ``code1 * stride + code2`` (strides
    are the dimension vocabulary capacities, doubled when a dimension outgrows them).
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._values: list[list[str]] = [[] for _ in DIMENSIONS]
        self._codes: list[dict[str, int]] = [{} for _ in DIMENSIONS]
        self.dimension_capacity = np.full(len(DIMENSIONS), _INITIAL_DIMENSION_CAPACITY, dtype=np.int64)
        self._keys: list[SeriesKey] = []
        self._index: dict[SeriesKey, int] = {}
        self._metric_of: list[int] = []
        self._metric_of_array = np.empty(0, dtype=np.int64)
        self._cells: list[tuple[int, int, int]] = []  # (mslice, code1, code2) per series
        self.metric_count = np.zeros(plan.n_metrics, dtype=np.int64)
        self.dropped_series = np.zeros(plan.n_metrics, dtype=np.int64)
        self.dropped_contributions = np.zeros(plan.n_metrics, dtype=np.int64)
        self.table = np.empty(0, dtype=np.int32)
        self.mslice_offset = np.zeros(plan.n_mslices, dtype=np.int64)
        self.mslice_stride = np.ones(plan.n_mslices, dtype=np.int64)
        self._build_tables()

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def keys(self) -> list[SeriesKey]:
        return self._keys

    def key(self, series: int) -> SeriesKey:
        return self._keys[series]

    def index(self, key: SeriesKey) -> int | None:
        return self._index.get(key)

    def metric_index(self, series: int) -> int:
        return self._metric_of[series]

    def metric_of(self) -> np.ndarray:
        """Metric index per series, as an array (rebuilt only after series were added)."""
        if len(self._metric_of_array) != len(self._metric_of):
            self._metric_of_array = np.array(self._metric_of, dtype=np.int64)
        return self._metric_of_array

    def intern(self, dimension: int, value: str) -> int:
        codes = self._codes[dimension]
        code = codes.get(value)
        if code is None:
            code = codes[value] = len(codes)
            self._values[dimension].append(value)
            if code >= self.dimension_capacity[dimension]:
                self._grow(dimension, code + 1)
        return code

    def frame_codes(self, dims: dict[str, np.ndarray], vocab: dict[str, tuple[str, ...]]) -> np.ndarray:
        """The frame's per-frame dimension codes translated to this process's codes, shape (n, D)."""
        n = len(next(iter(dims.values()))) if dims else 0
        codes = np.empty((n, len(DIMENSIONS)), dtype=np.int32)
        for d, name in enumerate(DIMENSIONS):
            translate = np.array([self.intern(d, value) for value in vocab[name]], dtype=np.int32)
            codes[:, d] = translate[dims[name]] if len(translate) else 0
        return codes

    # --- series assignment ------------------------------------------------------------------------------

    def register(self, series: np.ndarray, mslice: np.ndarray, cell: np.ndarray) -> None:
        """Record series the kernel assigned (``series`` in increasing order from ``len(self)``)."""
        for sid, ms, c in zip(series.tolist(), mslice.tolist(), cell.tolist(), strict=True):
            assert sid == len(self._keys), "series indices are assigned densely"
            stride = int(self.mslice_stride[ms])
            self._append(ms, c // stride, c % stride)

    def series_for_key(self, key: SeriesKey, *, ignore_cap: bool = False) -> int:
        """Index of ``key``, assigned if new; -1 if its metric is at its cap (counted as dropped)."""
        found = self._index.get(key)
        if found is not None:
            return found
        metric_name, pairs = key
        metric = self.plan.metric_index[metric_name]
        ms = self.plan.mslice_of[(metric, tuple(d for d, _ in pairs))]
        codes = [self.intern(DIMENSIONS.index(d), v) for d, v in pairs] + [0, 0]
        cell = int(self.mslice_offset[ms] + codes[0] * self.mslice_stride[ms] + codes[1])
        if self.table[cell] == DROPPED:
            return -1
        if not ignore_cap and self.metric_count[metric] >= self.plan.max_series[metric]:
            self.table[cell] = DROPPED
            self.dropped_series[metric] += 1
            return -1
        self.metric_count[metric] += 1
        self.table[cell] = len(self._keys)
        return self._append(ms, codes[0], codes[1])

    def _append(self, ms: int, code1: int, code2: int) -> int:
        sid = len(self._keys)
        metric = int(self.plan.mslice_metric[ms])
        dims = self.plan.slices[ms]
        values = [self._values[DIMENSIONS.index(d)][c] for d, c in zip(dims, (code1, code2), strict=False)]
        key: SeriesKey = (self.plan.metric_names[metric], tuple(zip(dims, values, strict=True)))
        self._keys.append(key)
        self._index[key] = sid
        self._metric_of.append(metric)
        self._cells.append((ms, code1, code2))
        return sid

    def dropped_keys(self) -> list[SeriesKey]:
        keys = []
        for ms in range(self.plan.n_mslices):
            offset, stride = int(self.mslice_offset[ms]), int(self.mslice_stride[ms])
            size = self._block_size(ms)
            for cell in np.flatnonzero(self.table[offset : offset + size] == DROPPED).tolist():
                dims = self.plan.slices[ms]
                codes = (cell // stride, cell % stride)
                values = [self._values[DIMENSIONS.index(d)][c] for d, c in zip(dims, codes, strict=False)]
                metric = int(self.plan.mslice_metric[ms])
                keys.append((self.plan.metric_names[metric], tuple(zip(dims, values, strict=True))))
        return keys

    def mark_dropped(self, keys: Iterable[SeriesKey]) -> None:
        """Restore dropped marks (from a snapshot) without counting them again."""
        for metric_name, pairs in keys:
            metric = self.plan.metric_index[metric_name]
            ms = self.plan.mslice_of[(metric, tuple(d for d, _ in pairs))]
            codes = [self.intern(DIMENSIONS.index(d), v) for d, v in pairs] + [0, 0]
            self.table[self.mslice_offset[ms] + codes[0] * self.mslice_stride[ms] + codes[1]] = DROPPED

    # --- table layout -----------------------------------------------------------------------------------

    def _block_size(self, ms: int) -> int:
        d1, d2 = int(self.plan.mslice_d1[ms]), int(self.plan.mslice_d2[ms])
        return int(
            (self.dimension_capacity[d1] if d1 >= 0 else 1) * (self.dimension_capacity[d2] if d2 >= 0 else 1)
        )

    def _build_tables(self, dropped: list[SeriesKey] | None = None) -> None:
        sizes = np.array([self._block_size(ms) for ms in range(self.plan.n_mslices)], dtype=np.int64)
        self.mslice_offset = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        d2 = self.plan.mslice_d2
        self.mslice_stride = np.where(d2 >= 0, self.dimension_capacity[np.maximum(d2, 0)], 1).astype(np.int64)
        self.table = np.full(int(sizes.sum()), UNASSIGNED, dtype=np.int32)
        for sid, (ms, code1, code2) in enumerate(self._cells):
            self.table[self.mslice_offset[ms] + code1 * self.mslice_stride[ms] + code2] = sid
        if dropped:
            self.mark_dropped(dropped)

    def _grow(self, dimension: int, needed: int) -> None:
        dropped = self.dropped_keys()
        while self.dimension_capacity[dimension] < needed:
            self.dimension_capacity[dimension] *= 2
        self._build_tables(dropped)
