from __future__ import annotations

import math

import numpy as np
import pytest
from datasketches import kll_doubles_sketch

from detector.aggregation.plan import Plan, SeriesKey
from detector.aggregation.sketches import LogHistogram
from detector.aggregation.windows import Aggregator, ClosedWindow, WindowPartial
from detector.config import Config, config_from_dict, config_from_yaml
from detector.events import DIMENSIONS, EVENT_TYPES, Event, EventFrame
from tests.unit.naive_aggregation import exact_quantile, reference_cells, reference_values

T = 1_700_000_040_000  # a window boundary (multiple of 60 s)
NOW = T / 1000 + 3600  # the injected clock: an hour after the first window

SMALL = config_from_dict(
    {
        "window": {"length_s": 60, "allowed_lateness_s": 60, "max_future_skew_s": 60},
        "metrics": [
            {
                "name": "gifts",
                "aggregation": {"kind": "count", "events": ["gift"]},
                "dimensions": ["region"],
                "pairs": [["platform", "region"]],
            },
            {
                "name": "revenue",
                "aggregation": {"kind": "sum", "events": ["gift"], "positive_only": True},
                "dimensions": ["region"],
            },
            {
                "name": "stall_rate",
                "aggregation": {
                    "kind": "ratio",
                    "numerator": {"kind": "count", "events": ["stall"]},
                    "denominator": {"kind": "count", "events": ["view_start"]},
                    "min_denominator": 2,
                },
                "dimensions": ["region"],
            },
            {
                "name": "viewers",
                "aggregation": {"kind": "gauge", "up": ["view_start"], "down": ["view_end"]},
                "dimensions": ["region"],
            },
            {
                "name": "gifters",
                "aggregation": {"kind": "distinct", "events": ["gift"]},
                "dimensions": ["region"],
            },
            {
                "name": "stall_p50",
                "aggregation": {"kind": "quantile", "events": ["stall"], "q": 0.5},
                "dimensions": ["region"],
            },
        ],
    }
)


def event(
    ts: int,
    type: str,
    value: float = 0.0,
    *,
    user: int = 1,
    region: str = "BR",
    platform: str = "android",
    app_version: str = "31.2",
    i: int = 0,
) -> Event:
    return Event(
        event_id=f"e{i}-{ts}-{type}",
        ts=ts,
        type=type,
        room_id=user % 7,
        user_id=user,
        creator_id=user % 5,
        region=region,
        platform=platform,
        app_version=app_version,
        creator_tier="top",
        network="wifi",
        value=value,
    )


def frame(events: list[Event]) -> EventFrame:
    return EventFrame.from_events(events)


def by_key(aggregator: Aggregator, window: ClosedWindow) -> dict[SeriesKey, float]:
    return {
        aggregator.series.key(int(s)): float(v) for s, v in zip(window.series, window.values, strict=True)
    }


def key(metric: str, **dims: str) -> SeriesKey:
    return (metric, tuple((d, dims[d]) for d in DIMENSIONS if d in dims))


def hand_built() -> list[Event]:
    return [
        event(T + 1000, "view_start", user=1),
        event(T + 2000, "view_start", user=2),
        event(T + 3000, "view_start", user=3, region="US"),
        event(T + 4000, "gift", 10, user=1),
        event(T + 5000, "gift", 5, user=1, platform="ios"),
        event(T + 6000, "gift", 0, user=3, region="US"),
        event(T + 7000, "stall", 100),
        event(T + 8000, "stall", 300),
        event(T + 9000, "stall", 200, region="US"),
        event(T + 71_000, "view_end", 70, user=1),
        event(T + 72_000, "stall", 500, region="US"),
        event(T + 73_000, "gift", 7, user=2),
        event(T + 240_000, "comment"),  # moves the watermark past both windows
    ]


def test_hand_built_events_give_hand_computed_values() -> None:
    aggregator = Aggregator(SMALL, clock=lambda: NOW)
    report = aggregator.add(frame(hand_built()))
    assert (report.accepted, report.late, report.future) == (13, 0, 0)
    first, second = aggregator.closed_windows()
    assert (first.start_ms, first.end_ms, second.start_ms) == (T, T + 60_000, T + 60_000)
    w0, w1 = by_key(aggregator, first), by_key(aggregator, second)

    assert w0[key("gifts")] == 3 and w0[key("gifts", region="BR")] == 2 and w0[key("gifts", region="US")] == 1
    assert w0[key("gifts", region="BR", platform="ios")] == 1
    assert w0[key("gifts", region="US", platform="android")] == 1
    assert w0[key("revenue")] == 15 and w0[key("revenue", region="BR")] == 15
    assert aggregator.series.index(key("revenue", region="US")) is None  # value 0 never fed positive_only
    assert w0[key("stall_rate")] == 1.0 and w0[key("stall_rate", region="BR")] == 1.0
    assert math.isnan(w0[key("stall_rate", region="US")])  # 1 view start < min_denominator 2
    assert (w0[key("viewers")], w0[key("viewers", region="BR")], w0[key("viewers", region="US")]) == (3, 2, 1)
    assert (w0[key("gifters")], w0[key("gifters", region="BR")], w0[key("gifters", region="US")]) == (2, 1, 1)
    # log histogram: within its 1% relative accuracy of the exact medians 200 and 100
    assert w0[key("stall_p50")] == pytest.approx(200, rel=0.01)
    assert w0[key("stall_p50", region="BR")] == pytest.approx(100, rel=0.01)

    assert w1[key("gifts")] == 1 and w1[key("gifts", region="US")] == 0  # known series, no events: zero
    assert w1[key("gifts", region="BR", platform="ios")] == 0
    assert w1[key("revenue", region="BR")] == 7
    assert math.isnan(w1[key("stall_rate")]) and math.isnan(
        w1[key("stall_rate", region="BR")]
    )  # zero denominator
    assert (w1[key("viewers")], w1[key("viewers", region="BR")], w1[key("viewers", region="US")]) == (2, 1, 1)
    assert (w1[key("gifters")], w1[key("gifters", region="US")]) == (1, 0)
    assert w1[key("stall_p50")] == pytest.approx(500, rel=0.01) and math.isnan(
        w1[key("stall_p50", region="BR")]
    )

    volumes = {aggregator.series.key(int(s)): v for s, v in zip(first.series, first.volumes, strict=True)}
    assert volumes[key("stall_rate", region="US")] == 1  # the denominator
    assert volumes[key("revenue")] == 2  # events summed
    scored = dict(zip(map(aggregator.series.key, first.series.tolist()), first.scored.tolist(), strict=True))
    assert scored[key("stall_rate")] and not scored[key("stall_rate", region="US")]


def random_events(
    n: int, seed: int, *, start: int = T, span_s: int = 600, disorder_s: float = 0.0
) -> list[Event]:
    """Seeded events in roughly increasing time; ``disorder_s`` jitters timestamps backwards."""
    rng = np.random.default_rng(seed)
    ts = start + np.sort(rng.integers(0, span_s * 1000, n))
    if disorder_s:
        ts -= rng.exponential(disorder_s * 1000, n).astype(np.int64)
    types = rng.choice(
        ["view_start", "view_end", "gift", "comment", "stall", "report", "stream_start"],
        n,
        p=[0.25, 0.2, 0.1, 0.25, 0.1, 0.05, 0.05],
    )
    regions, platforms = ["BR", "US", "IN", "ID"], ["android", "ios", "web"]
    out = []
    for i in range(n):
        kind = str(types[i])
        value = {
            "gift": float(rng.integers(0, 50)),
            "stall": float(rng.gamma(2, 150)),
            "view_end": float(rng.integers(1, 300)),
        }.get(kind, 0.0)
        out.append(
            event(
                int(ts[i]),
                kind,
                value,
                user=int(rng.integers(0, 200)),
                i=i,
                region=str(rng.choice(regions)),
                platform=str(rng.choice(platforms)),
                app_version=f"31.{rng.integers(0, 6)}",
            )
        )
    return out


def assert_matches_reference(
    config: Config, aggregator: Aggregator, windows: list[ClosedWindow], events: list[Event]
) -> None:
    expected = reference_values(config, reference_cells(config, events, int(NOW * 1000)))
    assert [w.start_ms for w in windows] == sorted(expected)
    for window in windows:
        actual = by_key(aggregator, window)
        for series_key, value in expected[window.start_ms].items():
            # distinct counts this small are exact in HLL; quantiles are within the 1% relative accuracy
            rtol = 0.01 if config.metric(series_key[0]).aggregation.kind == "quantile" else 1e-12
            np.testing.assert_allclose(actual[series_key], value, rtol=rtol, err_msg=str(series_key))
        for series_key, value in actual.items():  # series without contributions read as nothing happened
            if series_key not in expected[window.start_ms]:
                kind = config.metric(series_key[0]).aggregation.kind
                assert math.isnan(value) if kind in ("ratio", "quantile") else value == 0, series_key


@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_agrees_with_plain_python_reference_on_the_default_config(seed: int) -> None:
    config = config_from_yaml("configs/default.yaml")
    events = random_events(3000, seed, disorder_s=40)  # some events beyond the 120 s lateness
    aggregator = Aggregator(config, clock=lambda: NOW)
    for batch in np.array_split(np.arange(len(events)), 7):
        aggregator.add(frame([events[i] for i in batch]))
    windows = aggregator.closed_windows() + aggregator.flush()
    assert aggregator.late_events > 0
    assert_matches_reference(config, aggregator, windows, events)


def test_distinct_within_hll_error_and_quantiles_within_their_sketch_error() -> None:
    config = config_from_dict(
        {
            **SMALL.model_dump(),
            "metrics": [
                *SMALL.model_dump()["metrics"],
                {
                    "name": "stall_p95_kll",
                    "aggregation": {"kind": "quantile", "events": ["stall"], "q": 0.95, "sketch": "kll"},
                },
            ],
        }
    )
    rng = np.random.default_rng(7)
    users = rng.integers(0, 1_000_000, 40_000)
    stalls = rng.lognormal(5, 1, 40_000)
    events = [event(T + int(i), "gift", 1.0, user=int(u)) for i, u in enumerate(users)]
    events += [event(T + int(i), "stall", float(v)) for i, v in enumerate(stalls)]
    aggregator = Aggregator(config, clock=lambda: NOW)
    aggregator.add(frame(events))
    (window,) = aggregator.flush()
    values = by_key(aggregator, window)
    exact_distinct = len(set(users.tolist()))
    assert abs(values[key("gifters")] / exact_distinct - 1) < 3 * 1.04 / math.sqrt(2**12)
    exact_median = exact_quantile(stalls.tolist(), 0.5)
    assert values[key("stall_p50")] == pytest.approx(exact_median, rel=0.01)
    rank = float(np.mean(stalls <= values[key("stall_p95_kll")]))
    assert abs(rank - 0.95) < 2 * kll_doubles_sketch.get_normalized_rank_error(200, False)
    assert exact_quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


def test_log_histogram_is_exact_to_its_accuracy_and_merges_like_one() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate((rng.lognormal(3, 2, 5000), np.zeros(100), [1e-6, 1e9]))
    whole = LogHistogram(0.01)
    whole.update(values)
    parts = [LogHistogram(0.01) for _ in range(3)]
    for part, chunk in zip(parts, np.array_split(rng.permutation(values), 3), strict=True):
        part.update(chunk)
    merged = LogHistogram(0.01)
    for part in parts:
        merged.merge(part)
    restored = LogHistogram.from_bytes(merged.to_bytes())
    for q in (0.0, 0.01, 0.02, 0.5, 0.95, 0.999, 1.0):
        exact = exact_quantile(values.tolist(), q)
        assert whole.quantile(q) == merged.quantile(q) == restored.quantile(q)
        assert whole.quantile(q) == pytest.approx(exact, rel=0.01, abs=0.0), q
    assert math.isnan(LogHistogram(0.01).quantile(0.5))


def test_partitions_merged_equal_one_aggregator() -> None:
    config = config_from_yaml("configs/default.yaml")
    events = random_events(4000, 3)
    single = Aggregator(config, clock=lambda: NOW)
    single.add(frame(events))
    expected = {w.start_ms: by_key(single, w) for w in single.flush()}

    stage2 = Aggregator(config, partitions=[0, 1, 2], clock=lambda: NOW)
    rooms = np.array([e.room_id for e in events]) % 3
    workers = [Aggregator(config, partitions=[p], clock=lambda: NOW) for p in range(3)]
    for p, worker in enumerate(workers):
        mine = [e for e, r in zip(events, rooms, strict=True) if r == p]
        for batch in np.array_split(np.arange(len(mine)), 5):
            worker.add(frame([mine[i] for i in batch]), partition=p)
            stage2.merge(WindowPartial.from_bytes(w.to_bytes()) for w in worker.emit_partials())
    for worker in workers:
        stage2.merge(WindowPartial.from_bytes(w.to_bytes()) for w in worker.flush_partials())
    merged = {w.start_ms: by_key(stage2, w) for w in stage2.closed_windows() + stage2.flush()}

    assert sorted(merged) == sorted(expected)
    for start, values in expected.items():
        for series_key, value in values.items():
            kind = config.metric(series_key[0]).aggregation.kind
            if kind == "distinct":  # HLL unions of the same items are exact below the sketch's exact range
                assert merged[start][series_key] == pytest.approx(value, rel=0.02)
            else:
                np.testing.assert_allclose(
                    merged[start][series_key], value, rtol=1e-12, err_msg=str(series_key)
                )


def test_window_is_final_only_when_every_partition_passed_it() -> None:
    clock = [NOW]
    aggregator = Aggregator(SMALL, partitions=[0, 1], clock=lambda: clock[0])
    aggregator.add(frame([event(T + 1000, "gift", 1)]), partition=0)
    aggregator.add(frame([event(T + 2000, "gift", 1)]), partition=1)
    aggregator.add(frame([event(T + 200_000, "gift", 1)]), partition=0)  # partition 0 is past window 0
    assert aggregator.closed_windows() == []
    aggregator.add(frame([event(T + 130_000, "gift", 1)]), partition=1)  # watermark 1: T + 70 s
    (window,) = aggregator.closed_windows()
    assert window.start_ms == T and by_key(aggregator, window)[key("gifts")] == 2
    assert aggregator.closed_windows() == []  # each window once


def test_idle_partition_stops_holding_windows_open_after_idle_time() -> None:
    clock = [NOW]
    aggregator = Aggregator(SMALL, partitions=[0, 1], clock=lambda: clock[0])
    aggregator.add(frame([event(T + 1000, "gift", 1), event(T + 200_000, "gift", 1)]), partition=0)
    assert aggregator.closed_windows() == []  # partition 1 may still send window 0
    clock[0] += SMALL.window.idle_partition_s
    aggregator.add(frame([event(T + 200_500, "gift", 1)]), partition=0)
    assert [w.start_ms for w in aggregator.closed_windows()] == [T]
    report = aggregator.add(frame([event(T + 2000, "gift", 1)]), partition=1)  # too late now: counted
    assert (report.late, report.late_rows.tolist()) == (1, [0])


def test_late_beyond_lateness_counted_and_returned_within_lateness_included() -> None:
    aggregator = Aggregator(SMALL, clock=lambda: NOW)
    aggregator.add(frame([event(T + 10_000, "gift", 1), event(T + 125_000, "gift", 1)]))
    # watermark = T + 65 s: window 0 ended at T + 60 s, window 1 is open
    report = aggregator.add(frame([event(T + 59_000, "gift", 1), event(T + 61_000, "gift", 2)]))
    assert (report.accepted, report.late, report.late_rows.tolist()) == (1, 1, [0])
    windows = {w.start_ms: by_key(aggregator, w) for w in aggregator.flush()}
    assert windows[T][key("gifts")] == 1 and windows[T + 60_000][key("gifts")] == 1
    assert aggregator.stats()["late_events"] == 1


def test_future_events_rejected_and_do_not_move_the_watermark() -> None:
    aggregator = Aggregator(SMALL, clock=lambda: T / 1000)
    report = aggregator.add(
        frame([event(T + 1000, "gift", 1), event(T + 3_600_000, "gift", 1), event(T + 59_000, "gift", 1)])
    )
    assert (report.accepted, report.future, report.future_rows.tolist()) == (2, 1, [1])
    assert aggregator.watermark(0) == T + 59_000 - 60_000


def test_cap_counts_dropped_series_and_contributions() -> None:
    config = config_from_dict(
        {
            "metrics": [
                {
                    "name": "gifts",
                    "aggregation": {"kind": "count", "events": ["gift"]},
                    "dimensions": ["app_version"],
                    "max_series": 3,
                }
            ]
        }
    )
    aggregator = Aggregator(config, clock=lambda: NOW)
    versions = [f"v{i}" for i in range(40)]  # also outgrows the initial vocabulary capacity of 16
    aggregator.add(frame([event(T + i, "gift", app_version=v) for i, v in enumerate(versions * 2)]))
    stats = aggregator.stats()
    assert stats["series"] == {"gifts": 3}
    assert stats["dropped_series"] == {"gifts": 38} and stats["dropped_contributions"] == {"gifts": 76}
    (window,) = aggregator.flush()
    assert by_key(aggregator, window) == {
        key("gifts"): 80,
        key("gifts", app_version="v0"): 2,
        key("gifts", app_version="v1"): 2,
    }


def test_vocabulary_growth_keeps_series_indices() -> None:
    aggregator = Aggregator(SMALL, clock=lambda: NOW)
    aggregator.add(frame([event(T, "gift", region="BR")]))
    before = aggregator.series.index(key("gifts", region="BR"))
    aggregator.add(frame([event(T + 1, "gift", region=f"R{i}") for i in range(100)] + [event(T + 2, "gift")]))
    assert aggregator.series.index(key("gifts", region="BR")) == before
    (window,) = aggregator.flush()
    values = by_key(aggregator, window)
    assert values[key("gifts", region="BR")] == 2 and values[key("gifts", region="R99")] == 1


def test_snapshot_round_trip_continues_like_an_uninterrupted_run() -> None:
    config = config_from_yaml("configs/default.yaml")
    events = random_events(3000, 11, disorder_s=10)
    first, second = events[:1700], events[1700:]
    uninterrupted = Aggregator(config, clock=lambda: NOW)
    uninterrupted.add(frame(first))
    expected = uninterrupted.closed_windows()
    restored = Aggregator.from_bytes(config, uninterrupted.to_bytes(), clock=lambda: NOW)
    assert restored.stats() == uninterrupted.stats()
    assert restored.series.keys == uninterrupted.series.keys
    uninterrupted.add(frame(second))
    restored.add(frame(second))
    expected += uninterrupted.flush()
    actual = restored.flush()
    assert [w.start_ms for w in actual] == [w.start_ms for w in expected[-len(actual) :]]
    for got, want in zip(actual, expected[-len(actual) :], strict=True):
        np.testing.assert_array_equal(got.values, want.values)
        np.testing.assert_array_equal(got.volumes, want.volumes)


def test_batching_and_order_within_lateness_do_not_change_results() -> None:
    config = config_from_yaml("configs/default.yaml")
    events = random_events(2500, 5, disorder_s=5)  # disorder far below the 120 s lateness
    results = []
    ts = np.array([e.ts for e in events])
    for seed, n_batches in ((None, 1), (1, 3), (2, 17)):
        # reorder events up to 30 s apart: well within the lateness, so none may be late
        jitter = 0 if seed is None else np.random.default_rng(seed).uniform(0, 30_000, len(events))
        shuffled = [events[i] for i in np.argsort(ts + jitter, kind="stable")]
        # keep the first event first: it sets the gauge's origin
        shuffled.remove(events[0])
        shuffled.insert(0, events[0])
        aggregator = Aggregator(config, clock=lambda: NOW)
        for batch in np.array_split(np.arange(len(shuffled)), n_batches):
            aggregator.add(frame([shuffled[i] for i in batch]))
        assert aggregator.late_events == 0
        results.append({w.start_ms: by_key(aggregator, w) for w in aggregator.flush()})
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        for start in results[0]:
            for series_key, value in results[0][start].items():
                np.testing.assert_allclose(
                    other[start][series_key], value, rtol=1e-9, err_msg=str(series_key)
                )


def test_gauge_ignores_ends_of_sessions_that_started_before_the_first_event() -> None:
    aggregator = Aggregator(SMALL, clock=lambda: NOW)
    aggregator.add(
        frame(
            [
                event(T + 1000, "view_start", user=1),
                event(T + 2000, "view_end", 600, user=9),  # watched since 10 minutes before we started
                event(T + 3000, "view_start", user=2),
                event(T + 4000, "view_end", 2, user=2),
            ]
        )
    )
    (window,) = aggregator.flush()
    assert by_key(aggregator, window)[key("viewers")] == 1


def test_plan_routes_every_event_type_of_the_default_config() -> None:
    plan = Plan(config_from_yaml("configs/default.yaml"))
    fed = {EVENT_TYPES[t].value for t in range(len(EVENT_TYPES)) if plan.route_ptr[t + 1] > plan.route_ptr[t]}
    assert fed == {"view_start", "view_end", "gift", "comment", "stall", "report", "stream_start"}
    view_start = EVENT_TYPES.index("view_start")
    fed_by_view_start = {
        plan.metric_names[m]
        for m in plan.route_metric[plan.route_ptr[view_start] : plan.route_ptr[view_start + 1]]
    }
    assert fed_by_view_start == {"concurrent_viewers", "view_starts", "stall_rate", "report_rate"}


def test_stage2_waits_for_reported_watermarks_and_counts_partials_for_closed_windows() -> None:
    stage1 = [Aggregator(SMALL, partitions=[p], clock=lambda: NOW) for p in (0, 1)]
    stage2 = Aggregator(SMALL, partitions=[0, 1], clock=lambda: NOW)
    stage1[0].add(frame([event(T + 1000, "gift", 1), event(T + 125_000, "gift", 1)]), partition=0)
    stage2.merge(stage1[0].emit_partials())
    assert stage2.closed_windows() == []  # partition 1 has said nothing yet
    stage2.observe_watermark(1, T + 60_000)  # partition 1 had no events up to there
    (window,) = stage2.closed_windows()
    assert window.start_ms == T and by_key(stage2, window)[key("gifts")] == 1
    stage1[1].add(frame([event(T + 2000, "gift", 1), event(T + 2500, "gift", 1)]), partition=1)
    # window T is closed: counted, not folded; 2 gifts x 7 series (gifts 3, revenue 2, gifters 2)
    assert stage2.merge(stage1[1].flush_partials()) == 14
    assert stage2.stats()["late_partial_contributions"] == 14


def test_replay_without_clock_accepts_any_time_and_never_idles() -> None:
    aggregator = Aggregator(SMALL, partitions=[0, 1], clock=None)
    far_future = T + 400 * 86_400_000
    report = aggregator.add(frame([event(far_future, "gift", 1), event(far_future + 200_000, "gift", 1)]))
    assert (report.accepted, report.future) == (2, 0)
    assert aggregator.closed_windows() == []  # partition 1 never goes idle in a replay
    aggregator.assign([0])  # after a rebalance only partition 0 decides
    assert [w.start_ms for w in aggregator.closed_windows()] == [far_future - far_future % 60_000]


def test_windows_without_data_close_as_zeros_once_the_watermark_passes_them() -> None:
    aggregator = Aggregator(SMALL, clock=lambda: NOW)
    aggregator.add(frame([event(T + 1000, "gift", 4), event(T + 130_000, "gift", 1)]))
    assert [w.start_ms for w in aggregator.closed_windows()] == [T]
    # only likes (which feed no metric) for five minutes: the gift windows in between still close, empty
    aggregator.add(frame([event(T + 130_000 + i, "like") for i in range(0, 330_001, 1000)]))
    windows = aggregator.closed_windows()
    assert [w.start_ms for w in windows] == [T + k * 60_000 for k in range(1, 6)]
    values = [by_key(aggregator, w)[key("gifts")] for w in windows]
    assert values == [0, 1, 0, 0, 0]


def test_partials_from_a_different_config_are_counted_not_fatal() -> None:
    other = Aggregator(config_from_yaml("configs/default.yaml"), clock=lambda: NOW)
    other.add(frame([event(T + 1000, "gift", 3), event(T + 2000, "comment")]))
    stage2 = Aggregator(SMALL, clock=lambda: NOW)
    stage2.merge(other.flush_partials())
    # none of the default metrics exist here: gift_revenue and gifting_users (9 series each) + comments (9)
    assert stage2.stats()["unknown_series_contributions"] == 27
    assert len(stage2.series) == 0
