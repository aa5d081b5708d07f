from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from detector.cli import app
from detector.scoring.series_file import (
    COLUMNS,
    SeriesFileError,
    parse_periods,
    plan_series,
    read_series,
    score_series,
)

T0_S = 1_767_225_600  # 2026-01-01T00:00:00Z
N = 3 * 1440  # three days of minutes: a daily season is inferred
SPIKE, SHIFT = 3500, 4000


def minutes(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    x = 100 + 20 * np.sin(2 * np.pi * t / 1440) + rng.normal(0, 2, N)
    x[SPIKE] += 30
    x[SHIFT:] -= 15
    return x


def write_csv(path: Path, stamps: list[str], values: list[float] | np.ndarray, header: bool = True) -> Path:
    lines = (["timestamp,value"] if header else []) + [
        f"{s},{float(v)!r}" for s, v in zip(stamps, values, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_cli_round_trip_flags_the_spike_and_the_shift(tmp_path: Path) -> None:
    x = minutes()
    keep = [i for i in range(N) if not 3000 <= i < 3010]  # a 10-minute gap
    source = write_csv(tmp_path / "series.csv", [str(T0_S + 60 * i) for i in keep], x[keep])
    result = CliRunner().invoke(app, ["score", str(source), "--out", str(tmp_path / "scored.csv")])
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "scored.csv")
    assert list(rows[0]) == list(COLUMNS) and len(rows) == len(keep)
    # Full precision: every value reads back to exactly the input float.
    assert all(float(r["value"]) == x[i] for r, i in zip(rows, keep, strict=True))
    by_index = dict(zip(keep, rows, strict=True))
    assert by_index[SPIKE]["is_anomaly"] == "true" and by_index[SPIKE]["kind"] == "spike"
    flagged = [i for i in keep if by_index[i]["is_anomaly"] == "true"]
    assert flagged[0] == SPIKE and SHIFT <= flagged[1] <= SHIFT + 5
    assert {by_index[i]["kind"] for i in flagged[1:]} <= {"dip", "level_shift"}
    assert len(flagged) < 30  # the shift is re-based, not flagged for the rest of the day
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    expected = [float(r["expected"]) for r in rows[1500:]]
    assert np.isfinite(expected).all()


def test_scoring_is_causal_a_prefix_scores_the_same() -> None:
    x = minutes(seed=1)
    times = (T0_S + 60 * np.arange(N)) * 1000
    whole = score_series(times, x, seasons=("daily",))
    prefix = score_series(times[:3600], x[:3600], seasons=("daily",))
    assert prefix == whole[:3600]


def test_iso_timestamps_and_epoch_milliseconds_read_the_same(tmp_path: Path) -> None:
    values = np.arange(20.0)
    iso = [
        datetime.fromtimestamp(T0_S + 300 * i, tz=UTC).isoformat().replace("+00:00", "Z") for i in range(20)
    ]
    millis = [str((T0_S + 300 * i) * 1000) for i in range(20)]
    _, iso_ms, _ = read_series(write_csv(tmp_path / "iso.csv", iso, values))
    _, epoch_ms, _ = read_series(write_csv(tmp_path / "ms.csv", millis, values, header=False))
    np.testing.assert_array_equal(iso_ms, epoch_ms)
    assert plan_series(iso_ms).interval_s == 300 and plan_series(iso_ms).seasons == ()


def test_seasons_are_inferred_from_the_span() -> None:
    day_ms = 86_400_000
    assert plan_series(np.arange(0, 3 * day_ms, 60_000)).seasons == ("daily",)
    assert plan_series(np.arange(0, 15 * day_ms, 3_600_000)).seasons == ("daily", "weekly")
    assert plan_series(np.arange(0, 30 * day_ms, day_ms)).seasons == ("weekly",)
    assert parse_periods("1d, 7d") == ("daily", "weekly") and parse_periods("1w") == ("weekly",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("timestamp,value\n1767225600,1\n1767225660,x\n", "series.csv:3: value 'x' is not a number"),
        ("timestamp,value\n1767225600,1\nyesterday,2\n", "series.csv:3: timestamp 'yesterday' is neither"),
        ("timestamp,value\n1767225600,1,2\n", "series.csv:2: expected 2 columns"),
        ("time,value\n1767225600,1\n", "series.csv:1: timestamp 'time'"),
        (
            "timestamp,value\n1767225660,1\n1767225600,2\n",
            "series.csv:3: timestamp '1767225600' is not after",
        ),
        ("timestamp,value\n" + "".join(f"{T0_S + 60 * i},1\n" for i in range(5)), "need at least 10 rows"),
        (
            "timestamp,value\n" + "".join(f"{T0_S + 7 * i},1\n" for i in range(20)),
            "interval 7 s must divide a day",
        ),
    ],
)
def test_bad_files_are_refused_with_line_and_reason(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "series.csv").write_text(content)
    result = CliRunner().invoke(
        app, ["score", str(tmp_path / "series.csv"), "--out", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 1
    assert message in result.output, result.output
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--period", "3h"], "--period: '3h' is not supported"), (["--window", "soon"], "--window: expected")],
)
def test_bad_options_name_the_option(tmp_path: Path, options: list[str], message: str) -> None:
    source = write_csv(tmp_path / "s.csv", [str(T0_S + 60 * i) for i in range(20)], np.ones(20))
    result = CliRunner().invoke(app, ["score", str(source), "--out", str(tmp_path / "o.csv"), *options])
    assert result.exit_code == 1 and message in result.output, result.output


def test_explicit_window_and_rows_in_one_interval() -> None:
    times = (T0_S + 30 * np.arange(20)) * 1000
    with pytest.raises(SeriesFileError, match="same 60 s interval"):
        score_series(times, np.ones(20), interval_s=60)
    rows = score_series(times[::2], np.ones(10), interval_s=60, threshold=0.5)
    assert len(rows) == 10 and not any(r.is_anomaly for r in rows)
