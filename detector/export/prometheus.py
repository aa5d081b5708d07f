"""Prometheus exporter: collectors that read the detector's live state at scrape time.

The worker owns its state; this module only defines what it must be able to answer (three small
Protocols) and turns the answers into metric families when Prometheus scrapes. Nothing here keeps a
copy of the state, so a scrape always shows the latest closed window. The registry is injected:
tests build a fresh ``CollectorRegistry`` each, the worker builds one at its entry point.

The metric contract (names, labels, meaning) is documented in ``docs/observability.md``; the
Prometheus rules and Grafana dashboards in ``deploy/`` depend on it.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from detector import events
from detector.events import DIMENSIONS

DEFAULT_METRICS_PORT = 9464
# Each exported series is 7 samples and ~1 kB of exposition; 1000 series take ~0.3 s per scrape here,
# 2000 ~0.5 s, mostly prometheus-client's rendering (python -m benchmarks.exporter_scrape).
DEFAULT_MAX_EXPORTED_SERIES = 1000
SERIES_LABELS: tuple[str, ...] = ("metric", *DIMENSIONS)
_DIMENSION_SET = frozenset(DIMENSIONS)
# The decoder's reasons, plus "future": the worker rejects event times too far ahead of its clock.
INVALID_REASONS: tuple[str, ...] = tuple(dict.fromkeys((*events.INVALID_REASONS, "future")))
SEVERITIES: tuple[str, ...] = ("warning", "critical")

# Window final -> alert published: well under a second normally, tens of seconds when Kafka struggles.
ALERT_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# One scoring call covers every series of a window: microseconds for a few series, ~100 ms for 100k.
SCORING_DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

Severity = Literal["warning", "critical"]


@dataclass(frozen=True, slots=True)
class SeriesSnapshot:
    """The latest closed window of one series. ``slice`` names only the dimensions it is sliced by."""

    metric: str
    slice: Mapping[str, str]
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    anomaly_active: bool
    window_end: float  # epoch seconds, UTC

    def __post_init__(self) -> None:
        unknown = set(self.slice) - _DIMENSION_SET
        if unknown:
            raise ValueError(
                f"slice of {self.metric!r} has unknown dimensions {sorted(unknown)}; known: {DIMENSIONS}"
            )

    @property
    def is_total(self) -> bool:
        return not any(self.slice.values())

    def label_values(self) -> list[str]:
        return [self.metric, *(self.slice.get(dimension, "") for dimension in DIMENSIONS)]


@dataclass(frozen=True, slots=True)
class ActiveIncident:
    incident_id: str
    metric: str
    severity: Severity


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """Counters are totals since the worker started; Prometheus derives rates from them."""

    events_consumed: int = 0
    events_invalid: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    events_late: int = 0
    watermark: float | None = None  # epoch seconds; None until the first event arrived
    windows_closed: int = 0
    series_tracked: Mapping[str, int] = field(default_factory=dict)  # metric -> series
    series_dropped: Mapping[str, int] = field(default_factory=dict)  # metric -> series refused by the cap
    consumer_lag: Mapping[tuple[str, int], int] = field(
        default_factory=dict
    )  # (topic, partition) -> messages


class SeriesSnapshotSource(Protocol):
    def series_snapshot(self) -> Iterable[SeriesSnapshot]: ...


class IncidentSource(Protocol):
    def active_incidents(self) -> Iterable[ActiveIncident]: ...

    def alerts_fired(self) -> Mapping[tuple[str, str], int]:
        """Alerts fired since start, by (metric, severity)."""
        ...


class PipelineStatsSource(Protocol):
    def pipeline_stats(self) -> PipelineStats: ...


def _export_priority(row: SeriesSnapshot) -> tuple[bool, bool, float]:
    # Active anomalies first (alerting depends on them), then each metric's total (dashboards do),
    # then the highest scores. heapq.nsmallest is stable: equal keys keep the source's order.
    score = row.score if not math.isnan(row.score) else -math.inf
    return (not row.anomaly_active, not row.is_total, -score)


class SeriesCollector(Collector):
    """Per-series gauges for at most ``max_exported_series`` series; the rest are counted, not exported."""

    def __init__(self, source: SeriesSnapshotSource, max_exported_series: int = DEFAULT_MAX_EXPORTED_SERIES):
        if max_exported_series < 1:
            raise ValueError(f"max_exported_series must be >= 1, got {max_exported_series}")
        self.source = source
        self.max_exported_series = max_exported_series

    def _families(self) -> dict[str, GaugeMetricFamily]:
        def gauge(name: str, documentation: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, documentation, labels=SERIES_LABELS)

        return {
            "value": gauge(
                "livewatch_series_value", "Observed value of the series in its latest closed window."
            ),
            "expected": gauge("livewatch_series_expected", "Value the baseline expected for that window."),
            "lower": gauge("livewatch_series_lower", "Lower edge of the expected band."),
            "upper": gauge("livewatch_series_upper", "Upper edge of the expected band."),
            "score": gauge("livewatch_series_score", "Anomaly score of the latest window, 0 (normal) to 1."),
            "active": gauge(
                "livewatch_series_anomaly_active", "1 while the series has an open anomaly, else 0."
            ),
            "window_end": gauge(
                "livewatch_series_window_end_timestamp_seconds",
                "End of the latest closed window (epoch seconds).",
            ),
        }

    def describe(self) -> Iterator[Metric]:
        yield from self._families().values()
        yield GaugeMetricFamily("livewatch_series_not_exported", "", labels=("metric",))

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        rows = list(self.source.series_snapshot())
        exported = heapq.nsmallest(self.max_exported_series, rows, key=_export_priority)
        not_exported = dict.fromkeys((row.metric for row in rows), 0)
        for row in rows:
            not_exported[row.metric] += 1
        seen: set[tuple[str, ...]] = set()
        for row in exported:
            labels = row.label_values()
            # A label set twice in one scrape makes Prometheus reject the whole scrape; keep the first.
            if tuple(labels) in seen:
                continue
            seen.add(tuple(labels))
            not_exported[row.metric] -= 1
            families["value"].add_metric(labels, row.value)
            families["expected"].add_metric(labels, row.expected)
            families["lower"].add_metric(labels, row.lower)
            families["upper"].add_metric(labels, row.upper)
            families["score"].add_metric(labels, row.score)
            families["active"].add_metric(labels, 1.0 if row.anomaly_active else 0.0)
            families["window_end"].add_metric(labels, row.window_end)
        yield from families.values()
        skipped = GaugeMetricFamily(
            "livewatch_series_not_exported",
            "Series left out of this scrape by the max_exported_series cap (lowest priority first).",
            labels=("metric",),
        )
        for metric, count in sorted(not_exported.items()):
            skipped.add_metric([metric], count)
        yield skipped


class IncidentCollector(Collector):
    def __init__(self, source: IncidentSource):
        self.source = source

    def _families(self) -> tuple[GaugeMetricFamily, CounterMetricFamily]:
        active = GaugeMetricFamily(
            "livewatch_incident_active",
            "1 for every incident that is open now.",
            labels=("incident_id", "metric", "severity"),
        )
        fired = CounterMetricFamily(
            "livewatch_alerts_fired", "Alerts fired since the worker started.", labels=("metric", "severity")
        )
        return active, fired

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        active, fired = self._families()
        for incident in self.source.active_incidents():
            active.add_metric([incident.incident_id, incident.metric, incident.severity], 1.0)
        for (metric, severity), count in sorted(self.source.alerts_fired().items()):
            fired.add_metric([metric, severity], count)
        yield active
        yield fired


class PipelineCollector(Collector):
    """Pipeline health read from the worker's counters; the watermark lag uses the injected clock."""

    def __init__(self, source: PipelineStatsSource, version: str, clock: Callable[[], float] = time.time):
        self.source = source
        self.version = version
        self.clock = clock

    def describe(self) -> Iterator[Metric]:
        yield from self._families(PipelineStats())

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self.source.pipeline_stats())

    def _families(self, stats: PipelineStats) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "livewatch_events_consumed", "Events decoded from Kafka.", value=stats.events_consumed
        )
        invalid = CounterMetricFamily(
            "livewatch_events_invalid", "Events rejected, by reason.", labels=("reason",)
        )
        # Every known reason is always present so that rate() has a series even before the first error.
        for reason in sorted({*INVALID_REASONS, *stats.events_invalid}):
            invalid.add_metric([reason], stats.events_invalid.get(reason, 0))
        yield invalid
        yield CounterMetricFamily(
            "livewatch_events_late", "Events that arrived after their window closed.", value=stats.events_late
        )
        yield CounterMetricFamily(
            "livewatch_windows_closed", "Event-time windows closed (final).", value=stats.windows_closed
        )
        if stats.watermark is not None:
            yield GaugeMetricFamily(
                "livewatch_watermark_timestamp_seconds",
                "Event-time watermark (epoch seconds).",
                value=stats.watermark,
            )
            yield GaugeMetricFamily(
                "livewatch_watermark_lag_seconds",
                "Wall-clock time minus the watermark.",
                value=self.clock() - stats.watermark,
            )
        tracked = GaugeMetricFamily(
            "livewatch_series_tracked", "Series with state, by metric.", labels=("metric",)
        )
        for metric, count in sorted(stats.series_tracked.items()):
            tracked.add_metric([metric], count)
        yield tracked
        dropped = CounterMetricFamily(
            "livewatch_series_dropped", "New series refused by the series cap, by metric.", labels=("metric",)
        )
        for metric, count in sorted(stats.series_dropped.items()):
            dropped.add_metric([metric], count)
        yield dropped
        lag = GaugeMetricFamily(
            "livewatch_consumer_lag_messages",
            "Messages behind the partition's end.",
            labels=("topic", "partition"),
        )
        for (topic, partition), messages in sorted(stats.consumer_lag.items()):
            lag.add_metric([topic, str(partition)], messages)
        yield lag
        build = GaugeMetricFamily(
            "livewatch_build_info", "Always 1; the version is in the label.", labels=("version",)
        )
        build.add_metric([self.version], 1.0)
        yield build


class LivewatchExporter:
    """Everything one worker exports, registered on the given registry.

    The histograms are ordinary prometheus-client objects: the worker calls
    ``exporter.alert_latency.observe(seconds)`` and ``exporter.scoring_duration.observe(seconds)``.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        series: SeriesSnapshotSource,
        incidents: IncidentSource,
        pipeline: PipelineStatsSource,
        version: str,
        max_exported_series: int = DEFAULT_MAX_EXPORTED_SERIES,
        clock: Callable[[], float] = time.time,
    ):
        self.registry = registry
        registry.register(SeriesCollector(series, max_exported_series))
        registry.register(IncidentCollector(incidents))
        registry.register(PipelineCollector(pipeline, version, clock))
        self.alert_latency = Histogram(
            "livewatch_alert_latency_seconds",
            "Time from a window becoming final to its alert being published.",
            buckets=ALERT_LATENCY_BUCKETS,
            registry=registry,
        )
        self.scoring_duration = Histogram(
            "livewatch_scoring_duration_seconds",
            "Time to score every series of one window.",
            buckets=SCORING_DURATION_BUCKETS,
            registry=registry,
        )


def serve_metrics(
    registry: CollectorRegistry, port: int = DEFAULT_METRICS_PORT, host: str = "0.0.0.0"
) -> WSGIServer:
    """Serve ``/metrics`` from a daemon thread; ``port=0`` picks a free port (see ``server.server_port``).

    Call ``server.shutdown()`` to stop it.
    """
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
