"""Where produced events go: the sink contract, and the JSONL file sink.

A sink takes :class:`EventFrame` chunks in event-time order and, when closed, reports what it wrote.
The Kafka sink (``producers.kafka_sink``) and :class:`JsonlSink` both fit :class:`EventSink`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from isal import isal_zlib

from detector.events import EventFrame
from producers.jsonl import encode_frame


@dataclass(frozen=True, slots=True)
class SinkReport:
    """What a sink delivered: events, messages (Kafka) or lines (file), bytes, errors, seconds open."""

    events: int
    messages: int
    bytes: int
    errors: int
    seconds: float


class EventSink(Protocol):
    def write(self, frame: EventFrame) -> None: ...

    def close(self) -> SinkReport: ...


# ISA-L's deflate (the ``isal`` package) at level 1 compresses these lines about 3x faster than zlib's
# fastest level, and 6% smaller; with zlib, gzip alone cost more CPU than generating and encoding.
GZIP_LEVEL = 1


class JsonlSink:
    """Events as JSON lines in a file; ``.gz`` paths are gzip-compressed (one member, ISA-L level 1).

    Output is deterministic: the gzip header carries no time stamp or file name, so the same events
    give the same bytes (compressed bytes could differ between ISA-L builds; the lines never do).
    """

    def __init__(self, path: Path | str, *, gzip_level: int = GZIP_LEVEL) -> None:
        self.path = Path(path)
        self._file: BinaryIO = self.path.open("wb")
        # wbits 31 = gzip container with a zero mtime and no name (unlike the gzip module's header).
        self._compressor = (
            isal_zlib.compressobj(gzip_level, isal_zlib.DEFLATED, 31) if self.path.suffix == ".gz" else None
        )
        self._events = 0
        self._bytes = 0
        self._opened = time.perf_counter()
        self._report: SinkReport | None = None

    def write(self, frame: EventFrame) -> None:
        if self._report is not None:
            raise ValueError(f"{self.path}: sink is closed")
        payload = encode_frame(frame)
        if self._compressor is not None:
            payload = self._compressor.compress(payload)
        self._file.write(payload)
        self._events += len(frame)
        self._bytes += len(payload)

    def close(self) -> SinkReport:
        if self._report is None:
            if self._compressor is not None:
                tail = self._compressor.flush()
                self._file.write(tail)
                self._bytes += len(tail)
            self._file.close()
            self._report = SinkReport(
                events=self._events,
                messages=self._events,
                bytes=self._bytes,
                errors=0,
                seconds=time.perf_counter() - self._opened,
            )
        return self._report

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
