"""Event-time tumbling windows with per-partition watermarks: the Kafka-free aggregation core.

Used the same way by the stream worker and the backtest:

* ``add(frame, partition)`` folds a batch of events into the partial aggregates of their windows and
  reports events that were late or too far in the future (rows of the frame, for the dead-letter topic).
* ``closed_windows()`` returns every window that is final: one value per series.
* Across processes (stage 1 per source partition, stage 2 merging): ``emit_partials()`` pops a
  partition's windows once its own watermark passed them, as :class:`WindowPartial` (keyed by series
  keys, serialisable); ``merge(partials)`` folds them into another aggregator, whose
  ``closed_windows()`` then waits for every source partition.

Rules (see docs/aggregation.md):

* Windows are ``[k * length, (k + 1) * length)`` in epoch milliseconds.
* A partition's watermark is the newest valid event time it has seen minus the allowed lateness. Events
  are judged in stream order, as if they came one by one, so the outcome does not depend on how events
  were batched: an event is *late* when its window ended at or before the watermark left by the events
  before it (or its window was already closed). Late events are not folded; they are counted and returned.
* An event more than ``max_future_skew`` ahead of the injected clock is invalid (*future*): counted and
  returned, and it does not move the watermark. With ``clock=None`` (replaying a log, whose simulated
  time may lie ahead of the wall clock) there is no future check and no partition goes idle.
* A window is final when the watermark of every partition has passed its end. A partition that sent
  nothing for ``idle_partition_s`` (by the injected clock) does not hold windows open; when all are idle
  the newest watermark decides.
* Closed windows are consecutive: once a window has closed, every later window is closed as the
  watermark passes it, with or without data (up to a day of empty windows; a longer jump, as in a
  replay of separate days, restarts at the next window with data). A total outage reads as zeros.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec
import numpy as np

from detector.aggregation import sketches
from detector.aggregation.kernels import DENOMINATOR, EVENTS, N_FIELDS, PRIMARY, fold_events
from detector.aggregation.plan import KIND_CODES, Plan, SeriesKey, SeriesKeys
from detector.config import Config
from detector.events import EventFrame

Clock = Callable[[], float]  # seconds since the epoch, UTC

NO_TIME = -(2**62)  # "no event yet": far below any timestamp, far from int64 overflow
_DENSE_WINDOW_SPAN = 64
_SETTLE_AT = 1 << 16  # queued sketch contributions per window before they are applied
_MAX_GAP_MS = 86_400_000
_SNAPSHOT_FORMAT = "livewatch.aggregator"
_SNAPSHOT_VERSION = 1
_KIND_COUNT, _KIND_RATIO, _KIND_GAUGE = KIND_CODES["count"], KIND_CODES["ratio"], KIND_CODES["gauge"]
_SKETCH_KINDS = (KIND_CODES["distinct"], KIND_CODES["quantile"])


@dataclass(frozen=True, slots=True)
class AddReport:
    """What happened to one batch; ``late_rows`` and ``future_rows`` index the frame (dead-letter topic)."""

    accepted: int
    late: int
    future: int
    late_rows: np.ndarray
    future_rows: np.ndarray


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """One final window: a value for every series known at close (index = series index)."""

    start_ms: int
    end_ms: int
    series: np.ndarray  # int64 series indices, see Aggregator.series.key(i)
    metric: np.ndarray  # int64 metric index (Plan.metric_names) per series
    values: np.ndarray  # float64; NaN = no value (ratio below min_denominator, quantile of nothing)
    volumes: np.ndarray  # float64: count, events summed, denominator, viewers or sketch updates
    scored: np.ndarray  # bool: a value and volume >= the metric's min_volume
    # float64: the primary accumulator; for a ratio its numerator (kept where the value is NaN below
    # min_denominator, so root-cause attribution sees every slice's part; the denominator is `volumes`).
    numerators: np.ndarray | None = None


class _WireSketch(msgspec.Struct, array_like=True):
    position: int
    data: bytes


class WindowPartial(msgspec.Struct, kw_only=True):
    """One source partition's aggregates of one window, keyed by series keys so any process can merge them."""

    partition: int
    window_start_ms: int
    watermark_ms: int
    keys: list[SeriesKey]
    primary: list[float]
    denominator: list[float]
    events: list[float]
    sketches: list[_WireSketch] = msgspec.field(default_factory=list)

    def to_bytes(self) -> bytes:
        return msgspec.msgpack.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> WindowPartial:
        return msgspec.msgpack.decode(data, type=cls)


@dataclass(slots=True)
class _Partial:
    acc: np.ndarray  # (N_FIELDS, capacity)
    sketches: dict[int, sketches.Sketch] = field(default_factory=dict)
    # Sketch contributions not applied yet: (series, values, ids) per batch, see Aggregator._settle.
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    n_pending: int = 0

    def grown(self, capacity: int) -> np.ndarray:
        if self.acc.shape[1] < capacity:
            acc = np.zeros((N_FIELDS, capacity))
            acc[:, : self.acc.shape[1]] = self.acc
            self.acc = acc
        return self.acc


class _OpenWindow(msgspec.Struct, array_like=True):
    partition: int
    window_start_ms: int
    acc: bytes
    sketches: list[_WireSketch]


class _Snapshot(msgspec.Struct):
    format: str
    version: int
    window_ms: int
    keys: list[SeriesKey]
    dropped_keys: list[SeriesKey]
    dropped_series: list[int]
    dropped_contributions: list[int]
    partitions: list[int]
    max_ts: dict[int, int]
    floor: dict[int, int]
    closed_until_ms: int
    origin_ms: int
    gauge_level: bytes
    counters: dict[str, int]
    open: list[_OpenWindow]


class Aggregator:
    """Windows, watermarks and partial aggregates for every series of a :class:`Plan`."""

    def __init__(
        self, plan: Plan | Config, *, partitions: Iterable[int] = (0,), clock: Clock | None = time.time
    ) -> None:
        self.plan = plan if isinstance(plan, Plan) else Plan(plan)
        self.series = SeriesKeys(self.plan)
        self._clock = clock
        self._window_ms = self.plan.window_ms
        self._idle_s = self.plan.config.window.idle_partition_s
        self._partitions: set[int] = set(partitions)
        self._since = self._now()
        self._max_ts: dict[int, int] = {}
        self._last_seen: dict[int, float] = {}
        self._floor: dict[int, int] = {}  # per partition: end of its last emitted window
        self._closed_until_ms = NO_TIME
        self._origin_ms = NO_TIME
        self._open: dict[tuple[int, int], _Partial] = {}
        self._capacity = 64
        self._gauge_level = np.zeros(self._capacity)
        self._aggregations = [m.aggregation for m in self.plan.metrics]
        self._distinct_fields: dict[str, list[int]] = {}
        for m, aggregation in enumerate(self._aggregations):
            if aggregation.kind == "distinct":
                self._distinct_fields.setdefault(aggregation.field, []).append(m)
        self._needs_origin = bool(self.plan.route_skip_before_origin.any())
        self._scratch = np.empty(max(1, int(self.plan.contributions_per_type.max(initial=0))), dtype=np.int64)
        self.accepted_events = 0
        self.late_events = 0
        self.future_events = 0
        self.late_partial_contributions = 0
        self.unknown_series_contributions = 0

    # --- partitions and watermarks ----------------------------------------------------------------------

    def _now(self) -> float:
        # Replay (no clock): nothing is in the future and no partition goes idle (inf - inf is NaN).
        return math.inf if self._clock is None else self._clock()

    def assign(self, partitions: Iterable[int]) -> None:
        """Set the partitions whose watermarks decide when a window is final (after a rebalance).

        A partition that sends events or partials later is added again by ``add``/``merge``.
        """
        self._partitions = set(partitions)
        self._since = self._now()

    def watermark(self, partition: int) -> int | None:
        """Newest valid event time of the partition minus the allowed lateness (ms), None before any event."""
        newest = self._max_ts.get(partition)
        return None if newest is None else newest - self.plan.lateness_ms

    def observe_watermark(self, partition: int, watermark_ms: int) -> None:
        """Stage 2: a source partition's watermark reported without a partial (it had nothing to close)."""
        self._partitions.add(partition)
        self._advance(partition, watermark_ms + self.plan.lateness_ms)

    def _advance(self, partition: int, newest_ts: int) -> None:
        self._max_ts[partition] = max(self._max_ts.get(partition, NO_TIME), newest_ts)
        self._last_seen[partition] = self._now()

    def global_watermark(self) -> int:
        """The time up to which every active partition's events are complete (ms); NO_TIME if none."""
        now = self._now()
        active: list[int] = []
        idle: list[int] = []
        for p in self._partitions:
            wm = self.watermark(p)
            seen = self._last_seen.get(p, self._since)
            (idle if now - seen >= self._idle_s else active).append(NO_TIME if wm is None else wm)
        if active:
            return min(active)
        return max(idle, default=NO_TIME)

    # --- stage 1: fold events ---------------------------------------------------------------------------

    def add(self, frame: EventFrame, partition: int = 0) -> AddReport:
        n = len(frame)
        self._partitions.add(partition)
        if n == 0:
            return AddReport(0, 0, 0, np.empty(0, np.int64), np.empty(0, np.int64))
        plan = self.plan
        ts = frame.ts.astype(np.int64, copy=False)
        future = ts > self._now() * 1000 + plan.future_skew_ms
        valid_ts = np.where(future, NO_TIME, ts)
        previous_max = self._max_ts.get(partition, NO_TIME)
        running = np.maximum.accumulate(valid_ts)
        newest_before = np.maximum(np.concatenate(([previous_max], running[:-1])), previous_max)
        window_start = ts - ts % self._window_ms
        window_end = window_start + self._window_ms
        floor = max(self._floor.get(partition, NO_TIME), self._closed_until_ms)
        late = ~future & ((window_end <= newest_before - plan.lateness_ms) | (window_end <= floor))
        accepted = ~(future | late)
        accepted_rows = np.flatnonzero(accepted)
        if len(accepted_rows):
            if self._origin_ms == NO_TIME:
                self._origin_ms = int(ts[accepted_rows[0]])
            self._fold(frame, partition, window_start, accepted_rows)
        if running[-1] > NO_TIME:
            self._advance(partition, int(running[-1]))
        report = AddReport(
            accepted=len(accepted_rows),
            late=int(late.sum()),
            future=int(future.sum()),
            late_rows=np.flatnonzero(late),
            future_rows=np.flatnonzero(future),
        )
        self.accepted_events += report.accepted
        self.late_events += report.late
        self.future_events += report.future
        return report

    def _fold(self, frame: EventFrame, partition: int, window_start: np.ndarray, rows: np.ndarray) -> None:
        plan, keys = self.plan, self.series
        starts = window_start[rows]
        low, high = int(starts.min()), int(starts.max())
        slot = np.full(len(frame), -1, dtype=np.int64)
        if (high - low) // self._window_ms < _DENSE_WINDOW_SPAN:
            slot[rows] = (starts - low) // self._window_ms
            windows = np.arange(low, high + 1, self._window_ms)
        else:
            windows, slot[rows] = np.unique(starts, return_inverse=True)
        codes = keys.frame_codes(frame.dims, frame.vocab)
        value = frame.value.astype(np.float64, copy=False)
        if self._needs_origin:
            before_origin = (frame.ts - value * 1000.0) < self._origin_ms
        else:
            before_origin = np.zeros(len(frame), dtype=np.bool_)
        type_counts = np.bincount(frame.type[rows].astype(np.int64), minlength=len(plan.route_ptr) - 1)
        n_sketch_max = int(type_counts @ plan.sketch_contributions_per_type)
        sketch_row, sketch_slot, sketch_series = (np.empty(n_sketch_max, dtype=np.int64) for _ in range(3))
        n_sketch = np.zeros(1, dtype=np.int64)
        acc = np.zeros((len(windows), N_FIELDS, self._capacity))
        start = 0
        while True:
            first_new = len(keys)
            next_series = np.array([first_new], dtype=np.int64)
            new_mslice = np.empty(self._capacity - first_new, dtype=np.int64)
            new_cell = np.empty(self._capacity - first_new, dtype=np.int64)
            start = fold_events(
                start,
                slot,
                frame.type,
                value,
                before_origin,
                codes,
                plan.route_ptr,
                plan.route_metric,
                plan.route_target,
                plan.route_weight,
                plan.route_positive_only,
                plan.route_skip_before_origin,
                plan.mslice_ptr,
                plan.mslice_d1,
                plan.mslice_d2,
                keys.mslice_offset,
                keys.mslice_stride,
                keys.table,
                keys.metric_count,
                plan.max_series,
                next_series,
                new_mslice,
                new_cell,
                acc,
                sketch_row,
                sketch_slot,
                sketch_series,
                n_sketch,
                keys.dropped_series,
                keys.dropped_contributions,
                self._scratch,
            )
            n_new = int(next_series[0]) - first_new
            keys.register(np.arange(first_new, first_new + n_new), new_mslice[:n_new], new_cell[:n_new])
            if start == len(frame):
                break
            self._grow(self._capacity * 2)
            grown = np.zeros((len(windows), N_FIELDS, self._capacity))
            grown[:, :, : acc.shape[2]] = acc
            acc = grown
        used = np.bincount(slot[rows], minlength=len(windows)) > 0
        partials = {}
        for k in np.flatnonzero(used).tolist():
            partial = self._open.setdefault((partition, int(windows[k])), _Partial(np.zeros((N_FIELDS, 0))))
            partial.grown(self._capacity)[:, : self._capacity] += acc[k]
            partials[k] = partial
        self._update_sketches(
            frame,
            partials,
            sketch_row[: n_sketch[0]],
            sketch_slot[: n_sketch[0]],
            sketch_series[: n_sketch[0]],
        )

    def _update_sketches(
        self,
        frame: EventFrame,
        partials: dict[int, _Partial],
        row: np.ndarray,
        slot: np.ndarray,
        series: np.ndarray,
    ) -> None:
        """Queue the batch's sketch contributions on their windows; sketches are updated in bulk later."""
        if len(row) == 0:
            return
        metric = self.series.metric_of()[series]
        values = frame.value[row]  # what a quantile adds
        ids = np.zeros(len(row), dtype=np.int64)  # what a distinct count adds
        for field_name, metrics in self._distinct_fields.items():
            taken = np.isin(metric, metrics)
            ids[taken] = getattr(frame, field_name)[row[taken]]
        for k, partial in partials.items():
            mine = slot == k
            if not mine.any():
                continue
            partial.pending.append((series[mine], values[mine], ids[mine]))
            partial.n_pending += int(mine.sum())
            if partial.n_pending >= _SETTLE_AT:
                self._settle(partial)

    def _settle(self, partial: _Partial) -> None:
        """Apply queued contributions: one sketch update per series rather than one per batch and series."""
        if not partial.pending:
            return
        series, values, ids = (np.concatenate(parts) for parts in zip(*partial.pending, strict=True))
        partial.pending.clear()
        partial.n_pending = 0
        order = np.argsort(series, kind="stable")
        series, values, ids = series[order], values[order], ids[order]
        metric = self.series.metric_of()[series]
        boundaries = np.flatnonzero(np.diff(series)) + 1
        starts = [0, *boundaries.tolist()]
        ends = [*boundaries.tolist(), len(series)]
        for begin, end in zip(starts, ends, strict=True):
            sid = int(series[begin])
            aggregation = self._aggregations[int(metric[begin])]
            sketch = partial.sketches.get(sid)
            if sketch is None:
                sketch = partial.sketches[sid] = sketches.new_sketch(aggregation)  # type: ignore[arg-type]
            sketches.update(sketch, values[begin:end] if aggregation.kind == "quantile" else ids[begin:end])

    def _sketch_aggregation(self, sid: int) -> sketches.SketchAggregation:
        aggregation = self.plan.metrics[self.series.metric_index(sid)].aggregation
        assert aggregation.kind in ("distinct", "quantile")
        return aggregation

    def _grow(self, capacity: int) -> None:
        level = np.zeros(capacity)
        level[: self._capacity] = self._gauge_level
        self._gauge_level = level
        self._capacity = capacity

    # --- stage 1 to stage 2 -----------------------------------------------------------------------------

    def emit_partials(self) -> list[WindowPartial]:
        """Stage 1: pop every window whose partition's watermark passed it (or whose partition went idle)."""
        return self._emit(force=False)

    def flush_partials(self) -> list[WindowPartial]:
        """Stage 1 at the end of a replay: pop every open window as a partial."""
        return self._emit(force=True)

    def _emit(self, *, force: bool) -> list[WindowPartial]:
        now = self._now()
        out = []
        for partition, start in sorted(self._open, key=lambda k: (k[1], k[0])):
            wm = self.watermark(partition)
            idle = now - self._last_seen.get(partition, self._since) >= self._idle_s
            end = start + self._window_ms
            if not (force or idle) and (wm is None or end > wm):
                continue
            partial = self._open.pop((partition, start))
            self._floor[partition] = max(self._floor.get(partition, NO_TIME), end)
            out.append(self._to_wire(partition, start, partial, NO_TIME if wm is None else wm))
        return out

    def _to_wire(self, partition: int, start: int, partial: _Partial, watermark: int) -> WindowPartial:
        self._settle(partial)
        acc = partial.grown(len(self.series))[:, : len(self.series)]
        present = np.flatnonzero((acc != 0).any(axis=0))
        position = {int(sid): i for i, sid in enumerate(present.tolist())}
        return WindowPartial(
            partition=partition,
            window_start_ms=start,
            watermark_ms=watermark,
            keys=[self.series.key(int(sid)) for sid in present],
            primary=acc[PRIMARY, present].tolist(),
            denominator=acc[DENOMINATOR, present].tolist(),
            events=acc[EVENTS, present].tolist(),
            sketches=[
                _WireSketch(position[sid], sketches.to_bytes(s))
                for sid, s in sorted(partial.sketches.items())
            ],
        )

    def merge(self, partials: Iterable[WindowPartial]) -> int:
        """Stage 2: fold partials from other aggregators; return (and count) contributions too late."""
        late = 0
        for wire in partials:
            self._partitions.add(wire.partition)
            if wire.watermark_ms > NO_TIME:
                self._advance(wire.partition, wire.watermark_ms + self.plan.lateness_ms)
            else:
                self._last_seen[wire.partition] = self._now()
            if wire.window_start_ms + self._window_ms <= self._closed_until_ms:
                late += int(sum(wire.events))
                continue
            sids = np.array([self._series_for_wire_key(key) for key in wire.keys], dtype=np.int64)
            if len(self.series) > self._capacity:
                self._grow(max(self._capacity * 2, len(self.series)))
            events = np.asarray(wire.events)
            keep = sids >= 0
            if not keep.all():
                self._count_rejected(wire.keys, sids, events)
            key = (wire.partition, wire.window_start_ms)
            partial = self._open.setdefault(key, _Partial(np.zeros((N_FIELDS, 0))))
            acc = partial.grown(self._capacity)
            acc[PRIMARY, sids[keep]] += np.asarray(wire.primary)[keep]
            acc[DENOMINATOR, sids[keep]] += np.asarray(wire.denominator)[keep]
            acc[EVENTS, sids[keep]] += events[keep]
            for item in wire.sketches:
                sid = int(sids[item.position])
                if sid < 0:
                    continue
                aggregation = self._sketch_aggregation(sid)
                incoming = sketches.from_bytes(aggregation, item.data)
                existing = partial.sketches.get(sid)
                partial.sketches[sid] = (
                    incoming if existing is None else sketches.merge(aggregation, (existing, incoming))
                )
        self.late_partial_contributions += late
        return late

    def _series_for_wire_key(self, key: SeriesKey) -> int:
        """Local index of a partial's series; -1 beyond the cap, -2 if this config does not define it."""
        try:
            return self.series.series_for_key(key)
        except (KeyError, ValueError):  # a worker running another config (e.g. during a rolling deploy)
            return -2

    def _count_rejected(self, keys: list[SeriesKey], sids: np.ndarray, events: np.ndarray) -> None:
        for i in np.flatnonzero(sids < 0).tolist():
            if sids[i] == -2:
                self.unknown_series_contributions += int(events[i])
            else:
                self.series.dropped_contributions[self.plan.metric_index[keys[i][0]]] += int(events[i])

    # --- closing ----------------------------------------------------------------------------------------

    def closed_windows(self) -> list[ClosedWindow]:
        """Every window now final across all partitions, oldest first, each exactly once."""
        return self._close_until(self.global_watermark())

    def flush(self) -> list[ClosedWindow]:
        """Close every open window regardless of watermarks (end of a replay)."""
        if not self._open:
            return []
        return self._close_until(max(start for _, start in self._open) + self._window_ms)

    def _close_until(self, watermark: int) -> list[ClosedWindow]:
        """Close windows ending at or before ``watermark``: those with data, and every window between them
        and since the last closed one (up to a day of windows), so that time without data reads as zeros."""
        w = self._window_ms
        starts = {start for _, start in self._open if start + w <= watermark}
        previous_end = self._closed_until_ms
        if previous_end != NO_TIME:
            stop = watermark - watermark % w  # windows starting before this have ended by the watermark
            starts.update(range(previous_end, min(stop, previous_end + _MAX_GAP_MS), w))
        filled: list[int] = []
        for start in sorted(starts):
            if 0 < start - previous_end <= _MAX_GAP_MS:
                filled.extend(range(previous_end, start, w))
            filled.append(start)
            previous_end = start + w
        closed = [self._close(start) for start in filled]
        if filled:
            self._closed_until_ms = previous_end
        return closed

    def _close(self, start: int) -> ClosedWindow:
        n = len(self.series)
        parts = [self._open.pop(key) for key in [k for k in self._open if k[1] == start]]
        for part in parts:
            self._settle(part)
        acc = np.zeros((N_FIELDS, n))
        for part in parts:
            acc += part.grown(n)[:, :n]
        primary, denominator, events = acc
        plan = self.plan
        metric = self.series.metric_of()
        kind = plan.kind[metric]
        values = primary.copy()
        volumes = np.where(kind == _KIND_COUNT, primary, events)
        ratio = kind == _KIND_RATIO
        if ratio.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                enough = denominator >= plan.min_denominator[metric]
                values[ratio] = np.where(enough, primary / denominator, np.nan)[ratio]
            volumes[ratio] = denominator[ratio]
        gauge = kind == _KIND_GAUGE
        if gauge.any():
            self._gauge_level[:n][gauge] += primary[gauge]
            values[gauge] = self._gauge_level[:n][gauge]
            volumes[gauge] = values[gauge]
        for sid in np.flatnonzero(np.isin(kind, _SKETCH_KINDS)).tolist():
            aggregation = self._sketch_aggregation(sid)
            held = [part.sketches[sid] for part in parts if sid in part.sketches]
            sketch = None if not held else held[0] if len(held) == 1 else sketches.merge(aggregation, held)
            values[sid] = sketches.estimate(aggregation, sketch)
        scored = ~np.isnan(values) & (volumes >= plan.min_volume[metric])
        return ClosedWindow(
            start, start + self._window_ms, np.arange(n, dtype=np.int64), metric, values, volumes, scored,
            numerators=primary,
        )

    # --- visibility -------------------------------------------------------------------------------------

    def stats(self) -> dict[str, object]:
        """Counters for logs and Prometheus: events by outcome, series and drops per metric, open windows."""
        names = self.plan.metric_names
        return {
            "accepted_events": self.accepted_events,
            "late_events": self.late_events,
            "future_events": self.future_events,
            "late_partial_contributions": self.late_partial_contributions,
            "unknown_series_contributions": self.unknown_series_contributions,
            "open_windows": len({start for _, start in self._open}),
            "series": dict(zip(names, self.series.metric_count.tolist(), strict=True)),
            "dropped_series": dict(zip(names, self.series.dropped_series.tolist(), strict=True)),
            "dropped_contributions": dict(
                zip(names, self.series.dropped_contributions.tolist(), strict=True)
            ),
        }

    # --- snapshots --------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        n = len(self.series)
        for partial in self._open.values():
            self._settle(partial)
        snapshot = _Snapshot(
            format=_SNAPSHOT_FORMAT,
            version=_SNAPSHOT_VERSION,
            window_ms=self._window_ms,
            keys=list(self.series.keys),
            dropped_keys=self.series.dropped_keys(),
            dropped_series=self.series.dropped_series.tolist(),
            dropped_contributions=self.series.dropped_contributions.tolist(),
            partitions=sorted(self._partitions),
            max_ts=dict(self._max_ts),
            floor=dict(self._floor),
            closed_until_ms=self._closed_until_ms,
            origin_ms=self._origin_ms,
            gauge_level=self._gauge_level[:n].tobytes(),
            counters={
                "accepted_events": self.accepted_events,
                "late_events": self.late_events,
                "future_events": self.future_events,
                "late_partial_contributions": self.late_partial_contributions,
                "unknown_series_contributions": self.unknown_series_contributions,
            },
            open=[
                _OpenWindow(
                    p,
                    start,
                    np.ascontiguousarray(part.grown(n)[:, :n]).tobytes(),
                    [_WireSketch(sid, sketches.to_bytes(s)) for sid, s in sorted(part.sketches.items())],
                )
                for (p, start), part in sorted(self._open.items())
            ],
        )
        return msgspec.msgpack.encode(snapshot)

    @classmethod
    def from_bytes(cls, plan: Plan | Config, data: bytes, *, clock: Clock | None = time.time) -> Aggregator:
        try:
            snapshot = msgspec.msgpack.decode(data, type=_Snapshot)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not an aggregator snapshot: {exc}") from None
        if snapshot.format != _SNAPSHOT_FORMAT or snapshot.version != _SNAPSHOT_VERSION:
            raise ValueError(f"unsupported snapshot {snapshot.format} v{snapshot.version}")
        self = cls(plan, partitions=snapshot.partitions, clock=clock)
        if snapshot.window_ms != self._window_ms:
            raise ValueError(
                f"snapshot windows are {snapshot.window_ms} ms, the config says {self._window_ms} ms"
            )
        for i, key in enumerate(snapshot.keys):
            if key[0] not in self.plan.metric_index:
                raise ValueError(f"snapshot has metric {key[0]!r}, which the config no longer defines")
            # Existing series keep their index even if a cap was lowered since.
            if self.series.series_for_key(key, ignore_cap=True) != i:
                raise ValueError(f"snapshot lists series {key!r} twice")
        self.series.mark_dropped(snapshot.dropped_keys)
        self.series.dropped_series[:] = snapshot.dropped_series
        self.series.dropped_contributions[:] = snapshot.dropped_contributions
        n = len(self.series)
        while self._capacity < n:
            self._grow(self._capacity * 2)
        self._gauge_level[:n] = np.frombuffer(snapshot.gauge_level, dtype=np.float64)
        self._max_ts = dict(snapshot.max_ts)
        self._floor = dict(snapshot.floor)
        self._last_seen = dict.fromkeys(self._max_ts, self._now())
        self._closed_until_ms = snapshot.closed_until_ms
        self._origin_ms = snapshot.origin_ms
        for name, count in snapshot.counters.items():
            setattr(self, name, count)
        for item in snapshot.open:
            acc = np.frombuffer(item.acc, dtype=np.float64).reshape(N_FIELDS, n).copy()
            partial = _Partial(acc)
            for wire in item.sketches:
                partial.sketches[wire.position] = sketches.from_bytes(
                    self._sketch_aggregation(wire.position), wire.data
                )
            self._open[(item.partition, item.window_start_ms)] = partial
        return self
