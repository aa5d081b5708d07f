from __future__ import annotations

import gzip
import itertools

import numpy as np
import pytest
from typer.testing import CliRunner

from detector.cli import app
from detector.events import decode_event
from producers.cli import PACE_STEP_SECONDS, Pacer, parse_speed
from producers.scenarios import read_labels
from tests.unit.live_helpers import START, simulate

runner = CliRunner()
BASE = ["produce", "--seed", "5", "--start", "2026-11-23T00:00:00Z", "--rate", "50"]


def test_produce_writes_events_and_labels(tmp_path):
    out, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    result = runner.invoke(
        app, [*BASE, "--scenario", "demo", "--duration", "15m", "--out", str(out), "--labels", str(labels)]
    )
    assert result.exit_code == 0, result.output
    lines = out.read_bytes().splitlines()
    events = [decode_event(line) for line in lines]
    assert len(events) > 10_000
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(events))
    assert f"produced {len(events):,} events" in result.output
    found = read_labels(labels)
    # demo.yaml has four incidents; two begin within 15 minutes.
    assert [label.incident_id for label in found] == ["demo-stall-android-32.0", "demo-gift-outage-BR"]
    assert found[0].start == "2026-11-23T00:05:00Z" and found[0].end == "2026-11-23T00:10:00Z"


def test_produce_is_byte_identical_for_the_same_seed(tmp_path):
    paths = [tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"]
    for path in paths:
        result = runner.invoke(
            app, [*BASE, "--scenario", "stall_spike", "--duration", "10m", "--out", str(path)]
        )
        assert result.exit_code == 0, result.output
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert len(gzip.decompress(paths[0].read_bytes()).splitlines()) > 10_000


def test_scenario_given_as_a_path(tmp_path):
    scenario = tmp_path / "mine.yaml"
    scenario.write_text("incidents:\n  - {id: gap, kind: ingest_gap, region: US, start: 0s, end: 10m}\n")
    out = tmp_path / "events.jsonl"
    result = runner.invoke(app, [*BASE, "--scenario", str(scenario), "--duration", "10m", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert b'"region":"US"' not in out.read_bytes()
    assert b'"region":"BR"' in out.read_bytes()


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (["--duration", "5x"], "--duration", "not a duration"),
        (["--duration", "0s"], "--duration", "must be positive"),
        (["--speed", "fast"], "--speed", "not realtime, max or a factor"),
        (["--speed", "-3"], "--speed", "positive"),
        (["--start", "yesterday"], "--start", "not an ISO 8601 time"),
        (["--out", "events.csv"], "--out", "neither kafka nor"),
        (["--out", "/no/such/dir/e.jsonl"], "--out", "does not exist"),
        (["--labels", "/no/such/dir/labels.jsonl"], "--labels", "does not exist"),
        (["--scenario", "no_such_scenario"], "--scenario", "not found"),
        (["--rate", "0"], "--rate", "must be positive"),
        (["--batch-events", "0"], "--batch-events", "at least 1"),
        (["--partitions", "0"], "--partitions", "at least 1"),
        (["--compression", "zip"], "--compression", "not gzip or none"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(tmp_path, args, option, message):
    defaults = {"--out": str(tmp_path / "e.jsonl"), "--duration": "1m"}
    for flag, value in defaults.items():
        if flag not in args:
            args = [*args, flag, value]
    result = runner.invoke(app, [*BASE, *args])
    assert result.exit_code == 2
    assert option in result.output and message in result.output
    assert not (tmp_path / "e.jsonl").exists()


def test_bad_scenario_file_is_a_usage_error_naming_file_and_field(tmp_path):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(
        "incidents:\n  - {id: x, kind: stall_spike, slice: {platform: blackberry}, start: 1h, end: 2h}\n"
    )
    result = runner.invoke(
        app, [*BASE, "--scenario", str(scenario), "--duration", "1m", "--out", str(tmp_path / "e.jsonl")]
    )
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "blackberry" in result.output


def test_parse_speed():
    assert parse_speed("max") is None
    assert parse_speed("realtime") == 1.0
    assert parse_speed("60") == parse_speed("60x") == 60.0
    for bad in ("0", "nan", "inf", "quick"):
        with pytest.raises(ValueError):
            parse_speed(bad)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_spreads_events_over_wall_time_at_the_speed_factor():
    from datetime import timedelta

    frame = simulate("clean", duration=timedelta(minutes=2), rate=100)
    clock = FakeClock()
    start_ms = int(START.timestamp() * 1000)
    pacer = Pacer(30.0, start_ms, clock=clock, sleep=clock.sleep)
    pieces = pacer.pieces(frame)
    assert sum(len(p) for p in pieces) == len(frame)
    assert np.array_equal(np.concatenate([p.ts for p in pieces]), frame.ts)
    wall_at_start = []
    for piece in pieces:
        pacer.wait_for(int(piece.ts[0]))
        wall_at_start.append(clock.now)
        # A piece never starts before its event time, scaled, and spans at most one pace step.
        assert clock.now >= (piece.ts[0] - start_ms) / 1000 / 30.0
        assert (piece.ts[-1] - piece.ts[0]) / 1000 / 30.0 <= PACE_STEP_SECONDS
    # Two minutes of events at 30x take four seconds of wall time.
    assert 3.8 < clock.now <= 4.0
