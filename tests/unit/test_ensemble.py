from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.scoring.ensemble import (
    KIND_DIP,
    KIND_DRIFT,
    KIND_LEVEL_SHIFT,
    KIND_NAMES,
    KIND_NONE,
    KIND_SPIKE,
    Ensemble,
    EnsembleParams,
    EnsembleResult,
)
from detector.scoring.seasonal import SeasonalParams
from detector.scoring.state import StateError
from tests.unit.naive_ensemble import NaiveEnsemble

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WINDOW_MS = 300_000
# 5-minute windows, hourly slots, a daily season: learning ends after 288 windows, so streams stay short.
PARAMS = EnsembleParams(seasonal=SeasonalParams(window_s=300, slot_s=3600, seasons=("daily",)))
LEARNED = 288
AT = 600


def stream(kind: str, seed: int = 1, n: int = 900, at: int = AT) -> np.ndarray:
    """A daily sine (sd 1 noise) with one incident from window ``at``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 50 + 10 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, n)
    if kind == "spike":
        x[at] += 10
    elif kind == "dip":
        x[at] -= 10
    elif kind == "shift":
        x[at:] += 5
    elif kind == "drop":
        x[at:] -= 5
    elif kind == "drift":
        x[at:] += 0.05 * np.arange(n - at)
    return x


def run(values: np.ndarray, params: EnsembleParams = PARAMS) -> dict[str, np.ndarray]:
    """Stream (windows x series) through one ensemble; every output stacked per window."""
    values = values.reshape(values.shape[0], -1)
    ensemble = Ensemble(params, capacity=values.shape[1])
    results = [ensemble.update(T0 + t * WINDOW_MS, values[t]) for t in range(values.shape[0])]
    return {name: np.array([getattr(r, name) for r in results]) for name in EnsembleResult.__slots__}


# (incident, first window scoring >= 0.9, its kind, window the change is confirmed or None)
PINNED = [
    ("spike", AT, KIND_SPIKE, None),
    ("dip", AT, KIND_DIP, None),
    ("shift", AT + 4, KIND_LEVEL_SHIFT, AT + 4),
    ("drift", AT + 75, KIND_DRIFT, AT + 85),
]


@pytest.mark.parametrize(("incident", "first", "kind", "confirmed"), PINNED)
def test_seeded_incident_is_detected_at_its_pinned_window_with_its_kind(
    incident: str, first: int, kind: int, confirmed: int | None
) -> None:
    out = run(stream(incident))
    high = np.flatnonzero(out["score"][:, 0] >= 0.9)
    assert high[0] == first and out["kind"][first, 0] == kind, (high[:5], KIND_NAMES[out["kind"][first, 0]])
    changes = np.flatnonzero(out["changed"][:, 0])
    assert (changes[0] if changes.size else None) == confirmed
    assert out["score"][LEARNED:AT, 0].max() < 0.6  # nothing before the incident once learned


def test_clean_stream_never_scores_high_and_learning_is_capped() -> None:
    out = run(stream("clean"))
    assert out["learning"][:LEARNED, 0].all() and not out["learning"][LEARNED:, 0].any()
    assert out["score"][:LEARNED, 0].max() <= PARAMS.learning_cap
    assert out["score"][:, 0].max() < 0.6 and not out["changed"].any()


def test_level_shift_score_decays_after_rebase_and_baseline_adopts_new_level() -> None:
    out = run(stream("shift"))
    score = out["score"][:, 0]
    confirmed = AT + 4
    hold = PARAMS.hold_windows
    assert (score[confirmed : confirmed + hold + 1] >= PARAMS.confirmed_score).all()
    after = score[confirmed + hold + 1 : confirmed + hold + 30]
    assert np.all(np.diff(after[:10]) < 0) and after[-1] < 0.3
    # The band moved with the level: the last 100 windows are back inside it.
    inside = (out["lower"][-100:, 0] <= stream("shift")[-100:]) & (
        stream("shift")[-100:] <= out["upper"][-100:, 0]
    )
    assert inside.mean() > 0.95
    assert out["direction"][confirmed, 0] == 1


def test_direction_follows_the_incident() -> None:
    assert run(stream("dip"))["direction"][AT, 0] == -1
    assert run(stream("spike"))["direction"][AT, 0] == 1
    assert run(-stream("shift"))["direction"][AT + 4, 0] == -1


@pytest.mark.parametrize("mode", ["additive", "multiplicative"])
def test_kernel_matches_plain_python_reference(mode: str) -> None:
    params = EnsembleParams(
        seasonal=SeasonalParams(
            window_s=300, slot_s=3600, seasons=("daily",), profile_dtype="float64", mode=mode
        )
    )
    columns = [
        stream(k, seed=s, n=760)
        for k, s in [("spike", 4), ("dip", 5), ("shift", 6), ("drift", 7), ("clean", 8), ("drop", 9)]
    ]
    values = np.stack(columns, axis=1)
    values[300:310, 4] = np.nan  # a gap after learning
    values[650, 2] = np.nan
    out = run(values, params)
    for j in range(values.shape[1]):
        naive = NaiveEnsemble(params)
        for t in range(values.shape[0]):
            ref = naive.update(T0 + t * WINDOW_MS, float(values[t, j]))
            where = f"series {j}, window {t}"
            assert out["score"][t, j] == pytest.approx(ref.score, rel=1e-6, abs=1e-9), where
            assert (out["kind"][t, j], out["direction"][t, j], out["changed"][t, j]) == (
                ref.kind,
                ref.direction,
                ref.changed,
            ), where
            assert out["missing"][t, j] == ref.missing and out["learning"][t, j] == ref.learning, where
    assert out["changed"][:, 2].any() and out["changed"][:, 5].any()  # re-based up and down


def test_many_series_in_one_call_equal_one_ensemble_each() -> None:
    values = np.stack([stream(k, seed=9) for k in ("spike", "shift", "drift", "clean")], axis=1)
    together = run(values)
    for j in range(values.shape[1]):
        alone = run(values[:, j])
        for name in ("score", "kind", "direction", "changed", "expected"):
            np.testing.assert_array_equal(together[name][:, j], alone[name][:, 0], err_msg=name)


def test_missing_windows_keep_state_and_score_zero() -> None:
    x = stream("shift")
    gappy = x.copy()
    gappy[400:420] = np.nan
    out = run(gappy)
    assert (out["score"][400:420, 0] == 0).all() and out["missing"][400:420, 0].all()
    assert (out["kind"][400:420, 0] == KIND_NONE).all()
    assert not np.isnan(out["score"]).any()
    assert np.flatnonzero(out["changed"][:, 0])[0] == AT + 4  # the gap did not disturb the detection


def test_constant_stream_scores_zero() -> None:
    out = run(np.full(700, 42.0))
    assert (out["score"] == 0).all() and (out["kind"] == KIND_NONE).all()
    assert np.isfinite(out["expected"]).all() and np.isfinite(out["upper"]).all()


def test_offset_of_1e8_changes_nothing_that_matters() -> None:
    # No relative scale floor: 1e-4 of 1e8 would be a scale of 1e4 (documented in scoring-seasonal.md).
    params = EnsembleParams(
        seasonal=SeasonalParams(window_s=300, slot_s=3600, seasons=("daily",), min_scale_rel=0.0)
    )
    x = stream("shift")
    plain, offset = run(x, params), run(x + 1e8, params)
    np.testing.assert_allclose(offset["z"], plain["z"], atol=2e-3)
    np.testing.assert_array_equal(offset["kind"], plain["kind"])
    np.testing.assert_array_equal(offset["changed"], plain["changed"])


def test_extreme_value_while_learning_still_scores() -> None:
    x = stream("clean")
    x[150] += 40  # 40 sd while the baseline is still learning
    out = run(x)
    assert out["learning"][150, 0] and out["score"][150, 0] > 0.99 and out["kind"][150, 0] == KIND_SPIKE
    assert np.delete(out["score"][:LEARNED, 0], 150).max() <= PARAMS.learning_cap


def test_state_round_trip_gives_the_same_future() -> None:
    values = np.stack([stream("shift", seed=2), stream("drift", seed=3)], axis=1)
    first = Ensemble(PARAMS, capacity=2)
    for t in range(AT + 2):  # mid-episode: BOCPD gate open, streak running
        first.update(T0 + t * WINDOW_MS, values[t])
    second = Ensemble(PARAMS, capacity=1)
    second.load_bytes(first.to_bytes())
    for t in range(AT + 2, values.shape[0]):
        a = first.update(T0 + t * WINDOW_MS, values[t])
        b = second.update(T0 + t * WINDOW_MS, values[t])
        np.testing.assert_array_equal(a.score, b.score)
        np.testing.assert_array_equal(a.kind, b.kind)


def test_snapshot_of_other_parameters_or_garbage_is_refused_and_state_kept() -> None:
    ensemble = Ensemble(PARAMS, capacity=2)
    ensemble.update(T0, np.array([1.0, 2.0]))
    before = ensemble.to_bytes()
    other = Ensemble(EnsembleParams(bocpd=PARAMS.bocpd.__class__(max_run_length=32, min_instances=10)))
    with pytest.raises(StateError):
        ensemble.load_bytes(other.to_bytes())
    with pytest.raises(StateError, match="not an ensemble snapshot"):
        ensemble.load_bytes(b"garbage")
    assert ensemble.to_bytes() == before


def test_capacity_growth_reset_and_sizes() -> None:
    ensemble = Ensemble(PARAMS, capacity=1)
    ensemble.ensure_capacity(5)
    assert ensemble.capacity == 8
    x = stream("clean")[:50]
    for t in range(50):
        ensemble.update(T0 + t * WINDOW_MS, np.full(3, x[t]))
    ensemble.reset([1])
    out = ensemble.update(T0 + 50 * WINDOW_MS, np.full(3, x[0]))
    assert (
        out.learning[1]
        and ensemble.baseline.state["seen"][1] == 1
        and ensemble.baseline.state["seen"][0] == 51
    )
    assert ensemble.nbytes_per_series(with_profile=False) < 2048
    assert (
        ensemble.nbytes_per_series() == ensemble.nbytes_per_series(False) + 24 * 2 * 4
    )  # float32 (deviation, scale) per slot
    with pytest.raises(ValueError, match="capacity"):
        ensemble.update(T0, np.zeros(9))


def test_invalid_parameters_name_the_field() -> None:
    with pytest.raises(ValueError, match="gate_z"):
        EnsembleParams(gate_z=0)
    with pytest.raises(ValueError, match="confirmed_score"):
        EnsembleParams(confirmed_score=2)
    with pytest.raises(ValueError, match="noise_sd"):
        EnsembleParams(bocpd=PARAMS.bocpd.__class__(noise_sd=2.0))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.one_of(st.floats(-1e12, 1e12), st.just(float("nan"))), min_size=1, max_size=80),
    st.sampled_from(["additive", "multiplicative"]),
)
def test_scores_are_in_unit_interval_and_never_nan(values: list[float], mode: str) -> None:
    params = EnsembleParams(
        seasonal=SeasonalParams(window_s=300, slot_s=3600, seasons=("daily",), mode=mode),
        trust_short_term=True,
    )
    x = np.array(values)
    out = run(x, params)
    assert ((out["score"] >= 0) & (out["score"] <= 1)).all()
    assert not np.isnan(out["score"]).any()
    assert set(np.unique(out["kind"]).tolist()) <= set(range(len(KIND_NAMES)))
