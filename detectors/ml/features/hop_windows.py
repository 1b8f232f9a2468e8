"""The window aggregates of a closed hop's rows, every window and entity type in one compiled pass.

For each row (an entity of some type active in hop ``b``) and each window of ``hops`` hops ending with ``b``: the
METRICS summed over the window's slots, the off-hours requests, the sketches OR-ed and the latency p95 (the max of
the slots'), plus the row's history (first-seen sketches, baselines, hops learned, first bucket), stacked in the
order of the given rows. It reproduces the numpy code it replaced bit for bit (``tests/detectors/ml/
test_hop_kernels.py`` keeps that code): the sums are added in float32 slot by slot as numpy's ``einsum`` does (sums
past 2**24 or fractional amounts round the same), and the one case it cannot tell, a zero max among signed zeros
(whose sign depends on numpy's reduction order), is left to numpy's expression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from detectors.ml.jit import jit

if TYPE_CHECKING:
    from detectors.ml.features.entity_state import EntityTable

IntArray = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class HopWindows:
    """Per window (first axis) and stacked row: sums (float64), off-hours requests, sketches, latency p95 (float32);
    and each row's history."""

    sums: F64
    night: F64
    sketch: U32
    p95: F32
    seen: U32
    ewma: F32
    n_obs: npt.NDArray[np.int32]
    first: npt.NDArray[np.int32]


def hop_windows(tables: list[EntityTable], rows: list[IntArray], b: int, hops: tuple[int, ...], hop: int,
                offhours: BoolArray) -> HopWindows:  # fmt: skip
    """The window aggregates and history of ``rows`` of each table (stacked in that order) for hop ``b``."""
    n = sum(len(r) for r in rows)
    t0 = tables[0]
    w, m, s = len(hops), t0.sums.shape[2], t0.sketch.shape[2]
    out = HopWindows(
        sums=np.empty((w, n, m)),
        night=np.empty((w, n)),
        sketch=np.empty((w, n, s), dtype=np.uint32),
        p95=np.empty((w, n), dtype=np.float32),
        seen=np.empty((n, s), dtype=np.uint32),
        ewma=np.empty((n, *t0.ewma.shape[1:]), dtype=np.float32),
        n_obs=np.empty(n, dtype=np.int32),
        first=np.empty(n, dtype=np.int32),
    )
    if not n:
        return out
    arrays = [tuple(getattr(t, name) for t in tables) for name in _READ]
    tie = _hop_windows(*arrays, tuple(np.ascontiguousarray(r, dtype=np.int64) for r in rows), b,
                       np.array(hops, dtype=np.int64), hop, offhours, out.sums, out.night, out.sketch, out.p95,
                       out.seen, out.ewma, out.n_obs, out.first)  # fmt: skip
    for i in np.flatnonzero(tie).tolist():  # a signed zero max: numpy's own reduction decides its sign
        sb = np.concatenate([t.slot_bucket[r] for t, r in zip(tables, rows, strict=True)])
        lat = np.concatenate([t.lat[r] for t, r in zip(tables, rows, strict=True)])
        out.p95[i] = np.where((sb > b - hops[i]) & (sb <= b), lat, 0.0).max(axis=1)
    return out


_READ = ("slot_bucket", "sums", "lat", "sketch", "seen", "ewma", "n_obs", "first")


@jit()
def _hop_windows(slot_bucket: Any, sums: Any, lat: Any, sketch: Any, seen: Any, ewma: Any, n_obs: Any, first: Any,
                 rows: Any, b: int, hops: IntArray, hop: int, offhours: BoolArray, out_sums: F64, out_night: F64,
                 out_sketch: U32, out_p95: F32, out_seen: U32, out_ewma: F32, out_n_obs: npt.NDArray[np.int32],
                 out_first: npt.NDArray[np.int32]) -> BoolArray:  # fmt: skip
    """:func:`hop_windows` on tuples of the tables' arrays; returns, per window, whether a signed zero max was met."""
    n_win = len(hops)
    k = slot_bucket[0].shape[1]
    m, s = sums[0].shape[2], sketch[0].shape[2]
    tie = np.zeros(n_win, dtype=np.bool_)
    off = np.zeros((n_win, k), dtype=np.bool_)  # per window, the off-hours slots (numpy's ``inside & off``)
    for w in range(n_win):
        for slot in range(k):
            x = b - (b - slot) % k  # the window's bucket in this slot, if any
            off[w, slot] = x > b - hops[w] and offhours[(x * hop // 60) % 24]
    acc = np.empty(m, dtype=np.float32)
    at = 0
    for t in range(len(rows)):
        sb_t, sums_t, lat_t, sketch_t = slot_bucket[t], sums[t], lat[t], sketch[t]
        for i in range(len(rows[t])):
            r, o = rows[t][i], at + i
            out_seen[o] = seen[t][r]
            out_ewma[o] = ewma[t][r]
            out_n_obs[o] = n_obs[t][r]
            out_first[o] = first[t][r]
            for w in range(n_win):
                h = hops[w]
                if h == 1:  # one slot: read directly
                    slot = b % k
                    here = sb_t[r, slot] == b
                    for j in range(m):
                        out_sums[w, o, j] = np.float64(sums_t[r, slot, j]) if here else 0.0
                    out_night[w, o] = out_sums[w, o, 0] if here and offhours[(b * hop // 60) % 24] else 0.0
                    for j in range(s):
                        out_sketch[w, o, j] = sketch_t[r, slot, j] if here else np.uint32(0)
                    out_p95[w, o] = lat_t[r, slot] if here else np.float32(0.0)
                    continue
                acc[:] = 0.0
                night = np.float32(0.0)
                p95 = np.float32(0.0)
                signed_zero = False
                for j in range(s):
                    out_sketch[w, o, j] = 0
                for slot in range(k):  # every slot in order, as einsum sums them (0 * inf is NaN there too)
                    current = np.int64(sb_t[r, slot])
                    inside = current > b - h and current <= b
                    f = np.float32(1.0) if inside else np.float32(0.0)
                    for j in range(m):
                        acc[j] = acc[j] + f * sums_t[r, slot, j]
                    night = night + (f if off[w, slot] else np.float32(0.0)) * sums_t[r, slot, 0]
                    v = lat_t[r, slot] if inside else np.float32(0.0)
                    if slot == 0 or np.isnan(v) or v > p95:
                        p95 = v if not np.isnan(p95) else p95
                    if inside:
                        for j in range(s):
                            out_sketch[w, o, j] |= sketch_t[r, slot, j]
                        signed_zero |= v == 0.0 and math.copysign(1.0, v) < 0.0
                for j in range(m):
                    out_sums[w, o, j] = acc[j]
                out_night[w, o] = night
                out_p95[w, o] = p95
                tie[w] |= signed_zero and p95 == 0.0
        at += len(rows[t])
    return tie
