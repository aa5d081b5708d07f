"""Mergeable sketches for the distinct (HyperLogLog) and quantile (KLL) metrics, from Apache DataSketches.

One sketch per (window, series) that received a contribution. Both sketch kinds merge losslessly with
respect to their error guarantees, which is what lets partitions (and workers) aggregate independently
and stage 2 combine them; both serialise to compact bytes for the partial-aggregate topic.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from datasketches import hll_sketch, hll_union, kll_doubles_sketch, tgt_hll_type

from detector.config import DistinctAggregation, QuantileAggregation

Sketch = hll_sketch | kll_doubles_sketch
SketchAggregation = DistinctAggregation | QuantileAggregation


def new_sketch(aggregation: SketchAggregation) -> Sketch:
    if aggregation.kind == "distinct":
        return hll_sketch(aggregation.lg_k, tgt_hll_type.HLL_8)
    return kll_doubles_sketch(aggregation.k)


def update(sketch: Sketch, values: np.ndarray) -> None:
    if isinstance(sketch, kll_doubles_sketch):
        sketch.update(np.ascontiguousarray(values, dtype=np.float64))
    else:
        add = sketch.update
        for item in values.tolist():  # the HLL binding takes one item per call
            add(item)


def merge(aggregation: SketchAggregation, sketches: Iterable[Sketch]) -> Sketch:
    sketches = list(sketches)
    if aggregation.kind == "distinct":
        union = hll_union(aggregation.lg_k)
        for sketch in sketches:
            union.update(sketch)
        return union.get_result(tgt_hll_type.HLL_8)
    merged = kll_doubles_sketch(aggregation.k)
    for sketch in sketches:
        merged.merge(sketch)
    return merged


def estimate(aggregation: SketchAggregation, sketch: Sketch | None) -> float:
    """Distinct count (0 without a sketch) or the configured quantile (NaN without values)."""
    if aggregation.kind == "distinct":
        # Rounded: ids are whole, and small exact counts then read as exact (HLL's list mode gives 2.000000005).
        return 0.0 if sketch is None else float(round(sketch.get_estimate()))
    if sketch is None or sketch.is_empty():
        return float("nan")
    return float(sketch.get_quantile(aggregation.q, inclusive=True))


def to_bytes(sketch: Sketch) -> bytes:
    return bytes(sketch.serialize() if isinstance(sketch, kll_doubles_sketch) else sketch.serialize_compact())


def from_bytes(aggregation: SketchAggregation, data: bytes) -> Sketch:
    if aggregation.kind == "distinct":
        return hll_sketch.deserialize(data)
    return kll_doubles_sketch.deserialize(data)
