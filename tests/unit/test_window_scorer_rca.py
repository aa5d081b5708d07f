"""Root causes on the window scorer's alerts, through a real Aggregator fed seeded synthetic events."""

from __future__ import annotations

import functools
from typing import Any

import msgspec
import numpy as np
import pytest

from detector.aggregation.windows import Aggregator, ClosedWindow
from detector.alerting.lifecycle import AlertEvent, AlertStatus
from detector.alerting.rca import RcaSettings
from detector.config import Config, ConfigError, RcaConfig, config_from_dict, rca_settings
from detector.scoring.window_scorer import StepResult, WindowScorer
from tests.unit.window_frames import (
    DROP_AT,
    N_WINDOWS,
    REGIONS,
    aggregate,
    cell_frame,
    config,
    detector_settings,
    replay,
    window_index,
)

PLATFORMS = ("android", "ios", "web")
VERSIONS = ("31.1", "31.2", "32.0")
BROKEN_PAIR = {"platform": "android", "app_version": "31.2"}


def stall_config(**rca: Any) -> Config:
    """Stalls per view start, sliced by platform, app version and their pair."""
    return config_from_dict(
        {
            "window": {"length_s": 300, "allowed_lateness_s": 0},
            "metrics": [
                {
                    "name": "stall_rate",
                    "aggregation": {
                        "kind": "ratio",
                        "numerator": {"kind": "count", "events": ["stall"]},
                        "denominator": {"kind": "count", "events": ["view_start"]},
                        "min_denominator": 20,
                    },
                    "dimensions": ["platform", "app_version"],
                    "pairs": [["platform", "app_version"]],
                    "detector": detector_settings(),
                }
            ],
            "rca": rca,
        }
    )


@functools.cache
def stall_windows(incident: str) -> tuple[list[ClosedWindow], Aggregator]:
    """200 view starts per platform x version cell and window; from DROP_AT on, ``incident`` is either
    ``rate``: android 31.2 stalls 5x as often (10 % -> 50 %), or ``mix``: web, which always stalls
    6x as often as the others (30 % vs 5 %), gets 4x its traffic while every rate stays the same."""
    rng = np.random.default_rng(11)

    def cells(window: int) -> list[tuple[str, dict[str, str], float]]:
        out = []
        for platform in PLATFORMS:
            for version in VERSIONS:
                dims = {"platform": platform, "app_version": version}
                views, rate = 200.0, 0.1
                if incident == "mix":
                    rate = 0.3 if platform == "web" else 0.05
                    views *= 4 if platform == "web" and window >= DROP_AT else 1
                elif dims == BROKEN_PAIR and window >= DROP_AT:
                    rate *= 5
                out += [("view_start", dims, views), ("stall", dims, views * rate)]
        return out

    return aggregate(stall_config(), (cell_frame(w, rng, cells(w)) for w in range(N_WINDOWS)))


def run(scorer: WindowScorer, incident: str, windows: slice = slice(None)) -> list[StepResult]:
    closed, aggregator = stall_windows(incident)
    return [scorer.step(window, aggregator.series.key) for window in closed[windows]]


def alerts(steps: list[StepResult], status: AlertStatus = AlertStatus.FIRING) -> list[tuple[int, AlertEvent]]:
    return [
        (window_index(int(a.window_start.timestamp() * 1000)), a)
        for s in steps
        for a in s.alerts
        if a.status is status
    ]


def first_on(steps: list[StepResult], slice_: dict[str, str]) -> tuple[int, AlertEvent]:
    return next((i, a) for i, a in alerts(steps) if a.slice == slice_)


def test_gift_drop_in_one_region_names_that_region_with_its_share_of_the_deviation() -> None:
    steps = replay(WindowScorer(config()), "eu")
    fired_at, total = first_on(steps, {})
    assert fired_at == DROP_AT + 1
    top = total.root_causes[0]
    assert top["slice"] == {"region": "eu"} and top["explanation"] == "deviation"
    # The share is the region's deviation over the regions' total deviation, in the very window scored.
    scores = steps[fired_at].scores[0]
    regions = [scores.keys.index(("gifts", (("region", r),))) for r in REGIONS]
    eu = scores.keys.index(("gifts", (("region", "eu"),)))
    deviation = scores.value[regions].sum() - scores.expected[regions].sum()
    assert top["share"] == pytest.approx((scores.value[eu] - scores.expected[eu]) / deviation, rel=1e-9)
    assert top["share"] == pytest.approx(1.0, abs=0.15)  # the other regions only add noise
    assert (top["actual"], top["expected"]) == (scores.value[eu], scores.expected[eu])
    assert top["in_minimal_set"] is True
    # The region's own alert has nothing below it; the resolve events repeat what the alerts fired with.
    assert first_on(steps, {"region": "eu"})[1].root_causes == []
    resolved = {tuple(a.slice.items()): a.root_causes for _, a in alerts(steps, AlertStatus.RESOLVED)}
    assert resolved == {(): total.root_causes, (("region", "eu"),): []}


def test_stall_rate_rise_in_one_pair_is_named_as_the_pair_and_as_a_rate() -> None:
    steps = run(WindowScorer(stall_config()), "rate")
    for parent in ({}, {"platform": "android"}, {"app_version": "31.2"}):
        fired_at, alert = first_on(steps, parent)
        assert fired_at == DROP_AT + 1
        top = alert.root_causes[0]
        assert (top["slice"], top["explanation"]) == (BROKEN_PAIR, "rate")
        assert isinstance(top["rate_share"], float) and top["rate_share"] > 0.8
        assert isinstance(top["mix_share"], float) and abs(top["mix_share"]) < 0.1
    # The pair is a leaf: nothing below it to name.
    assert first_on(steps, BROKEN_PAIR)[1].root_causes == []


def test_traffic_shift_toward_a_worse_slice_is_blamed_on_its_mix_not_its_rate() -> None:
    steps = run(WindowScorer(stall_config()), "mix")
    fired_at, total = first_on(steps, {})  # the overall stall rate rises from 0.13 to 0.22: it alerts
    assert fired_at == DROP_AT + 1
    top = total.root_causes[0]
    assert (top["slice"], top["explanation"]) == ({"platform": "web"}, "mix")
    assert isinstance(top["mix_share"], float) and top["mix_share"] > 0.5
    assert isinstance(top["rate_share"], float) and abs(top["rate_share"]) < 0.05
    # No alert anywhere blames web's rate: the version alerts name their web slice as a mix.
    web_causes = [
        cause
        for _, alert in alerts(steps)
        for cause in alert.root_causes
        if cause["slice"].get("platform") == "web"  # type: ignore[attr-defined]
    ]
    assert web_causes and all(cause["explanation"] == "mix" for cause in web_causes)


@pytest.mark.parametrize(("incident", "cut"), [("rate", DROP_AT + 3), ("mix", DROP_AT - 5)])
def test_snapshot_continues_exactly_with_the_denominator_baseline_and_firing_causes(
    incident: str, cut: int
) -> None:
    """``rate``: cut while the alerts fire (their resolves carry the causes they fired with); ``mix``: cut
    before the shift, so its attribution depends on the restored denominator baseline."""
    first = WindowScorer(stall_config())
    run(first, incident, slice(0, cut))
    second = WindowScorer.from_bytes(stall_config(), first.to_bytes())
    a_steps, b_steps = run(first, incident, slice(cut, None)), run(second, incident, slice(cut, None))
    for a, b in zip(a_steps, b_steps, strict=True):
        np.testing.assert_array_equal(a.scores[0].score, b.scores[0].score)
        assert [e.to_json() for e in a.alerts] == [e.to_json() for e in b.alerts]
    attributed = [e for s in a_steps for e in s.alerts if e.root_causes]
    assert attributed and any(e.status is AlertStatus.RESOLVED for e in attributed)
    assert first.to_bytes() == second.to_bytes()


def test_a_version_1_snapshot_loads_and_learns_denominators_afresh() -> None:
    scorer = WindowScorer(stall_config())
    run(scorer, "mix", slice(0, DROP_AT - 20))
    wire = msgspec.msgpack.decode(scorer.to_bytes())
    wire["version"] = 1
    wire["groups"] = [group[:5] for group in wire["groups"]]  # v1 ended at pending_shapes
    restored = WindowScorer.from_bytes(stall_config(), msgspec.msgpack.encode(wire))
    a_steps = run(scorer, "mix", slice(DROP_AT - 20, None))
    b_steps = run(restored, "mix", slice(DROP_AT - 20, None))
    for a, b in zip(a_steps, b_steps, strict=True):
        np.testing.assert_array_equal(a.scores[0].score, b.scores[0].score)
    # 20 windows of fresh denominator baseline before the shift are enough to see web's new traffic share.
    top = first_on(b_steps, {})[1].root_causes[0]
    assert (top["slice"], top["explanation"]) == ({"platform": "web"}, "mix")


def test_rca_block_sets_the_attribution_and_reload_takes_it() -> None:
    assert rca_settings(RcaConfig()) == RcaSettings()  # the config's defaults are the module's
    assert rca_settings(stall_config(top_k=5, min_share=0.2).rca) == RcaSettings(top_k=5, min_share=0.2)
    with pytest.raises(ConfigError, match=r"rca\.top_k: Input should be greater than or equal to 1"):
        stall_config(top_k=0)
    with pytest.raises(ConfigError, match=r"rca\.explain_targt: Extra inputs are not permitted"):
        stall_config(explain_targt=0.5)
    default = first_on(run(WindowScorer(stall_config()), "mix"), {})[1].root_causes
    assert len(default) == 3
    one = first_on(run(WindowScorer(stall_config(top_k=1)), "mix"), {})[1].root_causes
    assert one == default[:1]
    reloaded = WindowScorer(stall_config())
    run(reloaded, "mix", slice(0, DROP_AT))
    reloaded.reload(stall_config(top_k=2))
    assert first_on(run(reloaded, "mix", slice(DROP_AT, None)), {})[1].root_causes == default[:2]


def test_a_slice_that_appears_between_two_alerts_is_attributed_in_the_second() -> None:
    """eu drops at DROP_AT; latam comes online small (30 gifts a window) at 370 and surges 8x at 400: the
    slices known to attribution follow the metric's series (its index is rebuilt when they change)."""

    def cells(window: int) -> list[tuple[str, dict[str, str], float]]:
        out = [
            ("gift", {"region": r}, 200 * (0.3 if r == "eu" and window >= DROP_AT else 1.0)) for r in REGIONS
        ]
        if window >= 370:
            out.append(("gift", {"region": "latam"}, 30.0 * (8 if window >= 400 else 1)))
        return out

    rng = np.random.default_rng(3)
    closed, aggregator = aggregate(config(), (cell_frame(w, rng, cells(w)) for w in range(N_WINDOWS)))
    scorer = WindowScorer(config())
    steps = [scorer.step(window, aggregator.series.key) for window in closed]
    on_total = [(i, a.direction, a.root_causes[0]["slice"]) for i, a in alerts(steps) if a.slice == {}]
    assert on_total == [(DROP_AT + 1, "down", {"region": "eu"}), (401, "up", {"region": "latam"})]
