"""The topics of the stream app, all raw bytes: the app decodes and validates payloads itself, because
a typed Faust Record crashes and restarts the agent on every malformed message (BROKER.md)."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from detector.stream.settings import StreamSettings

LIVE_EVENTS = "live-events"
DEAD_LETTERS = "live-events-dlq"
METRIC_WINDOWS = "metric-windows"
ANOMALIES = "anomalies"
ALERTS = "alerts"


@dataclass(frozen=True, slots=True)
class StreamTopics:
    live_events: faust.TopicT
    dead_letters: faust.TopicT
    metric_windows: faust.TopicT
    anomalies: faust.TopicT
    alerts: faust.TopicT


def declare_topics(app: faust.App, settings: StreamSettings) -> StreamTopics:
    def raw(name: str, partitions: int) -> faust.TopicT:
        return app.topic(
            settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
            replicas=settings.replication_factor,
        )

    return StreamTopics(
        live_events=raw(LIVE_EVENTS, settings.source_partitions),
        dead_letters=raw(DEAD_LETTERS, settings.source_partitions),
        metric_windows=raw(METRIC_WINDOWS, settings.window_partitions),
        anomalies=raw(ANOMALIES, settings.window_partitions),
        alerts=raw(ALERTS, settings.window_partitions),
    )
