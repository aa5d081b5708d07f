"""The two Faust agents and the timer that keeps watermarks and snapshots moving.

Stage 1 (``aggregate``) reads raw messages from ``live-events``, decodes each message (one event or a
JSON array), folds it into its partition's :class:`PartitionFolder`, sends dead letters, and publishes
closed windows' partials and the partition's watermark to ``metric-windows``. Stage 2 (``score``) reads
``metric-windows``, merges partials, and scores every window once all source partitions passed it.

Both stages follow the same recovery discipline (see ``state.py`` and ``docs/stream.md``): per
partition, state is applied message by message in offset order, snapshotted with the offset it
includes into a changelogged Faust table, and a message is acked (so its offset may be committed) only
after the snapshot holding it and every output it caused have been flushed to the broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import faust
import msgspec
from faust.types import TP, EventT, StreamT, TableT

from detector.events import Event, EventFrame, decode_message, encode_event
from detector.stream.contracts import (
    ClosedPartial,
    PartitionFolder,
    ScoreOutput,
    Scorer,
    StreamComponents,
    WindowMerger,
)
from detector.stream.finality import FinalityTracker
from detector.stream.metrics import StreamMetrics
from detector.stream.records import (
    PartialRecord,
    Stage1Snapshot,
    Stage2Snapshot,
    WatermarkRecord,
    dead_letter,
    dead_letter_for,
    decode_stage1_snapshot,
    decode_stage2_snapshot,
    decode_window_record,
    encode_snapshot,
    encode_window_record,
)
from detector.stream.settings import StreamSettings
from detector.stream.state import OffsetCursor, Verdict
from detector.stream.topics import StreamTopics

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(slots=True)
class _Progress:
    """Offset bookkeeping of one partition's state: what is applied, snapshotted and still unacked."""

    cursor: OffsetCursor
    snapshot_offset: int  # -1: no snapshot yet
    snapshot_at: float
    held: list[EventT] = field(default_factory=list)  # applied or repeated, not acked yet
    dirty: bool = False  # messages applied since the last snapshot
    batches_since_snapshot: int = 0


# (partition, its progress, snapshot bytes, offset of the last message the snapshot includes)
_PendingSnapshot = tuple[int, _Progress, bytes, int]


class _Stage:
    """What both stages share: admitting messages in offset order, snapshots, flush-then-ack."""

    name: str

    def __init__(
        self,
        app: faust.App,
        settings: StreamSettings,
        topics: StreamTopics,
        table: TableT,
        components: Callable[[], StreamComponents],
        metrics: StreamMetrics,
        clock: Clock,
    ) -> None:
        self.app = app
        self.settings = settings
        self.topics = topics
        self.table = table
        self._components = components
        self.metrics = metrics
        self.clock = clock
        self.lock = asyncio.Lock()
        self.stream: StreamT | None = None
        self.progress: dict[int, _Progress] = {}

    @property
    def components(self) -> StreamComponents:
        return self._components()

    def forget(self, partitions: set[int]) -> None:
        """Drop in-memory state of revoked partitions; their next owner restores the last snapshot."""
        for partition in partitions:
            self.progress.pop(partition, None)
            self._forget_state(partition)

    def _forget_state(self, partition: int) -> None:
        raise NotImplementedError

    def _new_progress(self, snapshot_offset: int) -> _Progress:
        return _Progress(OffsetCursor(snapshot_offset + 1), snapshot_offset, self.clock())

    async def _admit(self, progress: _Progress, event: EventT) -> bool:
        """True when ``event`` is the next message to apply to this partition's state."""
        message = event.message
        verdict = progress.cursor.check(message.offset, self.clock())
        if verdict is Verdict.GAP:
            await self._seek_back(message.tp, progress)
            verdict = progress.cursor.check(message.offset, self.clock())
        if verdict is Verdict.APPLY:
            return True
        self.metrics.skipped.labels(self.name, verdict.value).inc()
        if verdict is Verdict.REPEAT:
            if message.offset <= progress.snapshot_offset:
                await self._ack(event)
            else:
                progress.held.append(event)
        return False

    async def _seek_back(self, tp: TP, progress: _Progress) -> None:
        wanted = progress.cursor.next_offset
        earliest = (await self.app.consumer.earliest_offsets(tp)).get(tp)
        if earliest is not None and earliest > wanted:
            log.error(
                "%s: offsets %d..%d of %s are gone from the log (retention); continuing from %d",
                self.name,
                wanted,
                earliest - 1,
                tp,
                earliest,
            )
            progress.cursor.skip_to(earliest)
            wanted = earliest
        log.info(
            "%s: fetch position of %s is ahead of its state; seeking back to offset %d", self.name, tp, wanted
        )
        self.metrics.seeks.labels(self.name).inc()
        await self.app.consumer.seek(tp, wanted)

    def _applied(self, progress: _Progress, event: EventT) -> None:
        progress.cursor.applied(event.message.offset)
        progress.held.append(event)
        progress.dirty = True
        self.metrics.messages.labels(self.name).inc()

    def _snapshot_due(self, progress: _Progress, *, window_closed: bool) -> bool:
        if not progress.dirty:
            return False
        return (
            window_closed
            or progress.batches_since_snapshot >= self.settings.snapshot_every_batches
            or self.clock() - progress.snapshot_at >= self.settings.snapshot_interval_s
        )

    def _write_snapshot(self, pending: _PendingSnapshot) -> None:
        partition, progress, state, offset = pending
        # The table's changelog partition is the state's own partition, so the worker that is assigned
        # this partition recovers exactly this key. Written through the store and send_changelog because
        # table[key] = ... needs the stream's current event, which batches do not have.
        self.table.data[partition] = state
        self.table.send_changelog(partition, partition, state)
        progress.snapshot_offset = offset
        progress.snapshot_at = self.clock()
        progress.dirty = False
        progress.batches_since_snapshot = 0
        self.metrics.snapshots.labels(self.name).inc()

    async def _commit_snapshots(self, pending: Sequence[_PendingSnapshot]) -> None:
        """Outputs durable, then snapshots durable, then ack what they cover (committed later by Faust).

        The first flush matters: a snapshot says "these windows' partials / alerts were sent"; if it
        reached the broker before them and the worker died, they would be lost for good.
        """
        if not pending:
            return
        await self.app.producer.flush()
        for snapshot in pending:
            self._write_snapshot(snapshot)
        await self.app.producer.flush()
        for _, progress, _, _ in pending:
            keep: list[EventT] = []
            for event in progress.held:
                if event.message.offset <= progress.snapshot_offset:
                    await self._ack(event)
                else:
                    keep.append(event)
            progress.held = keep

    async def _ack(self, event: EventT) -> None:
        if self.stream is not None:
            await self.stream.ack(event)

    def _owned(self, event: EventT) -> bool:
        return event.message.tp in self.app.consumer.assignment()

    async def snapshot_stale(self) -> None:
        """Timer: snapshot partitions whose state changed but whose input stopped (end of a burst)."""
        async with self.lock:
            pending = [
                self._pending(partition, progress, state)
                for partition, progress in list(self.progress.items())
                if self._snapshot_due(progress, window_closed=False)
                and (state := self._serialise(partition, progress)) is not None
            ]
            await self._commit_snapshots(pending)

    def _pending(self, partition: int, progress: _Progress, state: bytes) -> _PendingSnapshot:
        return partition, progress, state, progress.cursor.next_offset - 1

    def _serialise(self, partition: int, progress: _Progress) -> bytes | None:
        """The partition's state with the offset it includes, as snapshot bytes; None if it failed."""
        raise NotImplementedError


def _by_partition(batch: Sequence[EventT]) -> dict[int, list[EventT]]:
    groups: dict[int, list[EventT]] = {}
    for event in batch:
        groups.setdefault(event.message.partition, []).append(event)
    return groups


class AggregateStage(_Stage):
    """Stage 1: one folder per source partition of ``live-events``."""

    name = "aggregate"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.folders: dict[int, PartitionFolder] = {}
        self.published_watermark: dict[int, int | None] = {}
        self.last_message_at: dict[int, float] = {}
        self.ready: set[int] = set()  # assigned source partitions whose table recovery completed
        self.reported_idle: set[int] = set()

    def _forget_state(self, partition: int) -> None:
        self.folders.pop(partition, None)
        self.published_watermark.pop(partition, None)
        self.last_message_at.pop(partition, None)
        self.ready.discard(partition)
        self.reported_idle.discard(partition)

    def _restore(self, partition: int) -> tuple[PartitionFolder, _Progress]:
        if partition in self.folders:
            return self.folders[partition], self.progress[partition]
        raw = self.table.data.get(partition)
        folder: PartitionFolder | None = None
        offset = -1
        if raw is not None:
            try:
                snapshot = decode_stage1_snapshot(raw)
                folder, offset = self.components.load_folder(snapshot.folder), snapshot.offset
            except Exception:
                log.exception(
                    "aggregate: snapshot of partition %d is unreadable; rebuilding it from the "
                    "start of the log",
                    partition,
                )
                folder, offset = None, -1
        if folder is None:
            folder = self.components.new_folder(partition)
        self.folders[partition] = folder
        self.progress[partition] = self._new_progress(offset)
        self.published_watermark[partition] = folder.watermark_ms
        self.last_message_at[partition] = self.clock()
        log.info(
            "aggregate: partition %d restored at offset %d, watermark %s",
            partition,
            offset,
            folder.watermark_ms,
        )
        return folder, self.progress[partition]

    async def handle(self, batch: Sequence[EventT]) -> None:
        async with self.lock:
            pending: list[_PendingSnapshot] = []
            for partition, events in _by_partition(batch).items():
                if not self._owned(events[0]):
                    continue
                folder, progress = self._restore(partition)
                self.last_message_at[partition] = self.clock()
                if partition in self.reported_idle:  # wake up before this message's partials go out
                    await self.broadcast_watermark(
                        partition, self.published_watermark.get(partition), idle=False
                    )
                for event in events:
                    if await self._admit(progress, event):
                        await self._apply(partition, folder, progress, event)
                progress.batches_since_snapshot += 1
                closed = await self._publish_closed(partition, folder)
                if (
                    self._snapshot_due(progress, window_closed=closed)
                    and (state := self._serialise(partition, progress)) is not None
                ):
                    pending.append(self._pending(partition, progress, state))
            await self._commit_snapshots(pending)

    async def _apply(
        self, partition: int, folder: PartitionFolder, progress: _Progress, event: EventT
    ) -> None:
        message = event.message
        raw: bytes = event.value
        # Mark the message applied before any await, so a snapshot never splits a message.
        self._applied(progress, event)
        letters: list[tuple[str, bytes]] = []
        try:
            events, invalid = decode_message(raw)
            where: dict[str, Any] = {"topic": message.topic, "partition": partition, "offset": message.offset}
            letters += [(bad.reason, dead_letter_for(bad, item=None, **where)) for bad in invalid]
            if events:
                report = folder.add(EventFrame.from_events(events))
                self.metrics.events.inc(report.accepted)
                letters += self._rejected("late", report.late_rows, events, where)
                letters += self._rejected("future", report.future_rows, events, where)
        except Exception as exc:
            log.exception("aggregate: internal error on %s offset %d", message.tp, message.offset)
            self.metrics.internal_errors.labels(self.name).inc()
            letters.append(
                (
                    "internal",
                    dead_letter(
                        "internal",
                        f"{type(exc).__name__}: {exc}",
                        raw,
                        topic=message.topic,
                        partition=partition,
                        offset=message.offset,
                    ),
                )
            )
        for reason, letter in letters:
            self.metrics.dead_letters.labels(reason).inc()
            await self.topics.dead_letters.send(value=letter, partition=partition)

    @staticmethod
    def _rejected(
        reason: str, rows: Any, events: list[Event], where: dict[str, Any]
    ) -> list[tuple[str, bytes]]:
        detail = {
            "late": "event time is before the partition's closed windows (beyond allowed lateness)",
            "future": "event time is too far ahead of the wall clock",
        }[reason]
        return [
            (reason, dead_letter(reason, detail, encode_event(events[int(row)]), item=int(row), **where))
            for row in rows
        ]

    async def _publish_closed(self, partition: int, folder: PartitionFolder) -> bool:
        """Send closed windows' partials, then (if it moved) the watermark that covers them."""
        try:
            closed = folder.take_closed()
        except Exception:
            log.exception("aggregate: take_closed failed on partition %d", partition)
            self.metrics.internal_errors.labels(self.name).inc()
            return False
        for partial in closed:
            record = PartialRecord(
                partition, partial.group, partial.window_start_ms, partial.window_end_ms, partial.payload
            )
            await self.topics.metric_windows.send(
                key=partial.group.encode(), value=encode_window_record(record)
            )
        watermark = folder.watermark_ms
        if watermark is not None and watermark != self.published_watermark.get(partition):
            await self.broadcast_watermark(partition, watermark, idle=False)
        return bool(closed)

    async def broadcast_watermark(self, partition: int, watermark: int | None, *, idle: bool) -> None:
        self.published_watermark[partition] = watermark
        (self.reported_idle.add if idle else self.reported_idle.discard)(partition)
        if watermark is not None:
            self.metrics.watermark.labels(str(partition)).set(watermark)
        value = encode_window_record(WatermarkRecord(partition, watermark, idle))
        for target in range(self.settings.window_partitions):
            await self.topics.metric_windows.send(value=value, partition=target)

    def _serialise(self, partition: int, progress: _Progress) -> bytes | None:
        folder = self.folders[partition]
        try:
            state = encode_snapshot(Stage1Snapshot(progress.cursor.next_offset - 1, folder.to_bytes()))
        except Exception:
            log.exception("aggregate: folder of partition %d could not be serialised", partition)
            self.metrics.internal_errors.labels(self.name).inc()
            return None
        return state

    async def heartbeat(self) -> None:
        """Timer: every owned source partition reports its watermark and whether it is idle."""
        async with self.lock:
            now = self.clock()
            for partition in sorted(self.ready):
                self._restore(partition)
                idle = now - self.last_message_at[partition] >= self.settings.idle_timeout_s
                await self.broadcast_watermark(partition, self.published_watermark.get(partition), idle=idle)


class ScoreStage(_Stage):
    """Stage 2: one merger, scorer and finality tracker per ``metric-windows`` partition."""

    name = "score"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mergers: dict[int, WindowMerger[Any]] = {}
        self.scorers: dict[int, Scorer[Any]] = {}
        self.finality: dict[int, FinalityTracker] = {}
        self.on_output: Callable[[ScoreOutput], Awaitable[None]] | None = None

    def _forget_state(self, partition: int) -> None:
        self.mergers.pop(partition, None)
        self.scorers.pop(partition, None)
        self.finality.pop(partition, None)

    def _restore(self, partition: int) -> _Progress:
        if partition in self.mergers:
            return self.progress[partition]
        components = self.components
        raw = self.table.data.get(partition)
        restored = False
        if raw is not None:
            try:
                snapshot = decode_stage2_snapshot(raw)
                self.mergers[partition] = components.load_merger(snapshot.merger)
                self.scorers[partition] = components.load_scorer(snapshot.scorer)
                self.finality[partition] = FinalityTracker(self.settings.source_partitions, snapshot.finality)
                self.progress[partition] = self._new_progress(snapshot.offset)
                restored = True
            except Exception:
                log.exception(
                    "score: snapshot of partition %d is unreadable; rebuilding it from the start of the log",
                    partition,
                )
        if not restored:
            self.mergers[partition] = components.new_merger()
            self.scorers[partition] = components.new_scorer()
            self.finality[partition] = FinalityTracker(self.settings.source_partitions)
            self.progress[partition] = self._new_progress(-1)
        log.info(
            "score: partition %d restored at offset %d", partition, self.progress[partition].snapshot_offset
        )
        return self.progress[partition]

    async def handle(self, batch: Sequence[EventT]) -> None:
        async with self.lock:
            pending: list[_PendingSnapshot] = []
            for partition, events in _by_partition(batch).items():
                if not self._owned(events[0]):
                    continue
                progress = self._restore(partition)
                scored = False
                for event in events:
                    if await self._admit(progress, event):
                        scored |= await self._apply(partition, progress, event)
                progress.batches_since_snapshot += 1
                if (
                    self._snapshot_due(progress, window_closed=scored)
                    and (state := self._serialise(partition, progress)) is not None
                ):
                    pending.append(self._pending(partition, progress, state))
            await self._commit_snapshots(pending)

    async def _apply(self, partition: int, progress: _Progress, event: EventT) -> bool:
        """Apply one record; return True when it made windows final (and they were scored)."""
        message = event.message
        self._applied(progress, event)
        finality = self.finality[partition]
        try:
            record = decode_window_record(event.value)
            if isinstance(record, PartialRecord):
                if finality.is_late(record.window_end_ms):
                    self.metrics.late_partials.inc()
                else:
                    self.mergers[partition].put(
                        record.source_partition,
                        ClosedPartial(
                            record.group, record.window_start_ms, record.window_end_ms, record.payload
                        ),
                    )
                return False
            finality.observe(record.source_partition, record.watermark_ms, idle=record.idle)
            final_through = finality.advance()
        except Exception as exc:
            await self._internal(message, event.value, exc)
            return False
        if final_through is None:
            return False
        self.metrics.final_through.labels(str(partition)).set(final_through)
        log.debug(
            "score: partition %d final through %d (watermarks %s, idle %s)",
            partition,
            final_through,
            finality.state.watermarks,
            finality.state.idle,
        )
        try:
            windows = self.mergers[partition].pop_final(final_through)
        except Exception as exc:
            await self._internal(message, event.value, exc)
            return False
        for window in windows:
            try:
                output = self.scorers[partition].score(window)
            except Exception as exc:
                await self._internal(message, event.value, exc)
                continue
            self.metrics.windows_scored.inc()
            await self._publish(output)
        return True

    async def _publish(self, output: ScoreOutput) -> None:
        for alert in output.alerts:
            self.metrics.alerts.inc()
            await self.topics.alerts.send(
                key=str(alert["alert_id"]).encode(), value=msgspec.json.encode(alert)
            )
        for anomaly in output.anomalies:
            key = anomaly.get("anomaly_id", anomaly.get("metric"))
            await self.topics.anomalies.send(
                key=None if key is None else str(key).encode(), value=msgspec.json.encode(anomaly)
            )
        if self.on_output is not None:
            await self.on_output(output)

    async def _internal(self, message: Any, raw: bytes, exc: Exception) -> None:
        log.error("score: internal error on %s offset %d: %r", message.tp, message.offset, exc, exc_info=exc)
        self.metrics.internal_errors.labels(self.name).inc()
        self.metrics.dead_letters.labels("internal").inc()
        await self.topics.dead_letters.send(
            value=dead_letter(
                "internal",
                f"{type(exc).__name__}: {exc}",
                raw,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
        )

    def _serialise(self, partition: int, progress: _Progress) -> bytes | None:
        try:
            state = encode_snapshot(
                Stage2Snapshot(
                    progress.cursor.next_offset - 1,
                    self.mergers[partition].to_bytes(),
                    self.scorers[partition].to_bytes(),
                    self.finality[partition].state,
                )
            )
        except Exception:
            log.exception("score: state of partition %d could not be serialised", partition)
            self.metrics.internal_errors.labels(self.name).inc()
            return None
        return state


@dataclass(slots=True)
class StreamStages:
    aggregate: AggregateStage
    score: ScoreStage


def register_agents(
    app: faust.App,
    settings: StreamSettings,
    topics: StreamTopics,
    components: Callable[[], StreamComponents],
    metrics: StreamMetrics,
    clock: Clock = time.monotonic,
) -> StreamStages:
    def snapshot_table(name: str, partitions: int) -> TableT:
        return app.Table(
            settings.topic(name), default=None, partitions=partitions, key_type=int, value_type=bytes
        )

    stage1_table = snapshot_table("aggregate-snapshots", settings.source_partitions)
    stage2_table = snapshot_table("score-snapshots", settings.window_partitions)
    aggregate = AggregateStage(app, settings, topics, stage1_table, components, metrics, clock)
    score = ScoreStage(app, settings, topics, stage2_table, components, metrics, clock)
    take = (settings.take_max, settings.take_within_s)

    async def aggregate_agent(stream: StreamT) -> None:
        aggregate.stream = stream
        async for batch in cast(faust.Stream, stream).noack_take(*take):
            try:
                await aggregate.handle(batch)
            except Exception:  # the agent must survive; unacked messages are reapplied after a restart
                log.exception("aggregate: batch of %d messages failed", len(batch))
                metrics.internal_errors.labels("aggregate").inc()

    async def score_agent(stream: StreamT) -> None:
        score.stream = stream
        async for batch in cast(faust.Stream, stream).noack_take(*take):
            try:
                await score.handle(batch)
            except Exception:
                log.exception("score: batch of %d records failed", len(batch))
                metrics.internal_errors.labels("score").inc()

    app.agent(topics.live_events, name=settings.topic("aggregate"))(aggregate_agent)
    app.agent(topics.metric_windows, name=settings.topic("score"))(score_agent)

    async def on_revoked(sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[TP] = args[0] if args else kwargs["revoked"]
        for stage, topic in ((aggregate, topics.live_events), (score, topics.metric_windows)):
            stage.forget({tp.partition for tp in revoked if tp.topic == topic.get_topic_name()})

    async def on_rebalance_complete(sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        name = topics.live_events.get_topic_name()
        aggregate.ready = {tp.partition for tp in app.consumer.assignment() if tp.topic == name}

    app.on_partitions_revoked.connect(on_revoked)
    app.on_rebalance_complete.connect(on_rebalance_complete)

    async def keep_moving() -> None:
        try:
            await aggregate.heartbeat()
            await aggregate.snapshot_stale()
            await score.snapshot_stale()
        except Exception:
            log.exception("heartbeat failed")

    app.timer(settings.watermark_heartbeat_s, name=settings.topic("heartbeat"))(keep_moving)
    return StreamStages(aggregate, score)
