"""Root-cause attribution: which slices below an alerting series explain its deviation.

Run once per firing alert, from the actual and expected values of every series of the alert's metric in
the same window (they are scored anyway). The *children* of the alerting series are the series whose
slice contains the alert's slice plus one dimension (a *single* group, e.g. ``region=*`` under the total)
or two (a *pair* group, ``region=*, network=*``, only where the config slices that pair).

* Additive metrics (``count``, ``sum``, ``gauge``), in the spirit of Adtributor (Bhagwan et al., NSDI
  2014): per group, each slice's *explanatory power* ``EP = (a_i - f_i) / (A - F)`` (signed share of the
  group's deviation) and *surprise* (its Jensen-Shannon term between expected shares ``f_i / F`` and actual
  shares ``a_i / A``). Slices with ``EP >= min_share`` are candidates. Pairs are candidates only when one
  of their single-dimension parents is (the pruning of HotSpot, Sun et al. IEEE Access 2018, and Squeeze,
  Li et al. ISSRE 2019), so the search never enumerates combinations of unpromising values.
  Candidates are ranked by a HotSpot *potential score* on the finest series available: under the
  hypothesis "slice c is the cause", every leaf below c moves by c's own ratio ``a_c / f_c`` (the ripple
  effect) and every other leaf stays at its forecast; ``potential = 1 - |a - v| / |a - f|``. A region
  that failed as a whole scores ~1 on its (region, network) leaves; if only its 3g leaf failed, the
  ripple misses the other leaves, the region scores ~0, and the pair ``{region, network}`` scores ~1, so
  a compound incident is reported as the pair, not as two singles.
* Ratio metrics: a shift-share split of each group's change of the overall ratio
  ``R = sum_i w_i r_i`` (``w`` = denominator share) into a *rate* effect ``w_i^exp (r_i^act - r_i^exp)``
  and a *mix* effect ``(w_i^act - w_i^exp) (r_i^act - R^exp)`` that sum exactly to ``R^act - R^exp`` (the
  mix term is centred on ``R^exp``, which leaves the sum unchanged because the shares' changes sum to zero,
  and credits a growing slice only for being worse than average). Rate candidates are ranked as additive
  ones on the traffic-adjusted numerator (actual numerator against ``D_i^act r_i^exp``), so a shift of
  traffic toward a worse slice is reported as its ``mix``, never as its ``rate``.
* ``distinct`` and ``quantile`` metrics are not additive: children are ranked by their own anomaly score,
  keeping only those that moved in the alert's direction.

Every public entry point returns plain JSON-serialisable dicts; see :func:`explain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detector.events import DIMENSIONS

SliceKey = tuple[tuple[str, str], ...]
ADDITIVE_KINDS = ("count", "sum", "gauge")
SCORE_KINDS = ("distinct", "quantile")
KINDS = (*ADDITIVE_KINDS, "ratio", *SCORE_KINDS)

_ORDER = {d: i for i, d in enumerate(DIMENSIONS)}


@dataclass(frozen=True, slots=True)
class RcaSettings:
    """Attribution knobs, validated on construction.

    ``min_share``: a slice must explain at least this share of its group's deviation to be a candidate
    (Adtributor's per-element threshold). ``explain_target``: the causes up to the one whose cumulative
    share reaches this are flagged ``in_minimal_set`` (Adtributor's set threshold, 0.67-0.8).
    ``pair_penalty``: potential-score handicap of a two-dimension cause, so a single slice wins a tie.
    ``min_potential``: below this potential score an additive or rate cause is left out after the first,
    unless it slices the same dimensions as the first (a set of regions failing together): it explains
    a share only because the real cause cuts across it.
    """

    top_k: int = 3
    min_share: float = 0.1
    explain_target: float = 0.8
    pair_penalty: float = 0.05
    min_potential: float = 0.2

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        for name in ("min_share", "explain_target", "pair_penalty", "min_potential"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


class SliceIndex:
    """The slice keys of one metric's series as integer arrays; build once, reuse while the keys last.

    ``codes[i, j]`` is the value code of dimension ``dims[j]`` in series ``i`` (-1 when the slice does not
    name it) and ``mask[i]`` the bit set of named dimensions, so finding an alert's children is array work.
    """

    def __init__(self, keys: Sequence[SliceKey]) -> None:
        self.keys = [tuple(key) for key in keys]
        named = {d for key in self.keys for d, _ in key}
        self.dims = tuple(sorted(named, key=lambda d: (_ORDER.get(d, len(_ORDER)), d)))
        column = {d: j for j, d in enumerate(self.dims)}
        self.values: list[list[str]] = [[] for _ in self.dims]
        value_codes: list[dict[str, int]] = [{} for _ in self.dims]
        self.codes = np.full((len(self.keys), len(self.dims)), -1, dtype=np.int64)
        self.mask = np.zeros(len(self.keys), dtype=np.int64)
        self.row: dict[SliceKey, int] = {}
        for i, key in enumerate(self.keys):
            if key in self.row:
                raise ValueError(f"slice {dict(key)} is listed twice")
            self.row[key] = i
            for d, v in key:
                j = column[d]
                code = value_codes[j].setdefault(v, len(value_codes[j]))
                if code == len(self.values[j]):
                    self.values[j].append(v)
                self.codes[i, j] = code
                self.mask[i] |= 1 << j
        self._value_codes = value_codes
        # Position of each slice in text order: the last tie-breaker, independent of the series order.
        texts = [_slice_text(key) for key in self.keys]
        self.text_rank = np.empty(len(self.keys), dtype=np.int64)
        self.text_rank[np.argsort(np.array(texts, dtype=object), kind="stable")] = np.arange(len(self.keys))

    def __len__(self) -> int:
        return len(self.keys)

    def children(self, parent: SliceKey) -> dict[tuple[int, ...], np.ndarray]:
        """Rows below ``parent`` grouped by the dimensions they add (column indices), in a stable order."""
        inside = np.ones(len(self.keys), dtype=np.bool_)
        parent_mask = 0
        for d, v in parent:
            if d not in self.dims or v not in self._value_codes[self.dims.index(d)]:
                return {}
            j = self.dims.index(d)
            inside &= self.codes[:, j] == self._value_codes[j][v]
            parent_mask |= 1 << j
        inside &= (self.mask & parent_mask) == parent_mask
        extra = np.where(inside, self.mask & ~parent_mask, 0)
        groups: dict[tuple[int, ...], np.ndarray] = {}
        for bits in np.unique(extra[extra > 0]).tolist():
            columns = tuple(j for j in range(len(self.dims)) if bits >> j & 1)
            if len(columns) <= 2:
                groups[columns] = np.flatnonzero(extra == bits)
        return dict(sorted(groups.items(), key=lambda item: (len(item[0]), item[0])))


@dataclass(frozen=True, slots=True)
class MetricWindow:
    """One window of one metric: for every series of :attr:`index` (same order), what the caller knows.

    ``actual``/``expected`` are the series values and baseline expectations, ``score`` the anomaly scores
    (NaN when missing). Ratio metrics also need ``numerator`` and ``denominator`` (actual parts, the
    numerator counted even where the ratio is missing below ``min_denominator``) and
    ``expected_denominator`` (a baseline of the denominator; without it the mix effect is taken as zero).
    The expected numerator is ``expected * expected_denominator``.
    """

    index: SliceIndex
    actual: np.ndarray
    expected: np.ndarray
    score: np.ndarray
    numerator: np.ndarray | None = None
    denominator: np.ndarray | None = None
    expected_denominator: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.index)
        for name in ("actual", "expected", "score", "numerator", "denominator", "expected_denominator"):
            array = getattr(self, name)
            if array is None:
                continue
            array = np.asarray(array, dtype=np.float64)
            if array.shape != (n,):
                raise ValueError(
                    f"MetricWindow.{name} has shape {array.shape}, expected ({n},) like the index"
                )
            object.__setattr__(self, name, array)


def explain(
    window: MetricWindow,
    alert_slice: SliceKey | dict[str, str],
    kind: str,
    settings: RcaSettings | None = None,
) -> list[dict[str, object]]:
    """The top causes of the alert on ``alert_slice`` (``()`` = the metric's total), best first.

    Each cause is ``{"slice": {dim: value}, "share", "actual", "expected", "score", "explanation",
    "surprise", "potential", "in_minimal_set"}`` (ratio causes add ``rate_share`` and ``mix_share``);
    ``share`` is the signed share of the deviation the slice explains (None for distinct/quantile, which
    are not additive). An empty list when nothing below the alert deviates in its direction.
    """
    settings = settings or RcaSettings()
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    parent = _canonical(alert_slice)
    row = window.index.row.get(parent)
    if row is None:
        raise ValueError(f"alert slice {dict(parent)} is not a series of this window")
    direction = _direction(window.actual[row], window.expected[row])
    groups = window.index.children(parent)
    if not groups:
        return []
    if kind in SCORE_KINDS:
        candidates = _by_score(window, groups, direction)
    elif kind == "ratio":
        candidates = _ratio(window, groups, direction, settings)
    else:
        candidates = _additive(window, groups, direction, window.actual, window.expected, settings)
    return _select(window, candidates, settings)


# --- candidates -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Candidates:
    """Parallel arrays over candidate rows (series rows of the window)."""

    rows: np.ndarray
    rank: np.ndarray  # higher is better
    share: np.ndarray  # NaN: not defined; also the first tie-breaker unless ``tiebreak`` is given
    surprise: np.ndarray
    potential: np.ndarray
    explanation: list[str]
    rate_share: np.ndarray | None = None
    mix_share: np.ndarray | None = None
    tiebreak: np.ndarray | None = None

    @classmethod
    def empty(cls) -> _Candidates:
        nothing = np.empty(0)
        return cls(np.empty(0, dtype=np.int64), nothing, nothing, nothing, nothing, [])


def _direction(actual: float, expected: float) -> int:
    if not (np.isfinite(actual) and np.isfinite(expected)) or actual == expected:
        return 0
    return 1 if actual > expected else -1


def _canonical(alert_slice: SliceKey | dict[str, str]) -> SliceKey:
    pairs = alert_slice.items() if isinstance(alert_slice, dict) else alert_slice
    return tuple(sorted(((str(d), str(v)) for d, v in pairs), key=lambda p: (_ORDER.get(p[0], 99), p[0])))


def _js_terms(f: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Per-element Jensen-Shannon terms between expected shares ``f / F`` and actual shares ``a / A``."""
    total_f, total_a = f.sum(), a.sum()
    if total_f <= 0 or total_a <= 0:
        return np.zeros_like(f)
    p = np.clip(f / total_f, 0.0, None)
    q = np.clip(a / total_a, 0.0, None)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        term_p = np.where(p > 0, p * np.log(p / m), 0.0)
        term_q = np.where(q > 0, q * np.log(q / m), 0.0)
    return np.maximum(0.5 * (term_p + term_q), 0.0)  # each term is >= 0; rounding can dip below


def _leaf_potential(deviation: np.ndarray) -> np.ndarray:
    """Potential of each leaf as its own cause: 1 - |deviation without it| / |deviation|."""
    total = float(deviation @ deviation)
    if total <= 0:
        return np.zeros_like(deviation)
    rest = np.maximum(total - deviation * deviation, 0.0)
    return np.clip(1.0 - np.sqrt(rest / total), 0.0, 1.0)


def _unrefined_potential(a: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Potential of each slice of a dimension no configured pair refines, judged on the slices alone.

    Besides beating the forecast (:func:`_leaf_potential`), "c is the cause" must beat "every slice moved
    by the same ratio": a cause elsewhere (a region) scales every creator tier alike, and the largest tier
    would otherwise take most of the deviation and a high potential without being special.
    """
    deviation = a - f
    total_f = f.sum()
    uniform = f * (a.sum() / total_f) if total_f > 0 else f
    spread = float(((a - uniform) ** 2).sum())
    if spread <= 0:
        return np.zeros_like(a)
    rest = np.maximum(float(deviation @ deviation) - deviation * deviation, 0.0)
    against_uniform = np.clip(1.0 - np.sqrt(rest / spread), 0.0, 1.0)
    return np.minimum(_leaf_potential(deviation), against_uniform)


def _ripple_potential(parents: np.ndarray, n_parents: int, a: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Potential of each parent on its leaves (``parents[l]`` = parent of leaf ``l``, -1 for none).

    Hypothesis "parent c is the cause": leaves below c move by ``a_c / f_c``, all others stay at ``f``;
    the squared distance to the actual leaves is the total minus c's leaves' share plus their misfit.
    """
    deviation = a - f
    total = float(deviation @ deviation)
    if total <= 0:
        return np.zeros(n_parents)
    known = parents >= 0
    p, a_k, f_k = parents[known], a[known], f[known]
    f_parent = np.bincount(p, weights=f_k, minlength=n_parents)
    a_parent = np.bincount(p, weights=a_k, minlength=n_parents)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(f_parent > 0, a_parent / f_parent, 1.0)
    own = np.bincount(p, weights=deviation[known] ** 2, minlength=n_parents)
    misfit = np.bincount(p, weights=(a_k - f_k * ratio[p]) ** 2, minlength=n_parents)
    rest = np.maximum(total - own + misfit, 0.0)
    return np.clip(1.0 - np.sqrt(rest / total), 0.0, 1.0)


def _width_penalty(index: SliceIndex, rows: np.ndarray, settings: RcaSettings) -> np.ndarray:
    """``pair_penalty`` per dimension a slice names beyond one, so the simpler slice wins a tie."""
    named = np.bitwise_count(index.mask[rows].astype(np.uint64)).astype(np.float64)
    return settings.pair_penalty * np.maximum(named - 1.0, 0.0)


def _finite_rows(rows: np.ndarray, *arrays: np.ndarray) -> np.ndarray:
    keep = np.ones(len(rows), dtype=np.bool_)
    for array in arrays:
        keep &= np.isfinite(array[rows])
    return rows[keep]


def _group_deviation(a: np.ndarray, f: np.ndarray, direction: int) -> float:
    """The group's deviation if it is real and agrees with the alert's direction, else 0."""
    deviation = float(a.sum() - f.sum())
    scale = max(float(np.abs(a).sum()), float(np.abs(f).sum()), 1e-300)
    if abs(deviation) <= 1e-12 * scale or (direction and np.sign(deviation) != direction):
        return 0.0
    return deviation


def _additive(
    window: MetricWindow,
    groups: dict[tuple[int, ...], np.ndarray],
    direction: int,
    actual: np.ndarray,
    expected: np.ndarray,
    settings: RcaSettings,
) -> _Candidates:
    """Candidates of an additive quantity ``actual`` vs ``expected`` (see the module docstring)."""
    index = window.index
    n = len(index)
    share = np.full(n, np.nan)
    surprise = np.zeros(n)
    potential = np.full(n, np.inf)  # min over the refinements that evaluate a row
    evaluated = np.zeros(n, dtype=np.bool_)
    groups = {cols: _finite_rows(rows, actual, expected) for cols, rows in groups.items()}
    for rows in groups.values():
        a, f = actual[rows], expected[rows]
        deviation = _group_deviation(a, f, direction)
        if deviation == 0.0:
            continue
        share[rows] = (a - f) / deviation
        surprise[rows] = _js_terms(f, a)
    for cols, rows in groups.items():
        if not np.isfinite(share[rows]).any():
            continue
        a, f = actual[rows], expected[rows]
        if len(cols) == 2:
            potential[rows] = np.minimum(potential[rows], _leaf_potential(a - f))
            evaluated[rows] = True
            for j in cols:
                parent_rows = groups.get((j,))
                if parent_rows is None or not len(parent_rows):
                    continue
                position = np.full(len(index.values[j]), -1, dtype=np.int64)
                position[index.codes[parent_rows, j]] = np.arange(len(parent_rows))
                parents = position[index.codes[rows, j]]
                ripple = _ripple_potential(parents, len(parent_rows), a, f)
                potential[parent_rows] = np.minimum(potential[parent_rows], ripple)
                evaluated[parent_rows] = True
    for cols, rows in groups.items():
        if len(cols) == 1 and not evaluated[rows].any():
            potential[rows] = _unrefined_potential(actual[rows], expected[rows])
    potential = np.where(np.isfinite(potential), potential, 0.0)

    promising = np.nan_to_num(share, nan=-np.inf) >= settings.min_share
    keep = np.zeros(n, dtype=np.bool_)
    for cols, rows in groups.items():
        if len(cols) == 1:
            keep[rows] = promising[rows]
            continue
        parent_groups = [j for j in cols if len(groups.get((j,), ()))]
        # Without any single-dimension parent there is nothing to prune by: every pair is a candidate.
        parent_ok = np.full(len(rows), not parent_groups, dtype=np.bool_)
        for j in parent_groups:
            parent_rows = groups[(j,)]
            ok = np.zeros(len(index.values[j]), dtype=np.bool_)
            ok[index.codes[parent_rows, j]] = promising[parent_rows]
            parent_ok |= ok[index.codes[rows, j]]
        keep[rows] = promising[rows] & parent_ok
    rows = np.flatnonzero(keep)
    rank = potential[rows] - _width_penalty(index, rows, settings)
    return _Candidates(rows, rank, share[rows], surprise[rows], potential[rows], ["deviation"] * len(rows))


def _ratio(
    window: MetricWindow,
    groups: dict[tuple[int, ...], np.ndarray],
    direction: int,
    settings: RcaSettings,
) -> _Candidates:
    if window.numerator is None or window.denominator is None:
        raise ValueError("a ratio metric needs MetricWindow.numerator and .denominator (actual parts)")
    n = len(window.index)
    num_a = window.numerator
    den_a = window.denominator
    den_e = den_a if window.expected_denominator is None else window.expected_denominator
    rate_e = window.expected
    rate_share = np.full(n, np.nan)
    mix_share = np.full(n, np.nan)
    adjusted = np.full(n, np.nan)  # expected numerator at the actual traffic: D_act * r_exp
    usable: dict[tuple[int, ...], np.ndarray] = {}
    for cols, rows in groups.items():
        rows = _finite_rows(rows, num_a, den_a, den_e)
        rows = rows[(den_a[rows] >= 0) & (den_e[rows] >= 0)]
        d_a, d_e, n_a = den_a[rows], den_e[rows], num_a[rows]
        total_a, total_e = d_a.sum(), d_e.sum()
        if len(rows) == 0 or total_a <= 0 or total_e <= 0:
            continue
        r_e = rate_e[rows].copy()
        known = np.isfinite(r_e) & (d_e > 0)
        if not known.any():
            continue
        ratio_e = float((r_e[known] * d_e[known]).sum() / d_e[known].sum())
        r_e[~np.isfinite(r_e)] = ratio_e  # a slice without its own expectation is expected at the group's
        with np.errstate(divide="ignore", invalid="ignore"):
            r_a = np.where(d_a > 0, n_a / d_a, r_e)
        w_a, w_e = d_a / total_a, d_e / total_e
        ratio_e = float(w_e @ r_e)
        rate = w_e * (r_a - r_e)
        mix = (w_a - w_e) * (r_a - ratio_e)
        change = float(rate.sum() + mix.sum())
        if abs(change) <= 1e-12 * max(abs(ratio_e), 1e-300) or (direction and np.sign(change) != direction):
            continue
        rate_share[rows] = rate / change
        mix_share[rows] = mix / change
        adjusted[rows] = d_a * r_e
        usable[cols] = rows
    if not usable:
        return _Candidates.empty()
    additive_direction = 0  # rates and mix may pull apart; the shift-share split already checked direction
    by_rate = _additive(window, usable, additive_direction, num_a, adjusted, settings)
    potential = np.zeros(n)
    potential[by_rate.rows] = by_rate.potential
    surprise = np.zeros(n)
    surprise[by_rate.rows] = by_rate.surprise
    rows = np.concatenate([r for r in usable.values()])
    rows = np.unique(rows)
    r_share, m_share = rate_share[rows], mix_share[rows]
    is_mix = np.nan_to_num(m_share) > np.nan_to_num(r_share)
    in_rate = np.isin(rows, by_rate.rows) & (np.nan_to_num(r_share) >= settings.min_share)
    in_mix = is_mix & (np.nan_to_num(m_share) >= settings.min_share)
    keep = (in_rate & ~is_mix) | in_mix
    rows, r_share, m_share, is_mix = rows[keep], r_share[keep], m_share[keep], is_mix[keep]
    rank = np.where(is_mix, np.minimum(m_share, 1.0), potential[rows]) - _width_penalty(
        window.index, rows, settings
    )
    return _Candidates(
        rows,
        rank,
        np.where(is_mix, m_share, r_share),
        surprise[rows],
        potential[rows],
        ["mix" if m else "rate" for m in is_mix.tolist()],
        rate_share=r_share,
        mix_share=m_share,
    )


def _by_score(window: MetricWindow, groups: dict[tuple[int, ...], np.ndarray], direction: int) -> _Candidates:
    rows = np.unique(np.concatenate(list(groups.values())))
    rows = _finite_rows(rows, window.score, window.actual, window.expected)
    moved = np.sign(window.actual[rows] - window.expected[rows])
    rows = rows[(moved == direction) if direction else moved != 0]
    rows = rows[window.score[rows] > 0]
    actual, expected = window.actual[rows], window.expected[rows]
    # Scores saturate near 1 for large deviations; among equals the slice that moved most for its size wins.
    relative = np.abs(actual - expected) / np.maximum(np.abs(expected), 1e-300)
    nothing = np.full(len(rows), np.nan)
    return _Candidates(
        rows, window.score[rows], nothing, nothing, nothing, ["score"] * len(rows), tiebreak=relative
    )


# --- ranking and output ---------------------------------------------------------------------------------


def _slice_text(key: SliceKey) -> str:
    return ",".join(f"{d}={v}" for d, v in key)


def _overlaps(a: SliceKey, b: SliceKey) -> bool:
    """The slices name a common dimension value, so they share events (``region=IN`` and
    ``region=IN, network=3g``, or ``region=IN, network=3g`` and ``region=IN, platform=ios``): once one is
    a cause, the other mostly re-counts its deviation."""
    return not set(a).isdisjoint(b)


def _dims(key: SliceKey) -> tuple[str, ...]:
    return tuple(d for d, _ in key)


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _select(window: MetricWindow, c: _Candidates, settings: RcaSettings) -> list[dict[str, object]]:
    if not len(c.rows):
        return []
    keys = [window.index.keys[int(r)] for r in c.rows]
    secondary = np.nan_to_num(c.share if c.tiebreak is None else c.tiebreak, nan=-np.inf)
    surprise = np.nan_to_num(c.surprise, nan=-np.inf)
    # lexsort: last key first; ties broken by share, surprise, then the slice text, so the order is total.
    order = np.lexsort((window.index.text_rank[c.rows], -surprise, -secondary, -np.round(c.rank, 12)))
    chosen: list[int] = []
    for i in order.tolist():
        if any(_overlaps(keys[i], keys[j]) for j in chosen):
            continue
        weak = c.explanation[i] in ("deviation", "rate") and c.potential[i] < settings.min_potential
        if chosen and weak and _dims(keys[i]) != _dims(keys[chosen[0]]):
            continue
        chosen.append(i)
        if len(chosen) == settings.top_k:
            break
    causes: list[dict[str, object]] = []
    cumulative = 0.0
    for i in chosen:
        row = int(c.rows[i])
        in_minimal = cumulative < settings.explain_target
        if np.isfinite(c.share[i]):
            cumulative += float(c.share[i])
        cause: dict[str, object] = {
            "slice": dict(keys[i]),
            "share": _number(c.share[i]),
            "actual": _number(window.actual[row]),
            "expected": _number(window.expected[row]),
            "score": _number(window.score[row]),
            "explanation": c.explanation[i],
            "surprise": _number(c.surprise[i]),
            "potential": _number(c.potential[i]),
            "in_minimal_set": bool(in_minimal and np.isfinite(c.share[i])),
        }
        if c.rate_share is not None and c.mix_share is not None:
            cause["rate_share"] = _number(c.rate_share[i])
            cause["mix_share"] = _number(c.mix_share[i])
        causes.append(cause)
    return causes
