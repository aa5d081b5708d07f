"""The three Grafana dashboards, generated from code so their PromQL can be tested.

``python -m detector.export.grafana`` rewrites ``deploy/grafana/dashboards/*.json`` (committed; a test
checks they equal fresh output, and runs every expression in them against a real Prometheus).
Edit the dashboards here, not in Grafana: provisioned dashboards are read-only there.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector.events import DIMENSIONS

DATASOURCE_UID = "livewatch-prometheus"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
GRID_WIDTH = 24
# A regex matching only the empty label value: "All" for a dimension means the series not sliced by it.
UNSLICED = "^$"

SERIES_SELECTOR = ",".join(['metric="$metric"', *(f'{d}=~"${d}"' for d in DIMENSIONS)])
INSTANCE = 'job="livewatch",instance=~"$instance"'

Json = dict[str, Any]


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> Json:
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "instant": instant,
        "range": not instant,
        "format": "table" if table else "time_series",
    }


@dataclass
class Layout:
    """Stacks rows of panels down the dashboard and numbers the panels."""

    panels: list[Json] = field(default_factory=list)
    y: int = 0

    def row(self, height: int, panels: list[Json], widths: tuple[int, ...] | None = None) -> None:
        """One row of ``panels``, equally wide unless ``widths`` are given; they must fill the grid."""
        widths = widths or (GRID_WIDTH // len(panels),) * len(panels)
        if len(widths) != len(panels) or sum(widths) != GRID_WIDTH:
            raise ValueError(f"row widths {widths} must be one per panel and sum to {GRID_WIDTH}")
        x = 0
        for panel, width in zip(panels, widths, strict=True):
            for ref, tgt in zip("ABCDEFGHIJ", panel["targets"], strict=False):
                tgt["refId"] = ref
            panel.update(id=len(self.panels) + 1, gridPos={"x": x, "y": self.y, "w": width, "h": height})
            self.panels.append(panel)
            x += width
        self.y += height


def timeseries(
    title: str, targets: list[Json], unit: str = "short", description: str = "", **custom: Any
) -> Json:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"fillOpacity": 0, **custom}}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
    }


def stat(
    title: str, expr: str, unit: str = "short", thresholds: list[tuple[float | None, str]] | None = None
) -> Json:
    steps = [{"value": value, "color": color} for value, color in (thresholds or [(None, "green")])]
    return {
        "type": "stat",
        "title": title,
        "datasource": DATASOURCE,
        "targets": [target(expr, instant=True)],
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
    }


def table(title: str, expr: str, description: str = "", links: list[Json] | None = None) -> Json:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(expr, instant=True, table=True)],
        "fieldConfig": {"defaults": {"links": links or []}, "overrides": []},
        "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
    }


def query_variable(name: str, query: str, *, include_all: bool = False, all_value: str = "") -> Json:
    variable: Json = {
        "type": "query",
        "name": name,
        "label": name.replace("_", " "),
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,  # on time range change, so new slices appear
        "sort": 1,
        "multi": False,
        "includeAll": include_all,
    }
    if include_all:
        variable["allValue"] = all_value
        variable["current"] = {"text": "All", "value": "$__all"}
    return variable


def annotation(name: str, expr: str, title: str, color: str) -> Json:
    return {
        "name": name,
        "datasource": DATASOURCE,
        "enable": True,
        "iconColor": color,
        "expr": expr,
        "step": "60s",
        "titleFormat": title,
        "tagKeys": "metric,severity",
        "useValueForTime": False,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    layout: Layout,
    variables: list[Json],
    annotations: list[Json] | None = None,
) -> Json:
    builtin = {
        "builtIn": 1,
        "name": "Annotations & Alerts",
        "type": "dashboard",
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    }
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["livewatch"],
        "timezone": "utc",
        "editable": False,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": [builtin, *(annotations or [])]},
        "links": [{"title": "livewatch", "type": "dashboards", "tags": ["livewatch"], "asDropdown": False}],
        "panels": layout.panels,
    }


EXPLORER_LINK = {
    "title": "Open in metric explorer",
    "url": "/d/livewatch-explorer/livewatch-metric-explorer?var-metric=${__data.fields.metric}",
}


def overview() -> Json:
    layout = Layout()
    layout.row(4, [
        stat("Active incidents", "count(livewatch_incident_active == 1) or vector(0)",
             thresholds=[(None, "green"), (1, "red")]),
        stat("Anomalous series", "sum(livewatch_series_anomaly_active) or vector(0)",
             thresholds=[(None, "green"), (1, "orange")]),
        stat("Events / s", "sum(rate(livewatch_events_consumed_total[$__rate_interval]))", "ops"),
        stat("Alerts fired in range", "sum(increase(livewatch_alerts_fired_total[$__range]))"),
        stat("Workers up", 'sum(up{job="livewatch"})', thresholds=[(None, "red"), (1, "green")]),
        stat("Max watermark lag", "max(livewatch_watermark_lag_seconds)", "s",
             thresholds=[(None, "green"), (120, "orange"), (300, "red")]),
    ])  # fmt: skip
    layout.row(8, [
        table("Active incidents", "max by (incident_id, metric, severity) (livewatch_incident_active == 1)",
              "Incidents the detector has open now.", [EXPLORER_LINK]),
        table("Top anomalous series", "topk(20, livewatch_series_score)",
              "The 20 highest anomaly scores of the latest windows, any metric and slice.", [EXPLORER_LINK]),
    ], widths=(10, 14))  # fmt: skip
    layout.row(8, [
        timeseries("Max anomaly score by metric",
                   [target("livewatch:series_score:max_by_metric", "{{metric}}")], "percentunit"),
        timeseries("Anomalous series by metric",
                   [target("livewatch:series_anomalous:count_by_metric", "{{metric}}")]),
    ])  # fmt: skip
    layout.row(8, [
        timeseries("Throughput",
                   [target("sum by (instance) (rate(livewatch_events_consumed_total[$__rate_interval]))",
                           "{{instance}}")],
                   "ops", stacking={"mode": "normal"}, fillOpacity=20),
        timeseries("Alerts fired", [target(
            "sum by (metric, severity) (increase(livewatch_alerts_fired_total[$__rate_interval]))",
            "{{metric}} {{severity}}",
        )], drawStyle="bars"),
    ])  # fmt: skip
    return dashboard(
        "livewatch-overview",
        "livewatch overview",
        "What is anomalous now, and is detection keeping up.",
        layout,
        [],
    )


def _band_overrides() -> list[Json]:
    """Fill between lower and upper, no lines for the band edges, expected dashed."""
    green = {"id": "color", "value": {"mode": "fixed", "fixedColor": "green"}}
    no_line = {"id": "custom.lineWidth", "value": 0}
    return [
        {
            "matcher": {"id": "byName", "options": "upper"},
            "properties": [
                {"id": "custom.fillBelowTo", "value": "lower"}, {"id": "custom.fillOpacity", "value": 15},
                no_line, green,
            ],
        },
        {"matcher": {"id": "byName", "options": "lower"}, "properties": [no_line, green]},
        {
            "matcher": {"id": "byName", "options": "expected"},
            "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}],
        },
    ]  # fmt: skip


def metric_explorer() -> Json:
    layout = Layout()
    band = timeseries("$metric: value and expected band", [
        target(f"livewatch_series_{name}{{{SERIES_SELECTOR}}}", name)
        for name in ("value", "expected", "lower", "upper")
    ], description="A dimension set to All means the series not sliced by it (All = total).")  # fmt: skip
    band["fieldConfig"]["overrides"] = _band_overrides()
    layout.row(10, [band])
    score = timeseries("Anomaly score", [target(f"livewatch_series_score{{{SERIES_SELECTOR}}}", "score")],
                       "percentunit", thresholdsStyle={"mode": "line"})  # fmt: skip
    score["fieldConfig"]["defaults"].update(min=0, max=1, thresholds={"mode": "absolute", "steps": [
        {"value": None, "color": "green"}, {"value": 0.8, "color": "orange"}, {"value": 0.95, "color": "red"},
    ]})  # fmt: skip
    layout.row(7, [
        score,
        stat("Anomaly active", f"livewatch_series_anomaly_active{{{SERIES_SELECTOR}}}",
             thresholds=[(None, "green"), (1, "red")]),
        stat("Latest window closed",
             f"time() - livewatch_series_window_end_timestamp_seconds{{{SERIES_SELECTOR}}}", "s"),
        stat("Slices not exported", 'sum(livewatch_series_not_exported{metric="$metric"})',
             thresholds=[(None, "green"), (1, "orange")]),
    ], widths=(12, 4, 4, 4))  # fmt: skip
    layout.row(9, [
        table("Slices of $metric by anomaly score", 'topk(30, livewatch_series_score{metric="$metric"})',
              "Pick a slice's dimension values above to see its band."),
    ])  # fmt: skip
    variables = [query_variable("metric", "label_values(livewatch_series_value, metric)")]
    variables += [
        query_variable(d, f'label_values(livewatch_series_value{{metric="$metric"}}, {d})', include_all=True,
                       all_value=UNSLICED)
        for d in DIMENSIONS
    ]  # fmt: skip
    annotations = [
        annotation("Anomalies", f"livewatch_series_anomaly_active{{{SERIES_SELECTOR}}} == 1",
                   "anomaly on {{metric}}", "red"),
        annotation("Incidents",
                   'max by (incident_id, metric, severity) (livewatch_incident_active{metric="$metric"})'
                   " == 1", "incident {{incident_id}} ({{severity}})", "orange"),
    ]  # fmt: skip
    return dashboard(
        "livewatch-explorer", "livewatch metric explorer",
        "One series at a time: its value against the expected band, its score, and when it was anomalous.",
        layout, variables, annotations,
    )  # fmt: skip


def pipeline_health() -> Json:
    def rate_by(label: str, counter: str) -> str:
        return f"sum by ({label}) (rate({counter}{{{INSTANCE}}}[$__rate_interval]))"

    def quantiles(histogram: str) -> list[Json]:
        return [
            target(f"histogram_quantile({q}, sum by (le) "
                   f"(rate({histogram}_bucket{{{INSTANCE}}}[$__rate_interval])))", f"p{round(q * 100)}")
            for q in (0.5, 0.99)
        ]  # fmt: skip

    layout = Layout()
    layout.row(7, [
        timeseries("Workers up", [target(f"up{{{INSTANCE}}}", "{{instance}}")]),
        timeseries("Events consumed / s", [target(rate_by("instance", "livewatch_events_consumed_total"),
                                                  "{{instance}}")], "ops"),
        timeseries("Windows closed / s", [target(rate_by("instance", "livewatch_windows_closed_total"),
                                                 "{{instance}}")], "ops"),
    ])  # fmt: skip
    layout.row(7, [
        timeseries("Invalid events / s by reason",
                   [target(rate_by("reason", "livewatch_events_invalid_total"), "{{reason}}")], "ops"),
        timeseries("Invalid share of events", [target("livewatch:events_invalid:ratio_rate5m", "{{job}}")],
                   "percentunit"),
        timeseries("Late events / s",
                   [target(rate_by("instance", "livewatch_events_late_total"), "{{instance}}")], "ops"),
    ])  # fmt: skip
    layout.row(7, [
        timeseries("Watermark lag behind wall-clock",
                   [target(f"livewatch_watermark_lag_seconds{{{INSTANCE}}}", "{{instance}}")], "s"),
        timeseries("Window final → alert published", quantiles("livewatch_alert_latency_seconds"), "s"),
        timeseries("Scoring time per window", quantiles("livewatch_scoring_duration_seconds"), "s"),
    ])  # fmt: skip
    layout.row(7, [
        timeseries("Series tracked by metric",
                   [target(f"sum by (metric) (livewatch_series_tracked{{{INSTANCE}}})", "{{metric}}")]),
        timeseries("Series refused by the cap / s",
                   [target(rate_by("metric", "livewatch_series_dropped_total"), "{{metric}}")], "ops"),
        timeseries("Series not exported (scrape cap)",
                   [target(f"sum by (metric) (livewatch_series_not_exported{{{INSTANCE}}})", "{{metric}}")]),
    ])  # fmt: skip
    layout.row(7, [
        timeseries("Consumer lag",
                   [target(f"sum by (topic, partition) (livewatch_consumer_lag_messages{{{INSTANCE}}})",
                           "{{topic}}/{{partition}}")],
                   stacking={"mode": "normal"}, fillOpacity=20),
        table("Versions", f"livewatch_build_info{{{INSTANCE}}}"),
    ], widths=(16, 8))  # fmt: skip
    return dashboard(
        "livewatch-pipeline", "livewatch pipeline health",
        "Is the detector keeping up: input, rejects, watermark, latency, capacity, lag.", layout,
        [query_variable("instance", 'label_values(up{job="livewatch"}, instance)', include_all=True,
                        all_value=".*")],
    )  # fmt: skip


def expressions(dashboard: Json) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and annotation of a dashboard, for checks and tests."""
    for panel in dashboard["panels"]:
        for tgt in panel.get("targets", []):
            yield f"panel {panel['id']} {panel['title']!r} {tgt['refId']}", tgt["expr"]
    for item in dashboard["annotations"]["list"]:
        if "expr" in item:
            yield f"annotation {item['name']!r}", item["expr"]


DASHBOARDS = {
    "overview.json": overview,
    "metric-explorer.json": metric_explorer,
    "pipeline.json": pipeline_health,
}


def render(dashboard: Json) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def generated() -> Iterator[tuple[str, str]]:
    """(file name, JSON text) of every dashboard."""
    for name, build in DASHBOARDS.items():
        yield name, render(build())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DASHBOARDS_DIR, help="directory for the JSON files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in generated():
        (args.out / name).write_text(text)
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
