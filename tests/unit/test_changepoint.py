"""Change-point family: kernels against plain-Python references and river, pinned detections, edge cases."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from river import drift

from detector.scoring.bocpd import Bocpd, BocpdParams
from detector.scoring.change import ChangeDetector, ChangeResult
from detector.scoring.cusum import Cusum, CusumParams
from detector.scoring.page_hinkley import PageHinkley, PageHinkleyParams
from detector.scoring.state import StateError
from tests.unit.naive_changepoint import (
    NaiveBocpd,
    NaiveCusum,
    NaivePageHinkley,
    ScalarDetector,
    run_reference,
)

PH_SENSITIVE = PageHinkleyParams(min_instances=20, threshold=15.0)
BOCPD_SMALL = BocpdParams(max_run_length=32, window=4, min_instances=8)

# (name, detector factory for a capacity, reference factory) for every family and Page-Hinkley mode.
FAMILIES: list[tuple[str, Callable[[int], ChangeDetector], Callable[[], ScalarDetector]]] = [
    ("cusum", lambda n: Cusum(CusumParams(), n), lambda: NaiveCusum(CusumParams())),
    *[
        (
            f"page_hinkley_{mode}",
            lambda n, mode=mode: PageHinkley(
                PageHinkleyParams(min_instances=20, threshold=15.0, mode=mode), n
            ),
            lambda mode=mode: NaivePageHinkley(
                PageHinkleyParams(min_instances=20, threshold=15.0, mode=mode)
            ),
        )
        for mode in ("up", "down", "both")
    ],
    ("bocpd", lambda n: Bocpd(BOCPD_SMALL, n), lambda: NaiveBocpd(BOCPD_SMALL)),
    ("bocpd_r128", lambda n: Bocpd(BocpdParams(), n), lambda: NaiveBocpd(BocpdParams())),
]
FAMILY_IDS = [f[0] for f in FAMILIES]


def shifting_streams(seed: int, n_windows: int, n_series: int, nan_fraction: float = 0.05) -> np.ndarray:
    """Noise with a random level shift (up or down, 2-6 sd) per series at a random window, plus NaNs."""
    rng = np.random.default_rng(seed)
    stream = rng.normal(size=(n_windows, n_series))
    for j in range(n_series):
        at = rng.integers(n_windows // 4, 3 * n_windows // 4)
        stream[at:, j] += rng.choice([-1, 1]) * rng.uniform(2, 6)
    stream[rng.random(stream.shape) < nan_fraction] = np.nan
    return stream


def run_detector(detector: ChangeDetector, stream: np.ndarray) -> tuple[np.ndarray, ...]:
    results = [detector.update(row) for row in stream]
    return tuple(np.stack([getattr(r, name) for r in results]) for name in ChangeResult.__slots__)


def detection_windows(detector: ChangeDetector, values: np.ndarray) -> list[int]:
    return [t for t, v in enumerate(values) if detector.update(np.array([v])).detected[0]]


def river_detection_windows(params: PageHinkleyParams, values: np.ndarray) -> list[int]:
    ph = drift.PageHinkley(
        min_instances=params.min_instances,
        delta=params.delta,
        threshold=params.threshold,
        alpha=params.alpha,
        mode=params.mode,
    )
    hits = []
    for t, v in enumerate(values):
        ph.update(float(v))
        if ph.drift_detected:
            hits.append(t)
    return hits


# --- parameters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: CusumParams(k=-1.0), "k"),
        (lambda: CusumParams(h=0.0), "h"),
        (lambda: CusumParams(min_instances=-1), "min_instances"),
        (lambda: PageHinkleyParams(min_instances=0), "min_instances"),
        (lambda: PageHinkleyParams(delta=float("nan")), "delta"),
        (lambda: PageHinkleyParams(threshold=-1.0), "threshold"),
        (lambda: PageHinkleyParams(alpha=1.5), "alpha"),
        (lambda: PageHinkleyParams(mode="sideways"), "mode"),
        (lambda: BocpdParams(hazard_lambda=0.5), "hazard_lambda"),
        (lambda: BocpdParams(max_run_length=1), "max_run_length"),
        (lambda: BocpdParams(window=128), "window"),
        (lambda: BocpdParams(threshold=1.0), "threshold"),
        (lambda: BocpdParams(noise_sd=0.0), "noise_sd"),
        (lambda: BocpdParams(prior_sd=float("inf")), "prior_sd"),
        (lambda: BocpdParams(window=5, min_instances=3), "min_instances"),
    ],
)
def test_invalid_parameters_are_rejected_naming_the_parameter(
    make: Callable[[], ScalarDetector], name: str
) -> None:
    with pytest.raises(ValueError, match=rf"\.{name} must"):
        make()


def test_update_rejects_more_series_than_capacity_and_wrong_shapes() -> None:
    detector = Cusum(CusumParams(), capacity=2)
    with pytest.raises(ValueError, match="ensure_capacity"):
        detector.update(np.zeros(3))
    with pytest.raises(ValueError, match="1-D"):
        detector.update(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="out holds 1 series"):
        detector.update(np.zeros(2), out=ChangeResult.empty(1))
    with pytest.raises(ValueError, match="x must be numbers"):
        detector.update(["1.0", "lots"])
    np.testing.assert_array_equal(detector.update([0.0, 1]).score, [0.0, 0.0])  # lists and ints are fine


# --- kernels against the plain-Python references ------------------------------------------------------


@pytest.mark.parametrize(("name", "make", "make_reference"), FAMILIES, ids=FAMILY_IDS)
@pytest.mark.parametrize("seed", [1, 2])
def test_kernel_matches_plain_python_reference(
    name: str, make: Callable[[int], ChangeDetector], make_reference: Callable[[], ScalarDetector], seed: int
) -> None:
    stream = shifting_streams(seed, n_windows=260, n_series=5)
    if name.startswith("cusum"):
        stream[100, 0] = 9.0  # a spike that alarms at once
    statistic, score, detected, direction = run_detector(make(5), stream)
    ref_statistic, ref_score, ref_detected, ref_direction = run_reference(make_reference, stream)
    np.testing.assert_allclose(statistic, ref_statistic, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(score, ref_score, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(detected, ref_detected)
    np.testing.assert_array_equal(direction, ref_direction)
    assert detected.any(), "the streams hold level shifts: the comparison must include alarms"


# --- Page-Hinkley against river ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["up", "down", "both"])
@pytest.mark.parametrize("seed", [3, 4, 5])
@pytest.mark.parametrize("offset", [0.0, 1e8])
def test_page_hinkley_flags_the_same_windows_as_river(mode: str, seed: int, offset: float) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=900) + offset
    values[200:450] += 3.0  # up, then back down, then a deeper dip
    values[650:] -= 4.0
    params = PageHinkleyParams(min_instances=20, threshold=15.0, mode=mode)
    expected = river_detection_windows(params, values)
    assert expected, "river must flag something on these shifts, or the comparison proves nothing"
    assert detection_windows(PageHinkley(params, capacity=1), values) == expected
    reference = NaivePageHinkley(params)
    assert [t for t, v in enumerate(values) if reference.step(float(v))[2]] == expected


def test_page_hinkley_with_river_defaults_matches_river_on_a_stream_like_its_docstring() -> None:
    rng = np.random.default_rng(12345)
    values = np.concatenate([rng.choice([0.0, 1.0], 1000), rng.choice([4.0, 5.0, 6.0, 7.0], 1000)])
    expected = river_detection_windows(PageHinkleyParams(), values)
    assert expected and 1000 <= expected[0] < 1020
    assert detection_windows(PageHinkley(PageHinkleyParams(), capacity=1), values) == expected


def test_page_hinkley_many_series_each_match_river() -> None:
    stream = shifting_streams(6, n_windows=400, n_series=8, nan_fraction=0.0)
    _, _, detected, _ = run_detector(PageHinkley(PH_SENSITIVE, capacity=8), stream)
    for j in range(8):
        assert list(np.flatnonzero(detected[:, j])) == river_detection_windows(PH_SENSITIVE, stream[:, j])


# --- batched equals one-by-one -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "make", "make_reference"), FAMILIES[:5], ids=FAMILY_IDS[:5])
def test_many_series_in_one_call_equal_separate_single_series_detectors(
    name: str, make: Callable[[int], ChangeDetector], make_reference: Callable[[], ScalarDetector]
) -> None:
    stream = shifting_streams(7, n_windows=200, n_series=6)
    batched = run_detector(make(6), stream)
    for j in range(6):
        alone = run_detector(make(1), stream[:, j : j + 1])
        for together, single in zip(batched, alone, strict=True):
            np.testing.assert_array_equal(together[:, j : j + 1], single)


@pytest.mark.parametrize(("name", "make", "make_reference"), FAMILIES[:5], ids=FAMILY_IDS[:5])
def test_reused_output_buffers_give_the_same_results(
    name: str, make: Callable[[int], ChangeDetector], make_reference: Callable[[], ScalarDetector]
) -> None:
    stream = shifting_streams(8, n_windows=120, n_series=4)
    fresh, reused = make(4), make(4)
    out = ChangeResult.empty(4)
    for row in stream:
        expected = fresh.update(row)
        got = reused.update(row, out=out)
        assert got is out
        for name_ in ChangeResult.__slots__:
            np.testing.assert_array_equal(getattr(got, name_), getattr(expected, name_))


# --- pinned detections on synthetic incidents -----------------------------------------------------------


def incident(kind: str, seed: int = 11, n_windows: int = 400) -> np.ndarray:
    values = np.random.default_rng(seed).normal(size=n_windows)
    if kind == "shift_up":
        values[200:] += 3.0
    elif kind == "shift_down":
        values[200:] -= 3.0
    elif kind == "spike":
        values[200] += 10.0
    elif kind == "drift":
        values[200:] += 0.05 * np.arange(n_windows - 200)
    return values


# (first alarm, number of alarms in windows 0..399) pinned from seeded runs; every incident begins at
# window 200. CUSUM keeps alarming while a shift persists (it restarts after each alarm; the ensemble
# re-bases the residuals), Page-Hinkley alarms once per shift and ignores a single spike, BOCPD alarms
# once per shift or spike and misses a slow drift (each step is too small to open a new segment).
PINNED: dict[tuple[str, str], tuple[int | None, int]] = {
    ("cusum", "shift_up"): (203, 54),
    ("cusum", "shift_down"): (202, 51),
    ("cusum", "spike"): (200, 1),
    ("cusum", "drift"): (231, 82),
    ("page_hinkley", "shift_up"): (205, 1),
    ("page_hinkley", "shift_down"): (206, 1),
    ("page_hinkley", "spike"): (None, 0),
    ("page_hinkley", "drift"): (230, 4),
    ("bocpd", "shift_up"): (202, 1),
    ("bocpd", "shift_down"): (201, 1),
    ("bocpd", "spike"): (200, 1),
    ("bocpd", "drift"): (None, 0),
}


def make_pinned(family: str) -> ChangeDetector:
    if family == "cusum":
        return Cusum(CusumParams(h=8.0), capacity=1)
    if family == "page_hinkley":
        return PageHinkley(PageHinkleyParams(min_instances=30, threshold=25.0), capacity=1)
    return Bocpd(BocpdParams(), capacity=1)


@pytest.mark.parametrize(("family", "kind"), list(PINNED))
def test_detection_windows_are_pinned(family: str, kind: str) -> None:
    windows = detection_windows(make_pinned(family), incident(kind))
    first, count = PINNED[(family, kind)]
    assert (windows[0] if windows else None, len(windows)) == (first, count)
    assert all(t >= 200 for t in windows), "no false alarm before the incident"


# --- edge cases -------------------------------------------------------------------------------------------

ALL = [f for f in FAMILIES if f[0] != "bocpd_r128"]
ALL_IDS = [f[0] for f in ALL]


# CUSUM takes standardised residuals: a constant 1e8 would be a real, huge residual, not an offset.
CONSTANT_CASES = [
    (*family, level) for family in ALL for level in (0.3, 1e8) if (family[0], level) != ("cusum", 1e8)
]


@pytest.mark.parametrize(("name", "make", "make_reference", "level"), CONSTANT_CASES)
def test_constant_stream_raises_nothing_and_stays_finite(
    name: str,
    make: Callable[[int], ChangeDetector],
    make_reference: Callable[[], ScalarDetector],
    level: float,
) -> None:
    statistic, score, detected, direction = run_detector(make(2), np.full((300, 2), level))
    assert not detected.any()
    assert np.isfinite(statistic).all() and np.isfinite(score).all()
    assert score.max() < 0.5
    assert not direction.any(), "nothing moves, so no direction"


@pytest.mark.parametrize(("name", "make", "make_reference"), ALL, ids=ALL_IDS)
def test_missing_windows_leave_the_state_untouched(
    name: str, make: Callable[[int], ChangeDetector], make_reference: Callable[[], ScalarDetector]
) -> None:
    stream = shifting_streams(9, n_windows=300, n_series=3, nan_fraction=0.0)
    gappy = stream.copy()
    gaps = np.zeros(300, dtype=bool)
    gaps[[5, 40, 41, 42, 150, 151, 230]] = True
    gappy[gaps] = np.nan
    with_gaps = run_detector(make(3), gappy)
    without_gaps = run_detector(make(3), stream[~gaps])
    for gapped, compact in zip(with_gaps, without_gaps, strict=True):
        np.testing.assert_array_equal(gapped[~gaps], compact)
        assert not gapped[gaps].any(), "a missing window scores 0, detects nothing, has no direction"


def test_infinite_values_count_as_missing() -> None:
    series = shifting_streams(10, n_windows=200, n_series=1, nan_fraction=0.0)[:, 0]
    stream = np.stack([series, series], axis=1)
    stream[[50, 120], 0] = [np.inf, -np.inf]
    stream[[50, 120], 1] = np.nan
    for detector in (Cusum(CusumParams(), 2), PageHinkley(PH_SENSITIVE, 2), Bocpd(BOCPD_SMALL, 2)):
        for output in run_detector(detector, stream):
            np.testing.assert_array_equal(output[:, 0], output[:, 1])
            assert np.isfinite(output).all()


def test_bocpd_ignores_a_constant_offset() -> None:
    values = incident("shift_up")
    plain = run_detector(Bocpd(BocpdParams(), 1), values[:, None])
    offset = run_detector(Bocpd(BocpdParams(), 1), values[:, None] + 1e8)
    np.testing.assert_array_equal(offset[2], plain[2])
    np.testing.assert_allclose(offset[1], plain[1], atol=1e-5)


def test_no_detection_during_warm_up() -> None:
    huge_from_start = np.full(40, 50.0)
    huge_from_start[::2] = -50.0
    cusum = Cusum(CusumParams(min_instances=10), capacity=1)
    assert detection_windows(cusum, huge_from_start)[0] == 10  # the first value after warm-up alarms
    jump = np.zeros(60)
    jump[3:] = 100.0
    bocpd = Bocpd(BocpdParams(min_instances=20), capacity=1)
    assert detection_windows(bocpd, jump) == []  # the jump at 3 is history by the end of warm-up
    ph_params = PageHinkleyParams(min_instances=25, threshold=5.0)
    ph_windows = detection_windows(PageHinkley(ph_params, capacity=1), jump)
    assert ph_windows and ph_windows[0] >= 24  # count >= min_instances from the 25th value (index 24)
    assert ph_windows == river_detection_windows(ph_params, jump)


@pytest.mark.parametrize(("name", "make", "make_reference"), ALL, ids=ALL_IDS)
def test_capacity_growth_keeps_existing_series_state(
    name: str, make: Callable[[int], ChangeDetector], make_reference: Callable[[], ScalarDetector]
) -> None:
    stream = shifting_streams(12, n_windows=240, n_series=3)
    steady = make(3)
    growing = make(3)
    expected = run_detector(steady, stream)
    run_detector(growing, stream[:120])
    growing.ensure_capacity(40)
    assert growing.capacity == 48
    newcomers = np.full((120, 37), np.nan)
    newcomers[:, -1] = 0.0
    later = run_detector(growing, np.hstack([stream[120:], newcomers]))
    for full, grown in zip(expected, later, strict=True):
        np.testing.assert_array_equal(grown[:, :3], full[120:])
    fresh = run_detector(make(1), newcomers[:, -1:])
    np.testing.assert_array_equal(later[0][:, -1:], fresh[0])


@pytest.mark.parametrize(("name", "make", "make_reference"), ALL, ids=ALL_IDS)
def test_reset_rows_restart_those_series_only(
    name: str, make: Callable[[int], ChangeDetector], make_reference: Callable[[], ScalarDetector]
) -> None:
    stream = shifting_streams(13, n_windows=200, n_series=3)
    detector = make(3)
    run_detector(detector, stream[:100])
    detector.reset([1])
    after = run_detector(detector, stream[100:])
    untouched = make(3)
    expected = run_detector(untouched, stream)
    restarted = run_detector(make(1), stream[100:, 1:2])
    for got, full, alone in zip(after, expected, restarted, strict=True):
        np.testing.assert_array_equal(got[:, [0, 2]], full[100:, [0, 2]])
        np.testing.assert_array_equal(got[:, 1:2], alone)


@pytest.mark.parametrize(("name", "make", "make_reference"), ALL, ids=ALL_IDS)
def test_state_round_trips_through_bytes(
    name: str, make: Callable[[int], ChangeDetector], make_reference: Callable[[], ScalarDetector]
) -> None:
    stream = shifting_streams(14, n_windows=200, n_series=4)
    original = make(4)
    run_detector(original, stream[:90])
    restored = make(1)
    restored.load_bytes(original.to_bytes())
    assert restored.capacity == original.capacity
    for a, b in zip(run_detector(original, stream[90:]), run_detector(restored, stream[90:]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_snapshot_of_another_family_or_shape_is_refused() -> None:
    with pytest.raises(StateError, match="family"):
        PageHinkley(PageHinkleyParams()).load_bytes(Cusum(CusumParams()).to_bytes())
    with pytest.raises(StateError, match="family"):
        Bocpd(BocpdParams(max_run_length=64)).load_bytes(Bocpd(BocpdParams()).to_bytes())


def test_state_per_series_is_small() -> None:
    assert Cusum(CusumParams()).nbytes_per_series == 24
    assert PageHinkley(PageHinkleyParams()).nbytes_per_series == 49
    assert Bocpd(BocpdParams()).nbytes_per_series == 2 * 128 * 4 + 8 + 8 + 1 + 8


# --- properties ---------------------------------------------------------------------------------------------

finite_windows = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 60), st.integers(1, 3)),
    elements=st.floats(-1e12, 1e12, allow_nan=False) | st.just(np.nan),
)


@pytest.mark.parametrize(("name", "make", "make_reference"), ALL, ids=ALL_IDS)
@settings(max_examples=40, deadline=None)
@given(stream=finite_windows)
def test_scores_stay_in_unit_interval_and_nothing_is_nan(
    name: str,
    make: Callable[[int], ChangeDetector],
    make_reference: Callable[[], ScalarDetector],
    stream: np.ndarray,
) -> None:
    statistic, score, detected, direction = run_detector(make(stream.shape[1]), stream)
    assert np.isfinite(statistic).all()
    assert ((score >= 0) & (score <= 1)).all()
    assert set(np.unique(direction)) <= {-1, 0, 1}
    assert not detected[np.isnan(stream)].any()


@settings(max_examples=40, deadline=None)
@given(
    stream=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.just(2)),
        elements=st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_bocpd_and_cusum_survive_any_finite_magnitude(stream: np.ndarray) -> None:
    for detector in (Cusum(CusumParams(), 2), Bocpd(BOCPD_SMALL, 2)):
        statistic, score, _, _ = run_detector(detector, stream)
        assert np.isfinite(score).all() and ((score >= 0) & (score <= 1)).all()
        assert not np.isnan(statistic).any()
    for column in ("prob", "mean", "settled"):
        assert np.isfinite(detector.state(column)).all(), f"BOCPD state {column} must stay finite"


def test_bocpd_exp_matches_libm_closely() -> None:
    from detector.scoring.bocpd import _exp_nonpositive

    arguments = -np.concatenate([np.geomspace(1e-12, 707.0, 2000), np.linspace(0.0, 50.0, 2001)])
    ours = np.array([_exp_nonpositive(v) for v in arguments])
    np.testing.assert_allclose(ours, np.exp(arguments), rtol=1e-11)
    assert _exp_nonpositive(-1e300) == pytest.approx(np.exp(-708.0), rel=1e-14)  # clamped, never 0 * inf


@pytest.mark.parametrize(("name", "make", "make_reference"), ALL, ids=ALL_IDS)
@settings(max_examples=25, deadline=None)
@given(stream=finite_windows, split=st.integers(0, 60))
def test_any_snapshot_resumes_exactly(
    name: str,
    make: Callable[[int], ChangeDetector],
    make_reference: Callable[[], ScalarDetector],
    stream: np.ndarray,
    split: int,
) -> None:
    split = min(split, stream.shape[0] - 1)  # at least one window after the snapshot
    uninterrupted = make(stream.shape[1])
    expected = run_detector(uninterrupted, stream)
    before = make(stream.shape[1])
    for row in stream[:split]:
        before.update(row)
    resumed = make(1)
    resumed.load_bytes(before.to_bytes())
    for got, want in zip(run_detector(resumed, stream[split:]), expected, strict=True):
        np.testing.assert_array_equal(got, want[split:])
