"""Exactly-once application of a partition's messages to its state, across crashes and rebalances.

A stage's state for one partition is a snapshot that records the offset of the last message it
includes. The consumer's committed offset never passes a snapshot (messages are acked only after the
snapshot holding them is durable), but Faust or an operator could still move it, and a table restored
from a changelog can be older than the newest snapshot. So the stream does not trust the fetch
position: :class:`OffsetCursor` accepts only the next offset after the last applied one, drops
repeats, and asks for a seek back when the fetch position jumped ahead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    APPLY = "apply"  # the next offset: fold it, then call applied()
    REPEAT = "repeat"  # already applied (a redelivery after seek or rebalance): drop
    GAP = "gap"  # ahead of the next offset: seek back to cursor.next_offset, then drop
    STALE = "stale"  # ahead while a seek back is under way (messages fetched before the seek): drop


@dataclass(slots=True)
class OffsetCursor:
    """Where a partition's state stands: ``next_offset`` is the first offset not yet applied."""

    next_offset: int
    seek_retry_s: float = 2.0
    _seek_started: float | None = None

    def check(self, offset: int, now: float) -> Verdict:
        if offset == self.next_offset:
            self._seek_started = None
            return Verdict.APPLY
        if offset < self.next_offset:
            return Verdict.REPEAT
        if self._seek_started is not None and now - self._seek_started < self.seek_retry_s:
            return Verdict.STALE
        self._seek_started = now
        return Verdict.GAP

    def applied(self, offset: int) -> None:
        self.next_offset = offset + 1

    def skip_to(self, offset: int) -> None:
        """The log no longer holds ``next_offset`` (retention): continue from its first offset."""
        self.next_offset = offset
        self._seek_started = None
