"""Bayesian online change-point detection (Adams & MacKay 2007) for N series in one kernel call.

Model, per series: the stream is made of segments; within a segment values are Normal with a known
noise standard deviation ``noise_sd`` around a segment mean, and each segment's mean is drawn from
Normal(origin, ``prior_sd``^2), where origin is the series' first observed value (so the detector does
not care about a constant offset: values around 1e8 give the same alarms as values around 0). A new
segment starts at any window with constant hazard 1 / ``hazard_lambda``. The known-variance model is
chosen on purpose: the ensemble feeds standardised residuals (noise_sd = 1), and with a known variance
the posterior precision of a run depends on its length only, so the per-run-length constants are
computed once, and the kernel needs one exp per run-length cell (an arithmetic one, so the loop
vectorises) and no log.

The run-length posterior ``prob[r]`` is the probability that the current segment began r windows ago
(r = 0: the current value opens a new segment, judged under the prior predictive; this is the common
variant of the paper's recursion in which the value that starts a segment belongs to it). It is kept
for r < R = ``max_run_length``; longer runs are lumped into the last cell. Each step is normalised,
with log-likelihoods shifted by their maximum first, so that an extreme value cannot underflow all
cells. The score is P(r < ``window``): the probability that a change happened within the last
``window`` windows. An alarm is raised when the score crosses ``threshold`` upwards after warm-up.

State per series: ``prob`` and ``mean`` (segment mean relative to origin) as float32 rows of length R
(1 KB at R = 128), computed in float64; series-major, so one series' rows are contiguous. Plus the
origin, the settled level (for the direction), a count and the alarm flag. Values further than 1e30
from the origin are clipped to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detector.jit import njit, njit_finite_math
from detector.scoring.change import ChangeDetector, ChangeResult
from detector.scoring.state import Field

# Segment means are stored as float32: keep y (and so every mean) well inside its range.
_FARTHEST = 1e30


@dataclass(frozen=True, slots=True)
class BocpdParams:
    """hazard_lambda: expected windows between changes; max_run_length: R; window: w of the score."""

    hazard_lambda: float = 250.0
    max_run_length: int = 128
    window: int = 10
    threshold: float = 0.5
    noise_sd: float = 1.0
    prior_sd: float = 3.0
    min_instances: int = 20

    def __post_init__(self) -> None:
        if not np.isfinite(self.hazard_lambda) or self.hazard_lambda <= 1:
            raise ValueError(
                f"BocpdParams.hazard_lambda must be a finite number > 1, got {self.hazard_lambda!r}"
            )
        if self.max_run_length < 2:
            raise ValueError(f"BocpdParams.max_run_length must be >= 2, got {self.max_run_length!r}")
        if not 1 <= self.window < self.max_run_length:
            raise ValueError(
                f"BocpdParams.window must be in [1, max_run_length), got {self.window!r} "
                f"with max_run_length={self.max_run_length}"
            )
        if not 0 < self.threshold < 1:
            raise ValueError(f"BocpdParams.threshold must be in (0, 1), got {self.threshold!r}")
        if not np.isfinite(self.noise_sd) or self.noise_sd <= 0:
            raise ValueError(f"BocpdParams.noise_sd must be a finite number > 0, got {self.noise_sd!r}")
        if not np.isfinite(self.prior_sd) or self.prior_sd <= 0:
            raise ValueError(f"BocpdParams.prior_sd must be a finite number > 0, got {self.prior_sd!r}")
        if self.min_instances < self.window:
            raise ValueError(
                f"BocpdParams.min_instances must be >= window ({self.window}), got {self.min_instances!r}: "
                "every run is shorter than the window at the start of a series"
            )


@dataclass(frozen=True, slots=True)
class _RunLengthConstants:
    """Predictive log-normaliser, predictive precision and mean-update gain per run-length cell."""

    log_norm: np.ndarray
    precision: np.ndarray
    gain: np.ndarray
    prior_log_norm: float
    prior_precision: float
    prior_gain: float


def _run_length_constants(params: BocpdParams) -> _RunLengthConstants:
    noise_var = params.noise_sd**2
    prior_var = params.prior_sd**2

    def mean_precision(n_observations: np.ndarray) -> np.ndarray:
        return 1.0 / prior_var + n_observations / noise_var

    # Cell r holds a segment of r + 1 values; its next value is predicted with the noise variance plus
    # the remaining uncertainty of the segment mean, and folding that value in moves the mean by a gain.
    n_in_cell = np.arange(1, params.max_run_length + 1, dtype=np.float64)
    predictive_var = noise_var + 1.0 / mean_precision(n_in_cell)
    prior_predictive_var = noise_var + prior_var
    return _RunLengthConstants(
        log_norm=-0.5 * np.log(2.0 * np.pi * predictive_var),
        precision=1.0 / predictive_var,
        gain=(1.0 / noise_var) / mean_precision(n_in_cell + 1.0),
        prior_log_norm=-0.5 * math.log(2.0 * math.pi * prior_predictive_var),
        prior_precision=1.0 / prior_predictive_var,
        prior_gain=float((1.0 / noise_var) / mean_precision(np.ones(1))[0]),
    )


class Bocpd(ChangeDetector):
    """BOCPD for many series; ``update`` takes one value per series (standardised or raw with noise_sd)."""

    def __init__(self, params: BocpdParams, capacity: int = 16) -> None:
        run_lengths = (params.max_run_length,)
        super().__init__(
            f"bocpd_r{params.max_run_length}",
            {
                "prob": Field("float32", run_lengths),
                "mean": Field("float32", run_lengths),
                "origin": Field("float64"),
                "seen": Field("int64"),
                "above": Field("bool"),
                "settled": Field("float64"),
            },
            capacity,
        )
        self.params = params
        self._constants = _run_length_constants(params)
        # Per-step scratch rows shared by all series, allocated once.
        self._loglik = np.empty(params.max_run_length, dtype=np.float64)
        self._grown_mean = np.empty(params.max_run_length, dtype=np.float64)

    def update(self, x: npt.ArrayLike, out: ChangeResult | None = None) -> ChangeResult:
        """Score one window: ``x[i]`` is series i's value (NaN = missing). ``out`` reuses result arrays."""
        values = self._window_values(x)
        result = self._outputs(values.shape[0], out)
        columns = self._state.columns  # the dict itself: cheaper than a method call per column
        p, c = self.params, self._constants
        _bocpd_kernel(
            values,
            1.0 / p.hazard_lambda,
            p.window,
            p.threshold,
            p.min_instances,
            c.log_norm,
            c.precision,
            c.gain,
            c.prior_log_norm,
            c.prior_precision,
            c.prior_gain,
            columns["prob"],
            columns["mean"],
            columns["origin"],
            columns["seen"],
            columns["above"],
            columns["settled"],
            self._loglik,
            self._grown_mean,
            result.statistic,
            result.score,
            result.detected,
            result.direction,
        )
        return result


_LOG2_E = 1.4426950408889634
# ln 2 split in a high part exact in few bits and the remainder, so k * ln 2 is subtracted with little
# error (finite-math may fold the two parts back together: still well inside the 1e-11 promised below).
_LN2_HIGH = 0.6931471803691238
_LN2_LOW = 1.9082149292705877e-10
_SMALLEST_EXPONENT = -708.0  # exp(-708) is still a normal float64; anything lower is negligible here


@njit_finite_math
def _exp_nonpositive(v: float) -> float:
    """exp(v) for v <= 0 (clamped at -708), within 1e-11 relative of math.exp, as plain arithmetic.

    libm's exp is a call that stops the run-length loop from vectorising; this is the usual range
    reduction exp(v) = 2**k * exp(v - k ln 2) with |v - k ln 2| <= ln(2) / 2, a degree-9 Taylor
    polynomial (truncation error < 1e-11: far below the float32 resolution of the stored run-length
    probabilities, and each extra degree costs ~5 % of the kernel), and 2**k built from its exponent bits.
    """
    v = v if v > _SMALLEST_EXPONENT else _SMALLEST_EXPONENT
    k = math.floor(v * _LOG2_E + 0.5)
    f = v - k * _LN2_HIGH - k * _LN2_LOW
    poly = 1.0 / 362880.0
    for divisor in (40320.0, 5040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0):
        poly = poly * f + 1.0 / divisor
    return poly * np.int64((np.int64(k) + 1023) << 52).view(np.float64)


@njit_finite_math
def _advance_one_series(
    y: float,
    prob: np.ndarray,
    mean: np.ndarray,
    i: int,
    hazard: float,
    window: int,
    log_norm: np.ndarray,
    precision: np.ndarray,
    gain: np.ndarray,
    prior_log_norm: float,
    prior_precision: float,
    prior_gain: float,
    loglik: np.ndarray,
    grown_mean: np.ndarray,
) -> tuple[float, float, float]:
    """One BOCPD step of series i (finite y): updates its rows of prob and mean in place.

    Takes the 2-D arrays and the row index rather than row views: a view per series costs reference
    counting calls in the loop over series.

    Returns P(r < window), sum(p * m) over those recent runs, and sum(p * m) over all runs (the
    posterior mean level, as the masses sum to 1).
    """
    n_cells = prob.shape[1]
    last = n_cells - 1

    # Log predictive density of y under every run and under a new segment; each run's mean grown by y.
    new_loglik = prior_log_norm - 0.5 * y * y * prior_precision
    # The rows are float32; every read is widened explicitly (numpy's scalar rules would otherwise keep
    # float32 arithmetic when the kernel runs as plain Python, e.g. under NUMBA_DISABLE_JIT).
    for r in range(n_cells):
        mean_r = float(mean[i, r])
        d = y - mean_r
        # An empty cell must not take part in the max below (its exp could overflow into inf * 0).
        loglik[r] = log_norm[r] - 0.5 * d * d * precision[r] if prob[i, r] > 0.0 else -1e300
        grown_mean[r] = mean_r + gain[r] * d
    top = new_loglik
    for r in range(n_cells):
        top = loglik[r] if loglik[r] > top else top

    # Joint mass of (run, y), shifted by the max so at least one cell is representable; the weights
    # overwrite the log-likelihoods.
    new_weight = hazard * _exp_nonpositive(new_loglik - top)
    keep = 1.0 - hazard
    total = new_weight
    # Mass-weighted level of all runs after this step, summed here where the weights are at hand
    # (saves a pass over the rows just written).
    level_sum = new_weight * (prior_gain * y)
    for r in range(n_cells):
        w = keep * float(prob[i, r]) * _exp_nonpositive(loglik[r] - top)
        loglik[r] = w
        total += w
        level_sum += w * grown_mean[r]
    weight = loglik

    # Every run grows by one; the last cell also keeps the runs beyond it (mass-weighted mean).
    scale = 1.0 / total
    merged = weight[last] + weight[last - 1]
    tail_mean = float(mean[i, last])
    if merged > 0.0:
        tail_mean = (weight[last] * grown_mean[last] + weight[last - 1] * grown_mean[last - 1]) / merged
    prob[i, 0] = new_weight * scale
    mean[i, 0] = prior_gain * y
    for r in range(1, last):
        prob[i, r] = weight[r - 1] * scale
        mean[i, r] = grown_mean[r - 1]
    prob[i, last] = merged * scale
    mean[i, last] = tail_mean

    recent = 0.0
    recent_level = 0.0
    for r in range(window):
        recent += float(prob[i, r])
        recent_level += float(prob[i, r]) * float(mean[i, r])
    return recent, recent_level, level_sum * scale


@njit
def _bocpd_kernel(
    x: np.ndarray,
    hazard: float,
    window: int,
    threshold: float,
    min_instances: int,
    log_norm: np.ndarray,
    precision: np.ndarray,
    gain: np.ndarray,
    prior_log_norm: float,
    prior_precision: float,
    prior_gain: float,
    prob: np.ndarray,
    mean: np.ndarray,
    origin: np.ndarray,
    seen: np.ndarray,
    above: np.ndarray,
    settled: np.ndarray,
    loglik: np.ndarray,
    grown_mean: np.ndarray,
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
        if seen[i] == 0:
            # The first value opens the first segment: all mass on r = 0, the mean learned from it.
            origin[i] = value
            settled[i] = 0.0
            prob[i, :] = 0.0
            mean[i, :] = 0.0
            prob[i, 0] = 1.0
            seen[i] = 1
            continue
        y = value - origin[i]
        # A value this far from the origin is a change whatever its exact size.
        y = min(max(y, -_FARTHEST), _FARTHEST)
        recent, recent_level, all_level = _advance_one_series(
            y, prob, mean, i, hazard, window, log_norm, precision, gain,
            prior_log_norm, prior_precision, prior_gain, loglik, grown_mean,
        )  # fmt: skip
        recent = min(recent, 1.0)
        # Direction: the recent runs' level against the level settled on before the change began
        # (the posterior mean level of the last window whose score was at most the threshold).
        shift = recent_level / recent - settled[i] if recent > 0.0 else 0.0
        if recent <= threshold:
            settled[i] = all_level
        seen[i] += 1
        if seen[i] <= min_instances:
            continue
        statistic[i] = recent
        score[i] = recent
        if shift > 0.0:
            direction[i] = 1
        elif shift < 0.0:
            direction[i] = -1
        is_above = recent > threshold
        if is_above and not above[i]:
            detected[i] = True
        above[i] = is_above
