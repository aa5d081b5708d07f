from __future__ import annotations

from detector.events import EventFrame
from producers.kafka_sink import frame_events
from tests.synthetic import synthetic_events


def test_frame_events_round_trips_a_frame() -> None:
    events = synthetic_events(500, seed=3)
    assert frame_events(EventFrame.from_events(events)) == events
