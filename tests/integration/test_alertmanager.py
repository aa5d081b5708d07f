"""Our Alertmanager config in a real Alertmanager: routing, grouping by incident, inhibition.

The test copy of deploy/alertmanager/alertmanager.yml differs only in the webhook host (a server run
by the test) and shorter group timings; routes, grouping and inhibition are the committed ones.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detector.export.alertmanager import AlertmanagerClient, PostableAlert
from tests.observability_servers import (
    ALERTMANAGER_CONFIG as CONFIG,
)
from tests.observability_servers import (
    alertmanager_config_for_test,
    alertmanager_server,
    require_binary,
    run_tool,
    wait_for,
)
from tests.webhook_sink import WebhookSink, webhook_sink

pytestmark = pytest.mark.integration


def test_config_is_valid():
    output = run_tool(require_binary("amtool"), "check-config", str(CONFIG))
    assert "SUCCESS" in output


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "LivewatchSeriesAnomaly", "severity": "critical", "kind": "anomaly"}, "pager"),
        ({"alertname": "LivewatchSeriesAnomaly", "severity": "warning", "kind": "anomaly"}, "chat"),
        (
            {"alertname": "LivewatchIncident", "severity": "critical", "incident_id": "i", "kind": "anomaly"},
            "pager",
        ),
        ({"alertname": "LivewatchWorkerDown", "severity": "critical", "kind": "pipeline"}, "pager"),
        ({"alertname": "LivewatchSeriesDropped", "severity": "warning", "kind": "pipeline"}, "chat"),
        ({"alertname": "LivewatchWatchdog", "severity": "none", "kind": "watchdog"}, "watchdog"),
        ({"alertname": "SomethingElse"}, "chat"),
    ],
)
def test_routing_by_severity(labels: dict[str, str], receiver: str):
    argv = [f"{k}={v}" for k, v in labels.items()]
    output = run_tool(require_binary("amtool"), "config", "routes", "test", f"--config.file={CONFIG}", *argv)
    assert output.split()[0] == receiver


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, WebhookSink]]:
    workdir = tmp_path_factory.mktemp("alertmanager")
    with webhook_sink() as sink, alertmanager_server(workdir, alertmanager_config_for_test(sink.url)) as url:
        yield url, sink


def post_alerts(url: str, alerts: list[dict[str, str]], annotations: dict[str, str] | None = None) -> None:
    now = datetime.now(UTC)
    body = [
        {
            "labels": labels,
            "annotations": annotations or {"summary": "test"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=5)).isoformat(),
        }
        for labels in alerts
    ]
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def alert_status(url: str, **labels: str) -> list[dict[str, Any]]:
    filters = "&".join(f"filter={k}%3D%22{v}%22" for k, v in labels.items())
    with urllib.request.urlopen(f"{url}/api/v2/alerts?{filters}", timeout=5) as response:
        return list(json.load(response))


def anomaly(job: str, metric: str, severity: str, **slice_: str) -> dict[str, str]:
    return {
        "alertname": "LivewatchSeriesAnomaly",
        "kind": "anomaly",
        "job": job,
        "metric": metric,
        "severity": severity,
        **slice_,
    }


def test_incident_alerts_are_grouped_by_incident(alertmanager: tuple[str, WebhookSink]):
    url, sink = alertmanager
    incident = {
        "alertname": "LivewatchIncident",
        "kind": "anomaly",
        "job": "grouping",
        "severity": "critical",
    }
    post_alerts(
        url,
        [
            {**incident, "incident_id": "inc-1", "metric": "viewers"},
            {**incident, "incident_id": "inc-1", "metric": "gifts_coins"},
            {**incident, "incident_id": "inc-2", "metric": "viewers"},
        ],
    )

    def incident_groups() -> dict[str, list[dict[str, Any]]] | None:
        groups = {
            n["groupLabels"]["incident_id"]: n
            for n in sink.received("/pager")
            if n["commonLabels"].get("job") == "grouping"
        }
        return groups if len(groups) == 2 and len(groups["inc-1"]["alerts"]) == 2 else None

    groups = wait_for("two incident notifications on /pager", incident_groups, timeout=15)
    assert groups["inc-1"]["groupLabels"] == {"job": "grouping", "incident_id": "inc-1"}
    assert {a["labels"]["metric"] for a in groups["inc-1"]["alerts"]} == {"viewers", "gifts_coins"}
    assert [a["labels"]["metric"] for a in groups["inc-2"]["alerts"]] == ["viewers"]
    assert groups["inc-1"]["receiver"] == "pager" and groups["inc-1"]["status"] == "firing"


def test_series_alerts_are_grouped_by_metric_and_routed_by_severity(alertmanager: tuple[str, WebhookSink]):
    url, sink = alertmanager
    post_alerts(
        url,
        [
            anomaly("series", "viewers", "critical", region="eu", slice="region=eu"),
            anomaly("series", "viewers", "critical", region="us", slice="region=us"),
            anomaly("series", "comments", "warning", platform="ios", slice="platform=ios"),
        ],
    )

    def delivered() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        pager = [n for n in sink.received("/pager") if n["commonLabels"].get("job") == "series"]
        chat = [n for n in sink.received("/chat") if n["commonLabels"].get("job") == "series"]
        return (pager, chat) if pager and chat and len(pager[-1]["alerts"]) == 2 else None

    pager, chat = wait_for("series notifications on /pager and /chat", delivered, timeout=15)
    assert pager[-1]["groupLabels"] == {"job": "series", "metric": "viewers"}
    assert {a["labels"]["slice"] for a in pager[-1]["alerts"]} == {"region=eu", "region=us"}
    assert chat[-1]["groupLabels"] == {"job": "series", "metric": "comments"}


def test_worker_down_inhibits_anomalies_of_its_job_and_critical_inhibits_warning(
    alertmanager: tuple[str, WebhookSink],
):
    url, sink = alertmanager
    post_alerts(
        url,
        [
            {
                "alertname": "LivewatchWorkerDown",
                "kind": "pipeline",
                "severity": "critical",
                "job": "down",
                "instance": "w1:9464",
            },
            anomaly("down", "viewers", "critical", region="eu"),
            {
                "alertname": "LivewatchIncident",
                "kind": "anomaly",
                "job": "down",
                "severity": "warning",
                "incident_id": "inc-9",
                "metric": "viewers",
            },
            anomaly("healthy", "viewers", "critical", region="eu"),
            anomaly("healthy", "viewers", "warning", region="eu"),
            anomaly("healthy", "viewers", "warning", region="us"),
        ],
    )

    def statuses() -> dict[tuple[str, str, str, str], bool] | None:
        found = {
            (
                a["labels"]["job"],
                a["labels"]["alertname"],
                a["labels"]["severity"],
                a["labels"].get("region", ""),
            ): bool(a["status"]["inhibitedBy"])
            for job in ("down", "healthy")
            for a in alert_status(url, job=job)
        }
        return found if len(found) == 6 and any(found.values()) else None

    inhibited = wait_for("inhibition to be computed", statuses, timeout=10)
    assert inhibited == {
        ("down", "LivewatchWorkerDown", "critical", ""): False,
        ("down", "LivewatchSeriesAnomaly", "critical", "eu"): True,
        ("down", "LivewatchIncident", "warning", ""): True,
        ("healthy", "LivewatchSeriesAnomaly", "critical", "eu"): False,
        ("healthy", "LivewatchSeriesAnomaly", "warning", "eu"): True,  # the critical one replaces it
        ("healthy", "LivewatchSeriesAnomaly", "warning", "us"): False,
    }

    def delivered() -> bool:
        # The healthy warnings (eu inhibited, us not) share one group, hence one notification on /chat.
        chat_jobs = {n["commonLabels"].get("job") for n in sink.received("/chat")}
        pager_jobs = {n["commonLabels"].get("job") for n in sink.received("/pager")}
        return "healthy" in chat_jobs and {"healthy", "down"} <= pager_jobs

    wait_for("notifications for jobs down and healthy", delivered, timeout=15)
    down = [a for n in sink.received() for a in n["alerts"] if a["labels"]["job"] == "down"]
    assert {a["labels"]["alertname"] for a in down} == {"LivewatchWorkerDown"}
    healthy = [a["labels"] for n in sink.received() for a in n["alerts"] if a["labels"]["job"] == "healthy"]
    assert {(a["severity"], a["region"]) for a in healthy} == {("critical", "eu"), ("warning", "us")}


def test_worker_can_post_straight_to_alertmanager_and_resolve(alertmanager: tuple[str, WebhookSink]):
    url, sink = alertmanager
    labels = {
        "alertname": "LivewatchIncident",
        "kind": "anomaly",
        "job": "direct",
        "severity": "critical",
        "incident_id": "inc-direct",
        "metric": "viewers",
    }
    started = datetime.now(UTC)
    client = AlertmanagerClient([url])
    asyncio.run(client.post([PostableAlert(labels, started, started + timedelta(minutes=5))]))

    def notifications(status: str) -> list[dict[str, Any]]:
        return [
            n
            for n in sink.received("/pager")
            if n["groupLabels"].get("incident_id") == "inc-direct" and n["status"] == status
        ]

    (firing, *_) = wait_for("the directly posted alert at the webhook", lambda: notifications("firing"), 15)
    assert firing["alerts"][0]["labels"] == labels
    asyncio.run(client.post([PostableAlert(labels, started, datetime.now(UTC))]))
    (resolved, *_) = wait_for("the resolved notification", lambda: notifications("resolved"), 15)
    assert resolved["alerts"][0]["status"] == "resolved"
