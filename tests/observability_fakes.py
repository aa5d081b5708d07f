"""Small fixed detector state that follows the metric contract, shared by the exporter and server tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from detector.export.prometheus import ActiveIncident, PipelineStats, SeriesSnapshot

WINDOW_END = 1_790_000_040.0


def series(metric: str, score: float, active: bool = False, **slice_: str) -> SeriesSnapshot:
    value = 100.0 * (1.0 + score)
    return SeriesSnapshot(
        metric=metric,
        slice=slice_,
        value=value,
        expected=100.0,
        lower=80.0,
        upper=120.0,
        score=score,
        anomaly_active=active,
        window_end=WINDOW_END,
    )


DEMO_SERIES: tuple[SeriesSnapshot, ...] = (
    series("viewers", 0.10),
    series("viewers", 0.97, active=True, region="eu"),
    series("viewers", 0.20, region="us"),
    series("viewers", 0.85, platform="ios"),
    series("viewers", 0.15, app_version="5.2.0"),
    series("gifts_coins", 0.05),
    series("gifts_coins", 0.30, region="eu", creator_tier="top"),
    series("stall_ratio", 0.50),
    series("stall_ratio", 0.90, active=True, network="cellular"),
)


@dataclass
class FakeDetectorState:
    """Implements SeriesSnapshotSource, IncidentSource and PipelineStatsSource with fixed data.

    Counters and the watermark grow by ``step`` on every scrape, as in a live worker.
    """

    rows: tuple[SeriesSnapshot, ...] = DEMO_SERIES
    incidents: tuple[ActiveIncident, ...] = (
        ActiveIncident("inc-0001", "viewers", "critical"),
        ActiveIncident("inc-0002", "stall_ratio", "warning"),
    )
    watermark: float | None = WINDOW_END
    step: int = 0
    scrapes: int = 0
    fired: dict[tuple[str, str], int] = field(
        default_factory=lambda: {("viewers", "critical"): 1, ("stall_ratio", "warning"): 2}
    )

    def series_snapshot(self) -> Iterable[SeriesSnapshot]:
        return self.rows

    def active_incidents(self) -> Iterable[ActiveIncident]:
        return self.incidents

    def alerts_fired(self) -> Mapping[tuple[str, str], int]:
        return {key: count + self.scrapes * self.step for key, count in self.fired.items()}

    def pipeline_stats(self) -> PipelineStats:
        self.scrapes += 1
        grown = self.scrapes * self.step
        return PipelineStats(
            events_consumed=1000 + 100 * grown,
            events_invalid={"schema": 3 + grown, "not_json": 1 + grown},
            events_late=7 + grown,
            watermark=None if self.watermark is None else self.watermark + grown,
            windows_closed=12 + grown,
            series_tracked={"viewers": 4, "gifts_coins": 2, "stall_ratio": 2},
            series_dropped={"viewers": 5 + grown, "gifts_coins": 0, "stall_ratio": 0},
            consumer_lag={("live-events", 0): 10 + grown, ("live-events", 1): 3},
        )
