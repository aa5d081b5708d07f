"""One place for the numba compilation flags, so every kernel is compiled the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])

# njit already means nopython. cache: compiled machine code is kept on disk, so a restarted worker
# does not pay the compilation again.
# nogil: kernels can run beside the event loop's I/O threads.
# error_model="numpy": division by zero gives inf/nan as in numpy instead of raising inside a kernel.
JIT_OPTIONS: dict[str, Any] = {"nogil": True, "cache": True, "error_model": "numpy"}


def njit(function: F) -> F:
    return numba.njit(**JIT_OPTIONS)(function)  # type: ignore[no-any-return,unused-ignore]


# For inner loops that only ever see finite numbers (the calling kernel has already turned NaN and inf
# into "missing"): lets LLVM reorder sums and assume no NaN/inf, so reductions vectorise. Never use it
# in code that tests for NaN or inf: those tests would be compiled away.
FINITE_MATH_OPTIONS: dict[str, Any] = {
    **JIT_OPTIONS,
    "fastmath": {"reassoc", "contract", "nnan", "ninf", "nsz"},
}


def njit_finite_math(function: F) -> F:
    return numba.njit(**FINITE_MATH_OPTIONS)(function)  # type: ignore[no-any-return,unused-ignore]
