from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detector.events import EVENT_TYPE_CODE, EventFrame, decode_message, encode_jsonl
from producers.jsonl import encode_frame
from producers.model import LiveModel, ModelParams
from producers.sinks import JsonlSink
from tests.unit.live_helpers import START, concat, count, select, simulate


def _write(path, *, seed: int, minutes: int = 20, rate: float = 200) -> bytes:
    model = LiveModel(ModelParams(rate=rate), seed=seed, start=START, duration=timedelta(minutes=minutes))
    with JsonlSink(path) as sink:
        for frame in model.chunks():
            sink.write(frame)
    return path.read_bytes()


def test_same_seed_gives_byte_identical_file_and_another_seed_differs(tmp_path):
    first = _write(tmp_path / "a.jsonl.gz", seed=11)
    again = _write(tmp_path / "b.jsonl.gz", seed=11)
    other = _write(tmp_path / "c.jsonl.gz", seed=12)
    assert first == again
    assert first != other
    assert len(gzip.decompress(first).splitlines()) > 100_000


def test_events_are_in_time_order_within_the_span_and_decode_as_valid_events(tmp_path):
    duration = timedelta(minutes=30)
    frame = simulate("clean", duration=duration, rate=300)
    start_ms = int(START.timestamp() * 1000)
    assert np.all(np.diff(frame.ts) >= 0)
    assert frame.ts[0] >= start_ms and frame.ts[-1] < start_ms + duration.total_seconds() * 1000
    assert len(set(frame.event_id)) == len(frame)
    sample = frame.take(np.arange(0, len(frame), 97))
    events, invalid = decode_message(b"[" + encode_frame(sample).rstrip(b"\n").replace(b"\n", b",") + b"]")
    assert invalid == [] and len(events) == len(sample)
    assert len(np.unique(frame.type)) == 11  # every event type occurs


def test_columnar_encoder_writes_exactly_what_msgspec_writes():
    frame = simulate("clean", duration=timedelta(minutes=3), rate=300)
    frame.value[:5] = [0.0, 0.1, 12345678.9, 7.0, 99.5]
    assert encode_frame(frame) == encode_jsonl(frame.to_events())


def test_columnar_encoder_refuses_values_it_would_write_differently():
    frame = simulate("clean", duration=timedelta(minutes=1), rate=50)
    frame.value[0] = 1.25
    with pytest.raises(ValueError, match="tenths"):
        encode_frame(frame)
    frame.value[0] = 1.0
    frame.event_id[0] = 'bad"id'
    with pytest.raises(ValueError, match="event_id"):
        encode_frame(frame)


def test_daily_seasonality_follows_local_time():
    # IN is UTC+5:30: its night (02-05 local) against its evening peak (19-22 local), on the same day.
    frame = simulate("clean", duration=timedelta(hours=24), rate=20)
    night = count(
        frame,
        "view_start",
        after=timedelta(hours=20, minutes=30),
        before=timedelta(hours=23, minutes=30),
        region="IN",
    )
    evening = count(
        frame,
        "view_start",
        after=timedelta(hours=13, minutes=30),
        before=timedelta(hours=16, minutes=30),
        region="IN",
    )
    assert night < 0.35 * evening
    # The US (UTC-6) peaks at a different UTC hour than IN: the regions' curves are shifted, not shared.
    us_at_in_peak = count(
        frame,
        "view_start",
        after=timedelta(hours=13, minutes=30),
        before=timedelta(hours=16, minutes=30),
        region="US",
    )
    us_evening = count(frame, "view_start", after=timedelta(hours=1), before=timedelta(hours=4), region="US")
    assert us_at_in_peak < 0.7 * us_evening


def test_weekend_is_busier_than_weekday():
    params = ModelParams(rate=5)
    monday = LiveModel(params, seed=1, start=START, duration=timedelta(days=1))
    saturday = LiveModel(params, seed=1, start=START + timedelta(days=5), duration=timedelta(days=1))
    monday_n = sum(len(f) for f in monday.chunks())
    saturday_n = sum(len(f) for f in saturday.chunks())
    assert saturday_n > 1.1 * monday_n


def test_stalls_depend_on_network_and_platform():
    frame = simulate("clean", duration=timedelta(hours=1), rate=400)

    def stall_rate(**slice_: str) -> float:
        return count(frame, "stall", **slice_) / count(frame, "view_start", **slice_)

    assert stall_rate(network="3g") > 3 * stall_rate(network="wifi")
    assert stall_rate(platform="android") > 1.5 * stall_rate(platform="ios")
    stall_ms = frame.value[select(frame, "stall")]
    assert stall_ms.min() >= 1 and np.median(stall_ms) > 300


def test_sessions_gifts_and_streams_are_consistent():
    frame = simulate("clean", duration=timedelta(hours=2), rate=200)
    starts, ends = count(frame, "view_start"), count(frame, "view_end")
    assert 0.9 < ends / starts < 1.1  # sessions already running at the start end within the run too
    watch = frame.value[select(frame, "view_end")]
    assert watch.min() >= 0 and 30 < np.median(watch) < 300
    coins = frame.value[select(frame, "gift")]
    assert coins.min() >= 1 and coins.max() > 50 * np.median(coins)  # heavy tail
    stream_events = select(frame, "stream_start") | select(frame, "stream_end")
    assert np.array_equal(frame.user_id[stream_events], frame.creator_id[stream_events])
    _assert_no_viewer_events_while_offline(frame)


def _assert_no_viewer_events_while_offline(frame: EventFrame) -> None:
    start_code, end_code = EVENT_TYPE_CODE["stream_start"], EVENT_TYPE_CODE["stream_end"]
    viewer = ~np.isin(frame.type, [start_code, end_code, EVENT_TYPE_CODE["view_end"]])
    checked = 0
    for room in np.unique(frame.room_id[frame.type == end_code]):
        in_room = frame.room_id == room
        ended = frame.ts[in_room & (frame.type == end_code)]
        started = frame.ts[in_room & (frame.type == start_code)]
        for end in ended:
            restart = started[started > end]
            offline_until = restart[0] if restart.size else np.iinfo(np.int64).max
            assert not np.any(in_room & viewer & (frame.ts > end) & (frame.ts < offline_until))
            checked += 1
    assert checked > 10


def test_app_version_rolls_out_over_time():
    frame = simulate("clean", duration=timedelta(hours=30), rate=10)
    early = select(frame, "view_start", before=timedelta(hours=3))
    late = select(frame, "view_start", after=timedelta(hours=27))
    newest = frame.vocab["app_version"].index("32.1")
    share_early = np.mean(frame.dims["app_version"][early] == newest)
    share_late = np.mean(frame.dims["app_version"][late] == newest)
    assert share_early < 0.05 < 0.3 < share_late


def test_model_rejects_naive_start_and_unknown_slice_values():
    with pytest.raises(ValueError, match="time-zone aware"):
        LiveModel(ModelParams(), seed=1, start=datetime(2026, 1, 1), duration=timedelta(hours=1))
    from producers.model import RateEffect

    with pytest.raises(ValueError, match="unknown platform 'blackberry'"):
        LiveModel(
            ModelParams(),
            seed=1,
            start=datetime(2026, 1, 1, tzinfo=UTC),
            duration=timedelta(hours=1),
            effects=[RateEffect(0, 1, (), {"platform": "blackberry"}, 2.0)],
        )


def test_concat_of_chunks_keeps_every_event():
    model = LiveModel(ModelParams(rate=100), seed=3, start=START, duration=timedelta(minutes=5))
    frames = list(model.chunks())
    assert len(concat(frames)) == sum(len(f) for f in frames) > 0


def test_gzip_and_plain_sinks_hold_the_same_lines_and_report_them(tmp_path):
    model = LiveModel(ModelParams(rate=100), seed=4, start=START, duration=timedelta(minutes=5))
    frames = list(model.chunks())
    reports = []
    for name in ("e.jsonl", "e.jsonl.gz"):
        sink = JsonlSink(tmp_path / name)
        for frame in frames:
            sink.write(frame)
        reports.append(sink.close())
        with pytest.raises(ValueError, match="closed"):
            sink.write(frames[0])
    plain, packed = (tmp_path / "e.jsonl").read_bytes(), (tmp_path / "e.jsonl.gz").read_bytes()
    assert gzip.decompress(packed) == plain == b"".join(encode_frame(f) for f in frames)
    events = sum(len(f) for f in frames)
    assert [r.events for r in reports] == [events, events]
    assert [r.bytes for r in reports] == [len(plain), len(packed)]
