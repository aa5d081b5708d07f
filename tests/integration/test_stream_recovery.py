"""Crash safety: kill -9 of a worker mid-stream, and failover between two workers.

Workers are subprocesses (process death matters); the counting and alerting logic is the region-count
test double of tests/stream_double.py, whose exact answers are recomputed here from the events.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from detector.stream import topics as names
from tests.stream_double import DoubleConfig
from tests.stream_harness import (
    Producer,
    TopicReader,
    anomaly_counts,
    batched_messages,
    closing_events,
    create_topics,
    events_with_burst,
    expected_alert_ids,
    expected_counts,
    start_worker,
    unique_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW_MS = 60_000
THRESHOLD = 1_800


def _scenario(seed: int) -> tuple[list, dict, set]:
    rng = np.random.default_rng(seed)
    # About 1500 eu, 900 us, 600 apac events per window; us bursts over the threshold in window 4 only.
    events = events_with_burst(
        rng, 24_000, windows=8, window_ms=WINDOW_MS, burst_region="us", burst_window=4, burst_events=2_000
    )
    counts = expected_counts(events, WINDOW_MS)
    return events, counts, expected_alert_ids(counts, THRESHOLD)


def _paced_send(
    producer: Producer, topic: str, messages: list, every: int = 20, pause_s: float = 0.01
) -> threading.Thread:
    def pace(i: int) -> None:
        if i % every == 0:
            time.sleep(pause_s)

    thread = threading.Thread(
        target=producer.send, args=(topic, messages), kwargs={"pace": pace}, daemon=True
    )
    thread.start()
    return thread


def _alert_ids(reader: TopicReader) -> set[str]:
    return {alert["alert_id"] for alert in reader.json()}


def test_kill_9_mid_stream_then_restart_counts_exactly_once(kafka_bootstrap, tmp_path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    events, expected, alerts_expected = _scenario(11)
    assert len(alerts_expected) == 2, "the scenario must make the double fire and resolve"
    messages = batched_messages(events, settings.source_partitions, per_message=20)
    config = DoubleConfig(window_ms=WINDOW_MS, alert_threshold=THRESHOLD)
    producer = Producer(settings.bootstrap)
    anomalies = TopicReader(settings.bootstrap, settings.topic(names.ANOMALIES), settings.window_partitions)
    alerts = TopicReader(settings.bootstrap, settings.topic(names.ALERTS), settings.window_partitions)
    first = start_worker(settings, config, tmp_path, "first")
    second = None
    try:
        first.wait_log("[^Worker]: Ready", 60)
        sender = _paced_send(producer, settings.topic(names.LIVE_EVENTS), messages, pause_s=0.15)
        anomalies.wait_for(lambda r: len(r.records) >= 4, 60, "the first windows scored before the kill")
        assert sender.is_alive(), "the kill must happen mid-stream"
        first.kill()
        sender.join(60)
        second = start_worker(settings, config, tmp_path, "second")
        producer.send(settings.topic(names.LIVE_EVENTS), closing_events(settings, events[-1].ts, WINDOW_MS))
        anomalies.wait_for(lambda r: set(anomaly_counts(r)) >= set(expected), 90, "every window scored")
        assert anomaly_counts(anomalies) == expected
        alerts.wait_for(lambda r: _alert_ids(r) >= alerts_expected, 10, "every alert")
        alerts.poll(0.5)
        assert _alert_ids(alerts) == alerts_expected
        log = second.log.read_text()
        assert (
            "restored at offset" in log
            and "restored at offset -1" not in log.split("aggregate: partition")[1]
        ), "the restarted worker must resume from snapshots"
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        producer.close()
        anomalies.close()
        alerts.close()


def test_two_workers_share_partitions_and_failover_keeps_counts(kafka_bootstrap, tmp_path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path)
    create_topics(settings)
    events, expected, alerts_expected = _scenario(12)
    messages = batched_messages(events, settings.source_partitions, per_message=20)
    half = len(messages) // 2
    config = DoubleConfig(window_ms=WINDOW_MS, alert_threshold=THRESHOLD)
    producer = Producer(settings.bootstrap)
    anomalies = TopicReader(settings.bootstrap, settings.topic(names.ANOMALIES), settings.window_partitions)
    alerts = TopicReader(settings.bootstrap, settings.topic(names.ALERTS), settings.window_partitions)
    pair = [start_worker(settings, config, tmp_path, f"worker{i}") for i in range(2)]
    try:
        for worker in pair:
            worker.wait_log("[^Worker]: Ready", 60)
        deadline = time.monotonic() + 60
        while not all("aggregate: partition" in w.log.read_text() for w in pair):
            assert time.monotonic() < deadline, "both workers must get source partitions"
            producer.send(settings.topic(names.LIVE_EVENTS), messages[:20])
            messages = messages[20:]
            half -= 20
            time.sleep(0.5)
        producer.send(settings.topic(names.LIVE_EVENTS), messages[: max(half, 0)])
        anomalies.wait_for(lambda r: len(r.records) >= 2, 60, "windows scored by the pair")
        pair[0].kill()
        killed_at = time.monotonic()
        producer.send(settings.topic(names.LIVE_EVENTS), messages[max(half, 0) :])
        producer.send(settings.topic(names.LIVE_EVENTS), closing_events(settings, events[-1].ts, WINDOW_MS))
        budget = settings.session_timeout_s + 15
        anomalies.wait_for(
            lambda r: set(anomaly_counts(r)) >= set(expected), budget + 30, "every window scored"
        )
        took = time.monotonic() - killed_at
        assert anomaly_counts(anomalies) == expected
        alerts.wait_for(lambda r: _alert_ids(r) >= alerts_expected, 10, "every alert")
        alerts.poll(0.5)
        assert _alert_ids(alerts) == alerts_expected
        assert took <= budget, f"failover took {took:.1f} s, more than session timeout + 15 s"
        assert pair[1].alive()
    finally:
        for worker in pair:
            worker.stop()
        producer.close()
        anomalies.close()
        alerts.close()
