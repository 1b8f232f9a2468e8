"""numba's ``njit`` for the few loops numpy cannot express without many passes (numba comes with PyOD).

Kernels compiled here use no fast-math: their float operations are IEEE's, in the order written, so they can
replace numpy expressions bit for bit (tests compare them with the numpy code they replace).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit


def jit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``njit(nogil=True)``, cached on disk (``__pycache__`` or the user's cache directory) when one is writable:
    else compiled in each process (about a second, at the first call)."""

    def wrap(fn: Callable[..., Any]) -> Any:
        try:
            return njit(cache=True, nogil=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return njit(nogil=True, **options)(fn)

    return wrap
