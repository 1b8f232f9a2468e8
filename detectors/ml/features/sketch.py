"""32-bit distinct-value sketches (linear counting): one bit per value from a stable hash, OR-able across slots."""

from __future__ import annotations

import zlib
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from detectors.ml.jit import jit

Matrix = npt.NDArray[np.float64]
U32 = npt.NDArray[np.uint32]


_BIT_CACHE: dict[Any, int] = {}


Factorized = tuple[npt.NDArray[np.intp], list[Any]]


def factorize(column: npt.NDArray[np.object_]) -> Factorized:
    """Codes (-1 for missing) and distinct values of a column: hashed once, shared by sketches and entity rows."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return codes, uniques.tolist()


def values_of(factorized: Factorized) -> npt.NDArray[np.object_]:
    """The column a factorization was made of (code -1: None): the distinct values taken by their codes."""
    codes, uniques = factorized
    table = np.fromiter([*uniques, None], dtype=object, count=len(uniques) + 1)
    return np.asarray(table[codes], dtype=object)


def subset_factorized(factorized: Factorized, index: slice | npt.NDArray[np.intp]) -> Factorized:
    """:func:`factorize` of ``column[index]`` from that of ``column`` (codes again in order of first appearance)."""
    codes, uniques = factorized
    part, order = _recode(np.ascontiguousarray(codes[index], dtype=np.intp), len(uniques))
    return part, [uniques[i] for i in order.tolist()]


@jit()
def _recode(codes: npt.NDArray[np.intp], n_uniques: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Codes renumbered in order of first appearance (-1 stays), and the old code of each new one."""
    new = np.full(n_uniques, -1, dtype=np.intp)
    order = np.empty(n_uniques, dtype=np.intp)
    out = np.empty(len(codes), dtype=np.intp)
    k = 0
    for i in range(len(codes)):
        code = codes[i]
        if code < 0:
            out[i] = -1
            continue
        if new[code] < 0:
            new[code] = k
            order[k] = code
            k += 1
        out[i] = new[code]
    return out, order[:k]


def bits_of(column: npt.NDArray[np.object_], factorized: Factorized | None = None) -> U32:
    """One bit (of 32) per distinct value, from a stable hash (crc32, not the salted ``hash``); 0 when missing."""
    codes, uniques = factorized if factorized is not None else factorize(column)
    if len(_BIT_CACHE) > 1_000_000:
        _BIT_CACHE.clear()
    ub = np.zeros(len(uniques) + 1, dtype=np.uint32)  # the last one for the missing values (code -1)
    ub[:-1] = np.fromiter(map(_BIT_CACHE.get, uniques, repeat(0)), dtype=np.int64, count=len(uniques))
    for i in np.flatnonzero(ub[:-1] == 0).tolist():  # not cached yet (a bit is never 0)
        value = uniques[i]
        ub[i] = _BIT_CACHE[value] = 1 << (zlib.crc32(str(value).encode()) & 31)
    return np.asarray(ub[codes], dtype=np.uint32)


def distinct(sketch: U32) -> Matrix:
    """Linear-counting estimate of distinct values from 32-bit sketches (exact-ish to ~10, saturates near 110)."""
    zeros = 32.0 - np.bitwise_count(sketch).astype(np.float64)
    return np.asarray(32.0 * np.log(32.0 / np.maximum(zeros, 0.5)), dtype=np.float64)
