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
    """Places panels left to right in rows of ``GRID_WIDTH`` and numbers them."""

    panels: list[Json] = field(default_factory=list)
    x: int = 0
    y: int = 0
    row_height: int = 0

    def add(self, panel: Json, width: int, height: int) -> None:
        if self.x + width > GRID_WIDTH:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        targets = panel.get("targets", [])
        for ref, tgt in zip("ABCDEFGHIJ", targets, strict=False):
            tgt["refId"] = ref
        panel.update(id=len(self.panels) + 1, gridPos={"x": self.x, "y": self.y, "w": width, "h": height})
        self.panels.append(panel)
        self.x += width
        self.row_height = max(self.row_height, height)


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
    layout.add(
        stat(
            "Active incidents",
            "count(livewatch_incident_active == 1) or vector(0)",
            thresholds=[(None, "green"), (1, "red")],
        ),
        4,
        4,
    )
    layout.add(
        stat(
            "Anomalous series",
            "sum(livewatch_series_anomaly_active) or vector(0)",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        4,
        4,
    )
    layout.add(
        stat("Events / s", "sum(rate(livewatch_events_consumed_total[$__rate_interval]))", "ops"), 4, 4
    )
    layout.add(stat("Alerts fired in range", "sum(increase(livewatch_alerts_fired_total[$__range]))"), 4, 4)
    layout.add(stat("Workers up", 'sum(up{job="livewatch"})', thresholds=[(None, "red"), (1, "green")]), 4, 4)
    layout.add(
        stat(
            "Max watermark lag",
            "max(livewatch_watermark_lag_seconds)",
            "s",
            thresholds=[(None, "green"), (120, "orange"), (300, "red")],
        ),
        4,
        4,
    )
    layout.add(
        table(
            "Active incidents",
            "max by (incident_id, metric, severity) (livewatch_incident_active == 1)",
            "Incidents the detector has open now.",
            [EXPLORER_LINK],
        ),
        10,
        8,
    )
    layout.add(
        table(
            "Top anomalous series",
            "topk(20, livewatch_series_score)",
            "The 20 highest anomaly scores of the latest windows, any metric and slice.",
            [EXPLORER_LINK],
        ),
        14,
        8,
    )
    layout.add(
        timeseries(
            "Max anomaly score by metric",
            [target("livewatch:series_score:max_by_metric", "{{metric}}")],
            "percentunit",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Anomalous series by metric", [target("livewatch:series_anomalous:count_by_metric", "{{metric}}")]
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Throughput",
            [
                target(
                    "sum by (instance) (rate(livewatch_events_consumed_total[$__rate_interval]))",
                    "{{instance}}",
                )
            ],
            "ops",
            stacking={"mode": "normal"},
            fillOpacity=20,
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Alerts fired",
            [
                target(
                    "sum by (metric, severity) (increase(livewatch_alerts_fired_total[$__rate_interval]))",
                    "{{metric}} {{severity}}",
                )
            ],
            drawStyle="bars",
        ),
        12,
        8,
    )
    return dashboard(
        "livewatch-overview",
        "livewatch overview",
        "What is anomalous now, and is detection keeping up.",
        layout,
        [],
    )


def metric_explorer() -> Json:
    layout = Layout()
    band = timeseries(
        "$metric: value and expected band",
        [
            target(f"livewatch_series_value{{{SERIES_SELECTOR}}}", "value"),
            target(f"livewatch_series_expected{{{SERIES_SELECTOR}}}", "expected"),
            target(f"livewatch_series_lower{{{SERIES_SELECTOR}}}", "lower"),
            target(f"livewatch_series_upper{{{SERIES_SELECTOR}}}", "upper"),
        ],
        description="A dimension set to All means the series not sliced by it (All = total).",
    )
    band["fieldConfig"]["overrides"] = [
        {
            "matcher": {"id": "byName", "options": "upper"},
            "properties": [
                {"id": "custom.fillBelowTo", "value": "lower"},
                {"id": "custom.fillOpacity", "value": 15},
                {"id": "custom.lineWidth", "value": 0},
                {"id": "color", "value": {"mode": "fixed", "fixedColor": "green"}},
            ],
        },
        {
            "matcher": {"id": "byName", "options": "lower"},
            "properties": [
                {"id": "custom.lineWidth", "value": 0},
                {"id": "color", "value": {"mode": "fixed", "fixedColor": "green"}},
            ],
        },
        {
            "matcher": {"id": "byName", "options": "expected"},
            "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}],
        },
    ]
    layout.add(band, 24, 10)
    score = timeseries(
        "Anomaly score",
        [target(f"livewatch_series_score{{{SERIES_SELECTOR}}}", "score")],
        "percentunit",
        thresholdsStyle={"mode": "line"},
    )
    score["fieldConfig"]["defaults"].update(
        min=0,
        max=1,
        thresholds={
            "mode": "absolute",
            "steps": [
                {"value": None, "color": "green"},
                {"value": 0.8, "color": "orange"},
                {"value": 0.95, "color": "red"},
            ],
        },
    )
    layout.add(score, 12, 7)
    layout.add(
        stat(
            "Anomaly active",
            f"livewatch_series_anomaly_active{{{SERIES_SELECTOR}}}",
            thresholds=[(None, "green"), (1, "red")],
        ),
        4,
        7,
    )
    layout.add(
        stat(
            "Latest window closed",
            f"time() - livewatch_series_window_end_timestamp_seconds{{{SERIES_SELECTOR}}}",
            "s",
        ),
        4,
        7,
    )
    layout.add(
        stat(
            "Slices not exported",
            'sum(livewatch_series_not_exported{metric="$metric"})',
            thresholds=[(None, "green"), (1, "orange")],
        ),
        4,
        7,
    )
    layout.add(
        table(
            "Slices of $metric by anomaly score",
            'topk(30, livewatch_series_score{metric="$metric"})',
            "Pick a slice's dimension values above to see its band.",
        ),
        24,
        9,
    )
    dimension_vars = [
        query_variable(
            d,
            f'label_values(livewatch_series_value{{metric="$metric"}}, {d})',
            include_all=True,
            all_value=UNSLICED,
        )
        for d in DIMENSIONS
    ]
    annotations = [
        annotation(
            "Anomalies",
            f"livewatch_series_anomaly_active{{{SERIES_SELECTOR}}} == 1",
            "anomaly on {{metric}}",
            "red",
        ),
        annotation(
            "Incidents",
            'max by (incident_id, metric, severity) (livewatch_incident_active{metric="$metric"}) == 1',
            "incident {{incident_id}} ({{severity}})",
            "orange",
        ),
    ]
    return dashboard(
        "livewatch-explorer",
        "livewatch metric explorer",
        "One series at a time: its value against the expected band, its score, and when it was anomalous.",
        layout,
        [query_variable("metric", "label_values(livewatch_series_value, metric)"), *dimension_vars],
        annotations,
    )


def pipeline_health() -> Json:
    layout = Layout()

    def rate_by(label: str, counter: str, extra: str = "") -> str:
        return f"sum by ({label}) (rate({counter}{{{INSTANCE}{extra}}}[$__rate_interval]))"

    def quantile(q: float, histogram: str) -> str:
        return (
            f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{{{INSTANCE}}}[$__rate_interval])))"
        )

    layout.add(
        timeseries("Workers up", [target(f"up{{{INSTANCE}}}", "{{instance}}")], drawStyle="line"), 8, 7
    )
    layout.add(
        timeseries(
            "Events consumed / s",
            [target(rate_by("instance", "livewatch_events_consumed_total"), "{{instance}}")],
            "ops",
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Windows closed / s",
            [target(rate_by("instance", "livewatch_windows_closed_total"), "{{instance}}")],
            "ops",
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Invalid events / s by reason",
            [target(rate_by("reason", "livewatch_events_invalid_total"), "{{reason}}")],
            "ops",
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Invalid share of events",
            [target("livewatch:events_invalid:ratio_rate5m", "{{job}}")],
            "percentunit",
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Late events / s",
            [target(rate_by("instance", "livewatch_events_late_total"), "{{instance}}")],
            "ops",
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Watermark lag behind wall-clock",
            [target(f"livewatch_watermark_lag_seconds{{{INSTANCE}}}", "{{instance}}")],
            "s",
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Window final → alert published",
            [
                target(quantile(0.5, "livewatch_alert_latency_seconds"), "p50"),
                target(quantile(0.99, "livewatch_alert_latency_seconds"), "p99"),
            ],
            "s",
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Scoring time per window",
            [
                target(quantile(0.5, "livewatch_scoring_duration_seconds"), "p50"),
                target(quantile(0.99, "livewatch_scoring_duration_seconds"), "p99"),
            ],
            "s",
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Series tracked by metric",
            [target(f"sum by (metric) (livewatch_series_tracked{{{INSTANCE}}})", "{{metric}}")],
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Series refused by the cap / s",
            [
                target(rate_by("metric", "livewatch_series_dropped_total"), "dropped {{metric}}"),
            ],
            "ops",
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Series not exported (scrape cap)",
            [target(f"sum by (metric) (livewatch_series_not_exported{{{INSTANCE}}})", "{{metric}}")],
        ),
        8,
        7,
    )
    layout.add(
        timeseries(
            "Consumer lag",
            [
                target(
                    f"sum by (topic, partition) (livewatch_consumer_lag_messages{{{INSTANCE}}})",
                    "{{topic}}/{{partition}}",
                )
            ],
            stacking={"mode": "normal"},
            fillOpacity=20,
        ),
        16,
        7,
    )
    layout.add(table("Versions", f"livewatch_build_info{{{INSTANCE}}}"), 8, 7)
    return dashboard(
        "livewatch-pipeline",
        "livewatch pipeline health",
        "Is the detector keeping up: input, rejects, watermark, latency, capacity, lag.",
        layout,
        [
            query_variable(
                "instance", 'label_values(up{job="livewatch"}, instance)', include_all=True, all_value=".*"
            )
        ],
    )


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
