"""``livewatch explain ALERTS.jsonl``: the root causes stored in alert JSON lines, as tables.

Reads what the worker publishes on the ``alerts`` topic and what a backtest writes (one
:meth:`AlertEvent.to_json` object per line, plain or gzip). A line that is not an alert is reported by its
line number and skipped; the other alerts are still shown.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

_REQUIRED = ("alert_id", "metric")


def _slice_text(slice_: object) -> str:
    if not isinstance(slice_, dict) or not slice_:
        return "(total)"
    return ", ".join(f"{d}={v}" for d, v in slice_.items())


def _number(value: object, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.{digits}g}"


def _percent(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:+.0%}"


def read_alerts(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Alert objects of a JSON-lines file (``.gz`` too) and one message per line that is not an alert."""
    opener = gzip.open if path.suffix == ".gz" else open
    alerts: list[dict[str, Any]] = []
    problems: list[str] = []
    with opener(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                alert = msgspec.json.decode(line)
            except msgspec.DecodeError as exc:
                problems.append(f"line {number}: not JSON ({exc})")
                continue
            missing = [f for f in _REQUIRED if not isinstance(alert, dict) or f not in alert]
            if missing:
                problems.append(f"line {number}: not an alert, missing {', '.join(missing)}")
                continue
            alerts.append(alert)
    return alerts, problems


def causes_table(alert: dict[str, Any], top: int) -> Table:
    title = (
        f"{alert['metric']} {_slice_text(alert.get('slice'))} · {alert.get('status', '?')} · "
        f"{alert.get('window_start', '?')} · value {_number(alert.get('value'))} "
        f"vs expected {_number(alert.get('expected'))} · alert {alert['alert_id']}"
    )
    table = Table(title=title, title_justify="left")
    for column in ("#", "slice", "share", "actual", "expected", "score", "explanation", "surprise"):
        table.add_column(column, justify="left" if column in ("slice", "explanation") else "right")
    causes = alert.get("root_causes") or []
    for rank, cause in enumerate(causes[:top], start=1):
        if not isinstance(cause, dict):
            continue
        table.add_row(
            str(rank),
            _slice_text(cause.get("slice")),
            _percent(cause.get("share")),
            _number(cause.get("actual")),
            _number(cause.get("expected")),
            _number(cause.get("score"), 3),
            str(cause.get("explanation", "-")),
            _number(cause.get("surprise"), 3),
        )
    if not causes:
        table.caption = "no root causes recorded for this alert"
    return table


def explain_command(
    alerts_file: Path = typer.Argument(
        ..., help="Alert JSON lines: a backtest's alerts or an alerts topic dump."
    ),
    alert_id: str | None = typer.Option(
        None, "--alert-id", help="Show only this alert (a unique prefix is enough)."
    ),
    top: int = typer.Option(5, "--top", min=1, help="Root causes to show per alert."),
) -> None:
    """Print the root causes recorded with each alert (or one alert) as tables."""
    out = Console()
    err = Console(stderr=True, soft_wrap=True)  # paths stay on one line, whatever the terminal width
    if not alerts_file.is_file():
        err.print(f"[red]error:[/] ALERTS_FILE {alerts_file} does not exist or is not a file")
        raise typer.Exit(1)
    try:
        alerts, problems = read_alerts(alerts_file)
    except (OSError, EOFError) as exc:
        err.print(f"[red]error:[/] cannot read ALERTS_FILE {alerts_file}: {exc}")
        raise typer.Exit(1) from None
    for problem in problems:
        err.print(f"[yellow]skipped[/] {alerts_file}: {problem}")
    if alert_id is not None:
        alerts = [a for a in alerts if str(a["alert_id"]).startswith(alert_id)]
        ids = sorted({str(a["alert_id"]) for a in alerts})
        if not ids:
            err.print(f"[red]error:[/] --alert-id {alert_id}: no such alert in {alerts_file}")
            raise typer.Exit(1)
        if len(ids) > 1:
            err.print(f"[red]error:[/] --alert-id {alert_id} matches {len(ids)} alerts: {', '.join(ids[:5])}")
            raise typer.Exit(1)
    if not alerts:
        err.print(f"no alerts in {alerts_file}")
        return
    for alert in alerts:
        out.print(causes_table(alert, top))
