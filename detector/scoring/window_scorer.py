"""Closed windows -> scores, anomalies and alerts: the glue of the backtest and of the stream's stage 2.

``WindowScorer(config)`` holds one :class:`Ensemble` (with its :class:`SeriesRegistry` and
:class:`AlertLifecycle`) per distinct set of ensemble parameters: metrics whose detector settings give
the same :class:`EnsembleParams` share one, so a window costs one ensemble update per group, not per
metric. Scoring rows come from the group's registry (keys ``(metric, ((dim, value), ...))``); the
aggregator's series index is only cached as a shortcut to them, so it must be stable for the scorer's
lifetime (an :class:`Aggregator` and the aggregators restored from its snapshots are).

A series whose window is not ``scored`` (no value, or volume below ``min_volume``) is a missing window:
its state is kept, its score is NaN in :class:`WindowScores` (the lifecycle counts it neither way). A
series starts at its first window with a volume (earlier zeros are the aggregator's, not data). A slice
that appears after its metric's total borrows the total's seasonal shape after its first value
(``SeasonalBaseline.borrow_shape``), so it is scored seasonally from its second window.

Every alert that fires carries its root causes (:func:`detector.alerting.rca.explain` over every series
of its metric in the same window: actual values, the ensemble's expected values and scores); the resolve
event of that alert repeats the causes computed when it fired (at resolve time the deviation is gone,
re-based into the baseline, so a fresh attribution would explain nothing). Ratio metrics also need an
expected *denominator* per series for the rate/mix split: each group keeps a light seasonal baseline of
the denominators (volumes) of its ratio series, updated every window (one kernel call for all of them),
whose expected value for the window is read before it learns from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
import numpy as np

from detector.aggregation.windows import ClosedWindow
from detector.alerting.lifecycle import (
    AlertEvent,
    AlertLifecycle,
    AlertStatus,
    LifecycleSettings,
    SeriesKey,
    WindowScores,
)
from detector.alerting.rca import MetricWindow, SliceIndex, explain
from detector.config import Config, ensemble_params, lifecycle_settings, rca_settings
from detector.scoring.ensemble import KIND_NAMES, Ensemble, EnsembleParams, EnsembleResult
from detector.scoring.registry import SeriesRegistry
from detector.scoring.seasonal import BaselineResult, SeasonalBaseline

SCORER_FORMAT = "livewatch.window_scorer"
SCORER_VERSION = 2
# Version 1 had no denominator baselines nor root causes: it loads with a fresh denominator baseline (it
# expects the recent traffic until it has learned a season) and firing alerts resolve without causes.
_READABLE_VERSIONS = (1, SCORER_VERSION)
_DIRECTION_NAMES = {1: "up", -1: "down", 0: "none"}
_OPPOSITE = {"up": -1, "down": 1}  # the direction a one-sided metric ignores

KeysOf = Callable[[int], SeriesKey]


@dataclass(frozen=True, slots=True)
class StepResult:
    scores: list[WindowScores]  # one per metric with series in the window
    alerts: list[AlertEvent]  # fired and resolved in this window
    anomalies: list[dict[str, object]]  # series scoring >= the metric's lower_threshold, JSON-ready


class _Group:
    """The series of every metric sharing one set of ensemble parameters."""

    def __init__(self, params: EnsembleParams, capacity: int, ratio_metrics: frozenset[str]) -> None:
        self.params = params
        self.registry = SeriesRegistry(capacity)
        self.ensemble = Ensemble(params, capacity)
        self.lifecycle = AlertLifecycle(self.key_of, capacity)
        self.keys_by_row = np.empty(capacity, dtype=object)
        # A slice that appears after its metric's total -> the total's row, until it borrows its shape.
        self.pending_shapes: dict[int, int] = {}
        # Ratio series only: group row -> row of the denominator baseline (-1: not a ratio series).
        self.ratio_metrics = ratio_metrics
        self.denominator_row = np.full(capacity, -1, dtype=np.int64)
        self.denominators = SeasonalBaseline(params.seasonal, capacity=16)
        self.n_denominators = 0
        # Firing alerts' root causes by group row, repeated on their resolve event.
        self.root_causes: dict[int, list[dict[str, object]]] = {}

    def key_of(self, row: int) -> SeriesKey:
        return cast(SeriesKey, self.registry.key_of(row))  # the registry holds only series keys here

    def add(self, keys: list[SeriesKey]) -> np.ndarray:
        """Rows for ``keys``; keys new to the registry get a row (and, for a slice, a pending shape)."""
        new = [key not in self.registry for key in keys]
        rows = self.registry.add(keys)
        capacity = self.registry.capacity
        self.ensemble.ensure_capacity(capacity)
        self.lifecycle.ensure_capacity(capacity)
        if self.keys_by_row.shape[0] < capacity:
            grown = np.empty(capacity, dtype=object)
            grown[: self.keys_by_row.shape[0]] = self.keys_by_row
            self.keys_by_row = grown
        for row, key, is_new in zip(rows.tolist(), keys, new, strict=True):
            self.keys_by_row[row] = key
            total = (key[0], ())
            if is_new and key[1] and total in self.registry:
                self.pending_shapes[row] = int(self.registry.rows_for([total])[0])
        self.track_denominators(rows, keys)
        return rows

    def track_denominators(self, rows: np.ndarray, keys: list[SeriesKey]) -> None:
        """Give the ratio series among ``rows`` a row in the denominator baseline (once each)."""
        capacity = self.registry.capacity
        if self.denominator_row.shape[0] < capacity:
            grown = np.full(capacity, -1, dtype=np.int64)
            grown[: self.denominator_row.shape[0]] = self.denominator_row
            self.denominator_row = grown
        for row, key in zip(rows.tolist(), keys, strict=True):
            if key[0] in self.ratio_metrics and self.denominator_row[row] < 0:
                self.denominator_row[row] = self.n_denominators
                self.n_denominators += 1
        self.denominators.ensure_capacity(self.n_denominators)

    def expect_denominators(
        self, t_ms: int, rows: np.ndarray, volumes: np.ndarray, out: BaselineResult | None
    ) -> BaselineResult | None:
        """Each ratio series' expected denominator for this window, then learn its actual one.

        ``rows``/``volumes``: the group rows and window volumes of the ratio series. Like the ensemble, a
        series starts at its first window with a volume. Indexed by :attr:`denominator_row`.
        """
        n = self.n_denominators
        if not n:
            return None
        x = np.full(n, np.nan)
        x[self.denominator_row[rows]] = volumes
        never_seen = self.denominators.state["seen"][:n] == 0
        x[never_seen & ~(x > 0)] = np.nan
        if out is None or len(out) != n:
            out = BaselineResult.empty(n)
        return self.denominators.update(t_ms, x, out=out)

    def borrow_pending_shapes(self) -> None:
        """A new slice takes its metric total's seasonal shape once it has a value of its own.

        It is then scored seasonally from its next window instead of learning for a full season (a new
        app version, a region coming online). If the total is itself still learning, the slice learns
        alongside it.
        """
        if not self.pending_shapes:
            return
        baseline = self.ensemble.baseline
        seen = baseline.state["seen"]
        children, parents = [], []
        for child, parent in list(self.pending_shapes.items()):
            if seen[parent] < baseline.params.cold_start_windows:
                del self.pending_shapes[child]
            elif seen[child] >= 1:
                children.append(child)
                parents.append(parent)
                del self.pending_shapes[child]
        if children:
            baseline.borrow_shape(children, parents)


@dataclass(frozen=True, slots=True)
class _MetricPlan:
    name: str
    group: int
    lifecycle: LifecycleSettings
    lower_threshold: float
    ignored_direction: int  # 0: none ignored
    kind: str  # the aggregation kind, which decides how root causes are attributed


class _WireGroup(msgspec.Struct, array_like=True):
    params: str
    registry: bytes
    ensemble: bytes
    lifecycle: bytes
    pending_shapes: list[tuple[int, int]]
    # Since version 2:
    denominator_rows: list[tuple[int, int]] = []  # (group row, denominator baseline row)
    denominators: bytes = b""
    root_causes: list[tuple[int, list[dict[str, Any]]]] = []


class _Snapshot(msgspec.Struct):
    format: str
    version: int
    metrics: list[str]
    groups: list[_WireGroup]


def _plans(config: Config) -> tuple[list[EnsembleParams], list[_MetricPlan]]:
    params: list[EnsembleParams] = []
    plans = []
    for metric in config.metrics:
        p = ensemble_params(metric.detector, config.window.length_s)
        if p not in params:
            params.append(p)
        d = metric.detector
        plans.append(
            _MetricPlan(
                metric.name,
                params.index(p),
                lifecycle_settings(d),
                d.lower_threshold,
                _OPPOSITE.get(d.direction, 0),
                metric.aggregation.kind,
            )
        )
    return params, plans


def _ratio_metrics(plans: list[_MetricPlan], group: int) -> frozenset[str]:
    return frozenset(p.name for p in plans if p.group == group and p.kind == "ratio")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


class WindowScorer:
    """Scores every series of each closed window and runs the alert lifecycle; see the module doc."""

    def __init__(self, config: Config, *, capacity: int = 1024) -> None:
        params, self._metrics = _plans(config)
        self._groups = [_Group(p, capacity, _ratio_metrics(self._metrics, g)) for g, p in enumerate(params)]
        self._outputs: list[EnsembleResult | None] = [None] * len(self._groups)
        self._expected_denominators: list[BaselineResult | None] = [None] * len(self._groups)
        self._row_of_series = np.full(0, -1, dtype=np.int64)  # aggregator series index -> group row
        self._rca = rca_settings(config.rca)
        # Per metric: the group rows of its series in window order, and their SliceIndex (rebuilt only when
        # the metric's series change, which is rare: a new slice value).
        self._slice_indexes: dict[int, tuple[np.ndarray, SliceIndex]] = {}

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self._metrics]

    @property
    def ensembles(self) -> list[Ensemble]:
        """One ensemble per distinct parameter set (for inspection and benchmarks)."""
        return [g.ensemble for g in self._groups]

    def reload(self, config: Config) -> None:
        """Take new thresholds, directions and lifecycle settings; every state is kept.

        Changing the metrics or anything that shapes an ensemble (seasonal, changepoint, ensemble blocks,
        window length) needs a new scorer: refused with the metrics concerned named.
        """
        params, plans = _plans(config)
        names = [m.name for m in plans]
        if names != self.metric_names:
            raise ValueError(f"reload cannot change the metrics: {self.metric_names} -> {names}")
        changed = [
            plan.name
            for plan, old in zip(plans, self._metrics, strict=True)
            if params[plan.group] != self._groups[old.group].params or plan.kind != old.kind
        ]
        if changed:
            raise ValueError(
                "reload cannot change seasonal/changepoint/ensemble settings, the aggregation kind or the "
                f"window (metrics {changed}); start a new scorer"
            )
        # Same parameters per metric, so the old groups serve; only the per-metric plans change.
        self._metrics = [
            _MetricPlan(p.name, old.group, p.lifecycle, p.lower_threshold, p.ignored_direction, old.kind)
            for p, old in zip(plans, self._metrics, strict=True)
        ]
        self._rca = rca_settings(config.rca)

    def _rows(self, window: ClosedWindow, keys_of: KeysOf) -> np.ndarray:
        series = window.series
        if series.size and int(series.max()) >= self._row_of_series.shape[0]:
            grown = np.full(max(2 * self._row_of_series.shape[0], int(series.max()) + 1), -1, dtype=np.int64)
            grown[: self._row_of_series.shape[0]] = self._row_of_series
            self._row_of_series = grown
        rows = self._row_of_series[series]
        unknown = np.flatnonzero(rows < 0)
        if unknown.size:
            by_group: dict[int, list[int]] = {}
            for j in unknown.tolist():
                by_group.setdefault(self._metrics[int(window.metric[j])].group, []).append(j)
            for group, positions in by_group.items():
                keys = [keys_of(int(series[j])) for j in positions]
                self._row_of_series[series[positions]] = self._groups[group].add(keys)
            rows = self._row_of_series[series]
        return rows

    def score(self, window: ClosedWindow, keys_of: KeysOf) -> list[WindowScores]:
        """Score one closed window: a :class:`WindowScores` per metric present, entries in window order."""
        rows = self._rows(window, keys_of)
        values = np.where(window.scored, window.values, np.nan)
        group_of_entry = np.array([m.group for m in self._metrics], dtype=np.int64)[window.metric]
        ratio_entry = np.array([m.kind == "ratio" for m in self._metrics], dtype=np.bool_)[window.metric]
        results = []
        for g, group in enumerate(self._groups):
            size = group.registry.size
            x = np.full(size, np.nan)
            volume = np.zeros(size)
            mine = group_of_entry == g
            x[rows[mine]] = values[mine]
            volume[rows[mine]] = window.volumes[mine]
            # A series starts at its first window with volume: the aggregator reads 0 for the windows that
            # closed after a slice became known but before its first event, which is not a real value.
            never_seen = group.ensemble.baseline.state["seen"][:size] == 0
            x[never_seen & ~(volume > 0)] = np.nan
            out = self._outputs[g]
            if out is None or len(out) != size:
                out = self._outputs[g] = EnsembleResult.empty(size)
            results.append(group.ensemble.update(window.start_ms, x, out=out))
            group.borrow_pending_shapes()
            ratio = mine & ratio_entry
            self._expected_denominators[g] = group.expect_denominators(
                window.start_ms, rows[ratio], window.volumes[ratio], self._expected_denominators[g]
            )
        scores = []
        for m, plan in enumerate(self._metrics):
            entries = np.flatnonzero(window.metric == m)
            if not entries.size:
                continue
            result = results[plan.group]
            metric_rows = rows[entries]
            score = np.where(result.missing[metric_rows], np.nan, result.score[metric_rows])
            direction = result.direction[metric_rows]
            if plan.ignored_direction:
                score = np.where(direction == plan.ignored_direction, 0.0, score)
            scores.append(
                WindowScores(
                    window_start_ms=window.start_ms,
                    window_end_ms=window.end_ms,
                    rows=metric_rows,
                    score=score,
                    value=window.values[entries],
                    expected=result.expected[metric_rows],
                    lower=result.lower[metric_rows],
                    upper=result.upper[metric_rows],
                    kind=[KIND_NAMES[k] for k in result.kind[metric_rows].tolist()],
                    direction=direction,
                    keys=list(self._groups[plan.group].keys_by_row[metric_rows]),
                    z=result.z[metric_rows],
                    learning=result.learning[metric_rows],
                    volume=window.volumes[entries],
                )
            )
        return scores

    def step(self, window: ClosedWindow, keys_of: KeysOf) -> StepResult:
        """Score the window, run the alert lifecycle and list the anomalies."""
        scores = self.score(window, keys_of)
        alerts: list[AlertEvent] = []
        anomalies: list[dict[str, object]] = []
        index_of = {m.name: i for i, m in enumerate(self._metrics)}
        for metric_scores in scores:
            metric = metric_scores.keys[0][0]
            m = index_of[metric]
            plan = self._metrics[m]
            events = self._groups[plan.group].lifecycle.step(metric, metric_scores, plan.lifecycle)
            if events:
                alerts.extend(self._with_root_causes(events, m, metric_scores, window))
            anomalies.extend(self._anomalies(metric_scores, plan.lower_threshold))
        return StepResult(scores, alerts, anomalies)

    def _with_root_causes(
        self, events: list[AlertEvent], m: int, scores: WindowScores, window: ClosedWindow
    ) -> list[AlertEvent]:
        """Fired alerts get the attribution of this window; resolved ones the causes they fired with."""
        plan = self._metrics[m]
        group = self._groups[plan.group]
        row_of = {key: int(row) for key, row in zip(scores.keys, scores.rows.tolist(), strict=True)}
        metric_window: MetricWindow | None = None
        attributed = []
        for event in events:
            row = row_of[(event.metric, tuple(event.slice.items()))]
            if event.status is AlertStatus.FIRING:
                if metric_window is None:
                    metric_window = self._metric_window(m, scores, window)
                causes = explain(metric_window, event.slice, plan.kind, self._rca)
                group.root_causes[row] = causes
            else:
                causes = group.root_causes.pop(row, [])
            attributed.append(replace(event, root_causes=causes))
        return attributed

    def _metric_window(self, m: int, scores: WindowScores, window: ClosedWindow) -> MetricWindow:
        """Every series of metric ``m`` in this window, as root-cause attribution reads them."""
        plan = self._metrics[m]
        cached = self._slice_indexes.get(m)
        if cached is None or not np.array_equal(cached[0], scores.rows):
            cached = (scores.rows.copy(), SliceIndex([key[1] for key in scores.keys]))
            self._slice_indexes[m] = cached
        index = cached[1]
        if plan.kind != "ratio":
            return MetricWindow(index, scores.value, scores.expected, scores.score)
        entries = np.flatnonzero(window.metric == m)
        denominator = window.volumes[entries]
        # The aggregator always supplies numerators; a hand-built window gives them through the ratio.
        numerator = (
            window.numerators[entries] if window.numerators is not None else scores.value * denominator
        )
        group = self._groups[plan.group]
        expected = self._expected_denominators[plan.group]
        expected_denominator = (
            None if expected is None else expected.expected[group.denominator_row[scores.rows]]
        )
        return MetricWindow(
            index, scores.value, scores.expected, scores.score, numerator, denominator, expected_denominator
        )

    @staticmethod
    def _anomalies(scores: WindowScores, lower_threshold: float) -> list[dict[str, object]]:
        with np.errstate(invalid="ignore"):
            flagged = np.flatnonzero(scores.score >= lower_threshold)
        start, end = _iso(scores.window_start_ms), _iso(scores.window_end_ms)
        anomalies: list[dict[str, object]] = []
        for i in flagged.tolist():
            metric, slice_key = scores.keys[i]
            anomalies.append(
                {
                    "metric": metric,
                    "slice": dict(slice_key),
                    "window_start": start,
                    "window_end": end,
                    "value": _json_float(float(scores.value[i])),
                    "expected": _json_float(float(scores.expected[i])),
                    "lower": _json_float(float(scores.lower[i])),
                    "upper": _json_float(float(scores.upper[i])),
                    "score": float(scores.score[i]),
                    "z": _json_float(float(scores.z[i])) if scores.z is not None else None,
                    "kind": scores.kind[i],
                    "direction": _DIRECTION_NAMES[int(scores.direction[i])],
                    "learning": bool(scores.learning[i]) if scores.learning is not None else False,
                    "volume": _json_float(float(scores.volume[i])) if scores.volume is not None else None,
                }
            )
        return anomalies

    def to_bytes(self) -> bytes:
        """Versioned snapshot of every group: registry, ensemble state and alert lifecycle."""
        return msgspec.msgpack.encode(
            _Snapshot(
                SCORER_FORMAT,
                SCORER_VERSION,
                self.metric_names,
                [
                    _WireGroup(
                        repr(g.params),
                        g.registry.to_bytes(),
                        g.ensemble.to_bytes(),
                        g.lifecycle.to_bytes(),
                        sorted(g.pending_shapes.items()),
                        [(int(r), int(d)) for r, d in enumerate(g.denominator_row.tolist()) if d >= 0],
                        g.denominators.to_bytes(),
                        sorted(g.root_causes.items()),
                    )
                    for g in self._groups
                ],
            )
        )

    @classmethod
    def from_bytes(cls, config: Config, payload: bytes) -> WindowScorer:
        """A scorer for ``config`` continuing from :meth:`to_bytes`; refused for a config of another shape."""
        try:
            snapshot = msgspec.msgpack.decode(payload, type=_Snapshot)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not a window scorer snapshot: {exc}") from None
        if snapshot.format != SCORER_FORMAT or snapshot.version not in _READABLE_VERSIONS:
            raise ValueError(
                f"unsupported snapshot {snapshot.format!r} v{snapshot.version}; "
                f"this build reads {SCORER_FORMAT!r} v{', v'.join(map(str, _READABLE_VERSIONS))}"
            )
        scorer = cls(config, capacity=1)
        if snapshot.metrics != scorer.metric_names:
            raise ValueError(
                f"snapshot is for metrics {snapshot.metrics}, the config has {scorer.metric_names}"
            )
        if [w.params for w in snapshot.groups] != [repr(g.params) for g in scorer._groups]:
            raise ValueError("snapshot was taken with other seasonal/changepoint/ensemble settings")
        for group, wire in zip(scorer._groups, snapshot.groups, strict=True):
            group.registry = SeriesRegistry.from_bytes(wire.registry)
            group.ensemble.load_bytes(wire.ensemble)
            group.lifecycle = AlertLifecycle(group.key_of, 1)
            group.lifecycle.load_bytes(wire.lifecycle)
            group.pending_shapes = dict(wire.pending_shapes)
            group.keys_by_row = np.empty(group.registry.capacity, dtype=object)
            for row in range(group.registry.size):
                try:
                    group.keys_by_row[row] = group.registry.key_of(row)
                except KeyError:  # a freed row
                    continue
            group.denominator_row = np.full(group.registry.capacity, -1, dtype=np.int64)
            for row, denominator_row in wire.denominator_rows:
                group.denominator_row[row] = denominator_row
            group.n_denominators = len(wire.denominator_rows)
            if wire.denominators:
                group.denominators.load_bytes(wire.denominators)
            group.root_causes = dict(wire.root_causes)
            # A version-1 snapshot has no denominator rows: its ratio series get fresh ones here.
            known = [row for row in range(group.registry.size) if group.keys_by_row[row] is not None]
            group.track_denominators(np.array(known, dtype=np.int64), [group.keys_by_row[r] for r in known])
        return scorer
