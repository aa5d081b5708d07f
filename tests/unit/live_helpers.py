"""Small helpers for tests of the Live model: run a scenario into one frame, count events in a slice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from detector.events import DIMENSIONS, EVENT_TYPE_CODE, EventFrame
from producers.model import LiveModel
from producers.scenarios import Scenario, load_scenario

START = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


def concat(frames: list[EventFrame]) -> EventFrame:
    first = frames[0]
    return EventFrame(
        event_id=[i for f in frames for i in f.event_id],
        ts=np.concatenate([f.ts for f in frames]),
        type=np.concatenate([f.type for f in frames]),
        room_id=np.concatenate([f.room_id for f in frames]),
        user_id=np.concatenate([f.user_id for f in frames]),
        creator_id=np.concatenate([f.creator_id for f in frames]),
        dims={d: np.concatenate([f.dims[d] for f in frames]) for d in DIMENSIONS},
        vocab=first.vocab,
        value=np.concatenate([f.value for f in frames]),
    )


def simulate(scenario: str | Scenario, *, seed: int = 7, duration: timedelta, rate: float) -> EventFrame:
    chosen = (load_scenario(scenario) if isinstance(scenario, str) else scenario).with_rate(rate)
    model = LiveModel(
        chosen.model, seed=seed, start=START, duration=duration, effects=chosen.effects(START, duration)
    )
    return concat(list(model.chunks()))


def select(
    frame: EventFrame,
    event_type: str | None = None,
    *,
    after: timedelta = timedelta(0),
    before: timedelta | None = None,
    **slice_: str,
) -> np.ndarray:
    """Boolean mask of events of a type, in [START + after, START + before), in a slice."""
    start_ms = int(START.timestamp() * 1000)
    mask = frame.ts >= start_ms + after.total_seconds() * 1000
    if before is not None:
        mask &= frame.ts < start_ms + before.total_seconds() * 1000
    if event_type is not None:
        mask &= frame.type == EVENT_TYPE_CODE[event_type]
    for dimension, value in slice_.items():
        mask &= frame.dims[dimension] == frame.vocab[dimension].index(value)
    return mask


def count(frame: EventFrame, event_type: str | None = None, **kwargs: object) -> int:
    return int(select(frame, event_type, **kwargs).sum())  # type: ignore[arg-type]
