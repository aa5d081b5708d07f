from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from detector.aggregation.windows import Aggregator
from detector.alerting.rca import MetricWindow, RcaSettings, SliceIndex, SliceKey, explain
from tests.unit.test_aggregation import NOW, SMALL, frame, hand_built, key

# --- a cube of leaves, rolled up into the series the config would slice -------------------------------

DIMS = ("region", "platform", "network")
VALUES = {"region": ("BR", "IN", "US", "DE"), "platform": ("android", "ios"), "network": ("wifi", "4g", "3g")}
PAIRS = (("region", "network"), ("region", "platform"))


def rolled_up(
    cube: np.ndarray,
    dims: tuple[str, ...],
    values: dict[str, tuple[str, ...]],
    pairs: tuple[tuple[str, str], ...],
) -> dict[SliceKey, float]:
    """Total, every single dimension and every listed pair of a leaf cube (axes in ``dims`` order)."""
    out: dict[SliceKey, float] = {(): float(cube.sum())}
    for axis, d in enumerate(dims):
        others = tuple(a for a in range(len(dims)) if a != axis)
        for v, total in zip(values[d], cube.sum(axis=others), strict=True):
            out[((d, v),)] = float(total)
    for d, e in pairs:
        i, j = dims.index(d), dims.index(e)
        others = tuple(a for a in range(len(dims)) if a not in (i, j))
        plane = cube.sum(axis=others)  # axes (min(i, j), max(i, j)), i < j as pairs are canonical here
        for (x, vx), (y, vy) in itertools.product(enumerate(values[d]), enumerate(values[e])):
            out[((d, vx), (e, vy))] = float(plane[x, y])
    return out


def window_of(
    actual: dict[SliceKey, float], expected: dict[SliceKey, float], score: float = 1.0, **parts: dict
) -> MetricWindow:
    keys = sorted(expected, key=lambda k: (len(k), k))
    arrays = {name: np.array([p[k] for k in keys]) for name, p in parts.items()}
    return MetricWindow(
        SliceIndex(keys),
        np.array([actual[k] for k in keys]),
        np.array([expected[k] for k in keys]),
        np.full(len(keys), score),
        **arrays,
    )


def base_cube() -> np.ndarray:
    region = np.array([400.0, 300.0, 200.0, 100.0])
    platform = np.array([0.6, 0.4])
    network = np.array([0.5, 0.3, 0.2])
    return region[:, None, None] * platform[None, :, None] * network[None, None, :]


def small_window(actual_cube: np.ndarray, expected_cube: np.ndarray) -> MetricWindow:
    return window_of(
        rolled_up(actual_cube, DIMS, VALUES, PAIRS), rolled_up(expected_cube, DIMS, VALUES, PAIRS)
    )


# --- additive --------------------------------------------------------------------------------------------


def test_one_region_dropping_is_ranked_first_with_its_share_of_the_deviation() -> None:
    expected = base_cube()
    actual = expected.copy()
    actual[1] *= 0.5  # IN halves: 150 of the 150 lost
    actual[0, 0, 0] += 5.0  # a little unrelated noise elsewhere
    causes = explain(small_window(actual, expected), (), "count")
    top = causes[0]
    assert top["slice"] == {"region": "IN"}
    assert top["share"] == pytest.approx(-150.0 / -145.0)
    assert (top["actual"], top["expected"]) == (pytest.approx(150.0), pytest.approx(300.0))
    assert top["explanation"] == "deviation" and top["in_minimal_set"] is True
    assert top["potential"] > 0.9
    json.dumps(causes)  # the alert topic carries them as they are


def test_a_compound_incident_is_reported_as_the_pair_not_as_its_two_singles() -> None:
    expected = base_cube()
    actual = expected.copy()
    actual[1, :, 2] *= 0.2  # IN on 3g only
    causes = explain(small_window(actual, expected), (), "count")
    assert causes[0]["slice"] == {"region": "IN", "network": "3g"}
    assert causes[0]["share"] == pytest.approx(1.0)
    # its parents explain every unit too (share 1), and platforms their part of it, but the pair is the
    # cause: nothing that re-counts its events is listed below it
    assert [c["slice"] for c in causes] == [{"region": "IN", "network": "3g"}]


def test_a_whole_region_is_not_split_into_its_pairs() -> None:
    expected = base_cube()
    actual = expected.copy()
    actual[2] *= 0.4  # US, on every network and platform
    causes = explain(small_window(actual, expected), (), "count")
    assert causes[0]["slice"] == {"region": "US"}
    assert all("region" not in c["slice"] or c["slice"]["region"] != "US" for c in causes[1:])


def test_two_regions_failing_are_both_named_and_together_explain_the_drop() -> None:
    expected = base_cube()
    actual = expected.copy()
    actual[0] *= 0.8  # BR loses 80
    actual[3] *= 0.4  # DE loses 60
    causes = explain(small_window(actual, expected), (), "count")
    assert {frozenset(c["slice"].items()) for c in causes[:2]} == {
        frozenset({("region", "BR")}),
        frozenset({("region", "DE")}),
    }
    assert sum(c["share"] for c in causes[:2]) == pytest.approx(1.0)
    assert [c["in_minimal_set"] for c in causes[:2]] == [True, True]


def test_an_alert_on_a_slice_is_explained_by_the_slices_below_it() -> None:
    expected = base_cube()
    actual = expected.copy()
    actual[1, :, 0] *= 0.3  # IN on wifi
    actual[0] *= 0.5  # BR also drops, but it is not below the IN alert
    causes = explain(small_window(actual, expected), {"region": "IN"}, "count")
    assert causes[0]["slice"] == {"region": "IN", "network": "wifi"}
    assert all(c["slice"].get("region") == "IN" for c in causes)


def test_slices_moving_against_the_alert_are_not_causes() -> None:
    expected = base_cube()
    actual = expected.copy()
    actual[1] *= 0.5
    actual[2] *= 1.1  # US grows a little while the total drops
    causes = explain(small_window(actual, expected), (), "count")
    assert all(c["share"] > 0 for c in causes)
    assert {"region": "US"} not in [c["slice"] for c in causes]


@pytest.mark.parametrize(
    "actual_of",
    [
        lambda e: e.copy(),  # no deviation at all
        lambda e: np.full_like(e, np.nan),  # every value missing
    ],
    ids=["no-deviation", "all-nan"],
)
def test_nothing_to_explain_gives_no_causes(actual_of) -> None:
    expected = base_cube()
    assert explain(small_window(actual_of(expected), expected), (), "count") == []


def test_zero_totals_and_missing_expectations_give_finite_causes_or_none() -> None:
    zeros = np.zeros_like(base_cube())
    assert explain(small_window(zeros, zeros), (), "sum") == []
    expected = base_cube()
    actual = expected.copy()
    actual[1] *= 0.5
    window = small_window(actual, expected)
    window.expected[window.index.row[(("region", "BR"),)]] = np.nan  # BR's baseline is still learning
    causes = explain(window, (), "sum")
    assert causes[0]["slice"] == {"region": "IN"}
    for cause in causes:
        for field in ("share", "actual", "expected", "surprise", "potential"):
            assert cause[field] is None or math.isfinite(cause[field])


def test_ties_are_broken_the_same_way_every_time() -> None:
    expected = np.full((4, 2, 3), 10.0)
    actual = expected.copy()
    actual[0] -= 5.0  # BR and DE lose exactly the same
    actual[3] -= 5.0
    window = small_window(actual, expected)
    first = explain(window, (), "count")
    shuffled_keys = list(reversed(window.index.keys))
    rows = [window.index.row[k] for k in shuffled_keys]
    reversed_window = MetricWindow(
        SliceIndex(shuffled_keys), window.actual[rows], window.expected[rows], window.score[rows]
    )
    assert explain(reversed_window, (), "count") == first
    assert [c["slice"] for c in first[:2]] == [{"region": "BR"}, {"region": "DE"}]


def test_bad_input_is_named() -> None:
    window = small_window(base_cube(), base_cube())
    with pytest.raises(ValueError, match="kind must be one of"):
        explain(window, (), "median")
    with pytest.raises(ValueError, match="alert slice"):
        explain(window, {"region": "XX"}, "count")
    with pytest.raises(ValueError, match=r"MetricWindow\.expected has shape"):
        MetricWindow(window.index, window.actual, window.expected[:3], window.score)
    with pytest.raises(ValueError, match="top_k"):
        RcaSettings(top_k=0)
    with pytest.raises(ValueError, match="listed twice"):
        SliceIndex([(), (("region", "BR"),), (("region", "BR"),)])


# --- ratios ---------------------------------------------------------------------------------------------

NETWORK_RATE = {"wifi": 0.01, "4g": 0.02, "3g": 0.10}


def ratio_window(views_exp: dict[str, float], views_act: dict[str, float], rate_act: dict[str, float]):
    """Stall rate by network only: parts per network, totals summed."""

    def parts(views: dict[str, float], rate: dict[str, float]) -> tuple[dict, dict]:
        den = {((("network", n),)): views[n] for n in views}
        num = {((("network", n),)): views[n] * rate[n] for n in views}
        den[()] = sum(views.values())
        num[()] = sum(num.values())
        return num, den

    num_e, den_e = parts(views_exp, NETWORK_RATE)
    num_a, den_a = parts(views_act, rate_act)
    actual = {k: num_a[k] / den_a[k] for k in den_a}
    expected = {k: num_e[k] / den_e[k] for k in den_e}
    return window_of(actual, expected, numerator=num_a, denominator=den_a, expected_denominator=den_e)


def test_a_traffic_shift_toward_a_worse_network_is_blamed_on_mix_not_rate() -> None:
    views = {"wifi": 6000.0, "4g": 3000.0, "3g": 1000.0}
    shifted = {"wifi": 4000.0, "4g": 3000.0, "3g": 3000.0}  # same rates, more 3g traffic
    window = ratio_window(views, shifted, NETWORK_RATE)
    causes = explain(window, (), "ratio")
    assert causes[0]["slice"] == {"network": "3g"} and causes[0]["explanation"] == "mix"
    assert causes[0]["rate_share"] == pytest.approx(0.0, abs=1e-12)
    assert causes[0]["mix_share"] > 0.5
    assert all(c["explanation"] == "mix" for c in causes)
    total_share = sum(c["rate_share"] + c["mix_share"] for c in causes)
    assert total_share == pytest.approx(1.0)  # wifi losing share also raised the rate: the rest


def test_a_rate_change_in_one_network_is_blamed_on_its_rate() -> None:
    views = {"wifi": 6000.0, "4g": 3000.0, "3g": 1000.0}
    worse = {**NETWORK_RATE, "4g": 0.05}
    causes = explain(ratio_window(views, views, worse), (), "ratio")
    assert causes[0]["slice"] == {"network": "4g"} and causes[0]["explanation"] == "rate"
    assert causes[0]["share"] == pytest.approx(1.0) and causes[0]["mix_share"] == pytest.approx(0.0)


def test_rate_and_mix_together_are_split_between_the_slices() -> None:
    views = {"wifi": 6000.0, "4g": 3000.0, "3g": 1000.0}
    shifted = {"wifi": 5000.0, "4g": 3000.0, "3g": 2000.0}
    worse = {**NETWORK_RATE, "wifi": 0.03}
    causes = explain(ratio_window(views, shifted, worse), (), "ratio")
    by_slice = {c["slice"]["network"]: c for c in causes}
    assert by_slice["wifi"]["explanation"] == "rate"
    assert by_slice["3g"]["explanation"] == "mix"
    # R_exp = .6*.01+.3*.02+.1*.1 = 0.022; wifi rate effect = w_exp(wifi) * 0.02 = 0.012
    r_act = (5000 * 0.03 + 3000 * 0.02 + 2000 * 0.1) / 10000
    assert by_slice["wifi"]["rate_share"] == pytest.approx(0.6 * 0.02 / (r_act - 0.022))


def test_a_ratio_without_its_parts_is_a_clear_error() -> None:
    window = small_window(base_cube(), base_cube())
    with pytest.raises(ValueError, match="numerator"):
        explain(window, (), "ratio")


def test_closed_windows_keep_the_ratio_numerator_where_the_ratio_is_missing() -> None:
    aggregator = Aggregator(SMALL, clock=lambda: NOW)
    aggregator.add(frame(hand_built()))
    first, _ = aggregator.closed_windows()
    us = aggregator.series.index(key("stall_rate", region="US"))
    assert us is not None and math.isnan(first.values[us])
    assert first.numerators is not None and first.numerators[us] == 1.0  # one stall, one view start
    assert first.volumes[us] == 1.0


# --- distinct and quantile -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["distinct", "quantile"])
def test_non_additive_metrics_rank_slices_by_their_own_scores_in_the_alert_direction(kind: str) -> None:
    regions: list[SliceKey] = [(("region", r),) for r in ("BR", "IN", "US")]
    keys: list[SliceKey] = [(), *regions, (("network", "3g"),)]
    actual = np.array([80.0, 50.0, 10.0, 40.0, 30.0])
    expected = np.array([100.0, 50.0, 30.0, 30.0, 40.0])
    score = np.array([0.99, 0.1, 0.97, 0.99, 0.8])  # US scores high but moved up: not a cause of a drop
    window = MetricWindow(SliceIndex(keys), actual, expected, score)
    causes = explain(window, (), kind)
    assert [c["slice"] for c in causes] == [{"region": "IN"}, {"network": "3g"}]
    assert causes[0]["share"] is None and causes[0]["explanation"] == "score"


# --- accuracy on a synthetic cube -----------------------------------------------------------------------

CUBE_DIMS = ("region", "platform", "app_version", "creator_tier", "network")
CUBE_VALUES = {
    "region": tuple(f"r{i}" for i in range(8)),
    "platform": ("android", "ios", "web", "tv"),
    "app_version": tuple(f"31.{i}" for i in range(6)),
    "creator_tier": ("top", "mid", "long_tail"),
    "network": ("wifi", "5g", "4g", "3g"),
}
CUBE_PAIRS = (("platform", "app_version"), ("region", "network"), ("region", "platform"))


def synthetic_incidents(seed: int, n: int, forecast_error: float = 0.02):
    """``n`` windows of a Poisson cube with one injected incident each: (window, injected slice).

    Leaf volumes follow random Dirichlet marginals (200k events a window over 2304 leaves); the incident
    scales one single slice or one configured pair by 10-50% (down 70% of the time); the forecast is the
    true mean with a ``forecast_error`` log-normal error per leaf, as a baseline would have.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(len(CUBE_VALUES[d]) for d in CUBE_DIMS)
    made = 0
    while made < n:
        marginals = [rng.dirichlet(np.full(k, 3.0)) for k in shape]
        expected = 200_000.0 * marginals[0]
        for m in marginals[1:]:
            expected = np.multiply.outer(expected, m)
        if rng.random() < 0.5:
            dims = (CUBE_DIMS[rng.integers(len(CUBE_DIMS))],)
        else:
            dims = CUBE_PAIRS[rng.integers(len(CUBE_PAIRS))]
        slice_ = {d: CUBE_VALUES[d][rng.integers(len(CUBE_VALUES[d]))] for d in dims}
        where = tuple(CUBE_VALUES[d].index(slice_[d]) if d in slice_ else slice(None) for d in CUBE_DIMS)
        factor = np.ones(shape)
        change = rng.uniform(0.1, 0.5) * (1 if rng.random() < 0.3 else -1)
        factor[where] = 1.0 + change
        forecast = expected * np.exp(rng.normal(0.0, forecast_error, shape))
        deviation = change * expected[where].sum()
        noise = 5.0 * math.sqrt(expected.sum()) + 3.0 * forecast_error * math.sqrt((expected**2).sum())
        if abs(deviation) < noise:
            continue  # too small to raise an alert on the total: not an incident the detector would see
        actual = rng.poisson(expected * factor).astype(np.float64)
        window = window_of(
            rolled_up(actual, CUBE_DIMS, CUBE_VALUES, CUBE_PAIRS),
            rolled_up(forecast, CUBE_DIMS, CUBE_VALUES, CUBE_PAIRS),
        )
        made += 1
        yield window, slice_


def test_injected_slices_are_found_on_a_synthetic_cube() -> None:
    ranks = []
    for window, injected in synthetic_incidents(seed=7, n=300):
        found = [c["slice"] for c in explain(window, (), "count")]
        ranks.append(found.index(injected) if injected in found else len(found) + 99)
    ranks_array = np.array(ranks)
    top1, top3 = float(np.mean(ranks_array == 0)), float(np.mean(ranks_array < 3))
    assert top1 >= 0.90, (top1, top3)
    assert top3 >= 0.98, (top1, top3)


def synthetic_rate_incidents(seed: int, n: int):
    """Stall-rate windows: Poisson views per leaf, leaf rates from per-dimension factors, and one slice
    (single or configured pair) whose rate rises 1.5-3x; yields (window, injected slice)."""
    rng = np.random.default_rng(seed)
    shape = tuple(len(CUBE_VALUES[d]) for d in CUBE_DIMS)
    made = 0
    while made < n:
        views_mean = 200_000.0 * rng.dirichlet(np.full(shape[0], 3.0))
        rate = 0.02 * rng.uniform(0.5, 1.5, shape[0])
        for k in shape[1:]:
            views_mean = np.multiply.outer(views_mean, rng.dirichlet(np.full(k, 3.0)))
            rate = np.multiply.outer(rate, rng.uniform(0.5, 1.5, k))
        dims = (CUBE_DIMS[rng.integers(5)],) if rng.random() < 0.5 else CUBE_PAIRS[rng.integers(3)]
        slice_ = {d: CUBE_VALUES[d][rng.integers(len(CUBE_VALUES[d]))] for d in dims}
        where = tuple(CUBE_VALUES[d].index(slice_[d]) if d in slice_ else slice(None) for d in CUBE_DIMS)
        stalls_mean = views_mean * rate
        worse = stalls_mean.copy()
        worse[where] *= rng.uniform(1.5, 3.0)
        if worse.sum() - stalls_mean.sum() < 5.0 * math.sqrt(stalls_mean.sum()):
            continue
        views = rng.poisson(views_mean).astype(np.float64)
        stalls = rng.poisson(worse / views_mean * views).astype(np.float64)

        def up(cube: np.ndarray) -> dict[SliceKey, float]:
            return rolled_up(cube, CUBE_DIMS, CUBE_VALUES, CUBE_PAIRS)

        num_a, den_a, num_e, den_e = up(stalls), up(views), up(stalls_mean), up(views_mean)
        actual = {k: num_a[k] / den_a[k] for k in den_a}
        expected = {k: num_e[k] / den_e[k] for k in den_e}
        made += 1
        yield (
            window_of(actual, expected, numerator=num_a, denominator=den_a, expected_denominator=den_e),
            slice_,
        )


def test_injected_rate_changes_are_found_and_called_rate_on_a_synthetic_cube() -> None:
    first, top3, called_rate = [], [], []
    for window, injected in synthetic_rate_incidents(seed=11, n=150):
        causes = explain(window, (), "ratio")
        found = [c["slice"] for c in causes]
        first.append(found[:1] == [injected])
        top3.append(injected in found[:3])
        called_rate.append(bool(causes) and causes[0]["explanation"] == "rate")
    assert np.mean(first) >= 0.90 and np.mean(top3) >= 0.98, (np.mean(first), np.mean(top3))
    assert np.mean(called_rate) >= 0.98
