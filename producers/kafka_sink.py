"""Events to Kafka in batches, as logging SDKs and collectors send them.

A Kafka message costs a consumer about 100 µs of its own (Faust, measured), decoding an event about
1 µs, so the sink gathers events for a short linger (or up to ``batch_events``) and sends them as one
JSON array. A batch holds the events of one room (key = room id), or with ``group_by="partition"``
the events of every room that lives in one partition (no key): with thousands of rooms each sending
an event a second, per-room batches stay near one event, per-partition batches fill up.

Either way one room always goes to one partition, and the client keeps a single request in flight
per connection, so a retried request cannot overtake the next one: every room's events arrive in the
order they were written.

Nothing is dropped silently: a message the client could not deliver after its own retries is sent
again at flush (then after newer messages of its room: the one case where order can differ);
what still fails makes :meth:`KafkaSink.close` raise :class:`DeliveryError` carrying the report and
the count of lost events.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from kafka import KafkaProducer
from kafka.errors import KafkaError

from detector.events import Event, EventFrame
from detector.kafka_io import require_broker
from producers.jsonl import encode_frame
from producers.sinks import SinkReport


class GroupBy(enum.StrEnum):
    ROOM = "room"
    PARTITION = "partition"


class Compression(enum.StrEnum):
    # kafka-python ships only gzip without extra native packages (and compresses at level 9).
    GZIP = "gzip"
    NONE = "none"


MAX_BATCH_EVENTS = 10_000
# Apache Kafka refuses record batches over message.max.bytes (1 MiB by default; Tansu takes 16 MiB and
# more), so a batch whose JSON would exceed this is split in two, as often as needed.
MAX_MESSAGE_BYTES = 1_000_000
# kafka-python 3 has no bounded send buffer, so the sink waits for acknowledgements (back-pressure)
# once this many payload bytes are sent but not yet acknowledged.
MAX_UNACKED_BYTES = 64 * 1024 * 1024


class DeliveryError(RuntimeError):
    """Some events could not be delivered; ``report`` says what was, ``lost_events`` what was not."""

    def __init__(self, message: str, report: SinkReport, lost_events: int) -> None:
        super().__init__(message)
        self.report = report
        self.lost_events = lost_events


@dataclass(slots=True)
class _Message:
    key: bytes | None
    partition: int | None
    payload: bytes
    events: int


class KafkaSink:
    """Write :class:`EventFrame`s (or lists of events) to a Kafka topic in batches.

    ``batch_events``: most events in one message; ``linger_ms``: longest a buffered event waits for
    its batch to fill; ``compression``: ``gzip`` or ``none``; ``partitions``: when given, room r goes
    to partition ``r % partitions`` (set it to the topic's partition count to match the detector's
    partitioning by room), else the client hashes the room key; ``group_by``: ``room`` or
    ``partition`` (needs ``partitions``), what one batch holds; ``single_events``: one event per
    message, keyed by room. ``resend_attempts``: how many times a message the client gave up on is
    sent again at flush.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        batch_events: int = 500,
        linger_ms: int = 50,
        compression: str = "gzip",
        partitions: int | None = None,
        single_events: bool = False,
        group_by: str = GroupBy.ROOM,
        resend_attempts: int = 2,
        delivery_timeout_ms: int = 30_000,
    ) -> None:
        if not 1 <= batch_events <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_events must be in 1..{MAX_BATCH_EVENTS}, got {batch_events}")
        if linger_ms < 0:
            raise ValueError(f"linger_ms must be >= 0, got {linger_ms}")
        if compression not in set(Compression):
            raise ValueError(f"compression must be one of {', '.join(Compression)}, got {compression!r}")
        if partitions is not None and partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if group_by not in set(GroupBy):
            raise ValueError(f"group_by must be one of {', '.join(GroupBy)}, got {group_by!r}")
        if group_by == GroupBy.PARTITION and partitions is None:
            raise ValueError("group_by='partition' needs partitions (the topic's partition count)")
        if delivery_timeout_ms < 1000:
            raise ValueError(f"delivery_timeout_ms must be >= 1000, got {delivery_timeout_ms}")
        if resend_attempts < 0:
            raise ValueError(f"resend_attempts must be >= 0, got {resend_attempts}")
        self.bootstrap = bootstrap
        self.topic = topic
        self.batch_events = 1 if single_events else batch_events
        self.linger_s = linger_ms / 1000
        self.partitions = partitions
        self.by_partition = group_by == GroupBy.PARTITION and not single_events
        self.resend_attempts = resend_attempts
        require_broker(bootstrap)
        # The client packs our messages per partition into record batches (one compression unit);
        # our batching already waited, so the client need not wait long.
        client_linger_ms = min(linger_ms, 5)
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            retries=5,
            # Tansu has no idempotent producer; one request in flight is what keeps retries in order.
            enable_idempotence=False,
            max_in_flight_requests_per_connection=1,
            compression_type=None if compression == "none" else compression,
            linger_ms=client_linger_ms,
            batch_size=512 * 1024,
            max_request_size=1024 * 1024,
            delivery_timeout_ms=delivery_timeout_ms,
            request_timeout_ms=min(delivery_timeout_ms - client_linger_ms, 10_000),
            max_block_ms=delivery_timeout_ms,
        )
        self._encoder = msgspec.json.Encoder()
        # Two locks so that the client's I/O thread, which runs the delivery callbacks, never waits for
        # a writer that holds the sending lock while send() blocks (on metadata, up to max_block_ms).
        self._lock = threading.Lock()  # buffers and sending
        self._counts_lock = threading.Lock()  # counters and the failed list
        # group (room or partition) -> encoded events waiting; dict order = order groups started
        # waiting, so the groups whose linger expired are always a prefix of it.
        self._buffers: dict[int, list[bytes]] = {}
        self._waiting_since: dict[int, float] = {}
        self._failed: list[_Message] = []
        self._last_error: BaseException | None = None
        self._events = self._messages = self._bytes = self._errors = 0
        self._sent_bytes = self._failed_bytes = 0
        self._started = time.monotonic()
        self._closed = False
        self._stop = threading.Event()
        self._linger_thread = threading.Thread(target=self._linger_loop, name="sink-linger", daemon=True)
        if not single_events:
            self._linger_thread.start()

    # -- writing --------------------------------------------------------------------------------

    def write(self, frame: EventFrame) -> None:
        try:
            lines = encode_frame(frame).split(b"\n")[:-1]
        except ValueError:  # values the columnar encoder cannot print exactly: encode event by event
            self.write_events(frame.to_events())
            return
        self.write_encoded(frame.room_id.tolist(), lines)

    def write_events(self, events: Sequence[Event]) -> None:
        encode = self._encoder.encode
        self.write_encoded([event.room_id for event in events], [encode(event) for event in events])

    def write_encoded(self, rooms: Sequence[int], encoded: Sequence[bytes]) -> None:
        """Events already encoded as JSON objects, in order, with the room of each."""
        if self._closed:
            raise RuntimeError("KafkaSink is closed")
        if len(rooms) != len(encoded):
            raise ValueError(f"{len(rooms)} rooms for {len(encoded)} encoded events")
        with self._lock:
            if self.batch_events == 1:
                for room, event in zip(rooms, encoded, strict=True):
                    self._send(self._message(room, [event]))
            else:
                self._buffer(rooms, encoded)
        with self._counts_lock:
            unacked = self._sent_bytes - self._bytes - self._failed_bytes
        if unacked > MAX_UNACKED_BYTES:
            self._producer.flush()

    def flush(self, timeout: float | None = None) -> None:
        """Send every buffered event, wait for the acknowledgements, resend what failed."""
        with self._lock:
            for group in list(self._buffers):
                self._send_group(group)
        self._producer.flush(timeout)
        for _ in range(self.resend_attempts):
            with self._counts_lock:
                retry, self._failed = self._failed, []
                self._sent_bytes -= self._failed_bytes
                self._failed_bytes = 0
            with self._lock:
                for message in retry:
                    self._send(message)
            if not retry:
                break
            self._producer.flush(timeout)

    def close(self) -> SinkReport:
        """Flush, close the client and report; raise :class:`DeliveryError` if any event was lost."""
        if self._closed:
            return self.report()
        self._stop.set()
        if self._linger_thread.is_alive():
            self._linger_thread.join()
        try:
            self.flush()
        finally:
            self._closed = True
            self._producer.close(timeout=self.linger_s + 5)
        report = self.report()
        lost = sum(m.events for m in self._failed)
        if lost:
            raise DeliveryError(
                f"{lost} events in {len(self._failed)} messages could not be delivered to topic "
                f"{self.topic!r} at {self.bootstrap} after {self.resend_attempts + 1} attempts "
                f"(last error: {self._last_error!r}); {report.events} events were delivered",
                report,
                lost,
            )
        return report

    def report(self) -> SinkReport:
        with self._counts_lock:
            return SinkReport(
                self._events, self._messages, self._bytes, self._errors, time.monotonic() - self._started
            )

    def __enter__(self) -> KafkaSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals (callers hold self._lock) -------------------------------------------------------

    def _buffer(self, rooms: Sequence[int], encoded: Sequence[bytes]) -> None:
        buffers = self._buffers
        partitions = self.partitions if self.by_partition else None
        for room, event in zip(rooms, encoded, strict=True):
            group = room if partitions is None else room % partitions
            buffer = buffers.get(group)
            if buffer is None:
                buffer = buffers[group] = []
                self._waiting_since[group] = time.monotonic()
            buffer.append(event)
            if len(buffer) >= self.batch_events:
                self._send_group(group)
        self._send_expired()

    def _send_group(self, group: int) -> None:
        parts = self._buffers.pop(group)
        del self._waiting_since[group]
        self._send_batch(group, parts)

    def _send_batch(self, group: int, parts: list[bytes]) -> None:
        if len(parts) > 1 and sum(map(len, parts)) + len(parts) + 1 > MAX_MESSAGE_BYTES:
            half = len(parts) // 2
            self._send_batch(group, parts[:half])
            self._send_batch(group, parts[half:])
        elif self.by_partition:
            self._send(_Message(None, group, b"[" + b",".join(parts) + b"]", len(parts)))
        else:
            self._send(self._message(group, parts))

    def _message(self, room: int, parts: list[bytes]) -> _Message:
        partition = None if self.partitions is None else room % self.partitions
        payload = parts[0] if self.batch_events == 1 else b"[" + b",".join(parts) + b"]"
        return _Message(str(room).encode(), partition, payload, len(parts))

    def _send_expired(self) -> None:
        deadline = time.monotonic() - self.linger_s
        for group, since in list(self._waiting_since.items()):
            if since > deadline:
                break
            self._send_group(group)

    def _send(self, message: _Message) -> None:
        try:
            future = self._producer.send(
                self.topic, value=message.payload, key=message.key, partition=message.partition
            )
        except KafkaError as exc:
            self._record_failure(message, exc)
            return
        with self._counts_lock:
            self._sent_bytes += len(message.payload)
        future.add_callback(self._on_delivered, message)
        future.add_errback(self._on_failed, message)

    def _record_failure(self, message: _Message, exc: BaseException) -> None:
        with self._counts_lock:
            self._errors += 1
            self._failed_bytes += len(message.payload)
            self._last_error = exc
            self._failed.append(message)

    # -- callbacks from the client's I/O thread ---------------------------------------------------

    def _on_delivered(self, message: _Message, _metadata: object) -> None:
        with self._counts_lock:
            self._events += message.events
            self._messages += 1
            self._bytes += len(message.payload)

    def _on_failed(self, message: _Message, exc: BaseException) -> None:
        self._record_failure(message, exc)

    def _linger_loop(self) -> None:
        while not self._stop.wait(max(self.linger_s / 2, 0.001)):
            with self._lock:
                self._send_expired()
