from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from producers.model import ROOM_ID_BASE
from producers.scenarios import (
    INCIDENT_KINDS,
    METRICS,
    ScenarioError,
    available_scenarios,
    load_scenario,
    read_labels,
    write_labels,
)
from tests.unit.live_helpers import START, count, select, simulate

RATE = 250
SPAN = {"after": timedelta(hours=1), "before": timedelta(hours=1, minutes=30)}
BEFORE = {"after": timedelta(minutes=20), "before": timedelta(minutes=50)}
LONGEST = timedelta(hours=2, minutes=45)
_clean_run: list = []


def clean(duration: timedelta):
    """The clean run with the same seed; shorter runs are prefixes of it (same chunks, same draws)."""
    assert duration <= LONGEST
    if not _clean_run:
        _clean_run.append(simulate("clean", duration=LONGEST, rate=RATE))
    return _clean_run[0]


def within_normal_range(observed: float, baseline: float, tolerance: float = 0.25) -> bool:
    return abs(observed - baseline) <= tolerance * baseline


def stall_rate(frame, **where) -> float:
    return count(frame, "stall", **where) / count(frame, "view_start", **where)


def test_stall_spike_hits_android_on_one_version_only():
    duration = timedelta(hours=1, minutes=40)
    frame, base = simulate("stall_spike", duration=duration, rate=RATE), clean(duration)
    target = {"platform": "android", "app_version": "32.0"}
    assert stall_rate(frame, **SPAN, **target) > 4 * stall_rate(base, **SPAN, **target)
    assert within_normal_range(stall_rate(frame, **BEFORE, **target), stall_rate(base, **BEFORE, **target))
    for other in ({"platform": "ios"}, {"platform": "android", "app_version": "31.8"}, {"platform": "web"}):
        assert within_normal_range(stall_rate(frame, **SPAN, **other), stall_rate(base, **SPAN, **other))
    spike_ms = np.percentile(frame.value[select(frame, "stall", **SPAN, **target)], 95)
    normal_ms = np.percentile(base.value[select(base, "stall", **SPAN, **target)], 95)
    assert spike_ms > 1.5 * normal_ms


def test_compound_incident_needs_both_dimensions():
    duration = timedelta(hours=1, minutes=40)
    frame, base = simulate("compound", duration=duration, rate=RATE), clean(duration)
    assert stall_rate(frame, **SPAN, region="IN", network="3g") > 3 * stall_rate(
        base, **SPAN, region="IN", network="3g"
    )
    for other in ({"region": "IN", "network": "wifi"}, {"region": "BR", "network": "3g"}, {"region": "US"}):
        assert within_normal_range(stall_rate(frame, **SPAN, **other), stall_rate(base, **SPAN, **other), 0.3)


def test_gift_outage_drops_revenue_in_one_region():
    duration = timedelta(hours=1, minutes=40)
    frame, base = simulate("gift_outage", duration=duration, rate=RATE), clean(duration)

    def revenue(f, **where) -> float:
        return float(f.value[select(f, "gift", **where)].sum())

    assert revenue(frame, **SPAN, region="BR") < 0.1 * revenue(base, **SPAN, region="BR")
    # Revenue is heavy-tailed, so other regions are compared by gift counts.
    for region in ("US", "IN", "MX"):
        assert within_normal_range(
            count(frame, "gift", **SPAN, region=region), count(base, "gift", **SPAN, region=region)
        )
    assert within_normal_range(
        count(frame, "comment", **SPAN, region="BR"), count(base, "comment", **SPAN, region="BR")
    )


def test_viral_surge_multiplies_one_room():
    duration = timedelta(hours=1, minutes=50)
    frame, base = simulate("viral_surge", duration=duration, rate=RATE), clean(duration)
    span = {"after": timedelta(hours=1), "before": timedelta(hours=1, minutes=40)}
    room = ROOM_ID_BASE + 25  # the scenario's room_rank
    in_room = frame.room_id == room
    for kind in ("view_start", "comment", "gift"):
        surged = int((select(frame, kind, **span) & in_room).sum())
        normal = int((select(base, kind, **span) & (base.room_id == room)).sum())
        assert surged > 5 * max(normal, 1), kind
    assert count(frame, "view_start", **span, creator_tier="mid") > 1.3 * count(
        base, "view_start", **span, creator_tier="mid"
    )
    assert within_normal_range(
        count(frame, "view_start", **span, creator_tier="top"),
        count(base, "view_start", **span, creator_tier="top"),
        0.15,
    )


def test_comment_bot_flood_comes_from_few_users():
    duration = timedelta(hours=1, minutes=30)
    frame, base = simulate("comment_bot_flood", duration=duration, rate=RATE), clean(duration)
    span = {"after": timedelta(hours=1), "before": timedelta(hours=1, minutes=20)}
    comments = select(frame, "comment", **span, region="ID")
    assert comments.sum() > 4 * count(base, "comment", **span, region="ID")
    _, per_user = np.unique(frame.user_id[comments], return_counts=True)
    assert np.sort(per_user)[-40:].sum() > 0.7 * comments.sum()  # 40 bots write most comments
    assert within_normal_range(
        count(frame, "comment", **span, region="US"), count(base, "comment", **span, region="US")
    )


def test_slow_decline_drifts_down_then_recovers():
    duration = timedelta(hours=2, minutes=45)
    frame, base = simulate("slow_decline", duration=duration, rate=RATE), clean(duration)

    def ratio(after: timedelta, before: timedelta) -> float:
        where = {"after": after, "before": before, "platform": "ios"}
        return count(frame, "view_start", **where) / count(base, "view_start", **where)

    h = timedelta(hours=1)
    first, last = (
        ratio(h, h + timedelta(minutes=20)),
        ratio(h + timedelta(minutes=70), h + timedelta(minutes=90)),
    )
    assert first > 0.8 and last < 0.65 and last < first - 0.2
    assert ratio(timedelta(hours=2, minutes=32), duration) > 0.85
    assert within_normal_range(
        count(frame, "view_start", **SPAN, platform="android"),
        count(base, "view_start", **SPAN, platform="android"),
        0.1,
    )


def test_level_shift_stays_after_the_labelled_span():
    duration = timedelta(hours=2)
    frame, base = simulate("level_shift", duration=duration, rate=RATE), clean(duration)
    later = {"after": timedelta(hours=1, minutes=30), "before": duration}
    for window in (SPAN, later):
        assert count(frame, "report", **window, region="DE") > 2 * count(
            base, "report", **window, region="DE"
        )
    assert within_normal_range(
        count(frame, "report", **SPAN, region="US"), count(base, "report", **SPAN, region="US"), 0.3
    )


def test_ingest_gap_has_no_events_from_the_region():
    duration = timedelta(hours=1, minutes=30)
    frame, base = simulate("ingest_gap", duration=duration, rate=RATE), clean(duration)
    gap = {"after": timedelta(hours=1), "before": timedelta(hours=1, minutes=20)}
    assert count(frame, **gap, region="JP") == 0
    assert count(base, **gap, region="JP") > 1000
    after = {"after": timedelta(hours=1, minutes=20), "before": duration}
    assert within_normal_range(count(frame, **after, region="JP"), count(base, **after, region="JP"), 0.15)
    assert within_normal_range(count(frame, **gap, region="US"), count(base, **gap, region="US"), 0.1)


def test_labels_describe_the_scenario(tmp_path):
    scenario = load_scenario("all_incidents")
    labels = scenario.labels(START, timedelta(hours=6))
    path = tmp_path / "labels.jsonl"
    write_labels(labels, path)
    assert read_labels(path) == labels
    assert [label.incident_id for label in labels] == [i.id for i in scenario.incidents]
    assert {label.kind for label in labels} == set(INCIDENT_KINDS)
    stall = labels[0]
    assert stall.start == "2026-11-23T01:00:00Z" and stall.end == "2026-11-23T01:20:00Z"
    assert stall.slices == [{"platform": "android", "app_version": "32.0"}]
    assert stall.metrics == ["stall_rate", "stall_p95_ms"]
    viral = next(label for label in labels if label.kind == "viral_surge")
    assert viral.slices == [{"creator_tier": "mid"}]
    assert all(set(label.metrics) <= set(METRICS) and label.description for label in labels)


def test_labels_keep_only_incidents_that_begin_within_the_run():
    labels = load_scenario("all_incidents").labels(START, timedelta(hours=1, minutes=10))
    assert [label.incident_id for label in labels] == ["stall-android-32.0"]
    assert labels[0].end == "2026-11-23T01:10:00Z"


@pytest.mark.parametrize("name", ["clean", "demo", "all_incidents", *INCIDENT_KINDS])
def test_every_shipped_scenario_loads(name):
    assert name in available_scenarios()
    scenario = load_scenario(name)
    assert scenario.name == name and scenario.description
    assert (name == "clean") == (not scenario.incidents)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("incidents:\n  - {id: x, kind: meteor_strike, start: 1h, end: 2h}\n", "meteor_strike"),
        (
            "incidents:\n  - {id: x, kind: gift_outage, start: 1h, end: 2h}\n",
            "incidents.0.gift_outage.region: Field required",
        ),
        (
            "incidents:\n  - {id: x, kind: ingest_gap, region: JP, start: 2h, end: 1h}\n",
            "end (1:00:00) must be after start",
        ),
        (
            "incidents:\n  - {id: x, kind: ingest_gap, region: XX, start: 1h, end: 2h}\n",
            "unknown region 'XX'",
        ),
        (
            "incidents:\n  - {id: x, kind: stall_spike, slice: {os: linux}, start: 1h, end: 2h}\n",
            "unknown dimension 'os'",
        ),
        (
            "incidents:\n  - {id: x, kind: compound, slice: {region: IN}, start: 1h, end: 2h}\n",
            "at least two dimensions",
        ),
        (
            "incidents:\n  - {id: x, kind: ingest_gap, region: JP, start: soon, end: 2h}\n",
            "not a duration: 'soon'",
        ),
        ("model: {rate: -5}\nincidents: []\n", "model.rate"),
        ("incidents: [\n", "not valid YAML"),
    ],
)
def test_bad_scenario_files_name_the_file_and_field(tmp_path, body, message):
    path = tmp_path / "broken.yaml"
    path.write_text(body)
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_unknown_scenario_name_lists_the_known_ones():
    with pytest.raises(ScenarioError, match=r"known names: .*stall_spike"):
        load_scenario("no_such_scenario")
