from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.scoring.seasonal import BaselineResult, SeasonalBaseline, SeasonalParams
from tests.unit.naive_seasonal import NaiveSeasonal

# A Monday, midnight UTC, so day boundaries and weekdays are easy to reason about.
MONDAY_MS = 1_700_438_400_000
MINUTE_MS = 60_000
DAY = 1440  # 60 s windows per day
SIGMA = 5.0


def daily_stream(n_days: int, n_series: int, seed: int) -> np.ndarray:
    """Values (windows, series): a daily curve per series with its own level and swing, Gaussian noise."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(n_days * DAY)
    phase = 2 * np.pi * minutes / DAY
    levels = rng.uniform(200, 400, n_series)
    swings = rng.uniform(40, 100, n_series)
    curve = levels + swings * np.sin(phase[:, None] - rng.uniform(0, 2 * np.pi, n_series))
    return curve + rng.normal(0, SIGMA, curve.shape)


def run(
    baseline: SeasonalBaseline,
    values: np.ndarray,
    start: int = 0,
    window_ms: int = MINUTE_MS,
    t0: int = MONDAY_MS,
) -> dict[str, np.ndarray]:
    outputs: dict[str, list[np.ndarray]] = {f.name: [] for f in dataclasses.fields(BaselineResult)}
    for k, row in enumerate(values):
        result = baseline.update(t0 + (start + k) * window_ms, row)
        for name in outputs:
            outputs[name].append(getattr(result, name))
    return {name: np.array(columns) for name, columns in outputs.items()}


def inside(values: np.ndarray, out: dict[str, np.ndarray]) -> np.ndarray:
    return (values >= out["lower"]) & (values <= out["upper"])


DAILY = SeasonalParams(seasons=("daily",))


@pytest.fixture(scope="module")
def fortnight() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    values = daily_stream(14, 6, seed=1)
    return values, run(SeasonalBaseline(DAILY, capacity=6), values)


# --- parity with the plain-Python reference ---------------------------------------------------------


def parity_stream(n_windows: int, n_series: int, seed: int, positive: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = np.arange(n_windows)[:, None]
    phase = 2 * np.pi * k / 144 + rng.uniform(0, 6, n_series)
    values = 50 + 20 * np.sin(phase) + rng.normal(0, 3, (n_windows, n_series))
    outliers = rng.random(values.shape) < 0.02
    values[outliers] += rng.choice([-40.0, 60.0], size=int(outliers.sum()))
    values[rng.random(values.shape) < 0.03] = np.nan  # missing windows
    values[300:320, 0] = np.nan  # a gap in one series
    return np.abs(values) if positive else values


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
@pytest.mark.parametrize("seasons", [("daily",), ("weekly",), ("daily", "weekly")])
def test_kernel_matches_plain_python_reference(mode: str, seasons: tuple[str, ...]) -> None:
    # 10-minute windows and hourly slots: a day is 144 windows, a week 1008, so every phase is reached.
    params = SeasonalParams(window_s=600, slot_s=3600, seasons=seasons, mode=mode, profile_dtype="float64")
    values = parity_stream(1300, 3, seed=7, positive=mode == "multiplicative")
    out = run(SeasonalBaseline(params, capacity=3), values, window_ms=600_000)
    for series in range(values.shape[1]):
        naive = NaiveSeasonal(params)
        reference = [naive.update(MONDAY_MS + k * 600_000, float(v)) for k, v in enumerate(values[:, series])]
        for name in ("expected", "lower", "upper", "z", "score"):
            expected = [getattr(r, name) for r in reference]
            np.testing.assert_allclose(out[name][:, series], expected, rtol=1e-9, atol=1e-9, err_msg=name)
        np.testing.assert_array_equal(out["learning"][:, series], [r.learning for r in reference])
        np.testing.assert_array_equal(out["missing"][:, series], [r.missing for r in reference])
    assert not out["learning"][-1].any(), "the stream must reach the seasonal phase"


def test_float32_profile_is_as_good_as_float64() -> None:
    values = daily_stream(4, 4, seed=3)
    wide = run(SeasonalBaseline(dataclasses.replace(DAILY, profile_dtype="float64"), capacity=4), values)
    narrow = run(SeasonalBaseline(DAILY, capacity=4), values)
    np.testing.assert_allclose(narrow["z"], wide["z"], atol=1e-3)
    np.testing.assert_allclose(narrow["expected"], wide["expected"], rtol=1e-5)


def test_many_series_in_one_call_equal_single_series_baselines() -> None:
    values = daily_stream(3, 5, seed=2)
    values[100:130, 2] = np.nan
    together = run(SeasonalBaseline(DAILY, capacity=5), values)
    for series in range(5):
        alone = run(SeasonalBaseline(DAILY, capacity=1), values[:, series : series + 1])
        for name, column in together.items():
            np.testing.assert_array_equal(column[:, series], alone[name][:, 0], err_msg=name)


# --- behaviour on seeded streams -------------------------------------------------------------------


def test_band_covers_normal_points(fortnight: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    values, out = fortnight
    after_warmup = slice(3 * DAY, None)
    coverage = inside(values, out)[after_warmup].mean()
    assert 0.97 <= coverage <= 0.999
    z = out["z"][after_warmup]
    assert abs(z.mean()) < 0.1 and 0.85 < z.std() < 1.15
    assert np.all(out["lower"] <= out["expected"]) and np.all(out["expected"] <= out["upper"])
    assert np.all((out["score"] >= 0) & (out["score"] <= 1))


def test_learning_until_a_full_day_has_been_seen(fortnight: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    _, out = fortnight
    learning = out["learning"][:, 0]
    assert learning[:DAY].all() and not learning[DAY:].any()


def test_first_slot_of_a_new_series_gets_a_sound_scale() -> None:
    # Its first visits come before the short-term scale means anything; its band must still be right.
    values = daily_stream(2, 50, seed=21)
    out = run(SeasonalBaseline(DAILY, capacity=50), values)
    first_slot_next_day = slice(DAY, DAY + 15)
    assert inside(values, out)[first_slot_next_day].mean() >= 0.97


def test_spike_is_flagged_at_its_index_and_does_not_drag_the_baseline() -> None:
    values = daily_stream(12, 3, seed=4)
    spiked = values.copy()
    at = 10 * DAY + 517
    spiked[at, 1] += 8 * SIGMA
    clean_out = run(SeasonalBaseline(DAILY, capacity=3), values)
    out = run(SeasonalBaseline(DAILY, capacity=3), spiked)
    z = out["z"][:, 1]
    assert z[at] > 6
    assert out["score"][at, 1] > 0.95
    band_z = DAILY.band_z
    neighbourhood = np.abs(z[at - 60 : at + 61]) > band_z
    assert np.flatnonzero(neighbourhood).tolist() == [60]
    # Huber clipping: the next windows and the same slot tomorrow barely notice the spike.
    drift = np.abs(out["expected"][at + 1 :, 1] - clean_out["expected"][at + 1 :, 1])
    assert drift.max() < 0.25 * SIGMA
    np.testing.assert_array_equal(out["z"][:, [0, 2]], clean_out["z"][:, [0, 2]])


def test_level_shift_is_flagged_then_absorbed_by_rebase() -> None:
    values = daily_stream(11, 2, seed=5)
    at = 10 * DAY + 200
    values[at:, 0] += 12 * SIGMA
    confirmed = 8  # windows the change-point side needs before it calls rebase
    baseline = SeasonalBaseline(DAILY, capacity=2)
    before = run(baseline, values[: at + confirmed])
    assert (before["z"][at : at + confirmed, 0] > DAILY.band_z).all()
    twin = SeasonalBaseline(DAILY, capacity=2)
    twin.load_bytes(baseline.to_bytes())
    baseline.rebase([0])
    after = run(baseline, values[at + confirmed :], start=at + confirmed)
    without = run(twin, values[at + confirmed :], start=at + confirmed)
    hour = slice(0, 60)
    # The slots visited during the change absorbed a clipped part of it, so a small bias remains.
    assert inside(values[at + confirmed :], after)[hour, 0].mean() >= 0.85
    assert abs(after["z"][hour, 0].mean()) < 1.0
    assert inside(values[at + confirmed :], without)[hour, 0].mean() < 0.5
    # The untouched series is unaffected by its neighbour's rebase.
    np.testing.assert_array_equal(after["z"][:, 1], without["z"][:, 1])


def test_multiplicative_mode_follows_threefold_growth() -> None:
    rng = np.random.default_rng(6)
    n_days = 14
    minutes = np.arange(n_days * DAY)
    growth = 3.0 ** (minutes / minutes[-1])
    rate = 300 * growth * (1 + 0.6 * np.sin(2 * np.pi * minutes / DAY))
    counts = rng.poisson(np.repeat(rate[:, None], 3, axis=1)).astype(float)
    params = dataclasses.replace(DAILY, mode="multiplicative")
    out = run(SeasonalBaseline(params, capacity=3), counts)
    late = slice(10 * DAY, None)
    assert inside(counts, out)[late].mean() >= 0.97
    # The level trails steady growth by growth per window / growth_rate (~0.03 in log space here).
    assert abs(out["z"][late].mean()) < 0.6
    day_2, last_day = slice(DAY, 2 * DAY), slice((n_days - 1) * DAY, None)
    true_growth = rate[last_day].mean() / rate[day_2].mean()
    learned_growth = out["expected"][last_day].mean() / out["expected"][day_2].mean()
    assert learned_growth == pytest.approx(true_growth, rel=0.05)
    assert np.all(out["lower"] >= 0)


# --- edge cases -------------------------------------------------------------------------------------


def test_constant_stream_is_normal_and_finite() -> None:
    values = np.full((2 * DAY + 50, 3), 7.0)
    values[:, 2] = 0.0
    out = run(SeasonalBaseline(DAILY, capacity=3), values)
    assert np.all(out["z"] == 0.0) and np.all(out["score"] == 0.0)
    np.testing.assert_array_equal(out["expected"], values)
    assert np.all(np.isfinite(out["lower"])) and np.all(out["lower"] < out["upper"])


def test_gap_is_missing_not_zero_and_learning_resumes() -> None:
    values = daily_stream(6, 3, seed=8)
    gap = slice(4 * DAY, 4 * DAY + 120)
    values[gap] = np.nan
    baseline = SeasonalBaseline(DAILY, capacity=3)
    run(baseline, values[: gap.start])
    frozen = {name: column.copy() for name, column in baseline.state.columns.items()}
    during = run(baseline, values[gap], start=gap.start)
    for name, column in baseline.state.columns.items():
        np.testing.assert_array_equal(column, frozen[name], err_msg=f"{name} learned from a missing window")
    assert during["missing"].all() and np.isnan(during["z"]).all() and np.all(during["score"] == 0)
    assert np.isfinite(during["expected"]).all() and not during["learning"].any()
    after = run(baseline, values[gap.stop :], start=gap.stop)
    assert not after["missing"].any()
    assert inside(values[gap.stop :], after).mean() >= 0.97


def test_series_never_seen_reports_nan_band_and_learning() -> None:
    result = SeasonalBaseline(DAILY, capacity=2).update(MONDAY_MS, np.array([np.nan, 3.0]))
    assert np.isnan(result.expected[0]) and result.missing[0] and result.learning[0]
    assert result.expected[1] == 3.0 and result.z[1] == 0.0 and result.learning[1]


def test_huge_offset_does_not_cancel_catastrophically() -> None:
    values = daily_stream(3, 2, seed=9)
    values[2 * DAY + 100, 0] += 8 * SIGMA
    params = dataclasses.replace(DAILY, min_scale_rel=0.0)
    plain = run(SeasonalBaseline(params, capacity=2), values)
    shifted = run(SeasonalBaseline(params, capacity=2), values + 1e8)
    np.testing.assert_allclose(shifted["z"], plain["z"], atol=1e-3)
    np.testing.assert_allclose(shifted["expected"] - 1e8, plain["expected"], atol=1e-4)
    assert shifted["z"][2 * DAY + 100, 0] > 6


def test_borrowed_shape_makes_a_new_child_useful_at_once() -> None:
    values = daily_stream(9, 1, seed=10)[:, 0]
    start = 7 * DAY
    rng = np.random.default_rng(11)
    child = 0.25 * values[start:] + rng.normal(0, 1.0, values.size - start)
    both = np.column_stack([values, np.full(values.size, np.nan), np.full(values.size, np.nan)])
    both[start:, 1] = child
    both[start:, 2] = child
    baseline = SeasonalBaseline(DAILY, capacity=3)
    run(baseline, both[: start + 1])
    baseline.borrow_shape([1], [0])
    out = run(baseline, both[start + 1 :], start=start + 1)
    first_day = slice(0, DAY - 1)  # the twin has seen a full day at the end of it
    assert not out["learning"][first_day, 1].any()
    assert out["learning"][first_day, 2].all()
    assert inside(both[start + 1 :], out)[first_day, 1].mean() >= 0.97
    # The shape is scaled to the child's level, a quarter of its parent's: so is its expected value.
    expected = out["expected"][first_day]
    assert 0.23 < np.median(expected[:, 1] / expected[:, 0]) < 0.27
    # A spike of 8 of the child's own sigma on its first day stands out against the borrowed profile.
    child_sigma = np.hypot(0.25 * SIGMA, 1.0)
    spiked = both[start + 1 :].copy()
    spiked[300, 1] += 8 * child_sigma
    again = SeasonalBaseline(DAILY, capacity=3)
    run(again, both[: start + 1])
    again.borrow_shape([1], [0])
    assert run(again, spiked, start=start + 1)["z"][300, 1] > DAILY.band_z


def test_borrow_shape_rejects_unready_rows() -> None:
    baseline = SeasonalBaseline(DAILY, capacity=2)
    baseline.update(MONDAY_MS, np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="child_rows"):
        baseline.borrow_shape([1], [0])
    with pytest.raises(ValueError, match="parent_rows"):
        baseline.borrow_shape([0], [0])


def test_capacity_growth_keeps_state() -> None:
    values = daily_stream(2, 2, seed=12)
    grown = SeasonalBaseline(DAILY, capacity=2)
    roomy = SeasonalBaseline(DAILY, capacity=8)
    run(grown, values[:DAY])
    run(roomy, values[:DAY])
    grown.ensure_capacity(5)
    assert grown.capacity == 8
    extra = np.column_stack([values[DAY:], np.full((DAY, 3), 4.0)])
    np.testing.assert_array_equal(run(grown, extra, start=DAY)["z"], run(roomy, extra, start=DAY)["z"])


def test_state_round_trip_gives_the_same_future() -> None:
    values = daily_stream(3, 3, seed=13)
    original = SeasonalBaseline(DAILY, capacity=3)
    run(original, values[: 2 * DAY])
    restored = SeasonalBaseline(DAILY, capacity=3)
    restored.load_bytes(original.to_bytes())
    ahead = run(original, values[2 * DAY :], start=2 * DAY)
    replay = run(restored, values[2 * DAY :], start=2 * DAY)
    for name in ahead:
        np.testing.assert_array_equal(ahead[name], replay[name], err_msg=name)


def test_weekly_season_takes_over_from_daily_after_a_week() -> None:
    # Weekends are twice as busy: only the weekly profile can know that.
    rng = np.random.default_rng(14)
    params = SeasonalParams(window_s=600, slot_s=3600)
    windows = np.arange(3 * 7 * 144)
    weekend = ((windows // 144) % 7) >= 5
    values = np.where(weekend, 200.0, 100.0)[:, None] + rng.normal(0, 2, (windows.size, 1))
    out = run(SeasonalBaseline(params, capacity=1), values, window_ms=600_000)
    third_week_weekend = slice(2 * 1008 + 5 * 144, 3 * 1008)
    assert inside(values, out)[third_week_weekend].mean() >= 0.97
    assert not out["learning"][144:].any()


def test_reset_row_starts_over() -> None:
    values = daily_stream(2, 2, seed=15)
    baseline = SeasonalBaseline(DAILY, capacity=2)
    run(baseline, values)
    baseline.reset([1])
    result = baseline.update(MONDAY_MS + 2 * DAY * MINUTE_MS, np.array([300.0, 5.0]))
    assert result.learning[1] and result.expected[1] == 5.0 and not result.learning[0]


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"window_s": 0}, "window_s"),
        ({"slot_s": 7}, "slot_s"),
        ({"slot_s": 1800, "window_s": 7}, "slot_s"),
        ({"seasons": ("monthly",)}, "seasons"),
        ({"seasons": ()}, "seasons"),
        ({"mode": "log"}, "mode"),
        ({"coverage": 1.0}, "coverage"),
        ({"level_rate": 0.0}, "level_rate"),
        ({"recent_rate": 1.5}, "recent_rate"),
        ({"clip": -1.0}, "clip"),
        ({"min_scale_abs": 0.0}, "min_scale_abs"),
        ({"profile_dtype": "float16"}, "profile_dtype"),
    ],
)
def test_bad_params_name_the_parameter(change: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SeasonalParams(**change)  # type: ignore[arg-type]


def test_preallocated_out_gives_the_same_results() -> None:
    values = daily_stream(2, 3, seed=16)
    fresh = run(SeasonalBaseline(DAILY, capacity=3), values)
    baseline, out = SeasonalBaseline(DAILY, capacity=3), BaselineResult.empty(3)
    for k, row in enumerate(values):
        assert baseline.update(MONDAY_MS + k * MINUTE_MS, row, out=out) is out
        np.testing.assert_array_equal(out.z, fresh["z"][k])
        np.testing.assert_array_equal(out.upper, fresh["upper"][k])
    with pytest.raises(ValueError, match="out holds 3"):
        baseline.update(MONDAY_MS, values[0, :2], out=out)


def test_bad_update_input_is_rejected_clearly() -> None:
    baseline = SeasonalBaseline(DAILY, capacity=2)
    with pytest.raises(ValueError, match="capacity"):
        baseline.update(MONDAY_MS, np.zeros(3))
    with pytest.raises(ValueError, match="1-D"):
        baseline.update(MONDAY_MS, np.zeros((2, 1)))
    with pytest.raises(ValueError, match="t_ms"):
        baseline.update(1.5e12, np.zeros(2))  # type: ignore[arg-type]


def test_slots_follow_utc_event_time() -> None:
    params = SeasonalParams(slot_s=900)
    assert params.slots(MONDAY_MS) == (0, 0)
    sunday_2330 = MONDAY_MS + 6 * 86_400_000 + (23 * 3600 + 30 * 60) * 1000
    assert params.slots(sunday_2330) == (94, 6 * 96 + 94)
    assert params.cold_start_windows == 1440
    assert SeasonalParams(seasons="weekly").cold_start_windows == 7 * 1440  # type: ignore[arg-type]


# --- properties -------------------------------------------------------------------------------------

HOURLY = SeasonalParams(window_s=3600, slot_s=3600)


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(["additive", "multiplicative"]),
    stream=st.lists(
        st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=3, max_size=3),
        min_size=1,
        max_size=200,
    ),
)
def test_scores_bounded_bands_ordered_no_nan_escapes(mode: str, stream: list[list[float]]) -> None:
    baseline = SeasonalBaseline(dataclasses.replace(HOURLY, mode=mode), capacity=3)
    out = run(baseline, np.array(stream), window_ms=3_600_000)
    assert np.all((out["score"] >= 0) & (out["score"] <= 1))
    present = ~out["missing"]
    assert np.isfinite(out["z"][present]).all()
    seen = np.maximum.accumulate(present, axis=0)
    for name in ("expected", "lower", "upper"):
        assert np.isfinite(out[name][seen]).all(), name
    assert np.all(out["lower"][seen] <= out["expected"][seen])
    assert np.all(out["expected"][seen] <= out["upper"][seen])


def test_infinite_values_are_missing_and_negative_counts_are_zero_in_multiplicative_mode() -> None:
    baseline = SeasonalBaseline(dataclasses.replace(DAILY, mode="multiplicative"), capacity=3)
    baseline.update(MONDAY_MS, np.array([5.0, 5.0, 0.0]))
    result = baseline.update(MONDAY_MS + MINUTE_MS, np.array([np.inf, -np.inf, -3.0]))
    assert result.missing.tolist() == [True, True, False]
    assert result.z[2] == 0.0 and result.expected[2] == 0.0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    split=st.integers(1, 150),
    seasons=st.sampled_from([("daily",), ("weekly",), ("daily", "weekly")]),
)
def test_state_round_trip_at_any_point(seed: int, split: int, seasons: tuple[str, ...]) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(100, 10, (200, 2))
    values[rng.random(values.shape) < 0.1] = np.nan
    params = dataclasses.replace(HOURLY, seasons=seasons)
    original = SeasonalBaseline(params, capacity=2)
    run(original, values[:split], window_ms=3_600_000)
    restored = SeasonalBaseline(params, capacity=2)
    restored.load_bytes(original.to_bytes())
    ahead = run(original, values[split:], start=split, window_ms=3_600_000)
    replay = run(restored, values[split:], start=split, window_ms=3_600_000)
    for name in ahead:
        np.testing.assert_array_equal(ahead[name], replay[name], err_msg=name)


@pytest.mark.parametrize("seasons", [("daily",), ("weekly",), ("daily", "weekly")])
def test_batch_path_equals_streaming_window_by_window(seasons: tuple[str, ...]) -> None:
    params = SeasonalParams(window_s=600, slot_s=3600, seasons=seasons)
    values = parity_stream(1300, 3, seed=17, positive=False)
    streamed = run(SeasonalBaseline(params, capacity=4), values, window_ms=600_000)
    batch = SeasonalBaseline(params, capacity=4)
    times = MONDAY_MS + np.arange(len(values)) * 600_000
    first = batch.update_batch(times[:700], values[:700])
    second = batch.update_batch(times[700:], values[700:])
    for name in streamed:
        joined = np.concatenate([getattr(first, name), getattr(second, name)])
        np.testing.assert_array_equal(joined, streamed[name], err_msg=name)


def test_batch_path_rejects_bad_input() -> None:
    baseline = SeasonalBaseline(DAILY, capacity=2)
    times = MONDAY_MS + np.arange(3) * MINUTE_MS
    with pytest.raises(ValueError, match="strictly increasing"):
        baseline.update_batch(times[::-1], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="one start per window"):
        baseline.update_batch(times[:2], np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\(windows, series\)"):
        baseline.update_batch(times, np.zeros(3))
