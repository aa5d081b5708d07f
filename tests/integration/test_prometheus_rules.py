"""promtool checks the Prometheus config and rules and runs the rule unit tests; every rule has tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.observability_servers import require_binary, run_tool

pytestmark = pytest.mark.integration

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def test_prometheus_config_is_valid():
    output = run_tool(require_binary("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in output


def test_rules_are_valid():
    run_tool(require_binary("promtool"), "check", "rules", *map(str, RULE_FILES))


def test_rule_unit_tests_pass():
    output = run_tool(require_binary("promtool"), "test", "rules", *map(str, TEST_FILES))
    assert output.count("SUCCESS") == len(TEST_FILES)


def _rules() -> list[dict]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def _tests() -> list[dict]:
    return [test for path in TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]]


def test_every_alert_has_a_firing_and_a_silent_case():
    firing: set[str] = set()
    silent: set[str] = set()
    for test in _tests():
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert alerts - firing == set(), "alerts never shown firing in deploy/prometheus/tests"
    # The watchdog fires always, by design; every other alert needs a case where it stays quiet.
    assert alerts - silent == {"LivewatchWatchdog"}, "alerts never shown silent in deploy/prometheus/tests"


def test_every_recording_rule_is_tested():
    records = {rule["record"] for rule in _rules() if "record" in rule}
    tested = {case["expr"].strip() for test in _tests() for case in test.get("promql_expr_test", [])}
    assert records - tested == set()


def test_anomaly_and_pipeline_alerts_carry_routing_labels():
    for rule in _rules():
        if "alert" in rule:
            labels = rule.get("labels", {})
            assert labels.get("kind") in {"anomaly", "pipeline", "watchdog"}, rule["alert"]
            # LivewatchIncident takes its severity from the worker's series.
            assert "severity" in labels or rule["alert"] == "LivewatchIncident", rule["alert"]
            assert rule.get("annotations", {}).get("runbook", "").startswith("docs/observability.md#")


def test_every_runbook_link_has_a_section():
    docs = (PROMETHEUS_DIR.parents[1] / "docs" / "observability.md").read_text()
    anchors = {line[4:].strip().lower() for line in docs.splitlines() if line.startswith("### ")}
    for rule in _rules():
        if "alert" in rule:
            anchor = rule["annotations"]["runbook"].partition("#")[2]
            assert anchor in anchors, f"{rule['alert']}: no runbook section in docs/observability.md"
