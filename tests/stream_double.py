"""A small but real implementation of the stream seams, for testing the stream mechanics only.

It counts events per (event-time window, region) and "alerts" while a region's window count is above
a threshold. It is *not* the product's aggregation or scoring (those live in ``detector/aggregation``
and ``detector/scoring``); it exists so the stream tests and benchmark check Kafka plumbing, recovery
and exactly-once counting against state that is easy to recompute by hand.

Parameters come from a JSON config file (``--config``), so worker subprocesses build the same double.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from detector.events import EventFrame
from detector.stream.contracts import ClosedPartial, FoldReport, ScoreOutput

INTERNAL_ERROR_PROBE = "internal-error-probe"


class DoubleConfig(msgspec.Struct, frozen=True):
    window_ms: int = 60_000
    lateness_ms: int = 0
    max_future_ms: int = 3_600_000
    alert_threshold: int = 1_000_000


class _FolderState(msgspec.Struct):
    partition: int
    counts: list[tuple[int, str, int]] = msgspec.field(default_factory=list)
    max_ts: int | None = None
    closable_through: int | None = None
    taken_through: int | None = None


class RegionCountFolder:
    def __init__(self, config: DoubleConfig, state: _FolderState, wall_clock_ms: Callable[[], int]) -> None:
        self.config = config
        self.partition = state.partition
        self.counts: dict[tuple[int, str], int] = {(s, r): n for s, r, n in state.counts}
        self.max_ts = state.max_ts
        self.closable_through = state.closable_through
        self.taken_through = state.taken_through
        self._wall_clock_ms = wall_clock_ms

    @property
    def watermark_ms(self) -> int | None:
        return self.taken_through

    def add(self, frame: EventFrame) -> FoldReport:
        if INTERNAL_ERROR_PROBE in frame.vocab["region"]:  # lets tests check the "internal" dead letter
            raise RuntimeError(f"region {INTERNAL_ERROR_PROBE!r} makes the test double fail")
        window = self.config.window_ms
        starts = frame.ts - frame.ts % window
        future = frame.ts > self._wall_clock_ms() + self.config.max_future_ms
        late = (
            ~future & (starts + window <= self.closable_through)
            if self.closable_through is not None
            else np.zeros(len(frame), dtype=np.bool_)
        )
        accepted = ~future & ~late
        vocab = frame.vocab["region"]
        # Window starts are few per frame: one bincount of region codes per window start.
        for start in np.unique(starts[accepted]).tolist():
            codes = frame.dims["region"][accepted & (starts == start)]
            for code, n in enumerate(np.bincount(codes, minlength=len(vocab)).tolist()):
                if n:
                    key = (int(start), vocab[code])
                    self.counts[key] = self.counts.get(key, 0) + n
        if accepted.any():
            self.max_ts = max(self.max_ts or 0, int(frame.ts[accepted].max()))
            through = (self.max_ts - self.config.lateness_ms) // window * window
            if self.closable_through is None or through > self.closable_through:
                self.closable_through = through
        return FoldReport(int(accepted.sum()), np.flatnonzero(late), np.flatnonzero(future))

    def take_closed(self) -> list[ClosedPartial]:
        if self.closable_through is None:
            return []
        window = self.config.window_ms
        done = sorted(k for k in self.counts if k[0] + window <= self.closable_through)
        partials = [
            ClosedPartial(
                region, start, start + window, msgspec.json.encode(self.counts.pop((start, region)))
            )
            for start, region in done
        ]
        self.taken_through = self.closable_through
        return partials

    def to_bytes(self) -> bytes:
        return msgspec.json.encode(
            _FolderState(
                self.partition,
                [(s, r, n) for (s, r), n in sorted(self.counts.items())],
                self.max_ts,
                self.closable_through,
                self.taken_through,
            )
        )


@dataclass(frozen=True, slots=True)
class RegionWindow:
    region: str
    window_start_ms: int
    window_end_ms: int
    count: int


class RegionCountMerger:
    def __init__(self, parts: dict[tuple[str, int], dict[int, tuple[int, int]]] | None = None) -> None:
        # (region, window start) -> source partition -> (window end, count)
        self.parts = parts or {}

    def put(self, source_partition: int, partial: ClosedPartial) -> None:
        count = msgspec.json.decode(partial.payload, type=int)
        self.parts.setdefault((partial.group, partial.window_start_ms), {})[source_partition] = (
            partial.window_end_ms,
            count,
        )

    def pop_final(self, final_through_ms: int) -> list[RegionWindow]:
        final = sorted(
            (start, region)
            for (region, start), by_source in self.parts.items()
            if max(end for end, _ in by_source.values()) <= final_through_ms
        )
        windows = []
        for start, region in final:
            by_source = self.parts.pop((region, start))
            end = max(e for e, _ in by_source.values())
            windows.append(RegionWindow(region, start, end, sum(n for _, n in by_source.values())))
        return windows

    def to_bytes(self) -> bytes:
        return msgspec.json.encode(
            [
                [region, start, [[p, end, n] for p, (end, n) in sorted(by_source.items())]]
                for (region, start), by_source in sorted(self.parts.items())
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RegionCountMerger:
        rows = msgspec.json.decode(data, type=list[tuple[str, int, list[tuple[int, int, int]]]])
        return cls({(region, start): {p: (end, n) for p, end, n in parts} for region, start, parts in rows})


class ThresholdScorer:
    """Fires when a region's window count exceeds the threshold, resolves when it drops back."""

    def __init__(self, threshold: int, firing: set[str] | None = None) -> None:
        self.threshold = threshold
        self.firing = firing or set()

    def score(self, window: RegionWindow) -> ScoreOutput:
        anomaly: dict[str, object] = {
            "anomaly_id": f"{window.region}@{window.window_start_ms}",
            "metric": "events",
            "region": window.region,
            "window_start_ms": window.window_start_ms,
            "window_end_ms": window.window_end_ms,
            "count": window.count,
        }
        above = window.count > self.threshold
        status = None
        if above and window.region not in self.firing:
            self.firing.add(window.region)
            status = "firing"
        elif not above and window.region in self.firing:
            self.firing.discard(window.region)
            status = "resolved"
        if status is None:
            return ScoreOutput(anomalies=[anomaly])
        alert_id = hashlib.sha256(f"{window.region}|{status}|{window.window_start_ms}".encode()).hexdigest()[
            :20
        ]
        alert: dict[str, object] = {"alert_id": alert_id, "status": status, **anomaly}
        return ScoreOutput(alerts=[alert], anomalies=[anomaly])

    def to_bytes(self) -> bytes:
        return msgspec.json.encode(sorted(self.firing))


class RegionCountComponents:
    def __init__(self, config: DoubleConfig, wall_clock_ms: Callable[[], int] | None = None) -> None:
        self.config = config
        self.wall_clock_ms = wall_clock_ms or (lambda: int(time.time() * 1000))

    def new_folder(self, source_partition: int) -> RegionCountFolder:
        return RegionCountFolder(self.config, _FolderState(source_partition), self.wall_clock_ms)

    def load_folder(self, data: bytes) -> RegionCountFolder:
        return RegionCountFolder(
            self.config, msgspec.json.decode(data, type=_FolderState), self.wall_clock_ms
        )

    def new_merger(self) -> RegionCountMerger:
        return RegionCountMerger()

    def load_merger(self, data: bytes) -> RegionCountMerger:
        return RegionCountMerger.from_bytes(data)

    def new_scorer(self) -> ThresholdScorer:
        return ThresholdScorer(self.config.alert_threshold)

    def load_scorer(self, data: bytes) -> ThresholdScorer:
        return ThresholdScorer(self.config.alert_threshold, set(msgspec.json.decode(data, type=list[str])))


def components(config_path: Path | None) -> RegionCountComponents:
    config = (
        msgspec.json.decode(config_path.read_bytes(), type=DoubleConfig) if config_path else DoubleConfig()
    )
    return RegionCountComponents(config)
