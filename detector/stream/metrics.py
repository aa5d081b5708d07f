"""Counters of the stream worker, in an injected Prometheus registry (a fresh one per test)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            "livewatch_stream_messages", "Kafka messages applied to state", ["stage"], registry=registry
        )
        self.events = Counter("livewatch_stream_events", "Events folded into windows", registry=registry)
        self.dead_letters = Counter(
            "livewatch_stream_dead_letters",
            "Records sent to the dead-letter topic",
            ["reason"],
            registry=registry,
        )
        self.internal_errors = Counter(
            "livewatch_stream_internal_errors",
            "Exceptions while handling a message or window",
            ["stage"],
            registry=registry,
        )
        self.skipped = Counter(
            "livewatch_stream_skipped_messages",
            "Messages not applied: repeats already in state, or fetched ahead of a seek back",
            ["stage", "verdict"],
            registry=registry,
        )
        self.seeks = Counter(
            "livewatch_stream_seeks", "Seeks back to a snapshot's offset", ["stage"], registry=registry
        )
        self.snapshots = Counter(
            "livewatch_stream_snapshots", "State snapshots written", ["stage"], registry=registry
        )
        self.late_partials = Counter(
            "livewatch_stream_late_partials",
            "Partials for windows already scored (dropped)",
            registry=registry,
        )
        self.windows_scored = Counter(
            "livewatch_stream_windows_scored", "Final windows scored", registry=registry
        )
        self.alerts = Counter("livewatch_stream_alerts", "Alert records published", registry=registry)
        self.watermark = Gauge(
            "livewatch_stream_watermark_ms",
            "Watermark of each source partition owned by this worker",
            ["partition"],
            registry=registry,
        )
        self.final_through = Gauge(
            "livewatch_stream_final_through_ms",
            "Windows ending at or before this are final",
            ["partition"],
            registry=registry,
        )
