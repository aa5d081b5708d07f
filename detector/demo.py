"""``livewatch demo``: Live events flowing through a real Kafka-compatible broker, on one screen.

The demo starts the embedded broker (unless a bootstrap address is given), creates the topics, runs
the producer in a background thread and reads ``live-events`` back, showing what arrives: events per
second, events by type and by region over the last minute of event time, the event-time watermark.

The screen is a list of *panels*, functions from :class:`DemoState` to a rich renderable; later
stages (worker, alerts) add theirs to :data:`DEFAULT_PANELS` or pass their own list to
:func:`run_demo`. The event source is any iterable of :class:`EventFrame` in event-time order, so the
demo runs the Live model, a replayed log or the synthetic frames of a test alike.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import typer
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from detector.broker import BrokerError, configured_bootstrap, kafka_bootstrap
from detector.events import EventFrame, decode_message
from detector.kafka_io import (
    LIVE_EVENTS,
    KafkaUnavailable,
    assigned_consumer,
    bootstrap_addresses,
    ensure_topics,
    poll_records,
)
from producers.kafka_sink import Compression, GroupBy, KafkaSink
from producers.replay import Pacer, parse_speed

RECENT_MS = 60_000  # "the last minute of event time" in the breakdowns
RATE_WINDOW_S = 5.0  # events/s is measured over this much wall time


@dataclass
class DemoState:
    """What the demo has seen so far; panels read it, the consume loop writes it."""

    bootstrap: str
    embedded: bool
    speed: float | None
    started: float = field(default_factory=time.monotonic)
    produced_events: int = 0
    produced_messages: int = 0
    producer_done: bool = False
    producer_error: str | None = None
    consumed_events: int = 0
    consumed_messages: int = 0
    invalid_events: int = 0
    totals_by_type: Counter[str] = field(default_factory=Counter)
    totals_by_region: Counter[str] = field(default_factory=Counter)
    # partition -> newest event time read from it; the watermark is the oldest of these, so a partition
    # the consumer has fallen behind on does not make the others' minute look empty
    _partition_newest: dict[int, int] = field(default_factory=dict)
    # (event-time second, type, region) -> events, pruned to the last minute behind the watermark
    _recent: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    _rate_samples: deque[tuple[float, int]] = field(default_factory=deque)

    @property
    def watermark_ms(self) -> int | None:
        return min(self._partition_newest.values(), default=None)

    def add(self, raw: bytes, now: float, partition: int = 0) -> None:
        events, invalid = decode_message(raw)
        self.consumed_messages += 1
        self.invalid_events += len(invalid)
        if not events:
            return
        self.consumed_events += len(events)
        # Count per distinct key, not per event: a batch spans a few seconds, types and regions.
        batch = Counter([(e.ts // 1000, e.type.value, e.region) for e in events])
        for key, count in batch.items():
            self._recent[key] += count
            self.totals_by_type[key[1]] += count
            self.totals_by_region[key[2]] += count
        newest = max(e.ts for e in events)
        self._partition_newest[partition] = max(newest, self._partition_newest.get(partition, newest))
        self._rate_samples.append((now, self.consumed_events))

    def elapsed(self, now: float | None = None) -> float:
        return (now if now is not None else time.monotonic()) - self.started

    def events_per_second(self, now: float) -> float:
        samples = self._rate_samples
        while len(samples) > 2 and samples[1][0] < now - RATE_WINDOW_S:
            samples.popleft()
        if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
            return 0.0
        return (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])

    def recent(self) -> tuple[Counter[str], Counter[str], int]:
        """Events by type and by region over the last minute of event time up to the watermark, and
        the seconds of event time that minute covers so far."""
        watermark = self.watermark_ms
        if watermark is None:
            return Counter(), Counter(), 0
        newest, oldest = watermark // 1000, (watermark - RECENT_MS) // 1000 + 1
        for key in [k for k in self._recent if k[0] < oldest]:
            del self._recent[key]
        by_type: Counter[str] = Counter()
        by_region: Counter[str] = Counter()
        first = newest
        for (second, kind, region), count in self._recent.items():
            if second <= newest:
                by_type[kind] += count
                by_region[region] += count
                first = min(first, second)
        return by_type, by_region, newest - first + 1


PanelFn = Callable[[DemoState], RenderableType]


def flow_panel(state: DemoState) -> RenderableType:
    now = time.monotonic()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    broker = f"{state.bootstrap} ({'embedded Tansu, memory only' if state.embedded else 'external'})"
    watermark = "-" if state.watermark_ms is None else _utc(state.watermark_ms)
    producer = "done" if state.producer_done else "running"
    if state.producer_error:
        producer = f"[red]failed: {state.producer_error}[/]"
    rows = [
        ("broker", broker),
        ("topic", LIVE_EVENTS),
        ("speed", "max" if state.speed is None else f"{state.speed:g}x event time"),
        (
            "produced",
            f"{state.produced_events:,} events in {state.produced_messages:,} messages ({producer})",
        ),
        ("consumed", f"{state.consumed_events:,} events in {state.consumed_messages:,} messages"),
        ("events/s", f"{state.events_per_second(now):,.0f}"),
        ("invalid", f"{state.invalid_events:,}"),
        ("watermark", watermark),
        ("running for", f"{state.elapsed(now):,.0f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return Panel(table, title="livewatch demo", border_style="cyan")


def breakdown_panel(state: DemoState) -> RenderableType:
    by_type, by_region, seconds = state.recent()
    return Columns(
        [
            _count_table("by type, last minute", by_type, seconds),
            _count_table("by region, last minute", by_region, seconds),
        ]
    )


DEFAULT_PANELS: tuple[PanelFn, ...] = (flow_panel, breakdown_panel)


def _count_table(title: str, counts: Counter[str], seconds: int) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("name")
    table.add_column("events", justify="right")
    table.add_column("per s", justify="right")
    for name, count in counts.most_common():
        table.add_row(name, f"{count:,}", f"{count / max(seconds, 1):,.1f}")
    return table


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(state: DemoState, panels: Sequence[PanelFn]) -> RenderableType:
    return Group(*(panel(state) for panel in panels))


@dataclass(frozen=True, slots=True)
class DemoSummary:
    bootstrap: str
    produced_events: int
    consumed_events: int
    consumed_messages: int
    invalid_events: int
    by_type: dict[str, int]
    by_region: dict[str, int]
    watermark_ms: int | None
    seconds: float
    interrupted: bool
    producer_error: str | None


class _ProducerThread(threading.Thread):
    """Paces frames onto the sink until they run out or ``stop`` is set; closes the sink either way."""

    def __init__(self, frames: Iterable[EventFrame], sink: KafkaSink, pacer: Pacer, state: DemoState) -> None:
        super().__init__(name="demo-producer", daemon=True)
        self.frames, self.sink, self.pacer, self.state = frames, sink, pacer, state

    def run(self) -> None:
        try:
            for frame in self.frames:
                for part in self.pacer.slices(frame.ts):
                    self.sink.write(frame.take(np.arange(part.start, part.stop)))
                if self.pacer.stop.is_set():
                    break
        except Exception as exc:  # shown on the screen and in the summary; the demo then stops
            self.state.producer_error = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                self.sink.close()
            except Exception as exc:
                self.state.producer_error = self.state.producer_error or f"{type(exc).__name__}: {exc}"
            self.state.producer_done = True


def run_demo(
    frames: Iterable[EventFrame],
    *,
    bootstrap: str | None = None,
    speed: float | None = 60.0,
    max_seconds: float | None = None,
    console: Console | None = None,
    panels: Sequence[PanelFn] = DEFAULT_PANELS,
    broker_log: Path | None = None,
    refresh_per_second: float = 4.0,
    group_by: str = GroupBy.ROOM,
) -> DemoSummary:
    """Produce ``frames`` to ``live-events`` paced by ``speed`` and show what is consumed back.

    Ends when every produced event has been consumed, after ``max_seconds``, on Ctrl-C, or when the
    producer fails; threads are joined and the embedded broker is stopped before returning.
    """
    console = console or Console()
    external = configured_bootstrap(bootstrap)
    stop = threading.Event()
    interrupted = False
    with contextlib.ExitStack() as stack:
        address = stack.enter_context(kafka_bootstrap(bootstrap, log_path=broker_log))
        partitions = ensure_topics(address)
        state = DemoState(bootstrap=address, embedded=external is None, speed=speed)
        # On an external Kafka the topic may hold earlier runs: read only what this run writes.
        since_ms = int(time.time() * 1000) if external else None
        consumer = assigned_consumer(address, LIVE_EVENTS, since_ms=since_ms, fetch_max_wait_ms=100)
        stack.callback(consumer.close)
        # Compression buys nothing on loopback, and kafka-python's gzip (level 9) costs ~8 µs an event.
        sink = KafkaSink(
            address,
            LIVE_EVENTS,
            partitions=partitions[LIVE_EVENTS],
            group_by=group_by,
            compression=Compression.GZIP if external else Compression.NONE,
        )
        producer = _ProducerThread(frames, sink, Pacer(speed, stop=stop), state)
        producer.start()
        try:
            with Live(render(state, panels), console=console, refresh_per_second=refresh_per_second) as live:
                while True:
                    for record in poll_records(consumer, int(1000 / refresh_per_second), since_ms=since_ms):
                        state.add(record.value, time.monotonic(), record.partition)
                    report = sink.report()
                    state.produced_events, state.produced_messages = report.events, report.messages
                    live.update(render(state, panels))
                    if max_seconds is not None and state.elapsed() >= max_seconds:
                        break
                    if state.producer_done and (
                        state.producer_error or state.consumed_events >= state.produced_events
                    ):
                        break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            stop.set()
            producer.join()
        report = sink.report()
    return DemoSummary(
        bootstrap=address,
        produced_events=report.events,
        consumed_events=state.consumed_events,
        consumed_messages=state.consumed_messages,
        invalid_events=state.invalid_events,
        by_type=dict(state.totals_by_type),
        by_region=dict(state.totals_by_region),
        watermark_ms=state.watermark_ms,
        seconds=state.elapsed(),
        interrupted=interrupted,
        producer_error=state.producer_error,
    )


def model_frames(scenario: str, *, seed: int, start: datetime, duration: timedelta) -> Iterable[EventFrame]:
    """The Live simulation's frames for ``scenario`` (imported here: the model is only needed by the demo)."""
    from producers.model import LiveModel
    from producers.scenarios import load_scenario

    chosen = load_scenario(scenario)
    effects = chosen.effects(start, duration)
    return LiveModel(chosen.model, seed=seed, start=start, duration=duration, effects=effects).chunks()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def demo_command(
    scenario: str = typer.Option("demo", help="Scenario to simulate."),
    speed: str = typer.Option("60", help="Event time per wall time: a factor, realtime, or max."),
    duration: str = typer.Option("30m", help="Event time to simulate, e.g. 30m, 6h."),
    seed: int = typer.Option(7, help="Seed of the simulation."),
    bootstrap: str | None = typer.Option(
        None, help="External Kafka (default: LIVEWATCH_BOOTSTRAP, else an embedded broker)."
    ),
    max_seconds: float | None = typer.Option(None, min=0, help="Stop after this many wall-clock seconds."),
    group_by: GroupBy = typer.Option(
        GroupBy.ROOM, help="What one Kafka message holds: one room's events or one partition's."
    ),
) -> None:
    """Live events through a real broker, on one screen (Ctrl-C stops)."""
    from producers.durations import parse_duration

    errors = Console(stderr=True)
    try:
        pace = parse_speed(speed)
        if bootstrap:
            bootstrap_addresses(bootstrap)
        span = parse_duration(duration)
        if span <= timedelta(0):
            raise ValueError(f"--duration must be positive, got {duration!r}")
        start = datetime.now(UTC).replace(microsecond=0) - span if pace is None else datetime.now(UTC)
        frames = model_frames(scenario, seed=seed, start=start, duration=span)
    except ValueError as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the demo as cleanly as Ctrl-C
    try:
        summary = run_demo(
            frames, bootstrap=bootstrap, speed=pace, max_seconds=max_seconds, group_by=group_by
        )
    except (KafkaUnavailable, BrokerError) as exc:
        errors.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    errors.print(
        f"{summary.consumed_events:,} of {summary.produced_events:,} events consumed back "
        f"in {summary.seconds:,.1f} s"
    )
    if summary.producer_error:
        errors.print(f"[red]producer failed:[/] {summary.producer_error}")
        raise typer.Exit(1)
