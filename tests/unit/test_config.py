from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import yaml
from typer.testing import CliRunner

from detector.aggregation.plan import Plan
from detector.cli import app
from detector.config import ConfigError, config_from_dict, config_from_yaml

DEFAULT = Path("configs/default.yaml")
CORE_METRICS = [
    "concurrent_viewers",
    "view_starts",
    "watch_time",
    "gift_revenue",
    "gifting_users",
    "comments",
    "stall_rate",
    "stall_p95_ms",
    "report_rate",
    "streams_started",
]
COUNT = {"kind": "count", "events": ["gift"]}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_default_config_has_the_live_core_metrics_and_expected_plan() -> None:
    config = config_from_yaml(DEFAULT)
    assert [m.name for m in config.metrics] == CORE_METRICS
    assert config.metric("stall_rate").aggregation.kind == "ratio"
    assert config.metric("gifting_users").aggregation.kind == "distinct"
    assert config.metric("stall_p95_ms").aggregation.q == 0.95
    plan = Plan(config)
    # region 12, platform 4, app_version 20, creator_tier 4, network 5; pairs platform x app_version,
    # region x network, region x platform: 1 + 45 + 80 + 60 + 48 = 234 series for a fully sliced metric
    assert plan.estimated_series() == [234] * 8 + [1 + 12 + 4 + 4] * 2
    assert plan.estimated_series({"region": 100})[0] == 1 + 133 + 80 + 500 + 400
    assert plan.metrics[0].slices()[-1] == ("region", "platform")


def test_errors_name_the_file_and_the_path_of_every_bad_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "window": {"length_s": 0},
            "metrics": [
                {"name": "ok", "aggregation": COUNT},
                {
                    "name": "bad_ratio",
                    "aggregation": {
                        "kind": "ratio",
                        "numerator": {"kind": "count", "events": ["stal"]},
                        "denominator": COUNT,
                        "min_denominator": -1,
                    },
                },
                {
                    "name": "bad_dims",
                    "aggregation": COUNT,
                    "dimensions": ["country"],
                    "pairs": [["region", "region"]],
                },
            ],
        },
    )
    with pytest.raises(ConfigError) as caught:
        config_from_yaml(path)
    paths = [p for p, _ in caught.value.errors]
    assert paths == [
        "window.length_s",
        "metrics[1].aggregation.ratio.numerator.events[0]",
        "metrics[1].aggregation.ratio.min_denominator",
        "metrics[2].dimensions[0]",
        "metrics[2].pairs",
    ]
    assert str(path) in str(caught.value) and "metrics[2].pairs: Value error, a pair needs two" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"extra": 1}, "extra", "Extra inputs are not permitted"),
        ({"metrics": []}, "metrics", "at least one"),
        ({"metrics": [{"name": "a", "aggregation": COUNT}] * 2}, "metrics", "repeated: ['a']"),
        (
            {"metrics": [{"name": "a", "aggregation": {"kind": "median", "events": ["gift"]}}]},
            "metrics[0].aggregation",
            "does not match",
        ),
        (
            {
                "metrics": [
                    {
                        "name": "a",
                        "aggregation": COUNT,
                        "detector": {"threshold": 0.5, "lower_threshold": 0.6},
                    }
                ]
            },
            "metrics[0].detector",
            "must not exceed",
        ),
        (
            {"metrics": [{"name": "a", "aggregation": COUNT, "max_series": 0}]},
            "metrics[0].max_series",
            "greater",
        ),
        ({"metrics": [{"name": "Bad-Name", "aggregation": COUNT}]}, "metrics[0].name", "pattern"),
    ],
)
def test_each_rule_reports_its_path(change: dict[str, object], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"metrics": [{"name": "a", "aggregation": COUNT}], **change})
    assert any(p == path and message in m for p, m in caught.value.errors), caught.value.errors


def test_unreadable_or_non_mapping_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        config_from_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        config_from_yaml(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("metrics: [\n")
    with pytest.raises(ConfigError, match=r"\(yaml\)"):
        config_from_yaml(tmp_path / "broken.yaml")


def test_config_is_frozen_and_defaults_are_filled() -> None:
    config = config_from_dict({"metrics": [{"name": "a", "aggregation": COUNT}]})
    assert (config.window.length_s, config.window.allowed_lateness_s) == (60, 120)
    assert config.metrics[0].slices() == ((),)
    assert config.metrics[0].detector.seasonal.seasons == ("daily", "weekly")
    with pytest.raises(pydantic.ValidationError):
        config.window.length_s = 30  # type: ignore[misc]


def test_config_check_prints_the_plan() -> None:
    result = CliRunner().invoke(
        app, ["config", "check", str(DEFAULT), "--cardinality", "region=100"], env={"COLUMNS": "240"}
    )
    assert result.exit_code == 0, result.output
    for name in CORE_METRICS:
        assert name in result.output
    assert "region=100" in result.output
    assert "estimated series: 9130 in total (capped" in result.output  # 8 x 1114 + 2 x 109, caps not reached


def test_config_check_names_every_bad_field_and_exits_1(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "metrics": [
                {
                    "name": "a",
                    "aggregation": {"kind": "quantile", "events": ["stall"], "q": 2},
                    "min_volume": -1,
                }
            ]
        },
    )
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert "metrics[0].aggregation.quantile.q" in result.output and "metrics[0].min_volume" in result.output


def test_config_check_rejects_a_bad_cardinality_option() -> None:
    result = CliRunner().invoke(app, ["config", "check", str(DEFAULT), "--cardinality", "country=3"])
    assert result.exit_code == 2
    assert "--cardinality" in result.output


def test_detector_settings_map_onto_the_scoring_parameters() -> None:
    from detector.alerting.lifecycle import LifecycleSettings
    from detector.config import DetectorSettings, ensemble_params, lifecycle_settings
    from detector.scoring.ensemble import EnsembleParams
    from detector.scoring.seasonal import SeasonalParams

    settings = DetectorSettings()
    params = ensemble_params(settings, window_s=60)
    # The config's defaults are the ensemble's, apart from the seasonal choices made for Live metrics.
    defaults = EnsembleParams(seasonal=SeasonalParams(mode="multiplicative", recent_rate=0.5))
    assert params == defaults
    assert lifecycle_settings(settings) == LifecycleSettings(
        fire_threshold=0.9, resolve_threshold=0.5, critical_threshold=0.99, fire_after=2, resolve_after=3,
        cooldown_windows=10,
    )
    tuned = DetectorSettings.model_validate(
        {"changepoint": {"bocpd": {"max_run_length": 32}}, "ensemble": {"shift_z": 3}}
    )
    assert ensemble_params(tuned, 300).bocpd.max_run_length == 32
    assert ensemble_params(tuned, 300).shift_z == 3.0 and ensemble_params(tuned, 300).seasonal.window_s == 300


@pytest.mark.parametrize(
    ("detector", "window", "path", "message"),
    [
        ({"threshold": 5}, 60, "metrics[0].detector.threshold", "less than or equal to 1"),
        ({"seasonal": {"slot_s": 700}}, 60, "metrics[0].detector.seasonal.slot_s", "must divide 86400"),
        ({"seasonal": {"slot_s": 900}}, 120, "(top level)", "slot_s (900) must be a multiple of window"),
        ({"changepoint": {"bocpd": {"window": 64}}}, 60, "metrics[0].detector.changepoint.bocpd", "below"),
        ({"resolve_threshold": 0.95}, 60, "metrics[0].detector", "resolve_threshold (0.95) must not exceed"),
    ],
)
def test_detector_settings_are_validated(
    detector: dict[str, object], window: int, path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"window": {"length_s": window},
                          "metrics": [{"name": "a", "aggregation": COUNT, "detector": detector}]})
    assert any(p == path and message in m for p, m in caught.value.errors), caught.value.errors
