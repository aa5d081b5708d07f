"""Plain-Python reference of the ensemble: one series, the families' own references, the rules in prose.

Written from the description in ``detector/scoring/ensemble.py`` (not from its kernel) on top of the
plain-Python references of each family, so the parity test checks the fused kernel's bookkeeping:
clipping, the BOCPD gate and its in-control start, the combination, confirmation, hold and decay,
re-basing and the kinds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detector.scoring.ensemble import (
    KIND_DIP,
    KIND_DRIFT,
    KIND_LEVEL_SHIFT,
    KIND_NONE,
    KIND_SPIKE,
    EnsembleParams,
)
from tests.unit.naive_changepoint import NaiveBocpd, NaiveCusum, NaivePageHinkley
from tests.unit.naive_seasonal import NaiveSeasonal


@dataclass
class NaiveEnsembleOutput:
    expected: float
    lower: float
    upper: float
    z: float
    learning: bool
    missing: bool
    score: float
    direction: int
    kind: int
    changed: bool


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


class NaiveEnsemble:
    def __init__(self, params: EnsembleParams) -> None:
        self.p = params
        self.seasonal = NaiveSeasonal(params.seasonal)
        self.cusum = NaiveCusum(params.cusum)
        self.page_hinkley = NaivePageHinkley(params.page_hinkley)
        self.bocpd: NaiveBocpd | None = None  # None: gate closed
        self.gate_age = 0
        self.streak = 0
        self.streak_side = 0
        self.held = 0.0
        self.hold_left = 0
        self.held_kind = KIND_NONE
        self.held_direction = 0

    def _bocpd_in_control(self) -> NaiveBocpd:
        """A BOCPD that has long been in a run whose mean residual is 0, past its warm-up."""
        bocpd = NaiveBocpd(self.p.bocpd)
        size = self.p.bocpd.max_run_length
        bocpd.masses = [0.0] * (size - 1) + [1.0]
        bocpd.means = [0.0] * size
        bocpd.origin = 0.0
        bocpd.n = 10**9
        return bocpd

    def update(self, t_ms: int, x: float) -> NaiveEnsembleOutput:
        p = self.p
        base = self.seasonal.update(t_ms, x)
        z = base.z

        def out(score: float, direction: int, kind: int, changed: bool = False) -> NaiveEnsembleOutput:
            return NaiveEnsembleOutput(
                base.expected,
                base.lower,
                base.upper,
                z,
                base.learning,
                base.missing,
                score,
                direction,
                kind,
                changed,
            )

        if base.missing:
            self.cusum.step(math.nan)
            self.page_hinkley.step(math.nan)
            return out(0.0, 0, KIND_NONE)
        # Values before this one: an extreme z only counts once the short-term scale has been learned.
        scale_known = self.seasonal.seen - 1 >= math.ceil(1.0 / p.seasonal.short_rate)
        extreme = abs(z) >= p.learning_extreme_z and scale_known
        if base.learning and not p.trust_short_term:
            # Only the baseline speaks while it learns; the change detectors do not see these residuals.
            score = base.score if extreme else min(base.score, p.learning_cap)
            if score >= p.kind_threshold:
                return out(score, _sign(z), KIND_SPIKE if z > 0 else KIND_DIP)
            return out(score, 0, KIND_NONE)

        zc = max(-p.change_clip, min(p.change_clip, z))
        c_stat, c_score, _, c_dir = self.cusum.step(zc)
        _, p_score, p_alarm, p_dir = self.page_hinkley.step(zc)

        opens = abs(zc) >= p.gate_z or c_stat >= p.gate_cusum
        if opens and self.bocpd is None:
            self.bocpd = self._bocpd_in_control()
            self.gate_age = 0
        b_score = b_level = 0.0
        if self.bocpd is not None:
            self.gate_age += 1
            _, recent, _, _ = self.bocpd.step(zc)
            w = p.bocpd.window
            mass = sum(self.bocpd.masses[:w])
            level = sum(m * mu for m, mu in zip(self.bocpd.masses[:w], self.bocpd.means[:w], strict=True))
            b_score = min(recent, 1.0)
            b_level = level / mass if mass > 0 else 0.0
            if not (opens or b_score >= p.gate_probability):
                self.bocpd = None

        fresh = max(base.score, min(c_score, max(b_score, p_score)))
        if base.learning and not p.trust_short_term and not extreme:
            fresh = min(fresh, p.learning_cap)
        if self.hold_left > 0:
            self.hold_left -= 1
        else:
            self.held *= p.decay

        evidence = b_score >= p.bocpd.threshold and abs(b_level) >= p.shift_z
        side = 1 if b_level > 0 else -1
        if evidence:
            self.streak = self.streak + 1 if self.streak == 0 or self.streak_side == side else 1
            self.streak_side = side
        else:
            self.streak = 0
            self.streak_side = 0

        confirmed, confirmed_direction = KIND_NONE, 0
        abrupt = self.streak > 0 and self.gate_age - self.streak < p.abrupt_windows
        if self.streak >= p.confirm_windows:
            confirmed = KIND_LEVEL_SHIFT if abrupt else KIND_DRIFT
            confirmed_direction = side
        elif p_alarm:
            confirmed = KIND_LEVEL_SHIFT if abrupt else KIND_DRIFT
            confirmed_direction = side if abrupt else p_dir
        changed = confirmed != KIND_NONE
        if changed:
            self.held = max(fresh, p.confirmed_score)
            self.hold_left = p.hold_windows
            self.held_kind, self.held_direction = confirmed, confirmed_direction
            self._rebase()

        score = max(fresh, self.held)
        if score < p.kind_threshold:
            return out(score, 0, KIND_NONE, changed)
        if self.held >= fresh:
            return out(score, self.held_direction, self.held_kind, changed)
        if self.streak >= 2:
            return out(score, self.streak_side, KIND_LEVEL_SHIFT, changed)
        if base.score >= p.kind_threshold:
            return out(score, _sign(z) or -1, KIND_SPIKE if z > 0 else KIND_DIP, changed)
        return out(score, c_dir, KIND_DRIFT, changed)

    def _rebase(self) -> None:
        s = self.seasonal
        if self.p.seasonal.mode == "multiplicative" and s.level_recent < 0:
            # A drop: log-space noise of a count grows as 1 / sqrt(level); widen every scale to match.
            factor = math.exp(-0.5 * s.level_recent)
            s.short_scale *= factor
            for profile in s.profiles.values():
                for slot in profile.values():
                    slot[1] *= factor
        s.level += s.level_recent
        s.level_recent = 0.0
        s.short_level += s.short_recent
        s.short_recent = 0.0
        self.cusum.high = self.cusum.low = 0.0
        self.page_hinkley.restart_next = True
        self.bocpd = None
        self.streak = 0
        self.streak_side = 0
