"""Struct-of-arrays state for N series, shared by every detector family.

A family declares its per-series fields once (name, dtype, trailing shape, initial value); the
columns live in contiguous numpy arrays whose first axis is the series index, which is what the numba
kernels take and mutate in place. Capacity grows by doubling, never per series; a row is reset to its
initial values when a series is added or expired. State round-trips through versioned bytes for
checkpoints and recovery.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import msgspec
import numpy as np

STATE_FORMAT = "livewatch.state"
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Field:
    """One per-series column: ``shape`` is the trailing shape of a row, ``initial`` its starting value."""

    dtype: str
    shape: tuple[int, ...] = ()
    initial: float = 0.0


class _Column(msgspec.Struct, array_like=True):
    dtype: str
    shape: tuple[int, ...]
    data: bytes


class _Snapshot(msgspec.Struct):
    format: str
    version: int
    family: str
    capacity: int
    columns: dict[str, _Column]


class StateError(ValueError):
    pass


class SeriesState:
    """Named per-series columns sharing one capacity; the series index is the row."""

    def __init__(self, family: str, fields: Mapping[str, Field], capacity: int = 16) -> None:
        if capacity < 1:
            raise StateError(f"capacity must be >= 1, got {capacity}")
        self.family = family
        self.fields = dict(fields)
        self.capacity = capacity
        self.columns: dict[str, np.ndarray] = {
            name: np.full((capacity, *f.shape), f.initial, dtype=f.dtype) for name, f in self.fields.items()
        }

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def ensure_capacity(self, n_series: int) -> None:
        """Make room for series indices ``< n_series``, doubling the capacity as often as needed."""
        if n_series <= self.capacity:
            return
        new_capacity = self.capacity
        while new_capacity < n_series:
            new_capacity *= 2
        for name, spec in self.fields.items():
            grown = np.full((new_capacity, *spec.shape), spec.initial, dtype=spec.dtype)
            grown[: self.capacity] = self.columns[name]
            self.columns[name] = grown
        self.capacity = new_capacity

    def reset(self, rows: Iterable[int] | np.ndarray) -> None:
        """Return rows to their initial values: for a newly added series or an expired one."""
        index = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= self.capacity):
            raise StateError(f"row out of range 0..{self.capacity - 1}")
        for name, spec in self.fields.items():
            self.columns[name][index] = spec.initial

    @property
    def nbytes_per_series(self) -> int:
        return sum(
            int(np.dtype(f.dtype).itemsize * int(np.prod(f.shape, dtype=np.int64)))
            for f in self.fields.values()
        )

    def to_bytes(self) -> bytes:
        snapshot = _Snapshot(
            format=STATE_FORMAT,
            version=STATE_VERSION,
            family=self.family,
            capacity=self.capacity,
            columns={
                name: _Column(str(col.dtype), tuple(col.shape[1:]), np.ascontiguousarray(col).tobytes())
                for name, col in self.columns.items()
            },
        )
        return msgspec.msgpack.encode(snapshot)

    def load_bytes(self, payload: bytes) -> None:
        """Restore columns from :meth:`to_bytes` output, checking format, family, version and fields."""
        try:
            snapshot = msgspec.msgpack.decode(payload, type=_Snapshot)
        except msgspec.DecodeError as exc:
            raise StateError(f"not a livewatch state snapshot: {exc}") from None
        if snapshot.format != STATE_FORMAT or snapshot.version != STATE_VERSION:
            raise StateError(
                f"unsupported snapshot {snapshot.format!r} v{snapshot.version}; "
                f"this build reads {STATE_FORMAT!r} v{STATE_VERSION}"
            )
        if snapshot.family != self.family:
            raise StateError(f"snapshot is for family {snapshot.family!r}, not {self.family!r}")
        if set(snapshot.columns) != set(self.fields):
            raise StateError(f"snapshot fields {sorted(snapshot.columns)} differ from {sorted(self.fields)}")
        columns = {}
        for name, column in snapshot.columns.items():
            spec = self.fields[name]
            if np.dtype(column.dtype) != np.dtype(spec.dtype) or tuple(column.shape) != spec.shape:
                raise StateError(
                    f"field {name!r}: snapshot has {column.dtype}{column.shape}, "
                    f"expected {spec.dtype}{spec.shape}"
                )
            array = np.frombuffer(column.data, dtype=column.dtype).reshape(snapshot.capacity, *column.shape)
            columns[name] = array.copy()
        self.columns = columns
        self.capacity = snapshot.capacity
