"""Replay an event log (JSONL, gzip or plain) to Kafka, keeping event-time order and spacing, scaled.

The log is read in chunks and each line decoded on its own, so a bad line costs only itself: it is
reported with its line number and reason, counted and skipped. Events leave in file order; an event
is due when the replay clock, ``speed`` times faster than the wall clock and started at the first
event's time, reaches it. An event older than one already sent (a late event in the log) goes out at
once with its neighbours, as it did originally.
"""

from __future__ import annotations

import gzip
import io
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table

from detector.broker import configured_bootstrap
from detector.events import Event, EventDecodeError, decode_event
from detector.kafka_io import LIVE_EVENTS, TOPIC_PARTITIONS, KafkaUnavailable, ensure_topics
from producers.kafka_sink import MAX_BATCH_EVENTS, Compression, DeliveryError, GroupBy, KafkaSink, SinkReport

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"  # where `livewatch broker` listens by default
CHUNK_LINES = 20_000
MAX_BAD_LINES_SHOWN = 20
_GZIP_MAGIC = b"\x1f\x8b"


def parse_speed(text: str) -> float | None:
    """``max`` (None: as fast as possible), ``realtime`` (1.0) or a factor > 0; ValueError otherwise."""
    if text == "max":
        return None
    if text == "realtime":
        return 1.0
    try:
        speed = float(text)
    except ValueError:
        raise ValueError(f"--speed must be max, realtime or a number > 0, got {text!r}") from None
    if not speed > 0 or speed == float("inf"):
        raise ValueError(f"--speed must be max, realtime or a number > 0, got {text!r}")
    return speed


class Pacer:
    """Releases chunks of time-stamped rows when they are due on a replay clock ``speed`` x wall time.

    The clock starts at the first row's event time on the first call; ``speed=None`` releases
    everything at once. Waiting stops early when ``stop`` is set (the caller then stops too).
    """

    def __init__(
        self,
        speed: float | None,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.speed = speed
        self.stop = stop or threading.Event()
        self.clock = clock
        self._origin: tuple[int, float] | None = None  # (event-time ms, wall seconds)
        self._latest_ms = np.iinfo(np.int64).min

    def slices(self, ts: np.ndarray) -> Iterator[slice]:
        """Consecutive slices covering ``ts`` (int64 ms), each yielded once all its rows are due."""
        if len(ts) == 0 or self.stop.is_set():
            return
        # Due time follows the running maximum, so a late row waits for nobody and file order holds.
        due = np.maximum.accumulate(np.maximum(ts, self._latest_ms))
        self._latest_ms = int(due[-1])
        if self.speed is None:
            yield slice(0, len(ts))
            return
        if self._origin is None:
            self._origin = (int(due[0]), self.clock())
        origin_ms, origin_wall = self._origin
        start = 0
        while start < len(ts):
            replay_ms = origin_ms + (self.clock() - origin_wall) * self.speed * 1000
            end = int(np.searchsorted(due, replay_ms, side="right"))
            if end > start:
                yield slice(start, end)
                start = end
                continue
            wait = (int(due[start]) - origin_ms) / 1000 / self.speed - (self.clock() - origin_wall)
            if self.stop.wait(max(wait, 0.0)):
                return


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str
    detail: str


@dataclass(slots=True)
class ReplayReport:
    lines: int = 0
    bad_lines: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    wall_seconds: float = 0.0
    interrupted: bool = False
    sink: SinkReport | None = None

    @property
    def events(self) -> int:
        return self.sink.events if self.sink else 0


def read_log(path: Path, chunk_lines: int = CHUNK_LINES) -> Iterator[tuple[list[Event], list[BadLine], int]]:
    """(events, bad lines, compressed bytes read so far) per chunk of ``chunk_lines`` lines.

    A gzip file that ends early yields a ``truncated`` bad line after the last complete one.
    """
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        number = 0
        events: list[Event] = []
        bad: list[BadLine] = []
        try:
            for number, line in enumerate(_lines(stream), start=1):
                if not line.strip():
                    continue
                try:
                    events.append(decode_event(line))
                except EventDecodeError as exc:
                    bad.append(BadLine(number, exc.invalid.reason, exc.invalid.detail))
                if number % chunk_lines == 0:
                    yield events, bad, raw.tell()
                    events, bad = [], []
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            bad.append(BadLine(number + 1, "truncated", f"the file ends or breaks here: {exc}"))
        yield events, bad, raw.tell()


def _lines(stream: io.BufferedIOBase, block_bytes: int = 1 << 20) -> Iterator[bytes]:
    """The stream's lines without their newlines, split from large blocks: GzipFile's own readline
    costs several µs a line in Python, more than decoding the event. ``read1`` returns what is
    decompressed so far, so a truncated file loses only its broken end."""
    tail = b""
    while block := stream.read1(block_bytes):
        lines = (tail + block).split(b"\n")
        tail = lines.pop()
        yield from lines
    if tail:
        yield tail


def replay(
    path: Path,
    sink: KafkaSink,
    *,
    speed: float | None,
    on_chunk: Callable[[ReplayReport, int], None] | None = None,
    on_bad_line: Callable[[BadLine], None] | None = None,
) -> ReplayReport:
    """Send the log's events to ``sink`` paced by ``speed``; close the sink and report.

    ``on_chunk(report, bytes_read)`` follows progress; ``on_bad_line`` sees every bad line. Ctrl-C
    ends the replay early: what was read is still delivered and the report says ``interrupted``.
    Raises :class:`~producers.kafka_sink.DeliveryError` (from the sink) if events were lost.
    """
    report = ReplayReport()
    pacer = Pacer(speed)
    started = time.monotonic()
    try:
        for events, bad, bytes_read in read_log(path):
            for line in bad:
                report.bad_lines += 1
                if on_bad_line:
                    on_bad_line(line)
            report.lines += len(events) + len(bad)
            if events:
                ts = np.fromiter((e.ts for e in events), dtype=np.int64, count=len(events))
                if report.first_ts is None:
                    report.first_ts = int(ts[0])
                for part in pacer.slices(ts):
                    sink.write_events(events[part])
                    report.last_ts = int(ts[part.stop - 1])
            if on_chunk:
                on_chunk(report, bytes_read)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        report.sink = sink.close()
        report.wall_seconds = time.monotonic() - started
    return report


def replay_command(
    path: Path = typer.Argument(..., help="Event log: JSON lines, gzip-compressed or plain."),
    speed: str = typer.Option(
        "60",
        help="Replay speed: a factor (60 = one hour of events per minute), "
        "realtime, or max (as fast as possible).",
    ),
    bootstrap: str | None = typer.Option(
        None, help=f"Kafka bootstrap address (default: LIVEWATCH_BOOTSTRAP, else {DEFAULT_BOOTSTRAP})."
    ),
    topic: str = typer.Option(LIVE_EVENTS, help="Topic to write to (created if missing)."),
    batch_events: int = typer.Option(
        500, min=1, max=MAX_BATCH_EVENTS, help="Most events in one Kafka message."
    ),
    linger_ms: int = typer.Option(50, min=0, help="Longest a room's events wait for their batch to fill."),
    compression: Compression = typer.Option(Compression.GZIP, help="Message compression."),
    group_by: GroupBy = typer.Option(
        GroupBy.ROOM,
        help="What one message holds: the events of one room (key = room id) or of one partition (no key).",
    ),
    single_events: bool = typer.Option(False, "--single-events", help="One event per Kafka message."),
) -> None:
    """Replay an event log to Kafka, keeping event-time order and spacing scaled by --speed."""
    console = Console(stderr=True)
    try:
        pace = parse_speed(speed)
        if not path.is_file():
            raise ValueError(f"event log {str(path)!r} does not exist or is not a file")
        address = configured_bootstrap(bootstrap) or DEFAULT_BOOTSTRAP
        wanted = TOPIC_PARTITIONS.get(topic, TOPIC_PARTITIONS[LIVE_EVENTS])
        partitions = ensure_topics(address, {topic: wanted})
        sink = KafkaSink(
            address,
            topic,
            batch_events=batch_events,
            linger_ms=linger_ms,
            compression=compression,
            partitions=partitions[topic],
            group_by=group_by,
            single_events=single_events,
        )
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    except KafkaUnavailable as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None

    size = path.stat().st_size
    progress = Progress(
        TextColumn("[bold]replay[/]"),
        BarColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    )
    task = progress.add_task("replay", total=size, status="")

    def show(report: ReplayReport, bytes_read: int) -> None:
        sent = sink.report().events
        clock = (
            "-"
            if report.last_ts is None
            else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(report.last_ts / 1000))
        )
        progress.update(
            task,
            completed=bytes_read,
            status=f"{sent:,} events sent · event time {clock} · {report.bad_lines} bad lines",
        )

    shown_bad_lines = 0

    def warn(line: BadLine) -> None:
        nonlocal shown_bad_lines
        shown_bad_lines += 1
        if shown_bad_lines <= MAX_BAD_LINES_SHOWN:
            progress.console.print(f"[yellow]line {line.line}:[/] {line.reason}: {line.detail}")
        elif shown_bad_lines == MAX_BAD_LINES_SHOWN + 1:
            progress.console.print("[yellow]more bad lines: counted in the summary, not shown[/]")

    try:
        with progress:
            result = replay(path, sink, speed=pace, on_chunk=show, on_bad_line=warn)
    except DeliveryError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if result.interrupted:
        console.print("[yellow]interrupted[/]: what was read has been delivered")
    console.print(summary_table(path, address, topic, result))


def summary_table(path: Path, bootstrap: str, topic: str, report: ReplayReport) -> Table:
    table = Table(title=f"replay of {path.name} to {topic} at {bootstrap}", show_header=False)
    sink = report.sink or SinkReport(0, 0, 0, 0, 0.0)
    rate = sink.events / report.wall_seconds if report.wall_seconds else 0.0
    span = (report.last_ts - report.first_ts) / 1000 if report.first_ts and report.last_ts else 0.0
    rows = [
        ("lines read", f"{report.lines:,}"),
        ("events delivered", f"{sink.events:,}"),
        ("bad lines skipped", f"{report.bad_lines:,}"),
        ("Kafka messages", f"{sink.messages:,} ({sink.events / max(sink.messages, 1):.0f} events each)"),
        ("payload", f"{sink.bytes / 1e6:,.1f} MB before compression"),
        ("delivery errors retried", f"{sink.errors:,}"),
        ("event time covered", f"{span:,.0f} s"),
        ("wall time", f"{report.wall_seconds:,.1f} s ({rate:,.0f} events/s)"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table
