"""Seasonal baseline family: what is normal for this series at this time of day and week.

Model, per series, in a working space ``y`` (``y = x`` in additive mode, ``y = log1p(x)`` in
multiplicative mode, where a daily swing of the level is a constant shift):

    y ≈ level + profile[slot]          scale = profile_scale[slot]

``level`` is a slow float64 EWMA that follows growth (a Holt-Winters level); ``profile`` holds each
slot's *deviation* from that level (float32 by default: deviations are small numbers even when the level
is 1e8, so float32 loses nothing that matters) together with a robust scale (a clipped mean absolute
deviation times sqrt(pi/2), which equals sigma for Gaussian noise). Every update is Huber-clipped at
``clip`` scales, so a single outlier moves the baseline by at most ``rate * clip * scale``.

Slots come from event time in UTC: daily slot = second of day // slot_s; weekly slot = weekday (Monday
0) * daily slots + daily slot. With both seasons the weekly profile is used once a full week has been
seen and the daily one before that. Until the first full season (a day, or a week when only weekly is
configured) a series is scored against a short-term EWMA level/scale and reports ``learning``;
``borrow_shape`` lets a new slice start from its parent's profile instead.

A window is scored before it is learned from. A non-finite value is a *missing* window: nothing is
learned, the expected value and band are still reported, ``z`` is NaN and ``score`` is 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from detector.jit import njit
from detector.scoring.state import Field, SeriesState

FAMILY = "seasonal"
DAY_S = 86_400
WEEK_S = 7 * DAY_S
# 1970-01-01 was a Thursday: shifting epoch days by 3 makes Monday weekday 0.
_EPOCH_WEEKDAY = 3
# A clipped mean absolute deviation times sqrt(pi/2) is sigma for Gaussian noise.
_MAD_TO_SIGMA = math.sqrt(math.pi / 2.0)
# The score map is 1 / (1 + (band_z / |z|)^4): steep enough that twice the band scores ~0.94, soft
# enough to rank values near the band edge (0.5).

# Positions in the packed config vector: one array argument instead of a dozen scalars keeps the
# per-call dispatch cost of the kernel small (it dominates for a handful of series).
_MULTIPLICATIVE, _BAND_Z, _LEVEL_RATE, _SCALE_RATE, _GROWTH_RATE, _SHORT_RATE, _RECENT_RATE = range(7)
_CLIP, _MIN_REL, _MIN_ABS, _DAILY_WINDOWS, _WEEKLY_WINDOWS, _USE_DAILY, _USE_WEEKLY = range(7, 14)

Seasons = tuple[str, ...]
_KNOWN_SEASONS = ("daily", "weekly")


@dataclass(frozen=True, slots=True)
class SeasonalParams:
    """Hyper-parameters of the seasonal baseline, stored unchanged and validated on construction.

    Rates are per update of the thing they move: ``level_rate`` and ``scale_rate`` per visit of a slot
    (a 900 s slot of 60 s windows is visited 15 times a day), ``growth_rate``, ``short_rate`` and
    ``recent_rate`` per window. ``recent_rate`` is the EWMA rate of the unclipped recent residual that
    ``rebase`` jumps by: fast, so a change confirmed a few windows late is still measured fully.
    """

    window_s: int = 60
    slot_s: int = 900
    seasons: Seasons = ("daily", "weekly")
    mode: str = "additive"
    coverage: float = 0.99
    level_rate: float = 0.05
    scale_rate: float = 0.02
    growth_rate: float = 0.002
    short_rate: float = 0.05
    recent_rate: float = 0.3
    clip: float = 3.0
    min_scale_rel: float = 1e-4
    min_scale_abs: float = 1e-6
    profile_dtype: str = "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.window_s, int) or self.window_s < 1:
            raise ValueError(f"window_s must be a positive integer of seconds, got {self.window_s!r}")
        if not isinstance(self.slot_s, int) or self.slot_s < self.window_s or DAY_S % self.slot_s:
            raise ValueError(
                f"slot_s must be an integer >= window_s ({self.window_s}) dividing 86400, got {self.slot_s!r}"
            )
        if self.slot_s % self.window_s:
            raise ValueError(f"slot_s ({self.slot_s}) must be a multiple of window_s ({self.window_s})")
        seasons = tuple(self.seasons) if not isinstance(self.seasons, str) else (self.seasons,)
        if not seasons or any(s not in _KNOWN_SEASONS for s in seasons) or len(set(seasons)) != len(seasons):
            raise ValueError(f"seasons must be a non-empty subset of {_KNOWN_SEASONS}, got {self.seasons!r}")
        object.__setattr__(self, "seasons", tuple(s for s in _KNOWN_SEASONS if s in seasons))
        if self.mode not in ("additive", "multiplicative"):
            raise ValueError(f"mode must be 'additive' or 'multiplicative', got {self.mode!r}")
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must be in (0, 1), got {self.coverage!r}")
        for name in ("level_rate", "scale_rate", "growth_rate", "short_rate", "recent_rate"):
            rate = getattr(self, name)
            if not 0.0 < rate <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {rate!r}")
        if not self.clip > 0.0:
            raise ValueError(f"clip must be > 0 (in scales), got {self.clip!r}")
        if not self.min_scale_rel >= 0.0:
            raise ValueError(f"min_scale_rel must be >= 0, got {self.min_scale_rel!r}")
        if not self.min_scale_abs > 0.0:
            raise ValueError(f"min_scale_abs must be > 0 so a constant stream has a finite z, "
                             f"got {self.min_scale_abs!r}")
        if self.profile_dtype not in ("float32", "float64"):
            raise ValueError(f"profile_dtype must be 'float32' or 'float64', got {self.profile_dtype!r}")

    @property
    def daily_slots(self) -> int:
        return DAY_S // self.slot_s

    @property
    def weekly_slots(self) -> int:
        return WEEK_S // self.slot_s

    @property
    def band_z(self) -> float:
        """Half-width of the band in scales: the two-sided Gaussian quantile of ``coverage``."""
        return NormalDist().inv_cdf(0.5 + self.coverage / 2.0)

    @property
    def daily_windows(self) -> int:
        return DAY_S // self.window_s

    @property
    def weekly_windows(self) -> int:
        return WEEK_S // self.window_s

    @property
    def cold_start_windows(self) -> int:
        """Windows a series must see before its first season is learned."""
        return self.daily_windows if "daily" in self.seasons else self.weekly_windows

    def slots(self, t_ms: int) -> tuple[int, int]:
        """Daily and weekly slot of a window starting at ``t_ms`` (epoch milliseconds, UTC)."""
        daily, weekly = self._slot_arithmetic(t_ms)
        return int(daily), int(weekly)

    def slot_arrays(self, t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Daily and weekly slots of many window starts at once (int64 arrays)."""
        return self._slot_arithmetic(np.asarray(t_ms, dtype=np.int64))

    def _slot_arithmetic(self, t_ms: Any) -> tuple[Any, Any]:
        # Floor division and modulo: the same (Python) semantics for ints and numpy int arrays.
        t_s = t_ms // 1000
        daily = (t_s % DAY_S) // self.slot_s
        weekday = (t_s // DAY_S + _EPOCH_WEEKDAY) % 7
        return daily, weekday * self.daily_slots + daily


@dataclass(frozen=True, slots=True)
class BaselineResult:
    """One window's verdict for every series (arrays of length n, in the caller's value units).

    ``z`` is the signed standardised residual (NaN when missing); ``score`` maps ``|z|`` into [0, 1):
    0.5 at the band edge, about 0.94 at twice the band. ``learning`` is True when the series was scored
    against its short-term fallback because no learned season was available.
    """

    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    z: np.ndarray
    score: np.ndarray
    learning: np.ndarray
    missing: np.ndarray

    @classmethod
    def empty(cls, n_series: int, n_windows: int | None = None) -> BaselineResult:
        """Uninitialised output arrays for ``n_series`` series (``(n_windows, n_series)`` for a batch)."""
        shape = (n_series,) if n_windows is None else (n_windows, n_series)

        def floats() -> np.ndarray:
            return np.empty(shape, dtype=np.float64)

        def flags() -> np.ndarray:
            return np.empty(shape, dtype=np.bool_)

        return cls(floats(), floats(), floats(), floats(), floats(), flags(), flags())

    def __len__(self) -> int:
        """Number of series (the last axis)."""
        return int(self.expected.shape[-1])


def _fields(params: SeasonalParams) -> dict[str, Field]:
    nan = float("nan")
    fields = {
        "seen": Field("int32"),
        "level": Field("float64"),
        "level_recent": Field("float64"),
        "short_level": Field("float64"),
        "short_scale": Field("float64"),
        "short_recent": Field("float64"),
    }
    # Unlearned slots are NaN, so a slot never visited (a gap, a fresh series) is known as such.
    if "daily" in params.seasons:
        fields["daily"] = Field(params.profile_dtype, (params.daily_slots, 2), nan)
    if "weekly" in params.seasons:
        fields["weekly"] = Field(params.profile_dtype, (params.weekly_slots, 2), nan)
    return fields


class SeasonalBaseline:
    """Seasonal baseline for N series, all scored by one kernel call per window.

    >>> baseline = SeasonalBaseline(SeasonalParams(seasons=("daily",)), capacity=2)
    >>> result = baseline.update(0, np.array([10.0, np.nan]))
    >>> bool(result.learning[0]), bool(result.missing[1]), float(result.z[0])
    (True, True, 0.0)
    """

    def __init__(self, params: SeasonalParams | None = None, capacity: int = 16) -> None:
        self.params = params if params is not None else SeasonalParams()
        self.state = SeriesState(FAMILY, _fields(self.params), capacity)
        # Empty profiles stand in for a season that is not configured, so the kernel has one signature.
        self._no_profile = np.full((1, 1, 2), np.nan, dtype=self.params.profile_dtype)
        p = self.params
        self._use_daily = "daily" in p.seasons
        self._use_weekly = "weekly" in p.seasons
        self._config = np.array([
            p.mode == "multiplicative", p.band_z, p.level_rate, p.scale_rate, p.growth_rate, p.short_rate,
            p.recent_rate, p.clip, p.min_scale_rel, p.min_scale_abs, p.daily_windows, p.weekly_windows,
            self._use_daily, self._use_weekly,
        ], dtype=np.float64)

    @property
    def capacity(self) -> int:
        return self.state.capacity

    def ensure_capacity(self, n_series: int) -> None:
        self.state.ensure_capacity(n_series)

    def reset(self, rows: Iterable[int] | np.ndarray) -> None:
        """Forget rows entirely: call it for rows the registry has expired."""
        self.state.reset(rows)

    def nbytes_per_series(self, with_profile: bool = True) -> int:
        """State bytes per series, with or without the seasonal profiles (the scalars alone)."""
        if with_profile:
            return self.state.nbytes_per_series
        return sum(
            np.dtype(f.dtype).itemsize
            for name, f in self.state.fields.items()
            if name not in ("daily", "weekly")
        )

    def to_bytes(self) -> bytes:
        return self.state.to_bytes()

    def load_bytes(self, payload: bytes) -> None:
        self.state.load_bytes(payload)

    def _profile(self, season: str) -> np.ndarray:
        return self.state[season] if season in self.state.fields else self._no_profile

    def update(self, t_ms: int, x: np.ndarray, out: BaselineResult | None = None) -> BaselineResult:
        """Score, then learn, one window starting at ``t_ms`` with one value per series row 0..len(x)-1.

        Windows must come once each, in time order (a repeated window would be learned twice). Rows
        from len(x) to the capacity are left untouched. ``out`` (from :meth:`BaselineResult.empty`) is
        filled in place and returned, so a hot loop allocates nothing; without it every call returns
        fresh arrays.
        """
        if isinstance(t_ms, bool) or not isinstance(t_ms, int | np.integer):
            raise ValueError(f"t_ms must be integer epoch milliseconds, got {t_ms!r}")
        values = np.ascontiguousarray(x, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"x must be one value per series (1-D), got shape {values.shape}")
        n = values.shape[0]
        if n > self.state.capacity:
            raise ValueError(f"x has {n} values but capacity is {self.state.capacity}; call ensure_capacity")
        daily_slot, weekly_slot = self.params.slots(int(t_ms))
        if out is None:
            out = BaselineResult.empty(n)
        elif len(out) != n:
            raise ValueError(f"out holds {len(out)} series but x has {n}")
        s = self.state
        _update_kernel(
            values, daily_slot if self._use_daily else 0, weekly_slot if self._use_weekly else 0,
            self._config,
            s["seen"], s["level"], s["level_recent"], s["short_level"], s["short_scale"], s["short_recent"],
            self._profile("daily"), self._profile("weekly"),
            out.expected, out.lower, out.upper, out.z, out.score, out.learning, out.missing,
        )
        return out

    def update_batch(self, t_ms: np.ndarray, x: np.ndarray) -> BaselineResult:
        """Many consecutive windows in one compiled loop: ``x`` is (windows, series), ``t_ms`` their starts.

        Exactly the same as calling :meth:`update` window by window (tested), without the per-call
        overhead: the path for backtests and for scoring one long series from a file.
        """
        times = np.ascontiguousarray(t_ms, dtype=np.int64)
        values = np.ascontiguousarray(x, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"x must be (windows, series), got shape {values.shape}")
        n_windows, n = values.shape
        if times.shape != (n_windows,):
            raise ValueError(f"t_ms must hold one start per window ({n_windows}), got shape {times.shape}")
        if n_windows > 1 and np.any(np.diff(times) <= 0):
            raise ValueError("t_ms must be strictly increasing: each window once, in time order")
        if n > self.state.capacity:
            raise ValueError(f"x has {n} series but capacity is {self.state.capacity}; call ensure_capacity")
        daily_slots, weekly_slots = self.params.slot_arrays(times)
        if not self._use_daily:
            daily_slots = np.zeros_like(daily_slots)
        if not self._use_weekly:
            weekly_slots = np.zeros_like(weekly_slots)
        out = BaselineResult.empty(n, n_windows)
        s = self.state
        _update_batch_kernel(
            values, daily_slots, weekly_slots, self._config,
            s["seen"], s["level"], s["level_recent"], s["short_level"], s["short_scale"], s["short_recent"],
            self._profile("daily"), self._profile("weekly"),
            out.expected, out.lower, out.upper, out.z, out.score, out.learning, out.missing,
        )
        return out

    def rebase(self, rows: Iterable[int] | np.ndarray) -> None:
        """Move the level of ``rows`` onto their recent values, after a confirmed change point.

        The profile shape is kept; only the level (and the short-term fallback) jump by the recent,
        unclipped mean residual, so the new regime is normal from the next window on.
        """
        index = self._rows(rows, "rows")
        s = self.state
        s["level"][index] += s["level_recent"][index]
        s["level_recent"][index] = 0.0
        s["short_level"][index] += s["short_recent"][index]
        s["short_recent"][index] = 0.0

    def borrow_shape(
        self, child_rows: Iterable[int] | np.ndarray, parent_rows: Iterable[int] | np.ndarray
    ) -> None:
        """Give each child series the seasonal profile of its parent, scaled to the child's own level.

        The child must have seen at least one value (its level is its short-term level). With
        ``ratio`` = child / parent short-term level, additive mode multiplies the parent's deviations by
        ``ratio``; multiplicative mode (log space) copies them and shifts the level by log(ratio). Scales
        assume the parent is a sum of parts as noisy as the child (Poisson-like): additive scales by
        ``sqrt(ratio)``, log scales by ``1 / sqrt(ratio)``, which errs on the wide side until the child
        has learned its own. The child then counts as having the parent's experience, so it is scored
        seasonally from its next window.
        """
        child = self._rows(child_rows, "child_rows")
        parent = self._rows(parent_rows, "parent_rows")
        if child.shape != parent.shape:
            raise ValueError(f"child_rows ({child.size}) and parent_rows ({parent.size}) differ in length")
        s = self.state
        if np.any(s["seen"][child] < 1):
            raise ValueError("child_rows must have seen at least one value before borrowing a shape")
        if np.any(s["seen"][parent] < self.params.cold_start_windows):
            raise ValueError("parent_rows must have learned a full season before lending their shape")
        child_short = s["short_level"][child]
        parent_short = s["short_level"][parent]
        profiles = [s[name] for name in ("daily", "weekly") if name in s.fields]
        if self.params.mode == "multiplicative":
            log_ratio = child_short - parent_short
            s["level"][child] = s["level"][parent] + log_ratio
            deviation_factor = np.ones_like(log_ratio)
            scale_factor = np.exp(-0.5 * log_ratio)
        else:
            # A parent at ~zero carries no usable ratio; copying the shape unscaled is the safe fallback.
            usable = np.abs(parent_short) > self.params.min_scale_abs
            ratio = np.where(usable, child_short / np.where(usable, parent_short, 1.0), 1.0)
            s["level"][child] = s["level"][parent] * ratio
            deviation_factor = ratio
            scale_factor = np.sqrt(np.abs(ratio))
        for profile in profiles:
            borrowed = profile[parent].astype(np.float64)
            borrowed[..., 0] *= deviation_factor[:, None]
            borrowed[..., 1] *= scale_factor[:, None]
            profile[child] = borrowed
        s["level_recent"][child] = 0.0
        s["seen"][child] = np.maximum(s["seen"][child], s["seen"][parent])

    def _rows(self, rows: Iterable[int] | np.ndarray, name: str) -> np.ndarray:
        index = np.asarray(rows if isinstance(rows, np.ndarray) else list(rows), dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= self.state.capacity):
            raise ValueError(f"{name} out of range 0..{self.state.capacity - 1}: {index.tolist()}")
        return index


@njit
def _floor(center: float, min_rel: float, min_abs: float) -> float:
    return max(min_rel * abs(center), min_abs)


@njit
def _slot_scale(stored: float, short_term: float) -> float:
    """A slot first visited during the short-term warm-up has no scale yet (NaN): use the short-term one."""
    return short_term if math.isnan(stored) else stored


@njit
def _clipped(r: float, bound: float) -> float:
    return min(max(r, -bound), bound)


@njit
def _learn_profile(
    profile: np.ndarray, i: int, slot: int, y: float, level: float, scale_init: float, rate: float,
    scale_rate: float, bound_clip: float, clipping: bool, min_rel: float, min_abs: float,
) -> None:
    if math.isnan(profile[i, slot, 0]):
        profile[i, slot, 0] = y - level
        profile[i, slot, 1] = scale_init
        return
    deviation = float(profile[i, slot, 0])
    scale = float(profile[i, slot, 1])
    if math.isnan(scale):
        scale = scale_init
    r = (y - level) - deviation
    if math.isnan(scale):
        # Visited before the short-term scale meant anything: learn the deviation, the scale comes later.
        profile[i, slot, 0] = deviation + rate * r
        return
    bound = bound_clip * max(scale, _floor(level + deviation, min_rel, min_abs))
    if clipping:
        step = _clipped(r, bound)
        spread = min(abs(r), bound)
    else:
        step = r
        spread = abs(r)
    profile[i, slot, 0] = deviation + rate * step
    profile[i, slot, 1] = scale + scale_rate * (_MAD_TO_SIGMA * spread - scale)


@njit
def _update_kernel(
    values: np.ndarray, daily_slot: int, weekly_slot: int, config: np.ndarray,
    seen: np.ndarray, level: np.ndarray, level_recent: np.ndarray, short_level: np.ndarray,
    short_scale: np.ndarray, short_recent: np.ndarray, daily: np.ndarray, weekly: np.ndarray,
    expected: np.ndarray, lower: np.ndarray, upper: np.ndarray, z: np.ndarray, score: np.ndarray,
    learning: np.ndarray, missing: np.ndarray,
) -> None:
    multiplicative = config[_MULTIPLICATIVE] != 0.0
    band_z = config[_BAND_Z]
    level_rate = config[_LEVEL_RATE]
    scale_rate = config[_SCALE_RATE]
    growth_rate = config[_GROWTH_RATE]
    short_rate = config[_SHORT_RATE]
    recent_rate = config[_RECENT_RATE]
    clip = config[_CLIP]
    min_rel = config[_MIN_REL]
    min_abs = config[_MIN_ABS]
    daily_windows = int(config[_DAILY_WINDOWS])
    weekly_windows = int(config[_WEEKLY_WINDOWS])
    use_daily = config[_USE_DAILY] != 0.0
    use_weekly = config[_USE_WEEKLY] != 0.0
    short_warmup = math.ceil(1.0 / short_rate)
    for i in range(values.shape[0]):
        x = values[i]
        present = math.isfinite(x)
        y = 0.0
        if present:
            y = math.log1p(max(x, 0.0)) if multiplicative else x
            if seen[i] == 0:
                level[i] = y
                level_recent[i] = 0.0
                short_level[i] = y
                short_scale[i] = 0.0
                short_recent[i] = 0.0
        missing[i] = not present

        # Score against the best learned baseline: weekly, then daily, then the short-term fallback.
        base = short_level[i]
        deviation = 0.0
        scale = short_scale[i]
        seasonal = False
        scored_weekly = False
        if use_weekly and seen[i] >= weekly_windows and not math.isnan(weekly[i, weekly_slot, 0]):
            base = level[i]
            deviation = float(weekly[i, weekly_slot, 0])
            scale = _slot_scale(float(weekly[i, weekly_slot, 1]), short_scale[i])
            seasonal = True
            scored_weekly = True
        elif use_daily and seen[i] >= daily_windows and not math.isnan(daily[i, daily_slot, 0]):
            base = level[i]
            deviation = float(daily[i, daily_slot, 0])
            scale = _slot_scale(float(daily[i, daily_slot, 1]), short_scale[i])
            seasonal = True
        learning[i] = not seasonal
        center = base + deviation
        scale = max(scale, _floor(center, min_rel, min_abs))
        low = center - band_z * scale
        high = center + band_z * scale
        if multiplicative:
            expected[i] = max(math.expm1(center), 0.0)
            lower[i] = max(math.expm1(low), 0.0)
            upper[i] = max(math.expm1(high), 0.0)
        else:
            expected[i] = center
            lower[i] = low
            upper[i] = high
        if not present:
            if seen[i] == 0:
                expected[i] = math.nan
                lower[i] = math.nan
                upper[i] = math.nan
            z[i] = math.nan
            score[i] = 0.0
            continue
        # (y - base) first: with a level of 1e8 the difference is exact, the deviation small.
        zi = ((y - base) - deviation) / scale
        z[i] = zi
        if zi == 0.0:
            score[i] = 0.0
        else:
            # band_z / |z| rather than |z|^4, which would overflow to inf/inf for an absurd value.
            q = band_z / abs(zi)
            q2 = q * q
            score[i] = 1.0 / (1.0 + q2 * q2)

        # Learn. The short-term baseline is a running mean until it has 1/short_rate points, then an EWMA.
        n = seen[i]
        r_short = y - short_level[i]
        rate = max(short_rate, 1.0 / (n + 1.0))
        if n < short_warmup:
            step = r_short
            spread = abs(r_short)
        else:
            bound = clip * max(short_scale[i], _floor(short_level[i], min_rel, min_abs))
            step = _clipped(r_short, bound)
            spread = min(abs(r_short), bound)
        short_scale_before = short_scale[i]
        # A slot's scale starts from the short-term one, once that has seen enough points to mean something.
        scale_init = short_scale_before if n >= short_warmup else math.nan
        short_level[i] += rate * step
        short_scale[i] += rate * (_MAD_TO_SIGMA * spread - short_scale[i])
        short_recent[i] += recent_rate * (r_short - short_recent[i])

        # The level follows growth against the profile that scores (daily before weekly is learned), so
        # the level does not swing with a weekly pattern the daily profile cannot see.
        use_weekly_reference = scored_weekly or not use_daily
        reference = weekly if use_weekly_reference else daily
        reference_slot = weekly_slot if use_weekly_reference else daily_slot
        old_level = level[i]
        if not math.isnan(reference[i, reference_slot, 0]):
            ref_deviation = float(reference[i, reference_slot, 0])
            ref_scale = max(_slot_scale(float(reference[i, reference_slot, 1]), short_scale_before),
                            _floor(old_level + ref_deviation, min_rel, min_abs))
            e = (y - old_level) - ref_deviation
            level[i] = old_level + growth_rate * _clipped(e, clip * ref_scale)
            level_recent[i] += recent_rate * (e - level_recent[i])
        # Each profile learns unclipped during its first season, so its first estimates settle quickly.
        if use_daily:
            _learn_profile(daily, i, daily_slot, y, old_level, scale_init, level_rate, scale_rate, clip,
                           n >= daily_windows, min_rel, min_abs)
        if use_weekly:
            _learn_profile(weekly, i, weekly_slot, y, old_level, scale_init, level_rate, scale_rate, clip,
                           n >= weekly_windows, min_rel, min_abs)
        seen[i] = n + 1


@njit
def _update_batch_kernel(
    values: np.ndarray, daily_slots: np.ndarray, weekly_slots: np.ndarray, config: np.ndarray,
    seen: np.ndarray, level: np.ndarray, level_recent: np.ndarray, short_level: np.ndarray,
    short_scale: np.ndarray, short_recent: np.ndarray, daily: np.ndarray, weekly: np.ndarray,
    expected: np.ndarray, lower: np.ndarray, upper: np.ndarray, z: np.ndarray, score: np.ndarray,
    learning: np.ndarray, missing: np.ndarray,
) -> None:
    for k in range(values.shape[0]):
        _update_kernel(
            values[k], daily_slots[k], weekly_slots[k], config,
            seen, level, level_recent, short_level, short_scale, short_recent, daily, weekly,
            expected[k], lower[k], upper[k], z[k], score[k], learning[k], missing[k],
        )
