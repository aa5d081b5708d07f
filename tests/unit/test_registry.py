from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.scoring.registry import RegistryError, SeriesRegistry
from detector.scoring.seasonal import SeasonalBaseline, SeasonalParams


def key(metric: str, region: str, platform: str | None = None) -> tuple[object, ...]:
    dims = (("region", region),) + ((("platform", platform),) if platform else ())
    return (metric, dims)


def test_add_gives_stable_rows_and_is_idempotent() -> None:
    registry = SeriesRegistry(capacity=4)
    rows = registry.add([key("viewers", "BR"), key("viewers", "US"), key("gifts", "BR", "android")])
    assert rows.tolist() == [0, 1, 2]
    assert registry.add([key("viewers", "US"), key("comments", "BR")]).tolist() == [1, 3]
    assert registry.rows_for([key("gifts", "BR", "android")]).tolist() == [2]
    assert len(registry) == 4 and registry.key_of(3) == key("comments", "BR")


def test_expired_rows_are_reused_lowest_first_before_growing() -> None:
    registry = SeriesRegistry(capacity=4)
    registry.add([key("viewers", r) for r in "ABCD"])
    freed = registry.expire([key("viewers", "C"), 1])
    assert freed.tolist() == [1, 2]
    assert key("viewers", "B") not in registry
    assert registry.add([key("viewers", "E"), key("viewers", "F")]).tolist() == [1, 2]
    assert registry.capacity == 4 and registry.size == 4


def test_capacity_doubles_when_full() -> None:
    registry = SeriesRegistry(capacity=2)
    rows = registry.add([key("viewers", str(i)) for i in range(5)])
    assert rows.tolist() == [0, 1, 2, 3, 4]
    assert registry.capacity == 8 and registry.size == 5


def test_unknown_keys_raise_and_expire_is_all_or_nothing() -> None:
    registry = SeriesRegistry()
    registry.add([key("viewers", "BR")])
    with pytest.raises(KeyError, match="US"):
        registry.rows_for([key("viewers", "US")])
    with pytest.raises(KeyError, match="US"):
        registry.expire([key("viewers", "BR"), key("viewers", "US")])
    with pytest.raises(KeyError, match="row 5"):
        registry.expire([5])
    assert key("viewers", "BR") in registry
    with pytest.raises(RegistryError, match="hashable"):
        registry.add([["viewers", "BR"]])


def test_round_trip_through_bytes_keeps_rows_free_list_and_capacity() -> None:
    registry = SeriesRegistry(capacity=2)
    registry.add([key("viewers", "BR", "android"), key("viewers", "US"), ("gifts", ()), ("stalls", ())])
    registry.expire([1])
    restored = SeriesRegistry.from_bytes(registry.to_bytes())
    assert restored.capacity == registry.capacity and restored.size == registry.size
    assert restored.rows_for([key("viewers", "BR", "android"), ("stalls", ())]).tolist() == [0, 3]
    assert restored.add([key("comments", "JP")]).tolist() == [1]
    assert restored.add([key("comments", "KR")]).tolist() == [4]


def test_garbage_bytes_are_rejected_clearly() -> None:
    with pytest.raises(RegistryError, match="registry snapshot"):
        SeriesRegistry.from_bytes(b"\x00not msgpack")


def test_registry_drives_family_capacity_and_reset() -> None:
    registry = SeriesRegistry(capacity=2)
    baseline = SeasonalBaseline(SeasonalParams(seasons=("daily",)), capacity=registry.capacity)
    registry.add([key("viewers", "BR"), key("viewers", "US"), key("viewers", "JP")])
    baseline.ensure_capacity(registry.capacity)
    baseline.update(0, np.array([10.0, 20.0, 30.0]))
    freed = registry.expire([key("viewers", "US")])
    baseline.reset(freed)
    row = registry.add([key("viewers", "MX")])
    result = baseline.update(60_000, np.array([10.0, 99.0, 30.0]))
    assert row.tolist() == [1]
    # The reused row starts from the new series' first value, not from the expired one's state.
    assert result.expected[1] == 99.0 and result.z[1] == 0.0 and result.learning[1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, 30), max_size=6)), max_size=25))
def test_any_add_expire_sequence_keeps_rows_unique_dense_and_restorable(
    steps: list[tuple[bool, list[int]]],
) -> None:
    registry = SeriesRegistry(capacity=2)
    live: dict[tuple[str, int], int] = {}
    for adding, ids in steps:
        keys = [("viewers", i) for i in ids]
        if adding:
            free_before = sorted(set(range(registry.size)) - set(live.values()))
            new_keys = list(dict.fromkeys(k for k in keys if k not in live))
            rows = registry.add(keys)
            for key, row in zip(keys, rows.tolist(), strict=True):
                assert live.setdefault(key, row) == row
            # New keys took the lowest free rows first, then fresh ones.
            taken = [live[k] for k in new_keys]
            assert taken[: len(free_before)] == free_before[: len(taken)]
        else:
            present = [k for k in dict.fromkeys(keys) if k in live]
            freed = registry.expire(present)
            assert sorted(freed.tolist()) == sorted(live.pop(k) for k in present)
        assert len(set(live.values())) == len(live) == len(registry)
        assert all(0 <= row < registry.size <= registry.capacity for row in live.values())
    restored = SeriesRegistry.from_bytes(registry.to_bytes())
    assert {k: int(restored.rows_for([k])[0]) for k in live} == live
    assert restored.add([("fresh", 0)]).tolist() == registry.add([("fresh", 0)]).tolist()


def test_docstring_examples_run() -> None:
    from detector.scoring import registry, seasonal

    for module in (registry, seasonal):
        assert doctest.testmod(module).failed == 0
