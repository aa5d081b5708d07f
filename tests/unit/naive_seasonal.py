"""Plain-Python reference of the seasonal baseline: one series, Python floats, dicts for the profiles.

Written from the model description in ``detector/scoring/seasonal.py`` rather than from the kernel, so
the parity test compares two readings of the same model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from detector.scoring.seasonal import SeasonalParams


@dataclass
class NaiveOutput:
    expected: float
    lower: float
    upper: float
    z: float
    score: float
    learning: bool
    missing: bool


@dataclass
class NaiveSeasonal:
    params: SeasonalParams
    seen: int = 0
    level: float = 0.0
    level_recent: float = 0.0
    short_level: float = 0.0
    short_scale: float = 0.0
    short_recent: float = 0.0
    # season name -> slot -> [deviation, scale]; an absent slot has not been learned.
    profiles: dict[str, dict[int, list[float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for season in self.params.seasons:
            self.profiles.setdefault(season, {})

    def _floor(self, center: float) -> float:
        return max(self.params.min_scale_rel * abs(center), self.params.min_scale_abs)

    def _slot_of(self, season: str, t_ms: int) -> int:
        seconds = t_ms // 1000
        second_of_day = seconds % 86400
        daily = second_of_day // self.params.slot_s
        if season == "daily":
            return daily
        days = seconds // 86400
        monday_based_weekday = (days + 3) % 7  # the epoch was a Thursday
        return monday_based_weekday * (86400 // self.params.slot_s) + daily

    def update(self, t_ms: int, x: float) -> NaiveOutput:
        p = self.params
        multiplicative = p.mode == "multiplicative"
        k = math.sqrt(math.pi / 2.0)
        band_z = p.band_z
        present = math.isfinite(x)
        y = (math.log1p(max(x, 0.0)) if multiplicative else x) if present else 0.0
        if present and self.seen == 0:
            self.level = y
            self.short_level = y
            self.short_scale = 0.0
            self.level_recent = 0.0
            self.short_recent = 0.0

        slots = {season: self._slot_of(season, t_ms) for season in p.seasons}
        thresholds = {"daily": p.daily_windows, "weekly": p.weekly_windows}
        chosen = None
        for season in ("weekly", "daily"):
            learned = season in p.seasons and self.seen >= thresholds[season]
            if learned and slots[season] in self.profiles[season]:
                chosen = season
                break
        if chosen is None:
            base, deviation, scale = self.short_level, 0.0, self.short_scale
        else:
            deviation, scale = self.profiles[chosen][slots[chosen]]
            if math.isnan(scale):  # slot first seen while the short-term scale was still warming up
                scale = self.short_scale
            base = self.level
        center = base + deviation
        scale = max(scale, self._floor(center))
        low, high = center - band_z * scale, center + band_z * scale
        if multiplicative:
            expected, lower, upper = (max(math.expm1(v), 0.0) for v in (center, low, high))
        else:
            expected, lower, upper = center, low, high
        if not present:
            if self.seen == 0:
                expected = lower = upper = math.nan
            return NaiveOutput(expected, lower, upper, math.nan, 0.0, chosen is None, True)

        z = ((y - base) - deviation) / scale
        score = 0.0 if z == 0.0 else 1.0 / (1.0 + (band_z / abs(z)) ** 4)
        out = NaiveOutput(expected, lower, upper, z, score, chosen is None, False)

        # short-term fallback: running mean for the first 1/short_rate points, then a clipped EWMA
        residual = y - self.short_level
        weight = max(p.short_rate, 1.0 / (self.seen + 1))
        warming_up = self.seen < math.ceil(1.0 / p.short_rate)
        if warming_up:
            moved, spread = residual, abs(residual)
        else:
            limit = p.clip * max(self.short_scale, self._floor(self.short_level))
            moved = max(-limit, min(limit, residual))
            spread = min(abs(residual), limit)
        previous_short_scale = self.short_scale
        slot_scale_start = math.nan if warming_up else previous_short_scale
        self.short_level = self.short_level + weight * moved
        self.short_scale = self.short_scale + weight * (k * spread - self.short_scale)
        self.short_recent = self.short_recent + p.recent_rate * (residual - self.short_recent)

        level_season = "weekly" if chosen == "weekly" or "daily" not in p.seasons else "daily"
        level_before = self.level
        reference = self.profiles[level_season].get(slots[level_season])
        if reference is not None:
            known_scale = previous_short_scale if math.isnan(reference[1]) else reference[1]
            ref_scale = max(known_scale, self._floor(level_before + reference[0]))
            e = y - level_before - reference[0]
            self.level = level_before + p.growth_rate * max(-p.clip * ref_scale, min(p.clip * ref_scale, e))
            self.level_recent = self.level_recent + p.recent_rate * (e - self.level_recent)

        for season in p.seasons:
            slot = slots[season]
            if slot not in self.profiles[season]:
                self.profiles[season][slot] = [y - level_before, slot_scale_start]
                continue
            deviation, scale = self.profiles[season][slot]
            r = y - level_before - deviation
            if math.isnan(scale):
                scale = slot_scale_start
            if math.isnan(scale):
                self.profiles[season][slot] = [deviation + p.level_rate * r, math.nan]
                continue
            limit = p.clip * max(scale, self._floor(level_before + deviation))
            if self.seen >= thresholds[season]:
                moved, spread = max(-limit, min(limit, r)), min(abs(r), limit)
            else:
                moved, spread = r, abs(r)
            self.profiles[season][slot] = [
                deviation + p.level_rate * moved,
                scale + p.scale_rate * (k * spread - scale),
            ]
        self.seen += 1
        return out
