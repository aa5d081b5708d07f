from __future__ import annotations

import math
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from detector.export.prometheus import (
    INVALID_REASONS,
    LivewatchExporter,
    SeriesCollector,
    serve_metrics,
)
from tests.observability_fakes import WINDOW_END, FakeDetectorState, series

EMPTY_DIMS = {"region": "", "platform": "", "app_version": "", "creator_tier": "", "network": ""}


def labels(metric: str, **slice_: str) -> dict[str, str]:
    return {"metric": metric, **EMPTY_DIMS, **slice_}


def exporter(state: FakeDetectorState, max_exported_series: int = 100, now: float = WINDOW_END + 30):
    registry = CollectorRegistry()
    exp = LivewatchExporter(
        registry,
        series=state,
        incidents=state,
        pipeline=state,
        version="1.2.3",
        max_exported_series=max_exported_series,
        clock=lambda: now,
    )
    return registry, exp


def test_series_gauges_carry_every_dimension_label_empty_when_not_sliced():
    registry, _ = exporter(FakeDetectorState())
    total = labels("viewers")
    eu = labels("viewers", region="eu")
    assert registry.get_sample_value("livewatch_series_value", total) == pytest.approx(110.0)
    assert registry.get_sample_value("livewatch_series_expected", eu) == 100.0
    assert registry.get_sample_value("livewatch_series_lower", eu) == 80.0
    assert registry.get_sample_value("livewatch_series_upper", eu) == 120.0
    assert registry.get_sample_value("livewatch_series_score", eu) == pytest.approx(0.97)
    assert registry.get_sample_value("livewatch_series_anomaly_active", eu) == 1.0
    assert registry.get_sample_value("livewatch_series_anomaly_active", total) == 0.0
    assert registry.get_sample_value("livewatch_series_window_end_timestamp_seconds", eu) == WINDOW_END
    two_dims = labels("gifts_coins", region="eu", creator_tier="top")
    assert registry.get_sample_value("livewatch_series_score", two_dims) == pytest.approx(0.30)


def test_scrape_reads_state_live():
    state = FakeDetectorState()
    registry, _ = exporter(state)
    assert registry.get_sample_value(
        "livewatch_series_score", labels("viewers", region="us")
    ) == pytest.approx(0.2)
    state.rows = (series("viewers", 0.6, region="us"),)
    assert registry.get_sample_value(
        "livewatch_series_score", labels("viewers", region="us")
    ) == pytest.approx(0.6)
    assert registry.get_sample_value("livewatch_series_score", labels("viewers")) is None


def test_cap_keeps_active_anomalies_then_totals_then_highest_scores_and_counts_the_rest():
    state = FakeDetectorState()
    registry, _ = exporter(state, max_exported_series=5)
    exported = {
        tuple(sorted(s.labels.items()))
        for family in registry.collect()
        if family.name == "livewatch_series_score"
        for s in family.samples
    }
    expected = [
        labels("viewers", region="eu"),
        labels("stall_ratio", network="cellular"),  # active
        labels("viewers"),
        labels("gifts_coins"),
        labels("stall_ratio"),  # totals
    ]
    assert exported == {tuple(sorted(e.items())) for e in expected}
    # viewers/ios has score 0.85 but lost to the totals; viewers us and 5.2.0, gifts eu/top are left out.
    assert registry.get_sample_value("livewatch_series_not_exported", {"metric": "viewers"}) == 3
    assert registry.get_sample_value("livewatch_series_not_exported", {"metric": "gifts_coins"}) == 1
    assert registry.get_sample_value("livewatch_series_not_exported", {"metric": "stall_ratio"}) == 0

    registry, _ = exporter(state, max_exported_series=6)
    assert registry.get_sample_value(
        "livewatch_series_score", labels("viewers", platform="ios")
    ) == pytest.approx(0.85)
    assert registry.get_sample_value("livewatch_series_score", labels("viewers", region="us")) is None


def test_nan_score_ranks_last_but_is_exported_when_there_is_room():
    state = FakeDetectorState(
        rows=(series("viewers", math.nan, region="eu"), series("viewers", 0.1, region="us"))
    )
    registry, _ = exporter(state, max_exported_series=1)
    assert registry.get_sample_value(
        "livewatch_series_score", labels("viewers", region="us")
    ) == pytest.approx(0.1)
    assert registry.get_sample_value("livewatch_series_not_exported", {"metric": "viewers"}) == 1
    registry, _ = exporter(state, max_exported_series=2)
    assert math.isnan(registry.get_sample_value("livewatch_series_score", labels("viewers", region="eu")))


def test_cap_must_be_positive():
    with pytest.raises(ValueError, match="max_exported_series"):
        SeriesCollector(FakeDetectorState(), max_exported_series=0)


def test_incidents_and_alerts_fired():
    registry, _ = exporter(FakeDetectorState())
    assert (
        registry.get_sample_value(
            "livewatch_incident_active",
            {"incident_id": "inc-0001", "metric": "viewers", "severity": "critical"},
        )
        == 1.0
    )
    assert (
        registry.get_sample_value(
            "livewatch_alerts_fired_total", {"metric": "stall_ratio", "severity": "warning"}
        )
        == 2
    )


def test_pipeline_counters_gauges_and_build_info():
    registry, _ = exporter(FakeDetectorState(), now=WINDOW_END + 42.5)
    assert registry.get_sample_value("livewatch_events_consumed_total") == 1000
    assert registry.get_sample_value("livewatch_events_late_total") == 7
    assert registry.get_sample_value("livewatch_windows_closed_total") == 12
    assert registry.get_sample_value("livewatch_events_invalid_total", {"reason": "schema"}) == 3
    for reason in INVALID_REASONS:  # present before the first error so rate() has a series
        assert registry.get_sample_value("livewatch_events_invalid_total", {"reason": reason}) is not None
    assert registry.get_sample_value("livewatch_watermark_timestamp_seconds") == WINDOW_END
    assert registry.get_sample_value("livewatch_watermark_lag_seconds") == pytest.approx(42.5)
    assert registry.get_sample_value("livewatch_series_tracked", {"metric": "viewers"}) == 4
    assert registry.get_sample_value("livewatch_series_dropped_total", {"metric": "viewers"}) == 5
    assert (
        registry.get_sample_value(
            "livewatch_consumer_lag_messages", {"topic": "live-events", "partition": "0"}
        )
        == 10
    )
    assert registry.get_sample_value("livewatch_build_info", {"version": "1.2.3"}) == 1.0


def test_no_watermark_before_the_first_event():
    registry, _ = exporter(FakeDetectorState(watermark=None))
    assert registry.get_sample_value("livewatch_watermark_timestamp_seconds") is None
    assert registry.get_sample_value("livewatch_watermark_lag_seconds") is None


def test_histograms_live_on_the_injected_registry():
    registry, exp = exporter(FakeDetectorState())
    exp.alert_latency.observe(0.3)
    exp.scoring_duration.observe(0.002)
    assert registry.get_sample_value("livewatch_alert_latency_seconds_count") == 1
    assert registry.get_sample_value("livewatch_alert_latency_seconds_bucket", {"le": "0.5"}) == 1
    assert registry.get_sample_value("livewatch_alert_latency_seconds_bucket", {"le": "0.25"}) == 0
    assert registry.get_sample_value("livewatch_scoring_duration_seconds_sum") == pytest.approx(0.002)
    other = CollectorRegistry()
    assert other.get_sample_value("livewatch_alert_latency_seconds_count") is None


def test_registering_twice_on_one_registry_is_refused():
    state = FakeDetectorState()
    registry, _ = exporter(state)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        LivewatchExporter(registry, series=state, incidents=state, pipeline=state, version="x")


def test_serve_metrics_over_http():
    registry, _ = exporter(FakeDetectorState())
    server = serve_metrics(registry, port=0, host="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert (
        'livewatch_series_score{app_version="",creator_tier="",metric="viewers",network="",platform=""'
        in body
    )
    assert 'livewatch_build_info{version="1.2.3"} 1.0' in body


def test_a_series_sliced_by_an_unknown_dimension_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown dimensions \['country'\]"):
        series("viewers", 0.1, country="fr")


def test_a_label_set_given_twice_is_exported_once_so_the_scrape_stays_valid():
    state = FakeDetectorState(rows=(series("viewers", 0.9, region="eu"), series("viewers", 0.2, region="eu")))
    registry, _ = exporter(state)
    assert registry.get_sample_value(
        "livewatch_series_score", labels("viewers", region="eu")
    ) == pytest.approx(0.9)
    samples = [s for f in registry.collect() if f.name == "livewatch_series_score" for s in f.samples]
    assert len(samples) == 1
    assert registry.get_sample_value("livewatch_series_not_exported", {"metric": "viewers"}) == 1
