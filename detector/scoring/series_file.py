"""Score one series from a file: ``livewatch score series.csv --out scored.csv``, or :func:`score_series`.

The input is ``timestamp,value`` rows (a header line is optional) at any regular interval. Timestamps
are ISO 8601 (a time without an offset is UTC) or epoch numbers: seconds below 1e11, milliseconds from
1e11 on. The interval is the median spacing unless given; timestamps missing from that grid are missing
windows (the detector keeps its state across them), an empty value is a missing window too.
Seasons: daily when the file spans at least 2 days, weekly from 2 weeks (or ``--period 1d,7d``);
without a season the baseline is a level that follows the series (one slot per day).

Scoring is causal: the ensemble is online, so row t is judged by the state learned from rows before it.
Output: ``timestamp,value,expected,lower,upper,score,is_anomaly,kind`` per input row, floats with full
precision (``repr``), the timestamp as it was written.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import typer

from detector.scoring.ensemble import KIND_NAMES, Ensemble, EnsembleParams, EnsembleResult
from detector.scoring.seasonal import DAY_S, WEEK_S

MIN_ROWS = 10
_EPOCH_MS_FROM = 1e11  # an epoch number at or above this is milliseconds (1e11 s is the year 5138)
_PERIOD = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": DAY_S, "w": WEEK_S}
_SEASON_OF_PERIOD = {DAY_S: "daily", WEEK_S: "weekly"}
COLUMNS = ("timestamp", "value", "expected", "lower", "upper", "score", "is_anomaly", "kind")


class SeriesFileError(ValueError):
    """A file or argument that cannot be scored; the message names the line or the argument."""


@dataclass(frozen=True, slots=True)
class ScoredRow:
    timestamp_ms: int
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    is_anomaly: bool
    kind: str


@dataclass(frozen=True, slots=True)
class SeriesPlan:
    """What was inferred (or given): the grid interval and the seasons the baseline uses."""

    interval_s: int
    seasons: tuple[str, ...]


def parse_duration(text: str, name: str) -> int:
    """``60s``, ``15m``, ``1h``, ``1d``, ``1w`` (or plain seconds) -> seconds; error names ``name``."""
    if text.strip().isdigit():
        return int(text)
    match = _PERIOD.match(text)
    if not match or int(match.group(1)) == 0:
        raise SeriesFileError(f"{name}: expected a duration such as 60s, 15m, 1h, 1d or 1w, got {text!r}")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def parse_periods(text: str) -> tuple[str, ...]:
    """``1d,7d`` -> ``("daily", "weekly")``; only a day and a week are seasons the baseline knows."""
    seasons = []
    for part in text.split(","):
        seconds = parse_duration(part, "--period")
        if seconds not in _SEASON_OF_PERIOD:
            raise SeriesFileError(
                f"--period: {part.strip()!r} is not supported; use 1d (daily) and/or 7d (weekly)"
            )
        seasons.append(_SEASON_OF_PERIOD[seconds])
    return tuple(s for s in ("daily", "weekly") if s in seasons)


def _parse_timestamp(text: str) -> int:
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise ValueError(f"timestamp {text!r} is not a finite number")
        return round(number) if abs(number) >= _EPOCH_MS_FROM else round(number * 1000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither ISO 8601 nor epoch seconds/milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def read_series(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(timestamp texts, epoch ms, values) of a ``timestamp,value`` file; errors name the line."""
    path = Path(path)
    texts: list[str] = []
    times: list[int] = []
    values: list[float] = []
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise SeriesFileError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if number == 1 and row[0].strip().lower() == "timestamp":
                if [c.strip().lower() for c in row[:2]] != ["timestamp", "value"]:
                    raise SeriesFileError(
                        f"{path}:1: header must be 'timestamp,value', got {','.join(row)!r}"
                    )
                continue
            if len(row) != 2:
                raise SeriesFileError(
                    f"{path}:{number}: expected 2 columns (timestamp,value), got {len(row)}"
                )
            try:
                t_ms = _parse_timestamp(row[0])
            except ValueError as exc:
                raise SeriesFileError(f"{path}:{number}: {exc}") from None
            cell = row[1].strip()
            try:
                value = float(cell) if cell else math.nan
            except ValueError:
                raise SeriesFileError(f"{path}:{number}: value {cell!r} is not a number") from None
            if times and t_ms <= times[-1]:
                raise SeriesFileError(
                    f"{path}:{number}: timestamp {row[0].strip()!r} is not after the previous row's "
                    f"({texts[-1]!r}); rows must be in increasing time order"
                )
            texts.append(row[0].strip())
            times.append(t_ms)
            values.append(value)
    return texts, np.array(times, dtype=np.int64), np.array(values, dtype=np.float64)


def plan_series(
    timestamps_ms: np.ndarray, *, interval_s: int | None = None, seasons: Sequence[str] | None = None
) -> SeriesPlan:
    """Infer the interval (median spacing) and the seasons (from the span) where not given."""
    if timestamps_ms.shape[0] < MIN_ROWS:
        raise SeriesFileError(
            f"need at least {MIN_ROWS} rows to score a series, got {timestamps_ms.shape[0]}"
        )
    if np.any(np.diff(timestamps_ms) <= 0):
        raise SeriesFileError("timestamps must be strictly increasing")
    if interval_s is None:
        median_ms = float(np.median(np.diff(timestamps_ms)))
        interval_s = round(median_ms / 1000)
        if interval_s < 1 or abs(median_ms - interval_s * 1000) > 1:
            raise SeriesFileError(f"the median spacing ({median_ms:g} ms) is not a whole number of seconds")
    if interval_s < 1 or DAY_S % interval_s:
        raise SeriesFileError(f"interval {interval_s} s must divide a day (86400 s) for the seasonal slots")
    if seasons is None:
        span_s = (int(timestamps_ms[-1]) - int(timestamps_ms[0])) / 1000 + interval_s
        inferred = []
        if span_s >= 2 * DAY_S and interval_s < DAY_S:
            inferred.append("daily")
        if span_s >= 2 * WEEK_S:
            inferred.append("weekly")
        seasons = tuple(inferred)
    return SeriesPlan(interval_s, tuple(seasons))


def _slot_s(interval_s: int, seasonal: bool) -> int:
    if not seasonal:
        return DAY_S  # one slot a day: the profile is a single offset, the level follows the series
    slot = interval_s
    while slot < 900 or DAY_S % slot:
        slot += interval_s
    return slot


def ensemble_params_for(plan: SeriesPlan, base: EnsembleParams | None = None) -> EnsembleParams:
    """The ensemble for one file: seasons and slots from the plan, everything else from ``base``."""
    base = base if base is not None else EnsembleParams()
    seasonal = bool(plan.seasons)
    seasons = plan.seasons if seasonal else ("daily",)
    return replace(
        base,
        seasonal=replace(
            base.seasonal,
            window_s=plan.interval_s,
            slot_s=_slot_s(plan.interval_s, seasonal),
            seasons=seasons,
        ),
        # Without a season the short-term baseline is the model, not a stop-gap: trust it.
        trust_short_term=not seasonal,
    )


def score_series(
    timestamps_ms: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    interval_s: int | None = None,
    seasons: Sequence[str] | None = None,
    threshold: float = 0.9,
    params: EnsembleParams | None = None,
) -> list[ScoredRow]:
    """Score one series causally; one :class:`ScoredRow` per input row.

    ``timestamps_ms``: strictly increasing epoch milliseconds; ``values``: NaN = missing. ``interval_s``
    and ``seasons`` are inferred when None (see the module doc); ``params`` overrides the ensemble's
    other parameters; ``is_anomaly`` is ``score >= threshold``.
    """
    times = np.asarray(timestamps_ms, dtype=np.int64)
    x = np.asarray(values, dtype=np.float64)
    if times.shape != x.shape or times.ndim != 1:
        raise SeriesFileError(f"timestamps ({times.shape}) and values ({x.shape}) must be 1-D of one length")
    if not 0.0 <= threshold <= 1.0:
        raise SeriesFileError(f"threshold must be in [0, 1], got {threshold}")
    plan = plan_series(times, interval_s=interval_s, seasons=seasons)
    ensemble = Ensemble(ensemble_params_for(plan, params), capacity=1)
    interval_ms = plan.interval_s * 1000
    # Windows on the grid that starts at the first row; a row belongs to its nearest grid point.
    grid = np.round((times - times[0]) / interval_ms).astype(np.int64)
    repeated = np.flatnonzero(np.diff(grid) == 0)
    if repeated.size:
        i = int(repeated[0]) + 1
        raise SeriesFileError(
            f"rows {i} and {i + 1} (counting from 1) fall in the same {plan.interval_s} s "
            "interval; the series must be regular"
        )
    out = EnsembleResult.empty(1)
    missing = np.full(1, np.nan)
    rows: list[ScoredRow] = []
    previous = -1
    for k, t_ms, value in zip(grid.tolist(), times.tolist(), x.tolist(), strict=True):
        for gap in range(previous + 1, k):  # windows with no row at all
            ensemble.update(int(times[0]) + gap * interval_ms, missing, out=out)
        previous = k
        ensemble.update(int(times[0]) + k * interval_ms, np.array([value]), out=out)
        score = float(out.score[0])
        rows.append(
            ScoredRow(
                t_ms,
                value,
                float(out.expected[0]),
                float(out.lower[0]),
                float(out.upper[0]),
                score,
                score >= threshold,
                KIND_NAMES[int(out.kind[0])],
            )
        )
    return rows


def _number(value: float) -> str:
    return repr(float(value))  # shortest text that reads back to the same float: up to 17 digits


def write_scored(path: str | Path, texts: Sequence[str], rows: Sequence[ScoredRow]) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for text, row in zip(texts, rows, strict=True):
            writer.writerow(
                [
                    text,
                    _number(row.value),
                    _number(row.expected),
                    _number(row.lower),
                    _number(row.upper),
                    _number(row.score),
                    str(row.is_anomaly).lower(),
                    row.kind,
                ]
            )


def score_command(
    series: Path = typer.Argument(..., help="CSV of timestamp,value rows (ISO 8601 or epoch s/ms)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the scored CSV."),
    period: str = typer.Option("auto", "--period", help="Seasons: auto, or e.g. 1d,7d (daily, weekly)."),
    window: str = typer.Option(
        "auto", "--window", help="Interval of the rows: auto (median spacing) or e.g. 60s."
    ),
    threshold: float = typer.Option(0.9, "--threshold", help="Score at or above which a row is an anomaly."),
) -> None:
    """Score one series causally; write timestamp,value,expected,lower,upper,score,is_anomaly,kind."""
    try:
        interval_s = None if window == "auto" else parse_duration(window, "--window")
        seasons = None if period == "auto" else parse_periods(period)
        texts, times, values = read_series(series)
        rows = score_series(times, values, interval_s=interval_s, seasons=seasons, threshold=threshold)
        write_scored(out, texts, rows)
    except SeriesFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    anomalies = sum(r.is_anomaly for r in rows)
    typer.echo(
        f"scored {len(rows)} rows -> {out} ({anomalies} anomalies at score >= {threshold:g})", err=True
    )
