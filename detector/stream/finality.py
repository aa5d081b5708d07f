"""When is a window final? When every source partition's watermark has passed its end.

Stage 1 publishes each source partition's watermark to every stage 2 partition (after that
partition's partials, so a watermark never overtakes the partials it covers) and, on a timer, a
heartbeat with an ``idle`` flag: a partition that received no message for ``idle_timeout_s`` of wall
clock is idle and does not hold windows back (as Flink's source idleness). A partition never heard
of blocks finality until its owner's first heartbeat, which arrives within one heartbeat interval.

``final_through_ms`` only grows: a partial for a window ending at or before it arrives too late (an
idle partition woke up with old data, or a partial repeated after a stage 1 crash) and is dropped and
counted, never merged into a window that was already scored.
"""

from __future__ import annotations

from detector.stream.records import FinalityState


class FinalityTracker:
    def __init__(self, source_partitions: int, state: FinalityState | None = None) -> None:
        if source_partitions < 1:
            raise ValueError(f"source_partitions must be >= 1, got {source_partitions}")
        self.source_partitions = source_partitions
        self.state = state if state is not None else FinalityState()

    @property
    def final_through_ms(self) -> int | None:
        return self.state.final_through_ms

    def observe(self, source_partition: int, watermark_ms: int | None, *, idle: bool | None = None) -> None:
        """Record a source partition's watermark (kept monotonic: a restarted owner replays from an
        older snapshot and reports less than it had already published) and, if given, its idleness."""
        known = self.state.watermarks.get(source_partition)
        if watermark_ms is not None and (known is None or watermark_ms > known):
            known = watermark_ms
        self.state.watermarks[source_partition] = known
        if idle is not None:
            idle_set = set(self.state.idle)
            (idle_set.add if idle else idle_set.discard)(source_partition)
            self.state.idle = sorted(idle_set)

    def is_late(self, window_end_ms: int) -> bool:
        final = self.state.final_through_ms
        return final is not None and window_end_ms <= final

    def advance(self) -> int | None:
        """Move ``final_through_ms`` forward if the watermarks allow; return it when it moved."""
        boundary = self._boundary()
        if boundary is None or (
            self.state.final_through_ms is not None and boundary <= self.state.final_through_ms
        ):
            return None
        self.state.final_through_ms = boundary
        return boundary

    def _boundary(self) -> int | None:
        idle = set(self.state.idle)
        active: list[int | None] = []
        for partition in range(self.source_partitions):
            if partition in idle:
                continue
            if partition not in self.state.watermarks:
                return None  # never heard of: its owner has not reported yet
            active.append(self.state.watermarks[partition])
        if active:
            if any(w is None for w in active):
                return None
            return min(w for w in active if w is not None)
        known = [w for w in self.state.watermarks.values() if w is not None]
        return max(known) if known else None
