"""The Live event schema, shared by the producer and the detector.

One event is one thing that happened in a live room. On the wire an event is a JSON object; a Kafka
message carries either one event or a JSON array of events (a batch, as logging SDKs send them).
Event time ``ts`` is integer milliseconds since the Unix epoch, UTC, like Kafka's own record
timestamps: it needs no time-zone parsing and cannot be read as local time by mistake.

Decoding never loses good data because of bad data: a batch with one broken event yields the good
events plus an :class:`InvalidEvent` for the broken one, naming the field and the reason.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import msgspec


class EventType(enum.StrEnum):
    VIEW_START = "view_start"
    VIEW_END = "view_end"
    GIFT = "gift"
    COMMENT = "comment"
    LIKE = "like"
    SHARE = "share"
    FOLLOW = "follow"
    STALL = "stall"
    REPORT = "report"
    STREAM_START = "stream_start"
    STREAM_END = "stream_end"


EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
EVENT_TYPE_CODE: dict[str, int] = {t.value: i for i, t in enumerate(EVENT_TYPES)}

DIMENSIONS: tuple[str, ...] = ("region", "platform", "app_version", "creator_tier", "network")

# Events outside this span are certainly wrong clocks, not history or the near future.
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

DimensionValue = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Id = Annotated[int, msgspec.Meta(ge=0)]


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One thing that happened in a live room.

    ``value`` carries the event's magnitude: coins for ``gift``, watch seconds for ``view_end``,
    stall milliseconds for ``stall``; 0 for events that only count.
    """

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    ts: Annotated[int, msgspec.Meta(ge=MIN_TS_MS, le=MAX_TS_MS)]
    type: EventType
    room_id: Id
    user_id: Id
    creator_id: Id
    region: DimensionValue
    platform: DimensionValue
    app_version: DimensionValue
    creator_tier: DimensionValue
    network: DimensionValue
    value: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.ts / 1000, tz=UTC)

    def dimension(self, name: str) -> str:
        return getattr(self, name)  # type: ignore[no-any-return]


INVALID_REASONS: tuple[str, ...] = ("not_json", "schema", "unknown_type", "bad_value")


@dataclass(frozen=True, slots=True)
class InvalidEvent:
    """A message or batch item that is not a valid event, kept with the reason for the dead-letter topic."""

    reason: str  # one of INVALID_REASONS
    detail: str  # msgspec's message, naming the field, e.g. "Expected `int`, got `str` - at `$.ts`"
    raw: bytes


class EventDecodeError(ValueError):
    def __init__(self, invalid: InvalidEvent) -> None:
        super().__init__(f"{invalid.reason}: {invalid.detail}")
        self.invalid = invalid


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)
_batch_decoder = msgspec.json.Decoder(list[Event])
_raw_decoder = msgspec.json.Decoder(list[msgspec.Raw] | msgspec.Raw)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def encode_batch(events: Iterable[Event]) -> bytes:
    return _encoder.encode(list(events))


def encode_jsonl(events: Iterable[Event]) -> bytes:
    """Newline-delimited JSON, one event per line (the log-file format of producer and backtest)."""
    buffer = bytearray()
    for event in events:
        _encoder.encode_into(event, buffer, len(buffer))
        buffer += b"\n"
    return bytes(buffer)


def _reason(detail: str) -> str:
    if "JSON is malformed" in detail or "truncated" in detail:
        return "not_json"
    if "Invalid enum value" in detail:
        return "unknown_type"
    # msgspec rejects NaN-like 1e999 as "out of range" and bounds as "Expected `int` >= ...".
    if "out of range" in detail or re.search(r"Expected `\w+` [<>]=", detail):
        return "bad_value"
    return "schema"


def decode_event(raw: bytes) -> Event:
    """Decode one event; raise :class:`EventDecodeError` naming the bad field."""
    try:
        return _event_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        detail = str(exc)
        raise EventDecodeError(InvalidEvent(_reason(detail), detail, bytes(raw))) from None


def decode_message(raw: bytes) -> tuple[list[Event], list[InvalidEvent]]:
    """Decode a Kafka message holding one event or a JSON array of events.

    The whole batch is decoded in one call (fast path); only when that fails is it split, so one
    broken event costs the decoding of its batch twice but never loses its neighbours.
    """
    try:
        events = _batch_decoder.decode(raw) if raw.lstrip()[:1] == b"[" else [_event_decoder.decode(raw)]
    except msgspec.DecodeError:
        return _decode_items(raw)
    return events, []


def _decode_items(raw: bytes) -> tuple[list[Event], list[InvalidEvent]]:
    try:
        parts = _raw_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        return [], [InvalidEvent("not_json", str(exc), bytes(raw))]
    items = parts if isinstance(parts, list) else [parts]
    events: list[Event] = []
    invalid: list[InvalidEvent] = []
    for item in items:
        try:
            events.append(decode_event(bytes(item)))
        except EventDecodeError as exc:
            invalid.append(exc.invalid)
    return events, invalid
