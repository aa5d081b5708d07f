from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from detector.export import grafana

REPO = Path(__file__).resolve().parents[2]
GRAFANA_DIR = REPO / "deploy" / "grafana"
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__all", "__data"}
VARIABLE_REFERENCE = re.compile(r"\$\{?(\w+)")


def committed() -> dict[str, dict]:
    return {
        path.name: json.loads(path.read_text())
        for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
    }


def test_committed_dashboards_equal_generated_output():
    fresh = dict(grafana.generated())
    on_disk = {path.name: path.read_text() for path in (GRAFANA_DIR / "dashboards").glob("*.json")}
    assert on_disk.keys() == fresh.keys()
    for name, text in fresh.items():
        assert on_disk[name] == text, f"{name} is stale: run python -m detector.export.grafana"


def test_three_dashboards_with_unique_uids():
    uids = [d["uid"] for d in committed().values()]
    assert sorted(uids) == ["livewatch-explorer", "livewatch-overview", "livewatch-pipeline"]


def test_datasource_uid_matches_provisioning():
    provisioning = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    (source,) = provisioning["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == grafana.DATASOURCE_UID
    for name, dashboard in committed().items():
        refs = [p["datasource"] for p in dashboard["panels"]]
        refs += [t["datasource"] for p in dashboard["panels"] for t in p["targets"]]
        refs += [v["datasource"] for v in dashboard["templating"]["list"]]
        refs += [a["datasource"] for a in dashboard["annotations"]["list"] if not a.get("builtIn")]
        assert all(ref == {"type": "prometheus", "uid": source["uid"]} for ref in refs), name


def test_dashboard_provider_points_where_compose_mounts_the_dashboards():
    provider = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "livewatch.yml").read_text())
    (entry,) = provider["providers"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{entry['options']['path']}:ro" in mounts


@pytest.mark.parametrize("name", ["overview.json", "metric-explorer.json", "pipeline.json"])
def test_panels_are_well_formed(name: str):
    dashboard = committed()[name]
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["y"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= grafana.GRID_WIDTH, panel["title"]
        area = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


@pytest.mark.parametrize("name", ["overview.json", "metric-explorer.json", "pipeline.json"])
def test_every_referenced_variable_exists(name: str):
    dashboard = committed()[name]
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    text = (
        json.dumps(dashboard["panels"])
        + json.dumps(dashboard["annotations"])
        + json.dumps([v["definition"] for v in dashboard["templating"]["list"]])
    )
    referenced = {m for m in VARIABLE_REFERENCE.findall(text) if not m.startswith("__")}
    assert referenced <= defined, f"undefined variables: {referenced - defined}"
    assert all(m in BUILTIN_VARIABLES for m in VARIABLE_REFERENCE.findall(text) if m.startswith("__"))


def test_explorer_offers_metric_and_every_dimension_with_all_meaning_unsliced():
    explorer = committed()["metric-explorer.json"]
    variables = {v["name"]: v for v in explorer["templating"]["list"]}
    assert list(variables) == ["metric", "region", "platform", "app_version", "creator_tier", "network"]
    assert not variables["metric"]["includeAll"]
    for dimension in list(variables)[1:]:
        assert variables[dimension]["allValue"] == "^$"
        assert f'{dimension}=~"${dimension}"' in explorer["panels"][0]["targets"][0]["expr"]
    band_legends = {t["legendFormat"] for t in explorer["panels"][0]["targets"]}
    assert band_legends == {"value", "expected", "lower", "upper"}
    assert any("anomaly_active" in a.get("expr", "") for a in explorer["annotations"]["list"])


def test_alert_dashboard_links_use_the_explorer_uid_and_variable_names():
    rules = (REPO / "deploy" / "prometheus" / "rules" / "anomalies.yml").read_text()
    explorer = committed()["metric-explorer.json"]
    for link in re.findall(r"http://localhost:3000/d/[^\s]+", rules):
        assert f"/d/{explorer['uid']}/" in link
        names = set(re.findall(r"var-(\w+)=", link))
        assert names <= {v["name"] for v in explorer["templating"]["list"]} and "metric" in names


def test_a_row_must_fill_the_grid():
    with pytest.raises(ValueError, match="sum to 24"):
        grafana.Layout().row(4, [grafana.stat("a", "up"), grafana.stat("b", "up")], widths=(10, 10))
