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

    def update(self, x: np.ndarray, out: ChangeResult | None = None) -> ChangeResult:
        """Score one window: ``x[i]`` is series i's value (NaN = missing). ``out`` reuses result arrays."""
        values = self._window_values(x)
        result = self._outputs(values.shape[0], out)
        p = self.params
        _page_hinkley_kernel(
            values,
            p.min_instances,
            p.delta,
            p.threshold,
            p.alpha,
            _MODE_CODE[p.mode],
            self._state["count"],
            self._state["mean"],
            self._state["sum_inc"],
            self._state["sum_dec"],
            self._state["min_inc"],
            self._state["max_dec"],
            self._state["drift_pending"],
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
    for i in range(x.shape[0]):
        statistic[i] = 0.0
        score[i] = 0.0
        detected[i] = False
        direction[i] = 0
        value = x[i]
        if not np.isfinite(value):
            continue
        # Work on locals: the state columns could alias as far as the compiler knows, so every store
        # to one of them would force the others to be reloaded.
        if drift_pending[i]:
            n, m, s_inc, s_dec, lo_inc, hi_dec = 0, 0.0, 0.0, 0.0, np.inf, -1.0
        else:
            n, m, s_inc, s_dec, lo_inc, hi_dec = (
                count[i],
                mean[i],
                sum_inc[i],
                sum_dec[i],
                min_inc[i],
                max_dec[i],
            )
        n += 1
        m += (1.0 / n) * (value - m)
        dev = value - m
        s_inc = alpha * s_inc + dev - delta
        s_dec = alpha * s_dec + dev + delta
        if s_inc < lo_inc:
            lo_inc = s_inc
        if s_dec > hi_dec:
            hi_dec = s_dec
        count[i], mean[i], sum_inc[i], sum_dec[i], min_inc[i], max_dec[i] = n, m, s_inc, s_dec, lo_inc, hi_dec
        drift_pending[i] = False
        if n < min_instances:
            continue
        test_inc = s_inc - lo_inc
        test_dec = hi_dec - s_dec
        if mode == 1 or (mode == 0 and test_inc >= test_dec):
            stat = test_inc
            side = 1
        else:
            stat = test_dec
            side = -1
        statistic[i] = stat
        score[i] = stat / threshold if stat < threshold else 1.0
        if stat > 0.0:
            direction[i] = side
        if stat > threshold:
            detected[i] = True
            drift_pending[i] = True
