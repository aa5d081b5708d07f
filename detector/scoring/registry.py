"""Series registry: stable integer rows for series keys, shared by every detector family.

A key is any hashable made of strings, numbers and tuples, e.g.
``("viewers", (("region", "BR"), ("platform", "android")))``. Rows of expired series are reused (lowest
first) before the registry grows; when it grows, capacity doubles and the caller must call
``ensure_capacity(registry.capacity)`` on every family's state. Expiring does not touch family state:
the caller resets the returned rows in every family (``family.reset(rows)``), so a reused row starts
clean.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable
from typing import Any

import msgspec
import numpy as np

REGISTRY_FORMAT = "livewatch.registry"
REGISTRY_VERSION = 1

SeriesKey = Hashable


class _RegistrySnapshot(msgspec.Struct):
    format: str
    version: int
    capacity: int
    size: int
    keys: list[Any]
    rows: list[int]


class RegistryError(ValueError):
    pass


def _as_key(value: Any) -> SeriesKey:
    """msgpack turns tuples into lists; turn them back so decoded keys hash like the originals."""
    if isinstance(value, list):
        return tuple(_as_key(item) for item in value)
    return value


class SeriesRegistry:
    """Maps series keys to rows ``0..size-1``; a row is free after ``expire`` until ``add`` reuses it.

    >>> registry = SeriesRegistry(capacity=2)
    >>> registry.add([("viewers", ()), ("gifts", ())]).tolist()
    [0, 1]
    >>> registry.expire([("viewers", ())]).tolist()
    [0]
    >>> registry.add([("comments", ())]).tolist(), registry.capacity
    ([0], 2)
    """

    def __init__(self, capacity: int = 16) -> None:
        if capacity < 1:
            raise RegistryError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.size = 0  # rows ever handed out; rows >= size have never been used
        self._rows: dict[SeriesKey, int] = {}
        self._keys: dict[int, SeriesKey] = {}
        self._free: list[int] = []

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def key_of(self, row: int) -> SeriesKey:
        try:
            return self._keys[row]
        except KeyError:
            raise KeyError(f"row {row} holds no series") from None

    def keys(self) -> list[SeriesKey]:
        return list(self._rows)

    def add(self, keys: Iterable[SeriesKey]) -> np.ndarray:
        """Rows for ``keys``, registering the new ones; a key already present keeps its row."""
        keys = list(keys)
        for key in keys:
            try:
                hash(key)
            except TypeError:
                raise RegistryError(f"series key must be hashable (use tuples, not lists): {key!r}") from None
        rows = np.empty(len(keys), dtype=np.int64)
        for position, key in enumerate(keys):
            row = self._rows.get(key)
            if row is None:
                row = heapq.heappop(self._free) if self._free else self._grow_one()
                self._rows[key] = row
                self._keys[row] = key
            rows[position] = row
        return rows

    def _grow_one(self) -> int:
        row = self.size
        self.size += 1
        while self.size > self.capacity:
            self.capacity *= 2
        return row

    def rows_for(self, keys: Iterable[SeriesKey]) -> np.ndarray:
        """Rows of registered ``keys``; an unknown key raises KeyError naming it."""
        keys = list(keys)
        missing = [key for key in keys if key not in self._rows]
        if missing:
            raise KeyError(f"unknown series keys: {missing[:5]!r}" + (" ..." if len(missing) > 5 else ""))
        return np.fromiter((self._rows[key] for key in keys), dtype=np.int64, count=len(keys))

    def expire(self, rows_or_keys: Iterable[SeriesKey | int]) -> np.ndarray:
        """Free series given as rows (ints) or keys; returns the freed rows for the caller to reset.

        All-or-nothing: an unknown key or a free row raises before anything is expired.
        """
        rows: list[int] = []
        for item in rows_or_keys:
            if isinstance(item, int | np.integer) and not isinstance(item, bool):
                row = int(item)
                if row not in self._keys:
                    raise KeyError(f"row {row} holds no series")
            elif item in self._rows:
                row = self._rows[item]
            else:
                raise KeyError(f"unknown series key {item!r}")
            rows.append(row)
        freed = sorted(set(rows))
        for row in freed:
            del self._rows[self._keys.pop(row)]
            heapq.heappush(self._free, row)
        return np.asarray(freed, dtype=np.int64)

    def to_bytes(self) -> bytes:
        snapshot = _RegistrySnapshot(
            format=REGISTRY_FORMAT,
            version=REGISTRY_VERSION,
            capacity=self.capacity,
            size=self.size,
            keys=list(self._rows),
            rows=list(self._rows.values()),
        )
        return msgspec.msgpack.encode(snapshot)

    @classmethod
    def from_bytes(cls, payload: bytes) -> SeriesRegistry:
        try:
            snapshot = msgspec.msgpack.decode(payload, type=_RegistrySnapshot)
        except msgspec.DecodeError as exc:
            raise RegistryError(f"not a livewatch registry snapshot: {exc}") from None
        if snapshot.format != REGISTRY_FORMAT or snapshot.version != REGISTRY_VERSION:
            raise RegistryError(
                f"unsupported registry snapshot {snapshot.format!r} v{snapshot.version}; "
                f"this build reads {REGISTRY_FORMAT!r} v{REGISTRY_VERSION}"
            )
        if len(snapshot.keys) != len(snapshot.rows):
            raise RegistryError(
                f"registry snapshot has {len(snapshot.keys)} keys but {len(snapshot.rows)} rows"
            )
        registry = cls(snapshot.capacity)
        registry.size = snapshot.size
        for raw_key, row in zip(snapshot.keys, snapshot.rows, strict=True):
            if not 0 <= row < snapshot.size:
                raise RegistryError(f"registry snapshot row {row} outside 0..{snapshot.size - 1}")
            key = _as_key(raw_key)
            registry._rows[key] = row
            registry._keys[row] = key
        registry._free = sorted(set(range(snapshot.size)) - set(registry._keys))
        return registry
