"""One place for the numba compilation flags, so every kernel is compiled the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])

# njit already means nopython. cache: compiled machine code is kept on disk, so a worker restart does not pay the compile again.
# nogil: kernels can run beside the event loop's I/O threads.
# error_model="numpy": division by zero gives inf/nan as in numpy instead of raising inside a kernel.
JIT_OPTIONS: dict[str, Any] = {"nogil": True, "cache": True, "error_model": "numpy"}


def njit(function: F) -> F:
    return numba.njit(**JIT_OPTIONS)(function)  # type: ignore[no-any-return,unused-ignore]
