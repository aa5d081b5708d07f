"""What every change-point detector returns for one window, and the state plumbing they share.

A change-point detector (CUSUM, Page-Hinkley, BOCPD) takes one value per series for a closed window and
says, per series, how strongly it believes the level has changed. The ensemble combines the families
through this one result type, so each family reports the same four arrays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from detector.scoring.state import Field, SeriesState

DIRECTION_UP = 1
DIRECTION_DOWN = -1
DIRECTION_NONE = 0


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """Per-series outputs of one window; index i is series i.

    statistic: the family's raw statistic (CUSUM sum, Page-Hinkley test value, BOCPD probability).
    score: in [0, 1], monotone in the statistic: how strongly the family believes a change is under way.
    detected: the family's own alarm for this window.
    direction: +1 change upwards, -1 downwards, 0 none (no evidence, missing value or warm-up).
    """

    statistic: np.ndarray
    score: np.ndarray
    detected: np.ndarray
    direction: np.ndarray

    @classmethod
    def empty(cls, n_series: int) -> ChangeResult:
        """Uninitialised output arrays for ``n_series`` series; a kernel writes every element."""
        return cls(
            statistic=np.empty(n_series, dtype=np.float64),
            score=np.empty(n_series, dtype=np.float64),
            detected=np.empty(n_series, dtype=np.bool_),
            direction=np.empty(n_series, dtype=np.int8),
        )

    def __len__(self) -> int:
        return int(self.statistic.shape[0])


class ChangeDetector(ABC):
    """Per-series state held in a :class:`SeriesState`, shared plumbing of the change-point families.

    Subclasses declare their fields and implement ``update``; a missing window is NaN (any non-finite
    value is treated as missing so that nothing can poison the state).
    """

    def __init__(self, family: str, fields: Mapping[str, Field], capacity: int) -> None:
        self._state = SeriesState(family, fields, capacity)

    @abstractmethod
    def update(self, x: npt.ArrayLike, out: ChangeResult | None = None) -> ChangeResult:
        """Score one window: ``x[i]`` is series i's value (NaN = missing). ``out`` reuses result arrays."""

    @property
    def capacity(self) -> int:
        return self._state.capacity

    @property
    def nbytes_per_series(self) -> int:
        return self._state.nbytes_per_series

    def state(self, name: str) -> np.ndarray:
        """One state column (series on the first axis), for inspection and tests."""
        return self._state[name]

    def ensure_capacity(self, n_series: int) -> None:
        """Make room for ``n_series`` series; existing series keep their state."""
        self._state.ensure_capacity(n_series)

    def reset(self, rows: Iterable[int] | np.ndarray) -> None:
        """Forget the given series (new or expired): they start again from warm-up."""
        self._state.reset(rows)

    def to_bytes(self) -> bytes:
        return self._state.to_bytes()

    def load_bytes(self, payload: bytes) -> None:
        """Restore the state written by :meth:`to_bytes` of a detector of the same family and shape."""
        self._state.load_bytes(payload)

    def _outputs(self, n_series: int, out: ChangeResult | None) -> ChangeResult:
        """Fresh result arrays, or the caller's (reused across windows in the hot path, no allocation)."""
        if out is None:
            return ChangeResult.empty(n_series)
        if len(out) != n_series:
            raise ValueError(f"out holds {len(out)} series but x has {n_series}")
        return out

    def _window_values(self, x: npt.ArrayLike) -> np.ndarray:
        try:
            values = np.ascontiguousarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"x must be numbers, one per series: {exc}") from None
        if values.ndim != 1:
            raise ValueError(f"x must be one value per series (1-D), got shape {values.shape}")
        if values.shape[0] > self._state.capacity:
            raise ValueError(
                f"x has {values.shape[0]} series but capacity is {self._state.capacity}; "
                "call ensure_capacity(n_series) first"
            )
        return values
