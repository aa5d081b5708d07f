"""The Faust app of the stream worker, built from :class:`StreamSettings`.

``app`` (built from the environment on first access) is what ``faust -A detector.stream.app worker``
would use; ``livewatch worker`` builds its own with :func:`create_stream_app` from its options.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import faust
from prometheus_client import CollectorRegistry

from detector.stream.agents import StreamStages, register_agents
from detector.stream.contracts import StreamComponents
from detector.stream.metrics import StreamMetrics
from detector.stream.settings import StreamSettings
from detector.stream.topics import StreamTopics, declare_topics
from detector.stream.transport import FetchTunedApp


class ComponentsError(RuntimeError):
    pass


def load_components(spec: str, config: str = "") -> StreamComponents:
    """Import ``module:factory`` and call ``factory(config_path_or_None)``."""
    if not spec:
        raise ComponentsError(
            "no aggregation/scoring components configured: pass --components module:factory "
            "or set LIVEWATCH_STREAM_COMPONENTS"
        )
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ComponentsError(f"components must look like 'module:factory', got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ComponentsError(f"cannot load components {spec!r}: {exc}") from exc
    components: StreamComponents = factory(Path(config) if config else None)
    return components


@dataclass(slots=True)
class StreamApp:
    app: faust.App
    topics: StreamTopics
    stages: StreamStages
    metrics: StreamMetrics


def create_stream_app(
    settings: StreamSettings,
    components: StreamComponents | None = None,
    registry: CollectorRegistry | None = None,
) -> StreamApp:
    app = FetchTunedApp(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        autodiscover=False,
        datadir=str(settings.faust_datadir),
        topic_partitions=settings.source_partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        table_standby_replicas=settings.standby_replicas,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=max(2 * settings.session_timeout_s, 20.0),
        producer_max_batch_size=settings.producer_max_batch_size,
        producer_linger_ms=settings.producer_linger_ms,
        producer_max_request_size=settings.producer_max_request_size,
        consumer_max_fetch_size=settings.consumer_max_fetch_size,
        stream_recovery_delay=settings.recovery_delay_s,
        # Unacked messages are the normal state between snapshots; a rebalance must not wait for them.
        stream_wait_empty=False,
        web_port=settings.web_port,
        web_host=settings.web_host,
        web_bind=settings.web_host,
    )
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms
    topics = declare_topics(app, settings)
    metrics = StreamMetrics(registry if registry is not None else CollectorRegistry())
    loaded: list[StreamComponents] = [components] if components is not None else []

    def resolve() -> StreamComponents:
        if not loaded:
            loaded.append(load_components(settings.components, settings.config))
        return loaded[0]

    stages = register_agents(app, settings, topics, resolve, metrics)
    return StreamApp(app, topics, stages, metrics)


def create_app(settings: StreamSettings) -> faust.App:
    return create_stream_app(settings).app


_from_env: list[faust.App] = []


def __getattr__(name: str) -> faust.App:
    # Built on first access, not at import: a bad LIVEWATCH_STREAM_* variable must not break every
    # `livewatch` sub-command that merely imports this module.
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _from_env:
        _from_env.append(create_app(StreamSettings.from_env()))
    return _from_env[0]
