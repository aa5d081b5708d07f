"""Settings of the stream worker: each has a default and an environment variable, the CLI overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from detector.broker import BOOTSTRAP_ENV

_ENV_PREFIX = "LIVEWATCH_STREAM_"


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """``bootstrap`` comes from ``LIVEWATCH_BOOTSTRAP``; every other field ``x`` from
    ``LIVEWATCH_STREAM_X`` (e.g. ``LIVEWATCH_STREAM_SOURCE_PARTITIONS=16``)."""

    bootstrap: str = "127.0.0.1:9092"
    app_id: str = "livewatch"
    topic_prefix: str = ""  # tests and side-by-side deployments isolate their topics with it
    components: str = ""  # "module:factory" returning StreamComponents (see docs/stream.md)
    config: str = ""  # config file handed to the components factory
    source_partitions: int = 8  # live-events
    window_partitions: int = 4  # metric-windows (stage 2 parallelism)
    replication_factor: int = 1
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: no Prometheus endpoint
    datadir: str = ""  # Faust's data directory; default: a per-app directory under the system temp dir
    # Consumer group: a dead worker's partitions move after the session timeout (Tansu: about half of it).
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 1.0
    # Tansu answers ListOffsets(latest) with the start of the last record batch + 1, so Faust may stop
    # changelog recovery early (BROKER.md). BROKER.md's fix, one record per batch (1 here), costs a broker
    # round trip per output record (measured: stage 1 fell to ~130 messages/s). It is not needed here:
    # a stale snapshot only means a longer replay from its own offset (state.py), so keep Kafka's default.
    producer_max_batch_size: int = 16384
    producer_linger_ms: int = 0
    producer_max_request_size: int = 16 * 1024 * 1024  # snapshots of many open windows are large
    recovery_delay_s: float = 0.5  # Faust waits this long after a rebalance before recovering tables
    # Faust hard-codes 1500 ms; on Tansu every hop then costs a full wait (see transport.py).
    fetch_max_wait_ms: int = 50
    consumer_max_fetch_size: int = 8 * 1024 * 1024  # per partition and fetch; batched messages are large
    take_max: int = 1000  # messages per batch handed to stage 1 / stage 2
    take_within_s: float = 0.05
    snapshot_every_batches: int = 50  # also snapshotted whenever a window closes
    snapshot_interval_s: float = 5.0
    idle_timeout_s: float = 10.0  # a source partition without messages this long stops holding windows
    watermark_heartbeat_s: float = 1.0
    standby_replicas: int = 1

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def faust_datadir(self) -> Path:
        if self.datadir:
            return Path(self.datadir)
        import tempfile

        return Path(tempfile.gettempdir()) / f"livewatch-faust-{self.app_id}-{self.web_port}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, /, **overrides: Any) -> StreamSettings:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = BOOTSTRAP_ENV if f.name == "bootstrap" else _ENV_PREFIX + f.name.upper()
            if name in env:
                values[f.name] = _parse(f.name, env[name], type(getattr(cls(), f.name)), name)
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def to_env(self) -> dict[str, str]:
        """The environment that makes :meth:`from_env` return these settings (for worker subprocesses)."""
        env = {}
        for f in fields(self):
            name = BOOTSTRAP_ENV if f.name == "bootstrap" else _ENV_PREFIX + f.name.upper()
            env[name] = str(getattr(self, f.name))
        return env


def _parse(field_name: str, text: str, kind: type, env_name: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{env_name}: {field_name} must be {kind.__name__}, got {text!r}") from None
