"""The seams between the stream mechanics and the aggregation / scoring code.

The stream layer owns Kafka: batching, decoding, dead letters, offsets, snapshots, recovery and the
decision *when* a window is final. It never looks inside aggregates. Stage 1 drives one
:class:`PartitionFolder` per source partition; stage 2 drives one :class:`WindowMerger` and one
:class:`Scorer` per ``metric-windows`` partition. :class:`StreamComponents` builds and restores them,
so plugging in the real aggregator is one factory (see ``docs/stream.md``).

Contract every implementation must keep, because recovery replays input after a crash:

* **Deterministic**: the same frames in the same order give the same partials, watermarks and alerts
  (no wall clock except for the "future event" check, no unseeded randomness, stable ordering).
* **Snapshots are complete**: ``from_bytes(x.to_bytes())`` behaves exactly like ``x`` from then on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from detector.events import EventFrame

_NO_ROWS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class FoldReport:
    """What :meth:`PartitionFolder.add` did with a frame.

    ``late_rows`` and ``future_rows`` are row indices into the frame that was passed in; those events
    were *not* folded and go to the dead-letter topic with reason ``late`` / ``future``.
    """

    accepted: int
    late_rows: np.ndarray = field(default_factory=lambda: _NO_ROWS)
    future_rows: np.ndarray = field(default_factory=lambda: _NO_ROWS)


@dataclass(frozen=True, slots=True)
class ClosedPartial:
    """The partial aggregate of one window from one source partition, final for that partition.

    ``group`` is the routing key of stage 2 (a metric name or series group): all partials of one group
    meet in one ``metric-windows`` partition, so one merger sees every source partition's share.
    """

    group: str
    window_start_ms: int
    window_end_ms: int
    payload: bytes


class PartitionFolder(Protocol):
    """Stage 1 state of one source partition: open windows plus the partition's watermark."""

    @property
    def watermark_ms(self) -> int | None:
        """Event time up to which this partition is complete: every window ending at or before it has
        been handed out by :meth:`take_closed`. ``None`` before the first event."""
        ...

    def add(self, frame: EventFrame) -> FoldReport:
        """Fold a frame of events (all from this partition, in offset order)."""
        ...

    def take_closed(self) -> list[ClosedPartial]:
        """Partials of windows that became final since the last call; they are removed from the folder."""
        ...

    def to_bytes(self) -> bytes: ...


MergedT_co = TypeVar("MergedT_co", covariant=True)
MergedT_contra = TypeVar("MergedT_contra", contravariant=True)


class WindowMerger(Protocol[MergedT_co]):
    """Stage 2: partials of every source partition, per (group, window), until the window is final."""

    def put(self, source_partition: int, partial: ClosedPartial) -> None:
        """Store a partial, *replacing* any earlier one for the same (group, window, source partition):
        a partial repeated after a stage 1 crash must not be counted twice."""
        ...

    def pop_final(self, final_through_ms: int) -> Sequence[MergedT_co]:
        """Merge and remove every window ending at or before ``final_through_ms``, oldest first."""
        ...

    def to_bytes(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ScoreOutput:
    """JSON-ready records for the ``alerts`` topic (each with a deterministic ``alert_id``, e.g.
    :meth:`detector.alerting.lifecycle.AlertEvent.to_json`) and the ``anomalies`` topic."""

    alerts: list[dict[str, object]] = field(default_factory=list)
    anomalies: list[dict[str, object]] = field(default_factory=list)


class Scorer(Protocol[MergedT_contra]):
    """Stage 2: scores one final window (every series in it, in one call) and keeps detector and alert
    lifecycle state between windows."""

    def score(self, window: MergedT_contra) -> ScoreOutput: ...

    def to_bytes(self) -> bytes: ...


class StreamComponents(Protocol):
    """Builds and restores the pieces above; one instance per worker, from the config file."""

    def new_folder(self, source_partition: int) -> PartitionFolder: ...

    def load_folder(self, data: bytes) -> PartitionFolder: ...

    def new_merger(self) -> WindowMerger[Any]: ...

    def load_merger(self, data: bytes) -> WindowMerger[Any]: ...

    def new_scorer(self) -> Scorer[Any]: ...

    def load_scorer(self, data: bytes) -> Scorer[Any]: ...
