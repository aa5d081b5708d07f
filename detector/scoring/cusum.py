"""Two-sided tabular CUSUM on standardised residuals, for N series in one kernel call.

The input is a value per series that the caller has already standardised (the ensemble feeds the
residual z of the seasonal baseline, ~N(0, 1) while nothing is wrong). Per series two one-sided sums
accumulate evidence of a shift up (z above +k) and down (z below -k):

    upper = max(0, upper + z - k)        lower = max(0, lower - z - k)

An alarm is raised when the larger sum exceeds h; both sums then restart from 0, so one level shift
gives one alarm, and a shift that persists gives a new alarm every ~h / (shift - k) windows.
The first ``min_instances`` values of a series only count towards warm-up (a fresh baseline's
residuals are not trusted yet).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detector.jit import njit
from detector.scoring.change import ChangeDetector, ChangeResult
from detector.scoring.state import Field

FIELDS = {
    "upper": Field("float64"),
    "lower": Field("float64"),
    "seen": Field("int64"),
}


@dataclass(frozen=True, slots=True)
class CusumParams:
    """k: slack in standard deviations (detects shifts of about 2k best); h: alarm threshold."""

    k: float = 0.5
    h: float = 5.0
    min_instances: int = 10

    def __post_init__(self) -> None:
        if not np.isfinite(self.k) or self.k < 0:
            raise ValueError(f"CusumParams.k must be a finite number >= 0, got {self.k!r}")
        if not np.isfinite(self.h) or self.h <= 0:
            raise ValueError(f"CusumParams.h must be a finite number > 0, got {self.h!r}")
        if self.min_instances < 0:
            raise ValueError(f"CusumParams.min_instances must be >= 0, got {self.min_instances!r}")


class Cusum(ChangeDetector):
    """Two-sided CUSUM for many series; ``update`` takes one standardised value per series."""

    def __init__(self, params: CusumParams, capacity: int = 16) -> None:
        super().__init__("cusum", FIELDS, capacity)
        self.params = params

    def update(self, x: npt.ArrayLike, out: ChangeResult | None = None) -> ChangeResult:
        """Score one window: ``x[i]`` is series i's value (NaN = missing). ``out`` reuses result arrays."""
        values = self._window_values(x)
        result = self._outputs(values.shape[0], out)
        columns = self._state.columns  # the dict itself: cheaper than a method call per column
        _cusum_kernel(
            values,
            self.params.k,
            self.params.h,
            self.params.min_instances,
            columns["upper"],
            columns["lower"],
            columns["seen"],
            result.statistic,
            result.score,
            result.detected,
            result.direction,
        )
        return result


@njit
def _cusum_kernel(
    x: np.ndarray,
    k: float,
    h: float,
    min_instances: int,
    upper: np.ndarray,
    lower: np.ndarray,
    seen: np.ndarray,
    statistic: np.ndarray,
    score: np.ndarray,
    detected: np.ndarray,
    direction: np.ndarray,
) -> None:
    # Selects instead of branches, so the loop vectorises; a missing value or the warm-up decides what
    # is stored.
    for i in range(x.shape[0]):
        z = x[i]
        present = np.isfinite(z)
        n_seen = seen[i] + 1 if present else seen[i]
        active = present and n_seen > min_instances
        up = upper[i] + z - k
        up = up if up > 0.0 else 0.0
        down = lower[i] - z - k
        down = down if down > 0.0 else 0.0
        rising = up >= down
        stat = up if rising else down
        stat = stat if active else 0.0
        alarm = stat > h
        seen[i] = n_seen
        upper[i] = (0.0 if alarm else up) if active else upper[i]
        lower[i] = (0.0 if alarm else down) if active else lower[i]
        statistic[i] = stat
        score[i] = min(stat / h, 1.0)
        detected[i] = alarm
        direction[i] = (1 if rising else -1) if stat > 0.0 else 0
