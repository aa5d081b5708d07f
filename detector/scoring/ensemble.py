"""The scoring ensemble: seasonal baseline + CUSUM + Page-Hinkley + gated BOCPD -> one score per series.

Per window, for all series at once (two kernel calls: the seasonal kernel, then one fused kernel that
runs the three change-point families on the baseline's residual z and combines everything):

1. The seasonal baseline scores the value (before learning from it): expected value, band, ``z`` and its
   own score ``s_base`` (0.5 at the band edge).
2. ``z`` (clipped at ``change_clip``) feeds CUSUM and Page-Hinkley, and BOCPD for the series whose BOCPD
   *gate* is open. The gate opens when ``|z| >= gate_z`` or the CUSUM statistic reaches ``gate_cusum``
   and closes when both are low again and BOCPD's change probability has fallen below
   ``gate_probability``. A series whose gate opens starts BOCPD from the in-control state the baseline
   guarantees (one long run with mean z = 0), so BOCPD costs nothing while a series is quiet; that is
   what keeps the ensemble above 10M series-updates/s (see docs/scoring.md).
3. ``s_change = min(s_cusum, max(s_bocpd, s_page_hinkley))``: a change scores when CUSUM and one of the
   other two agree. ``score = max(s_base, s_change, held)``, in [0, 1].
4. A change is *confirmed* as a ``level_shift`` when BOCPD's probability of a change in the last
   ``bocpd.window`` windows is >= ``bocpd.threshold`` with a recent segment mean ``|m| >= shift_z`` for
   ``confirm_windows`` consecutive windows in the same direction, and as a ``drift`` when Page-Hinkley
   alarms otherwise. A confirmed change holds the score at ``max(score, confirmed_score)`` for
   ``hold_windows``, then lets it decay with ``half_life`` windows; the seasonal baseline of the series
   is re-based onto its recent values and CUSUM / Page-Hinkley / BOCPD restart, so the new normal stops
   alarming and the alert resolves. In multiplicative mode a drop also widens the series' log-space
   scales as a count's noise grows (Poisson), so noise at the lower level does not alarm again.
5. Kind: the held kind while a confirmed change dominates the score; otherwise ``level_shift`` once the
   shift evidence has lasted two windows, else ``spike`` / ``dip`` for a value outside the band, else
   ``drift`` (change evidence without a large z). ``none`` below ``kind_threshold``.

While the baseline is still learning (no full season yet) the change-point families do not see its
residuals and the score is capped at ``learning_cap`` unless ``|z| >= learning_extreme_z`` (once the
short-term scale has seen its first values). A missing window (NaN) leaves every state untouched and
scores 0 with ``missing`` True.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
import numpy as np

from detector.jit import njit
from detector.scoring.bocpd import Bocpd, BocpdParams, _advance_one_series
from detector.scoring.change import ChangeResult
from detector.scoring.cusum import Cusum, CusumParams, _cusum_kernel
from detector.scoring.page_hinkley import _MODE_CODE, PageHinkley, PageHinkleyParams, _page_hinkley_kernel
from detector.scoring.seasonal import BaselineResult, SeasonalBaseline, SeasonalParams
from detector.scoring.state import Field, SeriesState, StateError

KIND_NONE, KIND_SPIKE, KIND_DIP, KIND_LEVEL_SHIFT, KIND_DRIFT = range(5)
KIND_NAMES = ("none", "spike", "dip", "level_shift", "drift")

SNAPSHOT_FORMAT = "livewatch.ensemble"
SNAPSHOT_VERSION = 1

# Positions in the packed combination config (one array argument keeps the kernel's dispatch cheap).
(
    _GATE_Z,
    _GATE_CUSUM,
    _GATE_PROBABILITY,
    _SHIFT_Z,
    _CONFIRM_WINDOWS,
    _HOLD_WINDOWS,
    _DECAY,
    _CONFIRMED_SCORE,
    _LEARNING_CAP,
    _LEARNING_EXTREME_Z,
    _KIND_THRESHOLD,
    _CHANGE_CLIP,
    _BOCPD_THRESHOLD,
    _TRUST_SHORT_TERM,
    _ABRUPT_WINDOWS,
    _SHORT_WARMUP,
) = range(16)

_ENSEMBLE_FIELDS = {
    "gate": Field("bool"),  # BOCPD is running for this series
    "streak": Field("int32"),  # consecutive windows of level-shift evidence
    "streak_direction": Field("int8"),
    "gate_age": Field("int32"),  # windows since the gate opened
    "held": Field("float64"),  # score held after a confirmed change
    "hold_left": Field("int32"),
    "held_kind": Field("int8"),
    "held_direction": Field("int8"),
}


def _ensemble_cusum() -> CusumParams:
    return CusumParams(k=0.5, h=5.0, min_instances=10)


def _ensemble_page_hinkley() -> PageHinkleyParams:
    # On the baseline's residuals, which are slightly correlated (a slot's profile error lasts the whole
    # slot): a slack of 0.5 sd keeps false drifts rare (0.2 gave one every two series-days); a drift of
    # 0.05 sd per window is still confirmed in about an hour of 60 s windows (docs/scoring.md).
    return PageHinkleyParams(min_instances=30, delta=0.5, threshold=25.0, alpha=1 - 0.0001, mode="both")


def _ensemble_bocpd() -> BocpdParams:
    return BocpdParams(hazard_lambda=250.0, max_run_length=64, window=10, threshold=0.5, min_instances=10)


@dataclass(frozen=True, slots=True)
class EnsembleParams:
    """Parameters of every family and of the combination; validated on construction.

    BOCPD's ``min_instances`` does not apply here (a gated BOCPD starts from the in-control state) and its
    ``noise_sd`` must stay 1: it is fed standardised residuals.
    """

    seasonal: SeasonalParams = field(default_factory=SeasonalParams)
    cusum: CusumParams = field(default_factory=_ensemble_cusum)
    page_hinkley: PageHinkleyParams = field(default_factory=_ensemble_page_hinkley)
    bocpd: BocpdParams = field(default_factory=_ensemble_bocpd)
    gate_z: float = 2.5
    gate_cusum: float = 2.5
    gate_probability: float = 0.1
    shift_z: float = 2.0
    confirm_windows: int = 3
    abrupt_windows: int = 5
    hold_windows: int = 5
    half_life: float = 5.0
    confirmed_score: float = 0.95
    learning_cap: float = 0.5
    learning_extreme_z: float = 8.0
    kind_threshold: float = 0.5
    change_clip: float = 10.0
    trust_short_term: bool = False

    def __post_init__(self) -> None:
        for name in ("gate_z", "gate_cusum", "shift_z", "half_life", "learning_extreme_z", "change_clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"EnsembleParams.{name} must be a finite number > 0, got {value!r}")
        for name in ("gate_probability", "confirmed_score", "learning_cap", "kind_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"EnsembleParams.{name} must be in [0, 1], got {value!r}")
        if self.abrupt_windows < 1:
            raise ValueError(f"EnsembleParams.abrupt_windows must be >= 1, got {self.abrupt_windows!r}")
        if self.confirm_windows < 1:
            raise ValueError(f"EnsembleParams.confirm_windows must be >= 1, got {self.confirm_windows!r}")
        if self.hold_windows < 0:
            raise ValueError(f"EnsembleParams.hold_windows must be >= 0, got {self.hold_windows!r}")
        if self.bocpd.noise_sd != 1.0:
            raise ValueError("EnsembleParams.bocpd.noise_sd must be 1: BOCPD sees standardised residuals")

    @property
    def decay(self) -> float:
        """Factor per window of a held score after the hold: 0.5 after ``half_life`` windows."""
        return float(0.5 ** (1.0 / self.half_life))

    def packed(self) -> np.ndarray:
        return np.array(
            [
                self.gate_z,
                self.gate_cusum,
                self.gate_probability,
                self.shift_z,
                self.confirm_windows,
                self.hold_windows,
                self.decay,
                self.confirmed_score,
                self.learning_cap,
                self.learning_extreme_z,
                self.kind_threshold,
                self.change_clip,
                self.bocpd.threshold,
                self.trust_short_term,
                self.abrupt_windows,
                math.ceil(1.0 / self.seasonal.short_rate),
            ],
            dtype=np.float64,
        )


@dataclass(frozen=True, slots=True)
class EnsembleResult:
    """One window's verdict for every series (arrays of length n).

    ``score`` in [0, 1]; ``direction`` int8 +1/-1/0; ``kind`` int8 codes into :data:`KIND_NAMES`;
    ``changed``: a change was confirmed in this window (the baseline was re-based);
    ``baseline_score``: the seasonal family's own score; the rest is the baseline's, passed through.
    """

    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    z: np.ndarray
    baseline_score: np.ndarray
    learning: np.ndarray
    missing: np.ndarray
    score: np.ndarray
    direction: np.ndarray
    kind: np.ndarray
    changed: np.ndarray

    @classmethod
    def empty(cls, n_series: int) -> EnsembleResult:
        base = BaselineResult.empty(n_series)
        return cls(
            base.expected,
            base.lower,
            base.upper,
            base.z,
            base.score,
            base.learning,
            base.missing,
            score=np.empty(n_series, dtype=np.float64),
            direction=np.empty(n_series, dtype=np.int8),
            kind=np.empty(n_series, dtype=np.int8),
            changed=np.empty(n_series, dtype=np.bool_),
        )

    def __len__(self) -> int:
        return int(self.score.shape[0])

    @property
    def baseline(self) -> BaselineResult:
        """The seasonal part as a BaselineResult (same arrays, no copy)."""
        return BaselineResult(
            self.expected, self.lower, self.upper, self.z, self.baseline_score, self.learning, self.missing
        )


class _Snapshot(msgspec.Struct):
    format: str
    version: int
    families: dict[str, bytes]


class Ensemble:
    """All families for N series; :meth:`update` scores one window of every series."""

    def __init__(self, params: EnsembleParams | None = None, capacity: int = 16) -> None:
        self.params = params if params is not None else EnsembleParams()
        p = self.params
        self.baseline = SeasonalBaseline(p.seasonal, capacity)
        self.cusum = Cusum(p.cusum, capacity)
        self.page_hinkley = PageHinkley(p.page_hinkley, capacity)
        self.bocpd = Bocpd(p.bocpd, capacity)
        self.state = SeriesState("ensemble", _ENSEMBLE_FIELDS, capacity)
        self._packed = p.packed()
        self._scratch: tuple[np.ndarray, ChangeResult, ChangeResult] | None = None

    @property
    def capacity(self) -> int:
        return self.state.capacity

    def _families(self) -> dict[str, SeasonalBaseline | Cusum | PageHinkley | Bocpd | SeriesState]:
        return {
            "seasonal": self.baseline,
            "cusum": self.cusum,
            "page_hinkley": self.page_hinkley,
            "bocpd": self.bocpd,
            "ensemble": self.state,
        }

    def ensure_capacity(self, n_series: int) -> None:
        for family in self._families().values():
            family.ensure_capacity(n_series)

    def reset(self, rows: Iterable[int] | np.ndarray) -> None:
        """Forget rows in every family (a new or expired series)."""
        index = np.asarray(rows if isinstance(rows, np.ndarray) else list(rows), dtype=np.int64)
        for family in self._families().values():
            family.reset(index)

    def nbytes_per_series(self, with_profile: bool = True) -> int:
        change = self.cusum.nbytes_per_series + self.page_hinkley.nbytes_per_series
        change += self.bocpd.nbytes_per_series + self.state.nbytes_per_series
        return self.baseline.nbytes_per_series(with_profile) + change

    def to_bytes(self) -> bytes:
        families = {name: family.to_bytes() for name, family in self._families().items()}
        return msgspec.msgpack.encode(_Snapshot(SNAPSHOT_FORMAT, SNAPSHOT_VERSION, families))

    def load_bytes(self, payload: bytes) -> None:
        """Restore every family from :meth:`to_bytes`; nothing changes if any part does not fit."""
        try:
            snapshot = msgspec.msgpack.decode(payload, type=_Snapshot)
        except msgspec.DecodeError as exc:
            raise StateError(f"not an ensemble snapshot: {exc}") from None
        if (snapshot.format, snapshot.version) != (SNAPSHOT_FORMAT, SNAPSHOT_VERSION):
            raise StateError(
                f"unsupported snapshot {snapshot.format!r} v{snapshot.version}; "
                f"this build reads {SNAPSHOT_FORMAT!r} v{SNAPSHOT_VERSION}"
            )
        families = self._families()
        if set(snapshot.families) != set(families):
            raise StateError(f"snapshot families {sorted(snapshot.families)} differ from {sorted(families)}")
        # Load into fresh copies first, so a bad part leaves this ensemble as it was.
        fresh = Ensemble(self.params, capacity=1)
        for name, family in fresh._families().items():
            family.load_bytes(snapshot.families[name])
        capacities = {family.capacity for family in fresh._families().values()}
        if len(capacities) != 1:
            raise StateError(f"snapshot families disagree on capacity: {sorted(capacities)}")
        self.baseline, self.cusum, self.page_hinkley = fresh.baseline, fresh.cusum, fresh.page_hinkley
        self.bocpd, self.state = fresh.bocpd, fresh.state
        self._scratch = None

    def _scratch_for(self, n: int) -> tuple[np.ndarray, ChangeResult, ChangeResult]:
        if self._scratch is None or self._scratch[0].shape[0] != n:
            self._scratch = (np.empty(n), ChangeResult.empty(n), ChangeResult.empty(n))
        return self._scratch

    def update(self, t_ms: int, x: np.ndarray, out: EnsembleResult | None = None) -> EnsembleResult:
        """Score, then learn, the window starting at ``t_ms``: ``x[i]`` is row i's value (NaN = missing).

        Rows from ``len(x)`` to the capacity are untouched. ``out`` (from :meth:`EnsembleResult.empty`)
        is filled in place and returned.
        """
        values = np.ascontiguousarray(x, dtype=np.float64)
        n = values.shape[0] if values.ndim == 1 else -1
        if out is None:
            out = EnsembleResult.empty(max(n, 0))
        self.baseline.update(t_ms, values, out=out.baseline)  # validates t_ms, shape and capacity
        clipped, cusum_out, ph_out = self._scratch_for(n)
        cusum, ph, bocpd = self.cusum.params, self.page_hinkley.params, self.bocpd
        # The fused kernel runs the families' own kernels and BOCPD's step on their state directly.
        c = bocpd._constants
        cs, ps, bs, es = (
            self.cusum._state.columns,
            self.page_hinkley._state.columns,
            bocpd._state.columns,
            self.state.columns,
        )
        _ensemble_kernel(
            out.z,
            out.baseline_score,
            out.learning,
            self.baseline.state["seen"],
            self._packed,
            clipped,
            cusum.k,
            cusum.h,
            cusum.min_instances,
            cs["upper"],
            cs["lower"],
            cs["seen"],
            cusum_out.statistic,
            cusum_out.score,
            cusum_out.detected,
            cusum_out.direction,
            ph.min_instances,
            ph.delta,
            ph.threshold,
            ph.alpha,
            _MODE_CODE[ph.mode],
            ps["count"],
            ps["mean"],
            ps["sum_inc"],
            ps["sum_dec"],
            ps["min_inc"],
            ps["max_dec"],
            ps["drift_pending"],
            ph_out.statistic,
            ph_out.score,
            ph_out.detected,
            ph_out.direction,
            1.0 / bocpd.params.hazard_lambda,
            bocpd.params.window,
            c.log_norm,
            c.precision,
            c.gain,
            c.prior_log_norm,
            c.prior_precision,
            c.prior_gain,
            bs["prob"],
            bs["mean"],
            bocpd._loglik,
            bocpd._grown_mean,
            es["gate"],
            es["streak"],
            es["streak_direction"],
            es["gate_age"],
            es["held"],
            es["hold_left"],
            es["held_kind"],
            es["held_direction"],
            out.score,
            out.direction,
            out.kind,
            out.changed,
        )
        if out.changed.any():
            rows = np.flatnonzero(out.changed)
            if self.params.seasonal.mode == "multiplicative":
                self._widen_after_drop(rows)
            self.baseline.rebase(rows)
        return out

    def _widen_after_drop(self, rows: np.ndarray) -> None:
        """Before a re-base downwards in log space, widen the series' scales as a count's noise grows.

        The sd of log(count) goes as 1 / sqrt(level) for Poisson counts, so after a drop to 30 % the old
        log-space scales are 1.8x too narrow and ordinary noise at the new level would alarm again. Scales
        are never narrowed after a rise: the old, wider ones err on the quiet side until relearned.
        """
        state = self.baseline.state
        jump = np.minimum(state["level_recent"][rows], 0.0)  # log of the level ratio, drops only
        factor = np.exp(-0.5 * jump)
        state["short_scale"][rows] *= factor
        for season in ("daily", "weekly"):
            if season in state.fields:
                profile = state[season]
                profile[rows, :, 1] = profile[rows, :, 1] * factor[:, None].astype(profile.dtype)


@njit
def _start_bocpd_in_control(prob: np.ndarray, mean: np.ndarray, i: int) -> None:
    """The state the baseline guarantees before a change: one long run whose mean residual is 0."""
    last = prob.shape[1] - 1
    for r in range(last):
        prob[i, r] = 0.0
        mean[i, r] = 0.0
    prob[i, last] = 1.0
    mean[i, last] = 0.0


@njit
def _ensemble_kernel(
    z: np.ndarray,
    base_score: np.ndarray,
    learning: np.ndarray,
    seen: np.ndarray,
    config: np.ndarray,
    clipped: np.ndarray,
    k: float,
    h: float,
    cusum_min: int,
    c_upper: np.ndarray,
    c_lower: np.ndarray,
    c_seen: np.ndarray,
    c_stat: np.ndarray,
    c_score: np.ndarray,
    c_det: np.ndarray,
    c_dir: np.ndarray,
    p_min: int,
    p_delta: float,
    p_threshold: float,
    p_alpha: float,
    p_mode: int,
    p_count: np.ndarray,
    p_mean: np.ndarray,
    p_sum_inc: np.ndarray,
    p_sum_dec: np.ndarray,
    p_min_inc: np.ndarray,
    p_max_dec: np.ndarray,
    p_pending: np.ndarray,
    p_stat: np.ndarray,
    p_score: np.ndarray,
    p_det: np.ndarray,
    p_dir: np.ndarray,
    hazard: float,
    b_window: int,
    log_norm: np.ndarray,
    precision: np.ndarray,
    gain: np.ndarray,
    prior_log_norm: float,
    prior_precision: float,
    prior_gain: float,
    b_prob: np.ndarray,
    b_mean: np.ndarray,
    loglik: np.ndarray,
    grown_mean: np.ndarray,
    gate: np.ndarray,
    streak: np.ndarray,
    streak_direction: np.ndarray,
    gate_age: np.ndarray,
    held: np.ndarray,
    hold_left: np.ndarray,
    held_kind: np.ndarray,
    held_direction: np.ndarray,
    score: np.ndarray,
    direction: np.ndarray,
    kind: np.ndarray,
    changed: np.ndarray,
) -> None:
    gate_z = config[_GATE_Z]
    gate_cusum = config[_GATE_CUSUM]
    gate_probability = config[_GATE_PROBABILITY]
    shift_z = config[_SHIFT_Z]
    confirm_windows = int(config[_CONFIRM_WINDOWS])
    hold_windows = int(config[_HOLD_WINDOWS])
    decay = config[_DECAY]
    confirmed_score = config[_CONFIRMED_SCORE]
    learning_cap = config[_LEARNING_CAP]
    learning_extreme_z = config[_LEARNING_EXTREME_Z]
    kind_threshold = config[_KIND_THRESHOLD]
    change_clip = config[_CHANGE_CLIP]
    bocpd_threshold = config[_BOCPD_THRESHOLD]
    trust_short_term = config[_TRUST_SHORT_TERM] != 0.0
    abrupt_windows = int(config[_ABRUPT_WINDOWS])
    short_warmup = int(config[_SHORT_WARMUP])
    n = z.shape[0]
    for i in range(n):
        # One absurd residual must not poison Page-Hinkley's never-forgetting mean; and residuals against
        # the short-term fallback (a day of seasonal swing read as noise) are no evidence of a change.
        watched = trust_short_term or not learning[i]
        clipped[i] = min(max(z[i], -change_clip), change_clip) if watched else math.nan
    _cusum_kernel(clipped, k, h, cusum_min, c_upper, c_lower, c_seen, c_stat, c_score, c_det, c_dir)
    _page_hinkley_kernel(
        clipped,
        p_min,
        p_delta,
        p_threshold,
        p_alpha,
        p_mode,
        p_count,
        p_mean,
        p_sum_inc,
        p_sum_dec,
        p_min_inc,
        p_max_dec,
        p_pending,
        p_stat,
        p_score,
        p_det,
        p_dir,
    )
    for i in range(n):
        zi = clipped[i]
        changed[i] = False
        if not math.isfinite(zi):
            # Missing, or still learning: only the baseline speaks, change state is untouched.
            fresh = 0.0 if math.isnan(z[i]) else base_score[i]
            # `seen` counts this value already: the exception needs a short-term scale learned before it.
            if abs(z[i]) < learning_extreme_z or seen[i] <= short_warmup:
                fresh = min(fresh, learning_cap)
            score[i] = fresh
            outside = fresh >= kind_threshold
            direction[i] = (1 if z[i] > 0.0 else -1) if outside else 0
            kind[i] = (KIND_SPIKE if z[i] > 0.0 else KIND_DIP) if outside else KIND_NONE
            continue

        # BOCPD only while the series looks unusual.
        open_now = abs(zi) >= gate_z or c_stat[i] >= gate_cusum
        if open_now and not gate[i]:
            _start_bocpd_in_control(b_prob, b_mean, i)
            gate[i] = True
            gate_age[i] = 0
        b_score = 0.0
        b_level = 0.0
        if gate[i]:
            gate_age[i] += 1
            recent, recent_level, _ = _advance_one_series(
                zi,
                b_prob,
                b_mean,
                i,
                hazard,
                b_window,
                log_norm,
                precision,
                gain,
                prior_log_norm,
                prior_precision,
                prior_gain,
                loglik,
                grown_mean,
            )
            b_score = min(recent, 1.0)
            b_level = recent_level / recent if recent > 0.0 else 0.0
            gate[i] = open_now or b_score >= gate_probability

        s_change = min(c_score[i], max(b_score, p_score[i]))
        fresh = max(base_score[i], s_change)
        if (
            learning[i]
            and not trust_short_term
            and (abs(z[i]) < learning_extreme_z or seen[i] <= short_warmup)
        ):
            fresh = min(fresh, learning_cap)

        if hold_left[i] > 0:
            hold_left[i] -= 1
        else:
            held[i] *= decay

        shift_evidence = b_score >= bocpd_threshold and abs(b_level) >= shift_z
        side = 1 if b_level > 0.0 else -1
        if shift_evidence and (streak[i] == 0 or streak_direction[i] == side):
            streak[i] += 1
        elif shift_evidence:
            streak[i] = 1
        else:
            streak[i] = 0
        streak_direction[i] = side if shift_evidence else 0

        confirmed = KIND_NONE
        confirmed_direction = 0
        if streak[i] >= confirm_windows:
            # Evidence that began soon after the gate opened is a jump; long after, a drift that grew.
            abrupt = gate_age[i] - streak[i] < abrupt_windows
            confirmed = KIND_LEVEL_SHIFT if abrupt else KIND_DRIFT
            confirmed_direction = side
        elif p_det[i]:
            abrupt = streak[i] > 0 and gate_age[i] - streak[i] < abrupt_windows
            confirmed = KIND_LEVEL_SHIFT if abrupt else KIND_DRIFT
            confirmed_direction = side if abrupt else p_dir[i]
        if confirmed != KIND_NONE:
            held[i] = max(fresh, confirmed_score)
            hold_left[i] = hold_windows
            held_kind[i] = confirmed
            held_direction[i] = confirmed_direction
            changed[i] = True
            # The baseline is re-based (by the caller): every change detector starts over.
            c_upper[i] = 0.0
            c_lower[i] = 0.0
            p_pending[i] = True
            gate[i] = False
            streak[i] = 0
            streak_direction[i] = 0

        total = max(fresh, held[i])
        score[i] = total
        if total < kind_threshold:
            kind[i] = KIND_NONE
            direction[i] = 0
        elif held[i] >= fresh:
            kind[i] = held_kind[i]
            direction[i] = held_direction[i]
        elif streak[i] >= 2:
            kind[i] = KIND_LEVEL_SHIFT
            direction[i] = streak_direction[i]
        elif base_score[i] >= kind_threshold:
            kind[i] = KIND_SPIKE if z[i] > 0.0 else KIND_DIP
            direction[i] = 1 if z[i] > 0.0 else -1
        else:
            kind[i] = KIND_DRIFT
            direction[i] = c_dir[i]
