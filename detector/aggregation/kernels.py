"""The fold kernel: route every event of a batch to its series and add it to its window's accumulators.

One pass over the events; per event, the routes of its type (one per metric part it feeds) and per route
the metric's slices. The series of a slice is a read from the dense lookup table of
:class:`detector.aggregation.plan.SeriesKeys`; a cell seen for the first time gets the next series index
(or is marked dropped when its metric is at its cap) inside the kernel, and is reported back so Python
can record its key. Sketch contributions (distinct, quantile) cannot be made in nopython mode, so the
kernel lists them (event row, window slot, series) for :mod:`detector.aggregation.sketches`.

The accumulators are ``acc[slot, field, series]`` with fields ``PRIMARY`` (count, sum, numerator, gauge
delta), ``DENOMINATOR`` and ``EVENTS`` (how many contributions: the volume of sums and sketches).
"""

from __future__ import annotations

import numpy as np

from detector.aggregation.plan import (
    DROPPED,
    TARGET_DENOMINATOR,
    TARGET_SKETCH,
    UNASSIGNED,
    WEIGHT_MINUS_ONE,
    WEIGHT_ONE,
)
from detector.jit import njit

PRIMARY, DENOMINATOR, EVENTS = 0, 1, 2
N_FIELDS = 3


@njit
def fold_events(
    start: int,
    slot: np.ndarray,  # int64 per event: window slot in acc, -1 = not accepted
    event_type: np.ndarray,  # int8
    value: np.ndarray,  # float64
    before_origin: np.ndarray,  # bool: the event's session started before the aggregator's origin
    codes: np.ndarray,  # int32 (n, D): process-wide dimension codes
    route_ptr: np.ndarray,
    route_metric: np.ndarray,
    route_target: np.ndarray,
    route_weight: np.ndarray,
    route_positive_only: np.ndarray,
    route_skip_before_origin: np.ndarray,
    mslice_ptr: np.ndarray,
    mslice_d1: np.ndarray,
    mslice_d2: np.ndarray,
    mslice_offset: np.ndarray,
    mslice_stride: np.ndarray,
    table: np.ndarray,  # int32, mutated: new series and dropped cells
    metric_count: np.ndarray,  # int64 (n_metrics,), mutated
    metric_cap: np.ndarray,
    next_series: np.ndarray,  # int64 (1,), mutated
    new_series_mslice: np.ndarray,  # int64 (capacity,): mslice of each new series, by series - first new
    new_series_cell: np.ndarray,
    acc: np.ndarray,  # float64 (slots, N_FIELDS, capacity), mutated
    sketch_row: np.ndarray,  # int64 buffers, one entry per sketch contribution, mutated
    sketch_slot: np.ndarray,
    sketch_series: np.ndarray,
    n_sketch: np.ndarray,  # int64 (1,), mutated
    dropped_series: np.ndarray,  # int64 (n_metrics,), mutated
    dropped_contributions: np.ndarray,  # int64 (n_metrics,), mutated
    scratch: np.ndarray,  # int64, at least the most contributions of one event
) -> int:
    """Fold events ``start:``; return the index of the first event not folded (``n`` when all were).

    Returns early only when a new series would not fit in ``acc``; the caller grows it and resumes.
    """
    capacity = acc.shape[2]
    first_new = next_series[0]
    n = slot.shape[0]
    for i in range(start, n):
        s = slot[i]
        if s < 0:
            continue
        t = event_type[i]
        # Pass 1: resolve the series of every contribution, so an event is folded whole or not at all.
        j = 0
        for r in range(route_ptr[t], route_ptr[t + 1]):
            if (route_positive_only[r] and not value[i] > 0.0) or (
                route_skip_before_origin[r] and before_origin[i]
            ):
                continue
            m = route_metric[r]
            for ms in range(mslice_ptr[m], mslice_ptr[m + 1]):
                d1 = mslice_d1[ms]
                d2 = mslice_d2[ms]
                c1 = codes[i, d1] if d1 >= 0 else 0
                c2 = codes[i, d2] if d2 >= 0 else 0
                cell = c1 * mslice_stride[ms] + c2
                sid = table[mslice_offset[ms] + cell]
                if sid == UNASSIGNED:
                    if metric_count[m] >= metric_cap[m]:
                        table[mslice_offset[ms] + cell] = DROPPED
                        dropped_series[m] += 1
                        sid = DROPPED
                    elif next_series[0] >= capacity:
                        return i
                    else:
                        sid = next_series[0]
                        next_series[0] += 1
                        metric_count[m] += 1
                        table[mslice_offset[ms] + cell] = sid
                        new_series_mslice[sid - first_new] = ms
                        new_series_cell[sid - first_new] = cell
                scratch[j] = sid
                j += 1
        # Pass 2: add the contributions.
        j = 0
        for r in range(route_ptr[t], route_ptr[t + 1]):
            if (route_positive_only[r] and not value[i] > 0.0) or (
                route_skip_before_origin[r] and before_origin[i]
            ):
                continue
            m = route_metric[r]
            target = route_target[r]
            weight = 1.0
            if route_weight[r] == WEIGHT_MINUS_ONE:
                weight = -1.0
            elif route_weight[r] != WEIGHT_ONE:
                weight = value[i]
            for _ms in range(mslice_ptr[m], mslice_ptr[m + 1]):
                sid = scratch[j]
                j += 1
                if sid < 0:
                    dropped_contributions[m] += 1
                elif target == TARGET_SKETCH:
                    k = n_sketch[0]
                    sketch_row[k] = i
                    sketch_slot[k] = s
                    sketch_series[k] = sid
                    n_sketch[0] = k + 1
                    acc[s, EVENTS, sid] += 1.0
                elif target == TARGET_DENOMINATOR:
                    acc[s, DENOMINATOR, sid] += weight
                else:
                    acc[s, PRIMARY, sid] += weight
                    acc[s, EVENTS, sid] += 1.0
    return n
