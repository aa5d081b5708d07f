from __future__ import annotations

import numpy as np
import pytest

from detector.aggregation.windows import Aggregator, ClosedWindow
from detector.alerting.lifecycle import AlertStatus
from detector.config import config_from_dict
from detector.scoring.window_scorer import StepResult, WindowScorer
from tests.unit.window_frames import (
    DROP_AT,
    REGIONS,
    closed_windows,
    config,
    gift_frame,
    replay,
    window_index,
)


def test_drop_in_one_region_fires_for_that_region_and_the_total_only() -> None:
    steps = replay(WindowScorer(config()), "eu")
    fired = [
        (window_index(int(a.window_start.timestamp() * 1000)), a.slice, a.kind, a.direction)
        for s in steps
        for a in s.alerts
        if a.status is AlertStatus.FIRING
    ]
    assert fired == [
        (DROP_AT + 1, {}, "level_shift", "down"),
        (DROP_AT + 1, {"region": "eu"}, "level_shift", "down"),
    ]
    # Re-based onto the new level (log-space scales widened for the lower count), both resolve for good.
    resolved = [
        (window_index(int(a.window_start.timestamp() * 1000)), a.slice)
        for s in steps
        for a in s.alerts
        if a.status is AlertStatus.RESOLVED
    ]
    assert resolved == [(DROP_AT + 14, {}), (DROP_AT + 14, {"region": "eu"})]
    first = steps[DROP_AT].anomalies
    assert [(a["slice"], a["kind"], a["direction"]) for a in first] == [
        ({}, "dip", "down"),
        ({"region": "eu"}, "dip", "down"),
    ]
    assert all(a["value"] < a["lower"] and a["window_start"] == "2026-01-02T06:00:00Z" for a in first)


def test_clean_run_raises_no_alert_and_no_anomaly_after_learning() -> None:
    steps = replay(WindowScorer(config()), None)
    assert [a for s in steps for a in s.alerts] == []
    # lower_threshold 0.6 is |z| >= 2.85: about 0.4 % of normal windows, nothing more.
    anomalies = [a for s in steps[288:] for a in s.anomalies]
    assert len(anomalies) <= 0.01 * 4 * (len(steps) - 288)
    scores = steps[-1].scores[0]
    assert sorted(scores.keys) == [
        ("gifts", ()),
        ("gifts", (("region", "apac"),)),
        ("gifts", (("region", "eu"),)),
        ("gifts", (("region", "us"),)),
    ]
    assert scores.learning is not None and not scores.learning.any()
    assert scores.volume is not None and np.array_equal(scores.volume, scores.value)


def test_one_sided_metric_ignores_the_other_direction() -> None:
    steps = replay(WindowScorer(config(direction="up")), "eu")
    assert [a for s in steps for a in s.alerts] == []
    assert all(a["direction"] != "down" for s in steps for a in s.anomalies)


def test_unscored_series_is_missing_and_keeps_its_state() -> None:
    closed, aggregator = closed_windows(None)
    scorer = WindowScorer(config())
    for window in closed[:300]:
        scorer.step(window, aggregator.series.key)
    window = closed[300]
    blanked = ClosedWindow(
        window.start_ms,
        window.end_ms,
        window.series,
        window.metric,
        window.values,
        window.volumes,
        np.zeros_like(window.scored),
    )
    step = scorer.step(blanked, aggregator.series.key)
    assert np.isnan(step.scores[0].score).all() and step.anomalies == [] and step.alerts == []
    assert list(step.scores[0].kind) == ["none"] * 4


def test_reload_swaps_thresholds_and_keeps_state() -> None:
    reference, reloaded = WindowScorer(config()), WindowScorer(config())
    replay(reference, "eu", slice(0, 300))
    replay(reloaded, "eu", slice(0, 300))
    reloaded.reload(config(fire_after=20, lower_threshold=0.0))
    after_reference = replay(reference, "eu", slice(300, None))
    after_reloaded = replay(reloaded, "eu", slice(300, None))
    for a, b in zip(after_reference, after_reloaded, strict=True):
        np.testing.assert_array_equal(a.scores[0].score, b.scores[0].score)  # state was kept
    assert all(len(s.anomalies) == 4 for s in after_reloaded)  # lower_threshold 0: every series
    fired_reference = sum(len(s.alerts) for s in after_reference)
    fired_reloaded = sum(len(s.alerts) for s in after_reloaded)
    assert fired_reference == 4 and fired_reloaded == 0  # 2 fired + 2 resolved; none needs 20 windows
    with pytest.raises(ValueError, match=r"seasonal/changepoint/ensemble.*\['gifts'\]"):
        reloaded.reload(config(seasonal={"slot_s": 1800, "seasons": ["daily"]}))


def test_snapshot_mid_alert_continues_exactly() -> None:
    closed, aggregator = closed_windows("eu")
    first = WindowScorer(config())
    for window in closed[: DROP_AT + 3]:  # the alerts are firing
        first.step(window, aggregator.series.key)
    second = WindowScorer.from_bytes(config(), first.to_bytes())
    for window in closed[DROP_AT + 3 :]:
        a, b = first.step(window, aggregator.series.key), second.step(window, aggregator.series.key)
        np.testing.assert_array_equal(a.scores[0].score, b.scores[0].score)
        assert [e.to_json() for e in a.alerts] == [e.to_json() for e in b.alerts]
        assert a.anomalies == b.anomalies
    with pytest.raises(ValueError, match="other seasonal"):
        WindowScorer.from_bytes(config(seasonal={"slot_s": 1800, "seasons": ["daily"]}), first.to_bytes())
    with pytest.raises(ValueError, match="not a window scorer snapshot"):
        WindowScorer.from_bytes(config(), b"\x00junk")


def test_metrics_with_the_same_parameters_share_one_ensemble() -> None:
    metric = {"aggregation": {"kind": "count", "events": ["gift"]}}
    scorer = WindowScorer(
        config_from_dict(
            {
                "metrics": [
                    {"name": "a", **metric},
                    {"name": "b", **metric, "detector": {"threshold": 0.95}},
                    {"name": "c", **metric, "detector": {"seasonal": {"mode": "additive"}}},
                ]
            }
        )
    )
    assert len(scorer.ensembles) == 2


def test_a_region_that_comes_online_late_borrows_the_total_shape() -> None:
    """latam appears at window 320 (day 2): scored seasonally at once, so its drop is a confirmed shift."""
    rng = np.random.default_rng(5)
    aggregator = Aggregator(config(), partitions=[0], clock=None)
    scorer = WindowScorer(config())
    latam = ("gifts", (("region", "latam"),))
    steps = []
    for window in range(400):
        regions = (*REGIONS, "latam") if window >= 320 else REGIONS
        aggregator.add(gift_frame(window, rng, "latam", regions, drop_at=350), partition=0)
        steps.extend(scorer.step(w, aggregator.series.key) for w in aggregator.closed_windows())
    # Known from window 319 on (it closed after latam's first event was folded): a 0 that is no value.
    first = next(i for i, s in enumerate(steps) if latam in s.scores[0].keys)
    assert first == 319
    assert np.isnan(steps[319].scores[0].score[list(steps[319].scores[0].keys).index(latam)])

    def of_latam(step: StepResult) -> tuple[bool, str]:
        scores = step.scores[0]
        i = list(scores.keys).index(latam)
        assert scores.learning is not None
        return bool(scores.learning[i]), scores.kind[i]

    assert of_latam(steps[320])[0] and not any(of_latam(s)[0] for s in steps[321:])
    assert [of_latam(s)[1] for s in steps[321:350]] == ["none"] * 29  # its band fits from the start
    events = [
        (window_index(int(a.window_start.timestamp() * 1000)), a.status.value, a.kind)
        for s in steps
        for a in s.alerts
        if a.slice == {"region": "latam"}
    ]
    assert events[0] == (351, "firing", "level_shift") and events[1][1] == "resolved"
