"""A real Prometheus scrapes our exporter (fake detector state that follows the metric contract).

It runs our rules, and every PromQL expression of the generated Grafana dashboards, with template
variables set to values that exist, must return data. The Prometheus config is the committed one with
the scrape target, intervals and rule paths changed for the test.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from detector.events import DIMENSIONS
from detector.export import grafana
from detector.export.prometheus import LivewatchExporter, serve_metrics
from tests.observability_fakes import FakeDetectorState
from tests.observability_servers import (
    PROMETHEUS_DIR,
    prometheus_api,
    prometheus_config_for_test,
    prometheus_server,
    wait_for,
)

pytestmark = pytest.mark.integration

GRAFANA_INTERVALS = {"__rate_interval": "1m", "__range": "1h", "__interval": "15s"}
VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def grafana_regex_escape(value: str) -> str:
    """What Grafana's Prometheus datasource does to a single value of an include-All variable."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", value)


@pytest.fixture(scope="module")
def exporter_target() -> Iterator[str]:
    registry = CollectorRegistry()
    state = FakeDetectorState(step=1)
    exporter = LivewatchExporter(
        registry, series=state, incidents=state, pipeline=state, version="0.1.0-test"
    )
    stop = threading.Event()

    def observe() -> None:  # a worker publishing alerts and scoring windows
        while not stop.wait(0.1):
            exporter.alert_latency.observe(0.3)
            exporter.scoring_duration.observe(0.002)

    observer = threading.Thread(target=observe, daemon=True)
    observer.start()
    server = serve_metrics(registry, port=0, host="127.0.0.1")
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        observer.join(timeout=5)


@pytest.fixture(scope="module")
def prometheus(exporter_target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("prometheus")
    rules = [str(PROMETHEUS_DIR / "rules" / "*.yml")]
    with prometheus_server(workdir, prometheus_config_for_test(exporter_target, rules)) as url:
        # Rates need two scrapes, and the recording rules one evaluation after them.
        wait_for(
            "rates and recording rules to have data",
            lambda: query(url, "livewatch:events_consumed:rate1m > 0"),
            timeout=20,
            log=workdir / "prometheus.log",
        )
        yield url


def query(url: str, expr: str) -> list[dict[str, Any]]:
    data = prometheus_api(url, "query", query=expr)
    assert data["resultType"] == "vector", (expr, data["resultType"])
    return list(data["result"])


def substitute(expr: str, variables: dict[str, str]) -> str:
    values = {**GRAFANA_INTERVALS, **variables}
    return VARIABLE.sub(lambda match: values[match.group(1)], expr)


def assert_returns_data(url: str, where: str, expr: str) -> None:
    result = query(url, expr)
    assert result, f"{where}: no data for {expr}"
    values = [float(sample["value"][1]) for sample in result]
    assert any(not math.isnan(v) for v in values), f"{where}: only NaN for {expr}"


def test_overview_queries_return_data(prometheus: str):
    for where, expr in grafana.expressions(grafana.overview()):
        assert_returns_data(prometheus, where, substitute(expr, {}))


def test_metric_explorer_queries_return_data_for_every_exported_series(prometheus: str):
    exported = prometheus_api(prometheus, "series", **{"match[]": "livewatch_series_value"})
    state = FakeDetectorState()
    assert len(exported) == len(state.rows)
    active = {(row.metric, *row.label_values()[1:]) for row in state.rows if row.anomaly_active}
    with_incident = {incident.metric for incident in state.incidents}
    dashboard = grafana.metric_explorer()
    for series in exported:
        # A dimension the series is not sliced by is "All", which the dashboard maps to the empty value.
        variables = {
            "metric": series["metric"],
            **{d: grafana_regex_escape(series[d]) if d in series else grafana.UNSLICED for d in DIMENSIONS},
        }
        key = (series["metric"], *(series.get(d, "") for d in DIMENSIONS))
        for where, expr in grafana.expressions(dashboard):
            where = f"{where} for {variables}"
            if where.startswith("annotation 'Anomalies'"):  # marks only anomalous windows
                assert bool(query(prometheus, substitute(expr, variables))) == (key in active), where
            elif where.startswith("annotation 'Incidents'"):
                assert bool(query(prometheus, substitute(expr, variables))) == (key[0] in with_incident), (
                    where
                )
            else:
                assert_returns_data(prometheus, where, substitute(expr, variables))


def test_pipeline_queries_return_data_for_all_and_each_instance(prometheus: str):
    instances = prometheus_api(prometheus, "label/instance/values", **{"match[]": 'up{job="livewatch"}'})
    assert len(instances) == 1
    for instance in [".*", *map(grafana_regex_escape, instances)]:
        for where, expr in grafana.expressions(grafana.pipeline_health()):
            assert_returns_data(prometheus, where, substitute(expr, {"instance": instance}))


def test_template_variable_queries_list_values(prometheus: str):
    """label_values(selector, label) is what Grafana asks Prometheus's label API."""
    metrics = prometheus_api(prometheus, "label/metric/values", **{"match[]": "livewatch_series_value"})
    assert set(metrics) == {"viewers", "gifts_coins", "stall_ratio"}
    for dimension in DIMENSIONS:
        found = {
            value
            for metric in metrics
            for value in prometheus_api(
                prometheus,
                f"label/{dimension}/values",
                **{"match[]": f'livewatch_series_value{{metric="{metric}"}}'},
            )
        }
        assert found, f"no value offered for {dimension}"


def test_rules_evaluate_on_contract_data(prometheus: str):
    alerts = prometheus_api(prometheus, "alerts")["alerts"]
    states = {
        (a["labels"]["alertname"], a["labels"].get("severity"), a["labels"].get("slice", "")): a["state"]
        for a in alerts
    }
    # Anomaly alerts wait 1 minute (for:), incidents fire at once, the watchdog always.
    assert states[("LivewatchSeriesAnomaly", "critical", "region=eu")] == "pending"
    assert states[("LivewatchSeriesAnomaly", "warning", "platform=ios")] == "pending"
    assert states[("LivewatchSeriesAnomaly", "warning", "network=cellular")] == "pending"
    assert ("LivewatchSeriesAnomaly", "warning", "region=us") not in states
    assert states[("LivewatchIncident", "critical", "")] == "firing"
    assert states[("LivewatchWatchdog", "none", "")] == "firing"
    assert not any(name == "LivewatchWorkerDown" for name, _, _ in states)
