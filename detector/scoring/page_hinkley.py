"""Page-Hinkley test with the semantics of river's ``drift.PageHinkley``, for N series in one kernel call.

Per series, exactly as river (0.21+) does it, so the same stream flags the same indices:

* the running mean includes the current value (``mean += (x - mean) / n``) and ``dev = x - mean``;
* ``sum_inc = alpha * sum_inc + dev - delta`` and ``sum_dec = alpha * sum_dec + dev + delta``;
  their running minimum / maximum start at +inf and at -1 (river's initial values);
* once ``n >= min_instances``: ``test_inc = sum_inc - min_inc``, ``test_dec = max_dec - sum_dec``,
  a drift is flagged when the test of the monitored side(s) exceeds ``threshold``;
* after a drift the series starts from scratch at its *next* value (river resets at the start of the
  update that follows a detection), a missing window in between does not clear that pending reset.

Because river's mean includes the current value, this family learns before it scores; parity with
river matters more here than the habit of scoring first. The arithmetic is the same as river's in
the same order, so results are identical, including on values around 1e8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detector.jit import njit
from detector.scoring.change import ChangeDetector, ChangeResult
from detector.scoring.state import Field

MODES = ("up", "down", "both")
_MODE_CODE = {"up": 1, "down": -1, "both": 0}

FIELDS = {
    "count": Field("int64"),
    "mean": Field("float64"),
    "sum_inc": Field("float64"),
    "sum_dec": Field("float64"),
    "min_inc": Field("float64", initial=float("inf")),
    "max_dec": Field("float64", initial=-1.0),
    "drift_pending": Field("bool"),
}


@dataclass(frozen=True, slots=True)
class PageHinkleyParams:
    """Same names, meanings and defaults as ``river.drift.PageHinkley``."""

    min_instances: int = 30
    delta: float = 0.005
    threshold: float = 50.0
    alpha: float = 1 - 0.0001
    mode: str = "both"

    def __post_init__(self) -> None:
        if self.min_instances < 1:
            raise ValueError(f"PageHinkleyParams.min_instances must be >= 1, got {self.min_instances!r}")
        if not np.isfinite(self.delta) or self.delta < 0:
            raise ValueError(f"PageHinkleyParams.delta must be a finite number >= 0, got {self.delta!r}")
        if not np.isfinite(self.threshold) or self.threshold <= 0:
            raise ValueError(
                f"PageHinkleyParams.threshold must be a finite number > 0, got {self.threshold!r}"
            )
        if not 0 < self.alpha <= 1:
            raise ValueError(f"PageHinkleyParams.alpha must be in (0, 1], got {self.alpha!r}")
        if self.mode not in MODES:
            raise ValueError(f"PageHinkleyParams.mode must be one of {MODES}, got {self.mode!r}")


class PageHinkley(ChangeDetector):
    """Page-Hinkley for many series; ``update`` takes one raw value per series."""

    def __init__(self, params: PageHinkleyParams, capacity: int = 16) -> None:
        super().__init__("page_hinkley", FIELDS, capacity)
        self.params = params

    def update(self, x: npt.ArrayLike, out: ChangeResult | None = None) -> ChangeResult:
        """Score one window: ``x[i]`` is series i's value (NaN = missing). ``out`` reuses result arrays."""
        values = self._window_values(x)
        result = self._outputs(values.shape[0], out)
        columns = self._state.columns  # the dict itself: cheaper than a method call per column
        p = self.params
        _page_hinkley_kernel(
            values,
            p.min_instances,
            p.delta,
            p.threshold,
            p.alpha,
            _MODE_CODE[p.mode],
            columns["count"],
            columns["mean"],
            columns["sum_inc"],
            columns["sum_dec"],
            columns["min_inc"],
            columns["max_dec"],
            columns["drift_pending"],
            result.statistic,
            result.score,
            result.detected,
            result.direction,
        )
        return result


@njit
def _page_hinkley_kernel(
    x: np.ndarray,
    min_instances: int,
    delta: float,
    threshold: float,
    alpha: float,
    mode: int,
    count: np.ndarray,
    mean: np.ndarray,
    sum_inc: np.ndarray,
    sum_dec: np.ndarray,
    min_inc: np.ndarray,
    max_dec: np.ndarray,
    drift_pending: np.ndarray,
    statistic: np.ndarray,
    score: np.ndarray,
    detected: np.ndarray,
    direction: np.ndarray,
) -> None:
    # Selects instead of branches, so the loop vectorises: every series computes a step, and a missing
    # value (or the warm-up) decides what is stored. The arithmetic is river's, in river's order.
    for i in range(x.shape[0]):
        value = x[i]
        present = np.isfinite(value)
        restart = drift_pending[i]  # river resets at the start of the update after a drift
        n = 0 if restart else count[i]
        m = 0.0 if restart else mean[i]
        s_inc = 0.0 if restart else sum_inc[i]
        s_dec = 0.0 if restart else sum_dec[i]
        lo_inc = np.inf if restart else min_inc[i]
        hi_dec = -1.0 if restart else max_dec[i]

        n += 1
        m += (1.0 / n) * (value - m)
        dev = value - m
        s_inc = alpha * s_inc + dev - delta
        s_dec = alpha * s_dec + dev + delta
        lo_inc = s_inc if s_inc < lo_inc else lo_inc
        hi_dec = s_dec if s_dec > hi_dec else hi_dec
        test_inc = s_inc - lo_inc
        test_dec = hi_dec - s_dec
        rising = mode == 1 or (mode == 0 and test_inc >= test_dec)
        stat = test_inc if rising else test_dec
        stat = stat if present and n >= min_instances else 0.0
        alarm = stat > threshold

        count[i] = n if present else count[i]
        mean[i] = m if present else mean[i]
        sum_inc[i] = s_inc if present else sum_inc[i]
        sum_dec[i] = s_dec if present else sum_dec[i]
        min_inc[i] = lo_inc if present else min_inc[i]
        max_dec[i] = hi_dec if present else max_dec[i]
        drift_pending[i] = alarm if present else restart
        statistic[i] = stat
        score[i] = min(stat / threshold, 1.0)
        detected[i] = alarm
        direction[i] = (1 if rising else -1) if stat > 0.0 else 0
