"""What the stream app writes to Kafka besides alerts: window records, dead letters and snapshots.

``metric-windows`` carries two kinds of record (msgpack, tagged): a :class:`PartialRecord` (one window's
partial aggregate from one source partition, keyed by its group) and a :class:`WatermarkRecord` (a source
partition's progress, sent to *every* ``metric-windows`` partition, so each stage 2 partition knows when
a window is final even for groups that partition never saw).
"""

from __future__ import annotations

import base64
from typing import Any, TypeVar

import msgspec

from detector.events import InvalidEvent

SNAPSHOT_VERSION = 1


class PartialRecord(msgspec.Struct, tag="partial", frozen=True):
    source_partition: int
    group: str
    window_start_ms: int
    window_end_ms: int
    payload: bytes


class WatermarkRecord(msgspec.Struct, tag="watermark", frozen=True):
    source_partition: int
    watermark_ms: int | None
    idle: bool


WindowRecord = PartialRecord | WatermarkRecord

_window_encoder = msgspec.msgpack.Encoder()
_window_decoder = msgspec.msgpack.Decoder(WindowRecord)


def encode_window_record(record: WindowRecord) -> bytes:
    return _window_encoder.encode(record)


def decode_window_record(raw: bytes) -> WindowRecord:
    return _window_decoder.decode(raw)


class Stage1Snapshot(msgspec.Struct, frozen=True):
    """A source partition's folder after applying every message up to and including ``offset``."""

    offset: int
    folder: bytes
    version: int = SNAPSHOT_VERSION


class FinalityState(msgspec.Struct):
    watermarks: dict[int, int | None] = msgspec.field(default_factory=dict)
    idle: list[int] = msgspec.field(default_factory=list)
    final_through_ms: int | None = None


class Stage2Snapshot(msgspec.Struct, frozen=True):
    """A ``metric-windows`` partition's merger, scorer and finality after ``offset`` (inclusive)."""

    offset: int
    merger: bytes
    scorer: bytes
    finality: FinalityState
    version: int = SNAPSHOT_VERSION


_snapshot_encoder = msgspec.msgpack.Encoder()
_stage1_decoder = msgspec.msgpack.Decoder(Stage1Snapshot)
_stage2_decoder = msgspec.msgpack.Decoder(Stage2Snapshot)


def encode_snapshot(snapshot: Stage1Snapshot | Stage2Snapshot) -> bytes:
    return _snapshot_encoder.encode(snapshot)


def decode_stage1_snapshot(raw: bytes) -> Stage1Snapshot:
    return _checked_version(_stage1_decoder.decode(raw))


def decode_stage2_snapshot(raw: bytes) -> Stage2Snapshot:
    return _checked_version(_stage2_decoder.decode(raw))


_Snapshot = TypeVar("_Snapshot", Stage1Snapshot, Stage2Snapshot)


def _checked_version(snapshot: _Snapshot) -> _Snapshot:
    if snapshot.version != SNAPSHOT_VERSION:
        raise ValueError(
            f"snapshot version {snapshot.version} is not supported (expected {SNAPSHOT_VERSION})"
        )
    return snapshot


DLQ_REASONS: tuple[str, ...] = (
    "not_json",
    "schema",
    "unknown_type",
    "bad_value",
    "late",
    "future",
    "internal",
)


def dead_letter(
    reason: str, detail: str, raw: bytes, *, topic: str, partition: int, offset: int, item: int | None = None
) -> bytes:
    """The JSON envelope of one dead letter. ``raw`` is kept as text when it is UTF-8, else base64;
    (topic, partition, offset, item) identify it, so a consumer can drop the repeats a crash may cause."""
    envelope: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "source": {"topic": topic, "partition": partition, "offset": offset, "item": item},
    }
    try:
        envelope["raw"] = raw.decode("utf-8")
        envelope["raw_encoding"] = "utf-8"
    except UnicodeDecodeError:
        envelope["raw"] = base64.b64encode(raw).decode("ascii")
        envelope["raw_encoding"] = "base64"
    return msgspec.json.encode(envelope)


def dead_letter_for(
    invalid: InvalidEvent, *, topic: str, partition: int, offset: int, item: int | None
) -> bytes:
    return dead_letter(
        invalid.reason,
        invalid.detail,
        invalid.raw,
        topic=topic,
        partition=partition,
        offset=offset,
        item=item,
    )
