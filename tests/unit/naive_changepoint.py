"""Plain-Python references for the change-point kernels: one series at a time, Python floats, loops.

Written from the algorithms' definitions, not from the kernels, so that a test comparing the two
catches a slip in either. ``run_reference`` drives one reference object per series over a (T, N)
stream and returns the four output arrays a detector's ``update`` returns per window.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

from detector.scoring.bocpd import BocpdParams
from detector.scoring.cusum import CusumParams
from detector.scoring.page_hinkley import PageHinkleyParams

Output = tuple[float, float, bool, int]  # statistic, score, detected, direction
_MISSING: Output = (0.0, 0.0, False, 0)


class ScalarDetector(Protocol):
    def step(self, value: float) -> Output: ...


def _is_missing(value: float) -> bool:
    return math.isnan(value) or math.isinf(value)


class NaiveCusum:
    def __init__(self, params: CusumParams) -> None:
        self.p = params
        self.high = 0.0
        self.low = 0.0
        self.n = 0

    def step(self, value: float) -> Output:
        if _is_missing(value):
            return _MISSING
        self.n += 1
        if self.n <= self.p.min_instances:
            return _MISSING
        self.high = max(0.0, self.high + (value - self.p.k))
        self.low = max(0.0, self.low + (-value - self.p.k))
        if self.high == 0.0 and self.low == 0.0:
            stat, direction = 0.0, 0
        elif self.high >= self.low:
            stat, direction = self.high, 1
        else:
            stat, direction = self.low, -1
        alarm = stat > self.p.h
        if alarm:
            self.high = self.low = 0.0
        return stat, min(1.0, stat / self.p.h), alarm, direction


class NaivePageHinkley:
    def __init__(self, params: PageHinkleyParams) -> None:
        self.p = params
        self.restart_next = False
        self._restart()

    def _restart(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.cum_up = 0.0
        self.cum_down = 0.0
        self.lowest_up = math.inf
        self.highest_down = -1.0

    def step(self, value: float) -> Output:
        if _is_missing(value):
            return _MISSING
        if self.restart_next:
            self._restart()
            self.restart_next = False
        self.n += 1
        self.mean = self.mean + (1.0 / self.n) * (value - self.mean)
        deviation = value - self.mean
        self.cum_up = self.p.alpha * self.cum_up + deviation - self.p.delta
        self.cum_down = self.p.alpha * self.cum_down + deviation + self.p.delta
        self.lowest_up = min(self.lowest_up, self.cum_up)
        self.highest_down = max(self.highest_down, self.cum_down)
        if self.n < self.p.min_instances:
            return _MISSING
        rise = self.cum_up - self.lowest_up
        fall = self.highest_down - self.cum_down
        candidates = {"up": [(rise, 1)], "down": [(fall, -1)], "both": [(rise, 1), (fall, -1)]}[self.p.mode]
        stat, side = max(candidates, key=lambda c: c[0])
        alarm = stat > self.p.threshold
        self.restart_next = alarm
        return stat, min(1.0, stat / self.p.threshold), alarm, side if stat > 0 else 0


def _f32(value: float) -> float:
    """The kernel keeps run-length rows as float32; round where it stores them."""
    return float(np.float32(value))


class NaiveBocpd:
    def __init__(self, params: BocpdParams) -> None:
        self.p = params
        self.noise_var = params.noise_sd**2
        self.prior_var = params.prior_sd**2
        self.masses: list[float] = []
        self.means: list[float] = []
        self.origin = 0.0
        self.n = 0
        self.was_above = False
        self.settled = 0.0

    def _precision(self, values_in_run: int) -> float:
        return 1.0 / self.prior_var + values_in_run / self.noise_var

    def _log_normal(self, y: float, mu: float, var: float) -> float:
        return -0.5 * math.log(2 * math.pi * var) - (y - mu) ** 2 / (2 * var)

    def step(self, value: float) -> Output:
        R = self.p.max_run_length
        if _is_missing(value):
            return _MISSING
        self.n += 1
        if self.n == 1:
            self.origin = value
            self.masses = [1.0] + [0.0] * (R - 1)
            self.means = [0.0] * R
            return _MISSING
        y = min(max(value - self.origin, -1e30), 1e30)  # documented clip: means are stored as float32
        hazard = 1.0 / self.p.hazard_lambda
        # Log of the joint mass of each possible run after y: index 0 a new run, else run r grew from r-1.
        log_joint = [math.log(hazard) + self._log_normal(y, 0.0, self.noise_var + self.prior_var)]
        grown_means = [y / self.noise_var / self._precision(1)]
        for r in range(R):
            values_in_run = r + 1
            if self.masses[r] == 0.0:
                log_joint.append(-math.inf)
            else:
                var = self.noise_var + 1.0 / self._precision(values_in_run)
                log_joint.append(
                    math.log(1 - hazard) + math.log(self.masses[r]) + self._log_normal(y, self.means[r], var)
                )
            new_precision = self._precision(values_in_run + 1)
            grown_means.append(
                (self.means[r] * (new_precision - 1.0 / self.noise_var) + y / self.noise_var) / new_precision
            )
        peak = max(log_joint)
        joint = [math.exp(v - peak) for v in log_joint]
        # Runs longer than the last cell stay in it: merge the two longest.
        tail_mass = joint[R - 1] + joint[R]
        if tail_mass > 0:
            tail_mean = (joint[R - 1] * grown_means[R - 1] + joint[R] * grown_means[R]) / tail_mass
        else:
            tail_mean = self.means[R - 1]
        joint = [*joint[: R - 1], tail_mass]
        grown_means = [*grown_means[: R - 1], tail_mean]
        total = sum(joint)
        self.masses = [_f32(v / total) for v in joint]
        self.means = [_f32(v) for v in grown_means]

        w = self.p.window
        recent = min(1.0, sum(self.masses[:w]))
        # Which way: the recent runs' level against the level held before the score went above threshold.
        shift = 0.0
        if recent > 0:
            recent_level = sum(m * mu for m, mu in zip(self.masses[:w], self.means[:w], strict=True)) / recent
            shift = recent_level - self.settled
        if recent <= self.p.threshold:
            self.settled = sum(m * mu for m, mu in zip(self.masses, self.means, strict=True))
        if self.n <= self.p.min_instances:
            return _MISSING
        direction = (shift > 0) - (shift < 0)
        above = recent > self.p.threshold
        alarm = above and not self.was_above
        self.was_above = above
        return recent, recent, alarm, direction


def run_reference(
    make: Callable[[], ScalarDetector], stream: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Outputs of one reference detector per column of ``stream`` (T windows x N series)."""
    n_windows, n_series = stream.shape
    statistic = np.zeros((n_windows, n_series))
    score = np.zeros((n_windows, n_series))
    detected = np.zeros((n_windows, n_series), dtype=bool)
    direction = np.zeros((n_windows, n_series), dtype=np.int8)
    for j in range(n_series):
        detector = make()
        for t in range(n_windows):
            statistic[t, j], score[t, j], detected[t, j], direction[t, j] = detector.step(float(stream[t, j]))
    return statistic, score, detected, direction
