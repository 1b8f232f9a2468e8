"""The context features of a closed hop's rows from its events, compiled: each row's worst linked entity.

An event seen with an entity (the owner) and a linked entity (an API key or a source IP) offers the linked
entity's context values to the owner's row; the row keeps the highest of each, unless the link is a habit (the
owner knew the linked value before and is settled). The maximum ignores order and repeats, so the events need not
be deduplicated (the numpy code dedupes the pairs first) and the events the compiled pass cannot serve (a linked
entity without an exact row in the hop) are left to the numpy code, whose maxima then join the same rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.ml.jit import jit

IntArray = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@jit()
def link_max(owner: IntArray, linked: IntArray, at: IntArray, linked_at: IntArray, values: F64, exact: BoolArray,
             sketch: U32, seen: U32, sketch_column: int, cols: IntArray, habits: bool, first: npt.NDArray[np.int32],
             settled_from: int, bits_max: int, out: F64) -> BoolArray:  # fmt: skip
    """Raise ``out[row, cols]`` to the linked rows' ``values`` over the events (``owner``, ``linked``: their rows of
    two entity types, -1 for none); returns the events left to the caller (the linked row is not an exact row).

    ``at``/``linked_at``: each entity row's row of the hop (-1 when it has none) in ``values``, ``exact``,
    ``sketch`` (the hop's, whose ``sketch_column`` holds the linked entity's own bit), ``seen`` and ``first``. With
    ``habits``, a link whose bit the owner had seen (in a sketch of at most ``bits_max`` bits) while its first bucket
    is ``settled_from`` or earlier is skipped."""
    left = np.zeros(len(owner), dtype=np.bool_)
    for i in range(len(owner)):
        o, li = owner[i], linked[i]
        if o < 0 or li < 0:
            continue
        w = at[o]
        if w < 0:  # not a row of the hop (its events came too late)
            continue
        lw = linked_at[li] if li < len(linked_at) else -1
        if lw < 0 or not exact[lw]:
            left[i] = True
            continue
        if habits:
            known = seen[w, sketch_column]
            if known & sketch[lw, sketch_column] and _popcount(known) <= bits_max and first[w] <= settled_from:
                continue
        for c in cols:
            if values[lw, c] > out[w, c] or np.isnan(values[lw, c]):  # numpy's maximum: NaN wins
                out[w, c] = values[lw, c]
    return left


def row_positions(rows: IntArray, start: int, n_rows: int) -> IntArray:
    """Each entity row's position in the hop's stacked rows (``rows`` from ``start``), -1 when not there."""
    at = np.full(n_rows, -1, dtype=np.int64)
    at[rows] = np.arange(start, start + len(rows))
    return at


@jit()
def _popcount(x: np.uint32) -> int:
    """Bits set in a 32-bit word."""
    n = 0
    while x:
        x &= x - np.uint32(1)
        n += 1
    return n
