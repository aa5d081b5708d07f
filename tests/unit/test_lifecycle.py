from __future__ import annotations

import numpy as np
import pytest

from detector.alerting.lifecycle import (
    AlertLifecycle,
    AlertStatus,
    LifecycleSettings,
    Severity,
    WindowScores,
    alert_id_for,
)

MINUTE = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE
KEYS = [("gift_revenue", ()), ("gift_revenue", (("region", "BR"),)), ("gift_revenue", (("region", "US"),))]
SETTINGS = LifecycleSettings(
    fire_threshold=0.9,
    resolve_threshold=0.5,
    fire_after=2,
    resolve_after=2,
    cooldown_windows=3,
    critical_threshold=0.99,
)


def window(i: int, scores: list[float]) -> WindowScores:
    n = len(scores)
    return WindowScores(
        window_start_ms=T0 + i * MINUTE,
        window_end_ms=T0 + (i + 1) * MINUTE,
        rows=np.arange(n, dtype=np.int64),
        score=np.array(scores, dtype=np.float64),
        value=np.full(n, 10.0),
        expected=np.full(n, 100.0),
        lower=np.full(n, 80.0),
        upper=np.full(n, 120.0),
        kind=["dip"] * n,
        direction=np.full(n, -1, dtype=np.int8),
    )


def run(lifecycle: AlertLifecycle, series: list[list[float]], settings: LifecycleSettings = SETTINGS):
    events = []
    for i, scores in enumerate(series):
        events.append(lifecycle.step("gift_revenue", window(i, scores), settings))
    return events


def test_fires_after_k_and_resolves_after_m_with_hysteresis() -> None:
    lifecycle = AlertLifecycle(KEYS.__getitem__)
    #        0     1     2     3     4     5     6     7
    score = [0.95, 0.2, 0.95, 0.96, 0.7, 0.4, 0.7, 0.3, 0.2]
    events = run(lifecycle, [[s] for s in score])
    statuses = [[e.status for e in w] for w in events]
    assert statuses == [[], [], [], [AlertStatus.FIRING], [], [], [], [], [AlertStatus.RESOLVED]]
    fired, resolved = events[3][0], events[8][0]
    assert fired.alert_id == resolved.alert_id == alert_id_for(KEYS[0], T0 + 3 * MINUTE)
    assert fired.incident_id == resolved.incident_id
    assert fired.direction == "down" and fired.kind == "dip"
    assert resolved.peak_score == pytest.approx(0.96)


def test_missing_window_counts_neither_way() -> None:
    lifecycle = AlertLifecycle(KEYS.__getitem__)
    events = run(lifecycle, [[0.95], [np.nan], [0.95], [0.1], [np.nan], [np.nan], [0.1]])
    flat = [(i, e.status) for i, w in enumerate(events) for e in w]
    assert flat == [(2, AlertStatus.FIRING), (6, AlertStatus.RESOLVED)]


def test_cooldown_suppresses_immediate_refire() -> None:
    lifecycle = AlertLifecycle(KEYS.__getitem__)
    series = [[0.95], [0.95], [0.1], [0.1], [0.95], [0.95], [0.95], [0.95]]
    flat = [(i, e.status) for i, w in enumerate(run(lifecycle, series)) for e in w]
    # resolved at window 3; cooldown 3 windows (4, 5, 6); the run of highs fires again at window 7
    assert flat == [(1, AlertStatus.FIRING), (3, AlertStatus.RESOLVED), (7, AlertStatus.FIRING)]


def test_related_series_form_one_incident_and_severity_follows_peak() -> None:
    lifecycle = AlertLifecycle(KEYS.__getitem__)
    series = [[0.95, 0.999, 0.1], [0.95, 0.999, 0.1], [0.2, 0.999, 0.95], [0.2, 0.2, 0.95]]
    events = [e for w in run(lifecycle, series) for e in w]
    firing = [e for e in events if e.status is AlertStatus.FIRING]
    assert [e.slice for e in firing] == [{}, {"region": "BR"}, {"region": "US"}]
    assert len({e.incident_id for e in events}) == 1
    assert [e.severity for e in firing] == [Severity.WARNING, Severity.CRITICAL, Severity.WARNING]


def test_new_incident_after_quiet_period_and_ids_are_deterministic() -> None:
    series = [[0.95], [0.95], [0.1], [0.1]] + [[0.1]] * 5 + [[0.95], [0.95]]
    first = [e for w in run(AlertLifecycle(KEYS.__getitem__), series) for e in w]
    again = [e for w in run(AlertLifecycle(KEYS.__getitem__), series) for e in w]
    assert [e.to_json() for e in first] == [e.to_json() for e in again]
    assert len({e.incident_id for e in first}) == 2


def test_capacity_grows_for_new_rows() -> None:
    lifecycle = AlertLifecycle(lambda row: ("m", (("region", f"r{row}"),)), capacity=2)
    scores = WindowScores(
        T0,
        T0 + MINUTE,
        np.array([40], dtype=np.int64),
        np.array([0.95]),
        np.ones(1),
        np.ones(1),
        np.ones(1),
        np.ones(1),
        ["spike"],
        np.ones(1, np.int8),
    )
    lifecycle.step("m", scores, LifecycleSettings(fire_after=1))
    assert lifecycle.capacity >= 41 and list(lifecycle.firing_rows) == [40]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fire_threshold": 1.5}, "fire_threshold"),
        ({"resolve_threshold": 0.95, "fire_threshold": 0.9}, "resolve_threshold"),
        ({"fire_after": 0}, "fire_after"),
        ({"cooldown_windows": -1}, "cooldown_windows"),
    ],
)
def test_bad_settings_name_the_field(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LifecycleSettings(**changes)  # type: ignore[arg-type]


def test_snapshot_mid_incident_continues_exactly() -> None:
    series = [[0.95, 0.1, 0.1]] * 3 + [[0.2, 0.95, 0.1]] * 3 + [[0.1, 0.1, 0.1]] * 12
    first = AlertLifecycle(KEYS.__getitem__)
    before = run(first, series[:4])
    restored = AlertLifecycle(KEYS.__getitem__)
    restored.load_bytes(first.to_bytes())
    assert restored.active_incident("gift_revenue") == first.active_incident("gift_revenue") is not None
    for i, scores in enumerate(series[4:], start=4):
        a = first.step("gift_revenue", window(i, scores), SETTINGS)
        b = restored.step("gift_revenue", window(i, scores), SETTINGS)
        assert [e.to_json() for e in a] == [e.to_json() for e in b]
    assert any(before) and list(restored.firing_rows) == list(first.firing_rows)
    with pytest.raises(ValueError, match="not an alert lifecycle snapshot"):
        restored.load_bytes(b"\x01")
