"""From per-window scores to alerts and incidents: hysteresis, cooldown, dedup and grouping.

A series *fires* after ``fire_after`` consecutive windows scoring at or above ``fire_threshold`` and
*resolves* after ``resolve_after`` consecutive windows below ``resolve_threshold`` (a lower bar, so a
score hovering at the threshold does not flap). After resolving, a series stays quiet for
``cooldown_windows``. A missing window (NaN score) counts neither way: an ingest gap must not resolve
an alert, nor fire one by itself.

Alerts of one metric that overlap in time form one incident: a gift outage in one region alerts the
total, the region and its slices, and on-call should get one page. Ids are deterministic — the same
events give the same alert ids live and in a backtest, and a consumer drops duplicates by id after a
worker restart.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import numpy as np

SliceKey = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, SliceKey]


class AlertStatus(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(enum.StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class LifecycleSettings:
    fire_threshold: float = 0.9
    resolve_threshold: float = 0.5
    critical_threshold: float = 0.99
    fire_after: int = 2
    resolve_after: int = 3
    cooldown_windows: int = 5

    def __post_init__(self) -> None:
        for name in ("fire_threshold", "resolve_threshold", "critical_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.resolve_threshold > self.fire_threshold:
            raise ValueError(
                f"resolve_threshold ({self.resolve_threshold}) must not exceed "
                f"fire_threshold ({self.fire_threshold})"
            )
        for name in ("fire_after", "resolve_after"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.cooldown_windows < 0:
            raise ValueError(f"cooldown_windows must be >= 0, got {self.cooldown_windows}")


@dataclass(frozen=True, slots=True)
class WindowScores:
    """What the scorer says about the series of one metric in one window."""

    window_start_ms: int
    window_end_ms: int
    rows: np.ndarray  # int64 series rows
    score: np.ndarray  # float64 in [0, 1]; NaN for a missing window
    value: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    kind: Sequence[str]  # none, spike, dip, level_shift, drift
    direction: np.ndarray  # int8: +1 up, -1 down, 0 none
    # Filled by the WindowScorer (optional for other producers of scores):
    keys: Sequence[SeriesKey] = ()  # series key per entry
    z: np.ndarray | None = None  # standardised residual of the seasonal baseline (NaN when missing)
    learning: np.ndarray | None = None  # bool: the baseline has not learned a full season yet
    volume: np.ndarray | None = None  # the window's volume (count, denominator, ...)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    alert_id: str
    incident_id: str
    status: AlertStatus
    metric: str
    slice: dict[str, str]
    window_start: datetime
    window_end: datetime
    fired_at: datetime
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    peak_score: float
    kind: str
    direction: str
    severity: Severity
    root_causes: list[dict[str, object]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        def iso(moment: datetime) -> str:
            return moment.isoformat().replace("+00:00", "Z")

        return {
            "alert_id": self.alert_id, "incident_id": self.incident_id, "status": self.status.value,
            "metric": self.metric, "slice": self.slice, "window_start": iso(self.window_start),
            "window_end": iso(self.window_end), "fired_at": iso(self.fired_at), "value": self.value,
            "expected": self.expected, "lower": self.lower, "upper": self.upper, "score": self.score,
            "peak_score": self.peak_score, "kind": self.kind, "direction": self.direction,
            "severity": self.severity.value, "root_causes": self.root_causes,
        }


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def alert_id_for(key: SeriesKey, fired_window_start_ms: int) -> str:
    text = f"{key[0]}|{','.join(f'{d}={v}' for d, v in key[1])}|{fired_window_start_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def incident_id_for(metric: str, opened_window_start_ms: int) -> str:
    return f"{metric}@{_utc(opened_window_start_ms).strftime('%Y%m%dT%H%M%SZ')}"


_ARRAYS = ("_above", "_below", "_cooldown", "_firing", "_fired_at_ms", "_peak")
LIFECYCLE_FORMAT = "livewatch.lifecycle"
LIFECYCLE_VERSION = 1


class _WireIncident(msgspec.Struct, array_like=True):
    metric: str
    incident_id: str
    firing_rows: list[int]
    quiet_windows: int


class _LifecycleSnapshot(msgspec.Struct):
    format: str
    version: int
    capacity: int
    arrays: dict[str, bytes]
    incidents: list[_WireIncident]


@dataclass(slots=True)
class _Incident:
    incident_id: str
    firing_rows: set[int]
    quiet_windows: int = 0


class AlertLifecycle:
    """Per-series alert state for every series of every metric, as arrays indexed by series row."""

    def __init__(self, key_of: Callable[[int], SeriesKey], capacity: int = 16) -> None:
        self._key_of = key_of
        self.capacity = 0
        self._above = np.zeros(0, dtype=np.int32)
        self._below = np.zeros(0, dtype=np.int32)
        self._cooldown = np.zeros(0, dtype=np.int32)
        self._firing = np.zeros(0, dtype=np.bool_)
        self._fired_at_ms = np.zeros(0, dtype=np.int64)
        self._peak = np.zeros(0, dtype=np.float64)
        self._incidents: dict[str, _Incident] = {}
        self.ensure_capacity(capacity)

    def ensure_capacity(self, n_series: int) -> None:
        if n_series <= self.capacity:
            return
        new_capacity = max(self.capacity, 16)
        while new_capacity < n_series:
            new_capacity *= 2
        for name in _ARRAYS:
            old = getattr(self, name)
            grown = np.zeros(new_capacity, dtype=old.dtype)
            grown[: old.shape[0]] = old
            setattr(self, name, grown)
        self.capacity = new_capacity

    def reset(self, rows: np.ndarray) -> None:
        """Forget expired series; a firing one is dropped from its incident without a resolve event."""
        for name in _ARRAYS:
            getattr(self, name)[rows] = 0
        for incident in self._incidents.values():
            incident.firing_rows.difference_update(int(r) for r in rows)

    def to_bytes(self) -> bytes:
        """Versioned snapshot of every series' alert state and the open incidents."""
        return msgspec.msgpack.encode(_LifecycleSnapshot(
            LIFECYCLE_FORMAT, LIFECYCLE_VERSION, self.capacity,
            {name: getattr(self, name).tobytes() for name in _ARRAYS},
            [_WireIncident(metric, i.incident_id, sorted(i.firing_rows), i.quiet_windows)
             for metric, i in self._incidents.items()],
        ))

    def load_bytes(self, payload: bytes) -> None:
        """Restore the state written by :meth:`to_bytes` (the key function stays this object's)."""
        try:
            snapshot = msgspec.msgpack.decode(payload, type=_LifecycleSnapshot)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not an alert lifecycle snapshot: {exc}") from None
        if (snapshot.format, snapshot.version) != (LIFECYCLE_FORMAT, LIFECYCLE_VERSION):
            raise ValueError(f"unsupported snapshot {snapshot.format!r} v{snapshot.version}; "
                             f"this build reads {LIFECYCLE_FORMAT!r} v{LIFECYCLE_VERSION}")
        if set(snapshot.arrays) != set(_ARRAYS):
            raise ValueError(
                f"lifecycle snapshot arrays {sorted(snapshot.arrays)} differ from {sorted(_ARRAYS)}"
            )
        arrays = {}
        for name in _ARRAYS:
            array = np.frombuffer(snapshot.arrays[name], dtype=getattr(self, name).dtype).copy()
            if array.shape != (snapshot.capacity,):
                raise ValueError(f"lifecycle snapshot array {name} has {array.size} rows, "
                                 f"capacity is {snapshot.capacity}")
            arrays[name] = array
        for name, array in arrays.items():
            setattr(self, name, array)
        self.capacity = snapshot.capacity
        self._incidents = {
            i.metric: _Incident(i.incident_id, set(i.firing_rows), i.quiet_windows)
            for i in snapshot.incidents
        }

    @property
    def firing_rows(self) -> np.ndarray:
        return np.flatnonzero(self._firing)

    def active_incident(self, metric: str) -> str | None:
        incident = self._incidents.get(metric)
        return incident.incident_id if incident is not None else None

    def step(self, metric: str, scores: WindowScores, settings: LifecycleSettings) -> list[AlertEvent]:
        """Advance the series of ``metric`` by one window; return the alerts that fired or resolved."""
        rows = scores.rows
        if rows.size and int(rows.max()) >= self.capacity:
            self.ensure_capacity(int(rows.max()) + 1)
        score = scores.score
        present = ~np.isnan(score)
        high = present & (score >= settings.fire_threshold)
        low = present & (score < settings.resolve_threshold)

        above = np.where(high, self._above[rows] + 1, np.where(present, 0, self._above[rows]))
        below = np.where(low, self._below[rows] + 1, np.where(present, 0, self._below[rows]))
        self._above[rows] = above
        self._below[rows] = below
        firing = self._firing[rows]
        self._peak[rows] = np.where(firing & present, np.maximum(self._peak[rows], score), self._peak[rows])
        cooling = self._cooldown[rows] > 0
        self._cooldown[rows] = np.maximum(self._cooldown[rows] - 1, 0)

        fire = ~firing & ~cooling & (above >= settings.fire_after)
        resolve = firing & (below >= settings.resolve_after)

        events: list[AlertEvent] = []
        incident = self._incidents.get(metric)
        fire_idx = np.flatnonzero(fire)
        if fire_idx.size:
            if incident is None:
                incident = _Incident(incident_id_for(metric, scores.window_start_ms), set())
                self._incidents[metric] = incident
            for i in fire_idx:
                row = int(rows[i])
                self._firing[row] = True
                self._fired_at_ms[row] = scores.window_start_ms
                self._peak[row] = score[i]
                incident.firing_rows.add(row)
                events.append(self._event(row, int(i), scores, settings, incident.incident_id, AlertStatus.FIRING))
        for i in np.flatnonzero(resolve):
            row = int(rows[i])
            assert incident is not None, "a firing series always belongs to an open incident"
            events.append(self._event(row, int(i), scores, settings, incident.incident_id, AlertStatus.RESOLVED))
            self._firing[row] = False
            self._above[row] = 0
            self._below[row] = 0
            self._cooldown[row] = settings.cooldown_windows
            incident.firing_rows.discard(row)
        if incident is not None:
            self._close_quiet_incident(metric, incident, settings)
        return events

    def _close_quiet_incident(self, metric: str, incident: _Incident, settings: LifecycleSettings) -> None:
        # An incident stays open through the cooldown after its last alert resolves, so a series that
        # flares again shortly after joins the same incident instead of paging anew.
        if incident.firing_rows:
            incident.quiet_windows = 0
            return
        incident.quiet_windows += 1
        if incident.quiet_windows > settings.cooldown_windows:
            del self._incidents[metric]

    def _event(
        self, row: int, i: int, scores: WindowScores, settings: LifecycleSettings,
        incident_id: str, status: AlertStatus,
    ) -> AlertEvent:
        key = self._key_of(row)
        fired_ms = int(self._fired_at_ms[row])
        peak = float(self._peak[row])
        return AlertEvent(
            alert_id=alert_id_for(key, fired_ms),
            incident_id=incident_id,
            status=status,
            metric=key[0],
            slice=dict(key[1]),
            window_start=_utc(scores.window_start_ms),
            window_end=_utc(scores.window_end_ms),
            fired_at=_utc(fired_ms),
            value=float(scores.value[i]),
            expected=float(scores.expected[i]),
            lower=float(scores.lower[i]),
            upper=float(scores.upper[i]),
            score=float(scores.score[i]),
            peak_score=peak,
            kind=scores.kind[i],
            direction={1: "up", -1: "down"}.get(int(scores.direction[i]), "none"),
            severity=Severity.CRITICAL if peak >= settings.critical_threshold else Severity.WARNING,
        )
