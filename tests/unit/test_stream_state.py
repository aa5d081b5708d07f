"""The pure parts of the stream app: offset cursor, finality, wire records, settings, components."""

from __future__ import annotations

import base64

import msgspec
import numpy as np
import pytest

from detector.events import EventFrame
from detector.stream.app import ComponentsError, load_components
from detector.stream.contracts import ClosedPartial
from detector.stream.finality import FinalityTracker
from detector.stream.records import (
    PartialRecord,
    Stage1Snapshot,
    WatermarkRecord,
    dead_letter,
    decode_stage1_snapshot,
    decode_window_record,
    encode_snapshot,
    encode_window_record,
)
from detector.stream.settings import StreamSettings
from detector.stream.state import OffsetCursor, Verdict
from tests.stream_double import DoubleConfig, RegionCountComponents, RegionCountMerger
from tests.stream_harness import BASE_TS, make_events


class TestOffsetCursor:
    def test_applies_in_order_and_drops_repeats(self) -> None:
        cursor = OffsetCursor(next_offset=5)
        assert cursor.check(4, now=0.0) is Verdict.REPEAT
        assert cursor.check(5, now=0.0) is Verdict.APPLY
        cursor.applied(5)
        assert cursor.check(5, now=0.0) is Verdict.REPEAT
        assert cursor.check(6, now=0.0) is Verdict.APPLY

    def test_gap_asks_for_one_seek_then_waits_for_the_offset(self) -> None:
        cursor = OffsetCursor(next_offset=10, seek_retry_s=2.0)
        assert cursor.check(14, now=0.0) is Verdict.GAP
        # Messages fetched before the seek keep arriving: dropped without seeking again.
        assert cursor.check(15, now=1.0) is Verdict.STALE
        assert cursor.check(10, now=1.5) is Verdict.APPLY
        cursor.applied(10)
        assert cursor.check(12, now=1.6) is Verdict.GAP

    def test_gap_seeks_again_when_the_first_seek_did_not_land(self) -> None:
        cursor = OffsetCursor(next_offset=0, seek_retry_s=2.0)
        assert cursor.check(3, now=0.0) is Verdict.GAP
        assert cursor.check(4, now=2.5) is Verdict.GAP

    def test_retention_moves_the_cursor_to_the_log_start(self) -> None:
        cursor = OffsetCursor(next_offset=0)
        assert cursor.check(7, now=0.0) is Verdict.GAP
        cursor.skip_to(7)
        assert cursor.check(7, now=0.0) is Verdict.APPLY


class TestFinality:
    def test_partitions_never_heard_of_or_without_data_block(self) -> None:
        tracker = FinalityTracker(3)
        tracker.observe(0, 120_000)
        tracker.observe(1, 60_000)
        assert tracker.advance() is None  # partition 2 never reported
        tracker.observe(2, None, idle=False)
        assert tracker.advance() is None  # reported, but has no data yet
        tracker.observe(2, 180_000)
        assert tracker.advance() == 60_000
        assert tracker.is_late(60_000) and not tracker.is_late(120_000)

    def test_idle_partition_stops_holding_windows_and_wakes_up(self) -> None:
        tracker = FinalityTracker(2)
        tracker.observe(0, 300_000, idle=False)
        tracker.observe(1, 60_000, idle=True)
        assert tracker.advance() == 300_000
        tracker.observe(1, 60_000, idle=False)
        assert tracker.advance() is None  # final_through never moves back
        assert tracker.final_through_ms == 300_000

    def test_all_idle_finalises_what_every_partition_has_seen(self) -> None:
        tracker = FinalityTracker(2)
        tracker.observe(0, 120_000, idle=True)
        tracker.observe(1, None, idle=True)
        assert tracker.advance() == 120_000

    def test_watermarks_are_monotonic_across_a_restarted_owner(self) -> None:
        tracker = FinalityTracker(1)
        tracker.observe(0, 240_000)
        tracker.observe(0, 120_000)  # replaying from an older snapshot
        assert tracker.advance() == 240_000

    def test_state_survives_a_snapshot(self) -> None:
        tracker = FinalityTracker(2)
        tracker.observe(0, 60_000, idle=True)
        tracker.observe(1, 120_000)
        tracker.advance()
        raw = msgspec.msgpack.encode(tracker.state)
        restored = FinalityTracker(2, msgspec.msgpack.decode(raw, type=type(tracker.state)))
        assert restored.state == tracker.state

    def test_rejects_zero_partitions(self) -> None:
        with pytest.raises(ValueError, match="source_partitions"):
            FinalityTracker(0)


def test_window_records_round_trip() -> None:
    for record in (PartialRecord(3, "gifts", 60_000, 120_000, b"\x00\x01"), WatermarkRecord(1, None, True)):
        assert decode_window_record(encode_window_record(record)) == record


def test_snapshot_with_unknown_version_is_refused() -> None:
    raw = encode_snapshot(Stage1Snapshot(offset=9, folder=b"x", version=99))
    with pytest.raises(ValueError, match="version 99"):
        decode_stage1_snapshot(raw)
    assert decode_stage1_snapshot(encode_snapshot(Stage1Snapshot(9, b"x"))).offset == 9


def test_dead_letter_keeps_text_or_base64_and_the_source() -> None:
    text = msgspec.json.decode(
        dead_letter(
            "schema",
            "Object missing required field `ts`",
            b'{"a":1}',
            topic="live-events",
            partition=2,
            offset=40,
        )
    )
    assert text["raw"] == '{"a":1}' and text["raw_encoding"] == "utf-8"
    assert text["source"] == {"topic": "live-events", "partition": 2, "offset": 40, "item": None}
    binary = msgspec.json.decode(
        dead_letter("not_json", "bad", b"\xff\x00", topic="t", partition=0, offset=1)
    )
    assert base64.b64decode(binary["raw"]) == b"\xff\x00" and binary["raw_encoding"] == "base64"


def test_settings_from_env_name_the_bad_variable() -> None:
    settings = StreamSettings.from_env(
        {"LIVEWATCH_BOOTSTRAP": "k:9092", "LIVEWATCH_STREAM_SOURCE_PARTITIONS": "16"}
    )
    assert settings.bootstrap == "k:9092" and settings.source_partitions == 16
    assert StreamSettings.from_env(settings.to_env()) == settings
    with pytest.raises(ValueError, match="LIVEWATCH_STREAM_TAKE_MAX"):
        StreamSettings.from_env({"LIVEWATCH_STREAM_TAKE_MAX": "many"})


def test_components_spec_errors_are_clear() -> None:
    with pytest.raises(ComponentsError, match="--components"):
        load_components("")
    with pytest.raises(ComponentsError, match="module:factory"):
        load_components("tests.stream_double")
    with pytest.raises(ComponentsError, match="cannot load"):
        load_components("tests.stream_double:nope")
    assert isinstance(load_components("tests.stream_double:components"), RegionCountComponents)


class TestRegionCountDouble:
    """The test double must itself be right, or the stream tests prove nothing."""

    def test_folder_counts_closes_and_rejects_late_and_future(self) -> None:
        now_ms = BASE_TS + 3_600_000
        components = RegionCountComponents(DoubleConfig(window_ms=60_000), wall_clock_ms=lambda: now_ms)
        folder = components.new_folder(0)
        events = make_events(np.random.default_rng(3), 300, windows=3, window_ms=60_000)
        report = folder.add(EventFrame.from_events(events))
        assert report.accepted == 300
        partials = folder.take_closed()  # windows 0 and 1 closed by the max event time in window 2
        assert {p.window_start_ms for p in partials} == {BASE_TS, BASE_TS + 60_000}
        assert folder.watermark_ms == BASE_TS + 120_000
        counted = sum(msgspec.json.decode(p.payload) for p in partials)
        assert counted == sum(1 for e in events if e.ts < BASE_TS + 120_000)
        late_and_future = [
            msgspec.structs.replace(events[0], event_id="late"),
            msgspec.structs.replace(events[0], event_id="future", ts=now_ms + 3_600_001),
        ]
        report = folder.add(EventFrame.from_events(late_and_future))
        assert report.accepted == 0 and list(report.late_rows) == [0] and list(report.future_rows) == [1]
        restored = components.load_folder(folder.to_bytes())
        assert restored.to_bytes() == folder.to_bytes() and restored.watermark_ms == folder.watermark_ms

    def test_merger_replaces_a_repeated_partial(self) -> None:
        merger = RegionCountMerger()
        merger.put(0, ClosedPartial("eu", 0, 60_000, b"5"))
        merger.put(1, ClosedPartial("eu", 0, 60_000, b"7"))
        merger.put(0, ClosedPartial("eu", 0, 60_000, b"5"))  # repeated after a stage 1 crash
        merger = RegionCountMerger.from_bytes(merger.to_bytes())
        assert merger.pop_final(0) == []
        [window] = merger.pop_final(60_000)
        assert window.count == 12 and merger.pop_final(60_000) == []


def test_fetch_wait_reaches_aiokafka() -> None:
    import asyncio

    from detector.stream.app import create_stream_app

    async def build() -> int:
        stream = create_stream_app(
            StreamSettings(fetch_max_wait_ms=77, components="tests.stream_double:components")
        )
        thread = stream.app.consumer._new_consumer_thread()  # type: ignore[attr-defined]
        consumer = thread._create_worker_consumer(stream.app.transport)
        # aiokafka builds its fetcher from this attribute when the consumer starts.
        return int(consumer._fetch_max_wait_ms)

    assert asyncio.run(build()) == 77


def test_worker_command_names_a_missing_setting(monkeypatch, tmp_path) -> None:
    from typer.testing import CliRunner

    from detector.cli import app

    monkeypatch.delenv("LIVEWATCH_STREAM_COMPONENTS", raising=False)
    result = CliRunner().invoke(app, ["worker", "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code == 2 and "--components" in result.output
    result = CliRunner().invoke(app, ["worker", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "--config" in result.output
    monkeypatch.setenv("LIVEWATCH_STREAM_WEB_PORT", "eighty")
    result = CliRunner().invoke(app, ["worker", "--components", "tests.stream_double:components"])
    assert result.exit_code == 2 and "LIVEWATCH_STREAM_WEB_PORT" in result.output
