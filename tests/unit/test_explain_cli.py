from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
from typer.testing import CliRunner

from detector.alerting.lifecycle import AlertEvent, AlertStatus, Severity
from detector.alerting.rca import explain
from detector.cli import app
from tests.unit.test_rca import base_cube, small_window

MOMENT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def alert_json(alert_id: str, root_causes: list[dict[str, object]]) -> dict[str, object]:
    return AlertEvent(
        alert_id=alert_id,
        incident_id="gifts@x",
        status=AlertStatus.FIRING,
        metric="gifts",
        slice={},
        window_start=MOMENT,
        window_end=MOMENT,
        fired_at=MOMENT,
        value=855.0,
        expected=1000.0,
        lower=950.0,
        upper=1050.0,
        score=0.99,
        peak_score=0.99,
        kind="dip",
        direction="down",
        severity=Severity.CRITICAL,
        root_causes=root_causes,
    ).to_json()


def invoke(args: list[str]):
    return CliRunner().invoke(app, args, env={"COLUMNS": "200"})


def write_alerts(path: Path, lines: list[bytes]) -> Path:
    data = b"\n".join(lines) + b"\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def in_region_causes() -> list[dict[str, object]]:
    expected = base_cube()
    actual = expected.copy()
    actual[1, :, 2] *= 0.2
    return explain(small_window(actual, expected), (), "count")


def test_explain_prints_the_stored_root_causes_of_every_alert(tmp_path: Path) -> None:
    lines = [
        msgspec.json.encode(alert_json("aaa111", in_region_causes())),
        msgspec.json.encode(alert_json("bbb222", [])),
    ]
    path = write_alerts(tmp_path / "alerts.jsonl.gz", lines)
    result = invoke(["explain", str(path)])
    assert result.exit_code == 0, result.output
    assert "region=IN, network=3g" in result.stdout and "+100%" in result.stdout
    assert "aaa111" in result.stdout and "bbb222" in result.stdout
    assert "no root causes recorded" in result.stdout


def test_explain_one_alert_by_id_prefix_and_skips_bad_lines_by_number(tmp_path: Path) -> None:
    lines = [
        msgspec.json.encode(alert_json("aaa111", in_region_causes())),
        b"{not json",
        b'{"metric": "gifts"}',
        msgspec.json.encode(alert_json("bbb222", [])),
    ]
    path = write_alerts(tmp_path / "alerts.jsonl", lines)
    result = invoke(["explain", str(path), "--alert-id", "aaa", "--top", "1"])
    assert result.exit_code == 0, result.output
    assert "aaa111" in result.stdout and "bbb222" not in result.stdout
    assert "line 2: not JSON" in result.stderr and "line 3: not an alert, missing alert_id" in result.stderr


def test_explain_names_a_missing_file_and_an_unknown_alert(tmp_path: Path) -> None:
    missing = invoke(["explain", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "nope.jsonl does not exist" in missing.stderr
    path = write_alerts(tmp_path / "alerts.jsonl", [msgspec.json.encode(alert_json("aaa111", []))])
    unknown = invoke(["explain", str(path), "--alert-id", "zzz"])
    assert unknown.exit_code == 1 and "--alert-id zzz: no such alert" in unknown.stderr


def test_root_causes_survive_the_alert_json_round_trip() -> None:
    causes = in_region_causes()
    decoded = msgspec.json.decode(msgspec.json.encode(alert_json("aaa111", causes)))
    assert decoded["root_causes"] == causes
    assert np.isclose(decoded["root_causes"][0]["share"], 1.0)
