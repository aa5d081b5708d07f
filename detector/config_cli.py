"""``livewatch config check FILE``: validate a config and print the plan it resolves to."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from detector.aggregation.plan import Plan
from detector.config import Config, ConfigError, MetricConfig, Tally, config_from_yaml
from detector.events import DIMENSIONS

config_app = typer.Typer(help="Validate and explain configuration files.", no_args_is_help=True)


def _parse_cardinality(items: list[str]) -> dict[str, int]:
    parsed: dict[str, int] = {}
    for item in items:
        name, _, count = item.partition("=")
        if name not in DIMENSIONS or not count.isdigit() or int(count) < 1:
            raise typer.BadParameter(
                f"expected DIMENSION=COUNT with DIMENSION one of {', '.join(DIMENSIONS)}, got {item!r}",
                param_hint="--cardinality",
            )
        parsed[name] = int(count)
    return parsed


def _tally_text(tally: Tally) -> str:
    return f"{tally.kind}({','.join(tally.events)})" + (" value>0" if tally.positive_only else "")


def _aggregation_text(metric: MetricConfig) -> str:
    agg = metric.aggregation
    if agg.kind == "ratio":
        ratio = f"{_tally_text(agg.numerator)} / {_tally_text(agg.denominator)}"
        return f"ratio {ratio}, min den {agg.min_denominator:g}"
    if agg.kind == "gauge":
        return f"gauge +{','.join(agg.up)} -{','.join(agg.down)}"
    text = f"{agg.kind}({','.join(agg.events)})"
    if agg.kind == "distinct":
        text += f" of {agg.field}, HLL lg_k={agg.lg_k}"
    if agg.kind == "quantile":
        text += f" q={agg.q:g}, KLL k={agg.k}"
    if getattr(agg, "positive_only", False):
        text += " value>0"
    return text


def plan_tables(config: Config, cardinality: dict[str, int]) -> tuple[Table, Table]:
    """The metrics with their slices and series estimates, and their detector settings."""
    plan = Plan(config)
    estimates = plan.estimated_series(cardinality)
    metrics = Table(title="metrics")
    for column in ("metric", "aggregation", "slices", "est. series", "max_series", "min_volume"):
        metrics.add_column(column, overflow="fold", no_wrap=column == "metric")
    detectors = Table(title="detector settings")
    for column in (
        "metric",
        "direction",
        "threshold",
        "lower",
        "fire",
        "resolve",
        "cooldown",
        "seasonal",
        "changepoint",
    ):
        detectors.add_column(column, overflow="fold", no_wrap=column == "metric")
    for metric, estimate in zip(config.metrics, estimates, strict=True):
        slices = ["total", *(" x ".join(s) for s in metric.slices()[1:])]
        metrics.add_row(
            metric.name,
            _aggregation_text(metric),
            ", ".join(slices),
            str(estimate),
            str(metric.max_series),
            f"{metric.min_volume:g}",
        )
        d, seasonal, change = metric.detector, metric.detector.seasonal, metric.detector.changepoint
        detectors.add_row(
            metric.name,
            d.direction,
            f"{d.threshold:g}",
            f"{d.lower_threshold:g}",
            str(d.fire_after),
            str(d.resolve_after),
            str(d.cooldown_windows),
            f"{'+'.join(seasonal.seasons)} {seasonal.mode}, slot {seasonal.slot_s}s",
            f"h {change.cusum.h:g}, PH {change.page_hinkley.threshold:g}, R {change.bocpd.max_run_length}",
        )
    metrics.caption = f"estimated series: {sum(estimates)} in total (capped per metric by max_series)"
    return metrics, detectors


@config_app.command("check")
def check(
    file: Path = typer.Argument(..., help="YAML config to validate."),
    cardinality: list[str] = typer.Option(
        [],
        "--cardinality",
        "-c",
        help="Expected values of a dimension for the estimate, e.g. region=40 (repeatable).",
    ),
) -> None:
    """Validate FILE; print metrics, slices, estimated series and detector settings, or every bad field."""
    console = Console()
    try:
        config = config_from_yaml(file)
    except ConfigError as exc:
        err = Console(stderr=True)
        err.print(f"[red]invalid config[/] {escape(exc.source)}:")
        for path, message in exc.errors:
            err.print(f"  [bold]{escape(path)}[/]: {escape(message)}", highlight=False)
        raise typer.Exit(1) from None
    counts: dict[str, int] = {**config.cardinality, **_parse_cardinality(cardinality)}
    w = config.window
    console.print(
        f"[green]valid[/] {file}: windows {w.length_s}s, lateness {w.allowed_lateness_s}s, "
        f"max future skew {w.max_future_skew_s}s, idle partition after {w.idle_partition_s:g}s"
    )
    console.print("dimension values assumed: " + ", ".join(f"{d}={counts.get(d, 1)}" for d in DIMENSIONS))
    for table in plan_tables(config, counts):
        console.print(table)
    k = config.kafka
    console.print(
        f"kafka: bootstrap {k.bootstrap or '(LIVEWATCH_BOOTSTRAP or embedded)'}, {k.partitions} partitions, "
        f"topics {', '.join(f'{name}={topic}' for name, topic in k.topics.model_dump().items())}"
    )
