"""Mergeable sketches for the distinct and quantile metrics.

One sketch per (window, series) that received a contribution. Every kind merges without losing its
error guarantee, which is what lets partitions (and workers) aggregate independently and stage 2
combine them, and every kind serialises to compact bytes for the partial-aggregate topic.

* distinct: Apache DataSketches HyperLogLog (``hll_sketch``), deterministic.
* quantile, ``log_histogram`` (default): :class:`LogHistogram`, counts of values in log-spaced buckets,
  the idea of DDSketch (Masson, Rim, Lee, VLDB 2019). Every value is known within a relative accuracy,
  and counts add, so the result is independent of order and of how the events were split: live equals
  replay exactly.
* quantile, ``kll``: Apache DataSketches KLL. Its compactions use random bits, so the same events give
  slightly different quantiles from run to run (measured: p95 of 100k values varied by 9% at k=200).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeAlias

import msgspec
import numpy as np
from datasketches import hll_sketch, hll_union, kll_doubles_sketch, tgt_hll_type

from detector.config import DistinctAggregation, QuantileAggregation


class LogHistogram:
    """Counts of positive values in buckets ``(gamma**(k-1), gamma**k]``, plus a count of values <= 0.

    With ``gamma = (1 + a) / (1 - a)`` the value reported for a bucket, ``2 gamma**k / (gamma + 1)``, is
    within relative accuracy ``a`` of every value in it.
    """

    __slots__ = ("_log_gamma", "buckets", "counts", "relative_accuracy", "zeros")

    def __init__(self, relative_accuracy: float) -> None:
        self.relative_accuracy = relative_accuracy
        self._log_gamma = math.log((1 + relative_accuracy) / (1 - relative_accuracy))
        self.buckets = np.empty(0, dtype=np.int64)  # sorted bucket indices
        self.counts = np.empty(0, dtype=np.int64)
        self.zeros = 0

    @property
    def n(self) -> int:
        return int(self.counts.sum()) + self.zeros

    def update(self, values: np.ndarray) -> None:
        positive = values[values > 0]
        self.zeros += len(values) - len(positive)
        if len(positive):
            self._add(np.ceil(np.log(positive) / self._log_gamma).astype(np.int64), None)

    def merge(self, other: LogHistogram) -> None:
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError("cannot merge log histograms of different relative accuracy")
        self.zeros += other.zeros
        self._add(other.buckets, other.counts)

    def _add(self, buckets: np.ndarray, counts: np.ndarray | None) -> None:
        merged, inverse = np.unique(np.concatenate((self.buckets, buckets)), return_inverse=True)
        weights = np.concatenate((self.counts, np.ones(len(buckets), np.int64) if counts is None else counts))
        self.counts = np.bincount(inverse, weights=weights, minlength=len(merged)).astype(np.int64)
        self.buckets = merged

    def quantile(self, q: float) -> float:
        """The value of rank ``ceil(q n)`` (1-based), within the relative accuracy; NaN when empty."""
        n = self.n
        if n == 0:
            return math.nan
        rank = max(1, math.ceil(q * n))
        if rank <= self.zeros:
            return 0.0
        bucket = int(self.buckets[np.searchsorted(np.cumsum(self.counts), rank - self.zeros)])
        gamma = math.exp(self._log_gamma)
        return 2 * gamma**bucket / (gamma + 1)

    def to_bytes(self) -> bytes:
        return msgspec.msgpack.encode(
            (self.relative_accuracy, self.zeros, self.buckets.tobytes(), self.counts.tobytes())
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LogHistogram:
        accuracy, zeros, buckets, counts = msgspec.msgpack.decode(data)
        sketch = cls(accuracy)
        sketch.zeros = zeros
        sketch.buckets = np.frombuffer(buckets, dtype=np.int64).copy()
        sketch.counts = np.frombuffer(counts, dtype=np.int64).copy()
        return sketch


Sketch: TypeAlias = "hll_sketch | kll_doubles_sketch | LogHistogram"
SketchAggregation: TypeAlias = DistinctAggregation | QuantileAggregation


def new_sketch(aggregation: SketchAggregation) -> Sketch:
    if aggregation.kind == "distinct":
        return hll_sketch(aggregation.lg_k, tgt_hll_type.HLL_8)
    if aggregation.sketch == "kll":
        return kll_doubles_sketch(aggregation.k)
    return LogHistogram(aggregation.relative_accuracy)


def update(sketch: Sketch, values: np.ndarray) -> None:
    if isinstance(sketch, LogHistogram):
        sketch.update(values)
    elif isinstance(sketch, kll_doubles_sketch):
        sketch.update(np.ascontiguousarray(values, dtype=np.float64))
    else:
        add = sketch.update
        for item in np.unique(
            values
        ).tolist():  # the HLL binding takes one item per call; repeats add nothing
            add(item)


def merge(aggregation: SketchAggregation, sketches: Iterable[Sketch]) -> Sketch:
    """A new sketch holding everything in ``sketches`` (which are left unchanged)."""
    if aggregation.kind == "distinct":
        union = hll_union(aggregation.lg_k)
        for sketch in sketches:
            union.update(sketch)
        return union.get_result(tgt_hll_type.HLL_8)
    merged = new_sketch(aggregation)
    for sketch in sketches:
        merged.merge(sketch)
    return merged


def estimate(aggregation: SketchAggregation, sketch: Sketch | None) -> float:
    """Distinct count (0 without a sketch) or the configured quantile (NaN without values)."""
    if aggregation.kind == "distinct":
        # Rounded: ids are whole, and small exact counts read exact (HLL's list mode gives 2.000000005).
        return 0.0 if sketch is None else float(round(sketch.get_estimate()))  # type: ignore[union-attr]
    if sketch is None:
        return math.nan
    if isinstance(sketch, LogHistogram):
        return sketch.quantile(aggregation.q)
    return math.nan if sketch.is_empty() else float(sketch.get_quantile(aggregation.q, inclusive=True))


def to_bytes(sketch: Sketch) -> bytes:
    if isinstance(sketch, LogHistogram):
        return sketch.to_bytes()
    return bytes(sketch.serialize() if isinstance(sketch, kll_doubles_sketch) else sketch.serialize_compact())


def from_bytes(aggregation: SketchAggregation, data: bytes) -> Sketch:
    if aggregation.kind == "distinct":
        return hll_sketch.deserialize(data)
    if aggregation.sketch == "kll":
        return kll_doubles_sketch.deserialize(data)
    return LogHistogram.from_bytes(data)
