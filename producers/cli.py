"""``livewatch produce``: run a scenario through the Live model into a file or Kafka, with labels."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from detector.events import EventFrame
from producers.durations import format_utc, parse_duration, parse_utc
from producers.model import LiveModel
from producers.scenarios import ScenarioError, load_scenario, write_labels
from producers.sinks import EventSink, JsonlSink, SinkReport

console = Console(stderr=True)

# Paced runs hand events to the sink in steps of this much wall-clock time.
PACE_STEP_SECONDS = 0.1


def parse_speed(text: str) -> float | None:
    """``max`` -> None (as fast as possible), ``realtime`` -> 1.0, ``60`` / ``60x`` -> 60.0."""
    cleaned = text.strip().lower()
    if cleaned == "max":
        return None
    if cleaned == "realtime":
        return 1.0
    try:
        factor = float(cleaned.removesuffix("x"))
    except ValueError:
        raise ValueError(f"{text!r} is not realtime, max or a factor such as 60") from None
    if not np.isfinite(factor) or factor <= 0:
        raise ValueError(f"speed factor must be a positive number, got {text!r}")
    return factor


class Pacer:
    """Holds events back so that event time advances ``speed`` times as fast as the wall clock."""

    def __init__(
        self,
        speed: float,
        start_ms: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.speed = speed
        self.start_ms = start_ms
        self.clock = clock
        self.sleep = sleep
        self.began = clock()

    def pieces(self, frame: EventFrame) -> list[EventFrame]:
        """The frame cut at every PACE_STEP_SECONDS of wall time."""
        step_ms = PACE_STEP_SECONDS * self.speed * 1000
        first = int((frame.ts[0] - self.start_ms) // step_ms)
        last = int((frame.ts[-1] - self.start_ms) // step_ms)
        edges = self.start_ms + np.arange(first + 1, last + 1) * step_ms
        cuts = np.searchsorted(frame.ts, edges, side="left")
        bounds = [0, *cuts.tolist(), len(frame)]
        return [frame.take(np.arange(a, b)) for a, b in itertools.pairwise(bounds) if b > a]

    def wait_for(self, ts_ms: int) -> None:
        due = self.began + (ts_ms - self.start_ms) / 1000 / self.speed
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


def _open_sink(
    out: str,
    stack: ExitStack,
    *,
    bootstrap: str | None,
    topic: str,
    batch_events: int,
    linger_ms: int,
    partitions: int | None,
    compression: str,
) -> EventSink:
    if out == "kafka":
        from detector.broker import kafka_bootstrap
        from producers.kafka_sink import KafkaSink

        address = stack.enter_context(kafka_bootstrap(bootstrap))
        return KafkaSink(
            address,
            topic,
            batch_events=batch_events,
            linger_ms=linger_ms,
            compression=compression,
            partitions=partitions,
        )
    return JsonlSink(out)


def produce(
    scenario: str = typer.Option("clean", help="Scenario name (configs/scenarios/NAME.yaml) or path."),
    seed: int = typer.Option(1, help="Random seed: the same seed gives the same events."),
    start: str | None = typer.Option(
        None, help="Event time of the first event, ISO 8601 (default: now, UTC)."
    ),
    duration: str = typer.Option("6h", help="Span of event time: 90s, 15m, 6h, 7d."),
    speed: str = typer.Option("max", help="realtime, max, or a factor (60 = an hour of events per minute)."),
    out: str = typer.Option(..., help="kafka, or a file PATH.jsonl / PATH.jsonl.gz."),
    labels: Path | None = typer.Option(None, help="Write the incident labels (JSONL) here."),
    rate: float | None = typer.Option(None, help="Mean events per second (overrides the scenario's rate)."),
    bootstrap: str | None = typer.Option(None, envvar="LIVEWATCH_BOOTSTRAP", help="Kafka HOST:PORT."),
    topic: str = typer.Option("live-events", help="Kafka topic (with --out kafka)."),
    batch_events: int = typer.Option(500, help="Most events per Kafka message (1 = one event each)."),
    linger_ms: int = typer.Option(50, help="Longest wait for a Kafka batch to fill, in ms."),
    partitions: int | None = typer.Option(
        None,
        help="Send room r to partition r % N (the topic's partition count); default: hash of the room key.",
    ),
    compression: str = typer.Option("gzip", help="Kafka message compression: gzip or none."),
) -> None:
    """Generate Live events for a scenario, with incident labels, into a file or Kafka."""
    try:
        span = parse_duration(duration)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--duration'") from None
    if span <= timedelta(0):
        raise typer.BadParameter("must be positive", param_hint="'--duration'")
    try:
        pace = parse_speed(speed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--speed'") from None
    try:
        begin = parse_utc(start) if start else datetime.now(UTC).replace(microsecond=0)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--start'") from None
    if out != "kafka" and not out.endswith((".jsonl", ".jsonl.gz")):
        raise typer.BadParameter(
            f"{out!r} is neither kafka nor a .jsonl / .jsonl.gz path", param_hint="'--out'"
        )
    if out != "kafka" and not Path(out).parent.is_dir():
        raise typer.BadParameter(f"directory {Path(out).parent} does not exist", param_hint="'--out'")
    if labels is not None and not labels.parent.is_dir():
        raise typer.BadParameter(f"directory {labels.parent} does not exist", param_hint="'--labels'")
    if rate is not None and rate <= 0:
        raise typer.BadParameter("must be positive", param_hint="'--rate'")
    for value, name in ((batch_events, "--batch-events"), (partitions, "--partitions")):
        if value is not None and value < 1:
            raise typer.BadParameter("must be at least 1", param_hint=f"'{name}'")
    if compression not in ("gzip", "none"):
        raise typer.BadParameter(f"{compression!r} is not gzip or none", param_hint="'--compression'")
    if linger_ms < 0:
        raise typer.BadParameter("must not be negative", param_hint="'--linger-ms'")
    try:
        chosen = load_scenario(scenario).with_rate(rate)
    except ScenarioError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--scenario'") from None

    model = LiveModel(
        chosen.model, seed=seed, start=begin, duration=span, effects=chosen.effects(begin, span)
    )
    if labels is not None:
        found = chosen.labels(begin, span)
        write_labels(found, labels)
        console.print(f"{len(found)} incident label(s) -> {labels}")
    began = time.perf_counter()
    try:
        report = run(
            model,
            out,
            pace,
            bootstrap=bootstrap,
            topic=topic,
            batch_events=batch_events,
            linger_ms=linger_ms,
            partitions=partitions,
            compression=compression,
        )
    except RuntimeError as exc:  # the Kafka sink's DeliveryError: events it could not deliver
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    seconds = time.perf_counter() - began
    console.print(
        f"produced {report.events:,} events ({report.events / seconds:,.0f} events/s) to {out}: "
        f"{format_utc(begin)} + {duration}, scenario {chosen.name or scenario}, seed {seed}"
        + (
            f", {report.messages:,} messages, {report.errors} delivery errors repaired"
            if out == "kafka"
            else ""
        )
    )


def run(
    model: LiveModel,
    out: str,
    speed: float | None,
    *,
    bootstrap: str | None = None,
    topic: str = "live-events",
    batch_events: int = 500,
    linger_ms: int = 50,
    partitions: int | None = None,
    compression: str = "gzip",
) -> SinkReport:
    """Drive the model's chunks into the sink, paced when ``speed`` is set, with a progress bar."""
    total_s = model.duration.total_seconds()
    with ExitStack() as stack:
        sink = _open_sink(
            out,
            stack,
            bootstrap=bootstrap,
            topic=topic,
            batch_events=batch_events,
            linger_ms=linger_ms,
            partitions=partitions,
            compression=compression,
        )
        pacer = Pacer(speed, model.start_ms) if speed is not None else None
        progress = stack.enter_context(
            Progress(
                TextColumn("[bold]producing"),
                BarColumn(),
                TextColumn("{task.fields[events]:,} events"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            )
        )
        task = progress.add_task("produce", total=total_s, events=0)
        events = 0
        try:
            for frame in model.chunks():
                for piece in pacer.pieces(frame) if pacer else [frame]:
                    if pacer:
                        pacer.wait_for(int(piece.ts[0]))
                    sink.write(piece)
                events += len(frame)
                progress.update(task, completed=(int(frame.ts[-1]) - model.start_ms) / 1000, events=events)
        finally:
            report = sink.close()
    return report
