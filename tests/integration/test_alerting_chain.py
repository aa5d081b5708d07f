"""The whole alerting path with real servers: our exporter -> Prometheus with our rules -> Alertmanager
with our routing -> a webhook served by the test; then the exporter dies and the pipeline alert fires.

Only timings differ from the committed configs: `for:` becomes 1 s and Alertmanager's group timings
1 s, so the test takes seconds instead of minutes. (The full issue-5 end-to-end test with the real
producer and worker builds on this once the worker exists.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from detector.export.prometheus import LivewatchExporter, serve_metrics
from tests.observability_fakes import FakeDetectorState
from tests.observability_servers import (
    PROMETHEUS_DIR,
    alertmanager_config_for_test,
    alertmanager_server,
    prometheus_config_for_test,
    prometheus_server,
    wait_for,
)
from tests.webhook_sink import WebhookSink, webhook_sink

pytestmark = pytest.mark.integration


def rules_with_short_for(workdir: Path) -> list[str]:
    paths = []
    for source in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        rules = yaml.safe_load(source.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "1s"
        target = workdir / source.name
        target.write_text(yaml.safe_dump(rules))
        paths.append(str(target))
    return paths


def alerts_at(sink: WebhookSink, path: str, alertname: str, status: str = "firing") -> list[dict[str, Any]]:
    return [
        alert
        for n in sink.received(path)
        for alert in n["alerts"]
        if alert["labels"]["alertname"] == alertname and alert["status"] == status
    ]


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[WebhookSink, Any, str]]:
    registry = CollectorRegistry()
    state = FakeDetectorState(step=1, watermark=time.time() - 30)  # a watermark that moves, as it should
    LivewatchExporter(registry, series=state, incidents=state, pipeline=state, version="0.1.0-test")
    exporter = serve_metrics(registry, port=0, host="127.0.0.1")
    target = f"127.0.0.1:{exporter.server_port}"
    try:
        with (
            webhook_sink() as sink,
            alertmanager_server(tmp_path, alertmanager_config_for_test(sink.url)) as am,
        ):
            config = prometheus_config_for_test(
                target, rules_with_short_for(tmp_path), am.removeprefix("http://")
            )
            with prometheus_server(tmp_path, config):
                yield sink, exporter, target
    finally:
        exporter.shutdown()
        exporter.server_close()


def test_alerts_reach_the_webhook_routed_grouped_and_inhibited_then_worker_down(chain):
    sink, exporter, target = chain

    incident = wait_for(
        "the critical incident on /pager", lambda: alerts_at(sink, "/pager", "LivewatchIncident"), 20
    )
    assert incident[0]["labels"] == {
        "alertname": "LivewatchIncident",
        "job": "livewatch",
        "kind": "anomaly",
        "incident_id": "inc-0001",
        "metric": "viewers",
        "severity": "critical",
        "monitor": "livewatch",
    }
    assert incident[0]["annotations"]["summary"] == "Incident inc-0001 open on viewers (critical)"
    warning = wait_for(
        "the warning incident on /chat", lambda: alerts_at(sink, "/chat", "LivewatchIncident"), 10
    )
    assert {a["labels"]["incident_id"] for a in warning} == {"inc-0002"}

    critical = wait_for(
        "series anomalies on /pager", lambda: alerts_at(sink, "/pager", "LivewatchSeriesAnomaly"), 10
    )
    eu = next(a for a in critical if a["labels"]["slice"] == "region=eu")
    assert eu["annotations"]["description"] == (
        "Observed 197, expected 100 (band 80 to 120) in the latest 60 s window; anomaly score 0.97."
    )
    assert "var-metric=viewers&var-region=eu&" in eu["annotations"]["dashboard"]
    warnings = wait_for(
        "series warnings on /chat", lambda: alerts_at(sink, "/chat", "LivewatchSeriesAnomaly"), 10
    )
    # viewers region=eu is also above 0.8, but its critical alert inhibits the warning.
    assert {(a["labels"]["metric"], a["labels"]["slice"]) for a in warnings} == {
        ("viewers", "platform=ios"),
        ("stall_ratio", "network=cellular"),
    }
    wait_for("the watchdog on /watchdog", lambda: alerts_at(sink, "/watchdog", "LivewatchWatchdog"), 10)

    exporter.shutdown()  # the worker dies
    exporter.server_close()
    down = wait_for(
        "LivewatchWorkerDown on /pager", lambda: alerts_at(sink, "/pager", "LivewatchWorkerDown"), 20
    )
    assert down[0]["labels"]["instance"] == target and down[0]["labels"]["severity"] == "critical"
