"""The compiled hop closing (``hop_windows``, ``hop_contexts.link_max``, ``EntityTable.learn``) and grouping
(``entity_state._aggregate``) equal the numpy code they replaced.

Random tables (several entity types, any slot buckets: inside, before and after the window, negative), sums past
2**24, fractional, infinite and signed-zero amounts, NaN and signed-zero latencies, windows of several configs; random
links with missing entities, rows absent from the hop, inexact linked rows and habits; groups of whole, signed-zero
amounts, tied, NaN and signed-zero latencies, missing entities."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.ml.features.entity_state import EntityTable, _runs, _split, group_events
from detectors.ml.features.hop_contexts import link_max, row_positions
from detectors.ml.features.hop_windows import hop_windows

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
M, S, B = 9, 8, 6
OFFHOURS = (np.arange(24) >= 22) | (np.arange(24) < 6)


def _window(b: int, hops: int, slots: int, hop: int, sb: Any, sums: Any, sketch: Any, lat: Any) -> tuple[Any, ...]:
    """``EntityBehaviour._window`` before it was compiled (gathered slots)."""
    if hops == 1:
        slot = b % slots
        here = sb[:, slot] == b
        hop_sums = np.where(here[:, None], sums[:, slot], 0.0).astype(np.float64)
        night = np.where(here & OFFHOURS[(b * hop // 60) % 24], hop_sums[:, 0], 0.0)
        hop_sketch = np.where(here[:, None], sketch[:, slot], np.uint32(0))
        return hop_sums, night, hop_sketch, np.where(here, lat[:, slot], 0.0)
    inside = (sb > b - hops) & (sb <= b)
    buckets = np.arange(b - hops + 1, b + 1)
    off = np.zeros(slots, dtype=bool)
    off[buckets % slots] = OFFHOURS[(buckets * hop // 60) % 24]
    window_sums = np.einsum("rk,rkm->rm", inside.astype(np.float32), sums).astype(np.float64)
    night = np.einsum("rk,rk->r", (inside & off).astype(np.float32), sums[:, :, 0]).astype(np.float64)
    sketch_or = np.bitwise_or.reduce(np.where(inside[:, :, None], sketch, np.uint32(0)), axis=1)
    return window_sums, night, sketch_or, np.where(inside, lat, 0.0).max(axis=1)


def _same(got: npt.NDArray[Any], want: npt.NDArray[Any], what: str) -> None:
    """Equal bit for bit (NaNs: any NaN)."""
    assert got.dtype == want.dtype and got.shape == want.shape, what
    if got.dtype.kind == "f":
        nan = np.isnan(want)
        assert (np.isnan(got) == nan).all(), what
        got, want = got[~nan], want[~nan]
    assert got.tobytes() == want.tobytes(), what


def _table(rng: np.random.Generator, n: int, slots: int, b: int, special: bool) -> EntityTable:
    table = EntityTable(slots, M, S, B, capacity=n + 2)
    table._add([f"k{i}" for i in range(n)], np.zeros(n, dtype=np.int64))
    table.slot_bucket[:n] = rng.integers(b - 2 * slots, b + 3, size=(n, slots))
    table.slot_bucket[:n][rng.random((n, slots)) < 0.2] = -1
    scale = 10.0 ** rng.integers(0, 9, size=(n, slots, M))  # window sums past 2**24
    sums = np.where(rng.random((n, slots, M)) < 0.5, np.round(rng.random((n, slots, M)) * scale),
                    rng.normal(size=(n, slots, M)) * scale)  # fmt: skip
    lat = rng.gamma(2.0, 100.0, size=(n, slots))
    if special:
        sums[rng.random(sums.shape) < 0.03] = np.inf
        sums[rng.random(sums.shape) < 0.05] = -0.0
        lat[rng.random(lat.shape) < 0.2] = -0.0
        lat[rng.random(lat.shape) < 0.2] = 0.0
        lat[rng.random(lat.shape) < 0.03] = np.nan
        lat[rng.random(lat.shape) < 0.05] = -1.0
    table.sums[:n], table.lat[:n] = sums.astype(np.float32), lat.astype(np.float32)
    bits = rng.integers(0, 2**32, size=(2, n, slots, S), dtype=np.uint32)
    table.sketch[:n] = bits[0] & bits[1]
    table.seen[:n] = rng.integers(0, 2**32, size=(n, S), dtype=np.uint32)
    table.ewma[:n] = rng.normal(size=(n, B, 2)).astype(np.float32)
    table.n_obs[:n] = rng.integers(0, 5, size=n)
    table.first[:n] = rng.integers(b - 30, b + 1, size=n)
    return table


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.sampled_from([(1, 15), (5, 60), (1,), (2, 6, 30), (3, 3)]),
       st.lists(st.integers(0, 40), min_size=1, max_size=4), st.integers(-50, 40_000_000), st.booleans(),
       st.integers(1, 3))  # fmt: skip
def test_hop_windows_equal_numpy(seed: int, windows: tuple[int, ...], sizes: list[int], b: int, special: bool,
                                 lateness: int) -> None:  # fmt: skip
    rng = np.random.default_rng(seed)
    hop = windows[0]
    hops = tuple(w // hop for w in windows)
    slots = hops[-1] + lateness + 2
    tables = [_table(rng, n, slots, b, special) for n in sizes]
    rows = [np.sort(rng.choice(len(t), size=rng.integers(0, len(t) + 1), replace=False)).astype(np.int64)
            if len(t) else np.zeros(0, np.int64) for t in tables]  # fmt: skip
    got = hop_windows(tables, rows, b, hops, hop, OFFHOURS)
    gathered = {name: np.concatenate([getattr(t, name)[r] for t, r in zip(tables, rows, strict=True)])
                for name in ("slot_bucket", "sums", "lat", "sketch", "seen", "ewma", "n_obs", "first")}  # fmt: skip
    for name in ("seen", "ewma", "n_obs", "first"):
        _same(getattr(got, name), gathered[name], name)
    with np.errstate(invalid="ignore"):
        for i, h in enumerate(hops):
            want = _window(b, h, slots, hop, gathered["slot_bucket"], gathered["sums"], gathered["sketch"],
                           gathered["lat"])  # fmt: skip
            for name, g, w in zip(("sums", "night", "sketch", "p95"), (got.sums[i], got.night[i], got.sketch[i],
                                                                     got.p95[i]), want, strict=True):  # fmt: skip
                _same(g, np.asarray(w, dtype=g.dtype) if name == "sketch" else w, f"{name} of window {h}")


def _link_reference(owner: Any, linked: Any, at: Any, linked_at: Any, values: Any, exact: Any, sketch: Any,
                    seen: Any, column: int, cols: list[int], habits: bool, first: Any, settled_from: int,
                    out: Any) -> None:  # fmt: skip
    """``EntityBehaviour._contexts``' numpy steps for one linked pair (exact linked rows only)."""
    both = (owner >= 0) & (linked >= 0)
    pairs = np.unique(np.stack([owner[both], linked[both]], axis=1), axis=0).reshape(-1, 2)
    w = at[pairs[:, 0]]
    lw = np.where(pairs[:, 1] < len(linked_at), linked_at[np.minimum(pairs[:, 1], len(linked_at) - 1)], -1)
    found = (w >= 0) & (lw >= 0)
    found[found] &= exact[lw[found]]
    w, lw = w[found], lw[found]
    keep = np.ones(len(w), dtype=bool)
    if habits:
        known, bit = seen[w, column], sketch[lw, column]
        keep = ~(((known & bit) != 0) & (np.bitwise_count(known) <= 16) & (first[w] <= settled_from))
    for c in cols:
        np.maximum.at(out[:, c], w[keep], values[lw[keep], c])


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(0, 30), st.integers(0, 400), st.booleans())
def test_link_max_equals_numpy(seed: int, n_owner: int, n_linked: int, n_events: int, habits: bool) -> None:
    rng = np.random.default_rng(seed)
    owner_rows = np.flatnonzero(rng.random(n_owner) < 0.8)
    linked_rows = np.flatnonzero(rng.random(n_linked) < 0.8)
    n = len(owner_rows) + len(linked_rows)
    at, linked_at = row_positions(owner_rows, 0, n_owner), row_positions(linked_rows, len(owner_rows), n_linked)
    owner = rng.integers(-1, n_owner, size=n_events)
    linked = rng.integers(-1, max(n_linked, 1), size=n_events) if n_linked else np.full(n_events, -1)
    values = np.round(rng.random((n, 3)) * 4, 1)
    exact = rng.random(n) < 0.9
    sketch = (np.uint32(1) << rng.integers(0, 32, size=(n, S)).astype(np.uint32)).astype(np.uint32)
    known = rng.integers(0, 2**32, size=(2, n, S), dtype=np.uint32)
    seen = known[0] & known[1]  # some with at most 16 bits
    first = rng.integers(0, 20, size=n).astype(np.int32)
    cols = [0, 1] if seed % 2 else [2]
    got, want = np.zeros((n, 3)), np.zeros((n, 3))
    left = link_max(owner, linked, at, linked_at, values, exact, sketch, seen, 7, np.array(cols), habits, first, 10,
                    16, got)  # fmt: skip
    _link_reference(owner, linked, at, linked_at, values, exact, sketch, seen, 7, cols, habits, first, 10, want)
    assert got.tobytes() == want.tobytes()
    lw = [int(linked_at[li]) if 0 <= li < len(linked_at) else -1 for li in linked.tolist()]
    expected = [o >= 0 and li >= 0 and at[o] >= 0 and (w < 0 or not exact[w])
                for o, li, w in zip(owner.tolist(), linked.tolist(), lw, strict=True)]  # fmt: skip
    assert left.tolist() == expected


def _learn_reference(table: EntityTable, rows: Any, x: Any, sketch: Any, a: float) -> None:
    """``EntityBehaviour._learn`` before it was compiled."""
    mean, var = table.ewma[rows, :, 0].astype(np.float64), table.ewma[rows, :, 1].astype(np.float64)
    fresh = (table.n_obs[rows] == 0)[:, None]
    diff = x - mean
    table.ewma[rows, :, 0] = np.where(fresh, x, mean + a * diff)
    table.ewma[rows, :, 1] = np.where(fresh, 0.0, (1.0 - a) * (var + a * diff * diff))
    table.seen[rows] |= sketch
    table.n_obs[rows] += 1


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.sampled_from([0.1, 0.3, 1.0 / 3.0]), st.booleans())
def test_learn_equals_numpy(seed: int, n: int, alpha: float, special: bool) -> None:
    rng = np.random.default_rng(seed)
    got, want = (_table(rng, n, 4, 100, special) for _ in range(2))
    for name in ("ewma", "seen", "n_obs"):
        getattr(want, name)[:] = getattr(got, name)
    rows = np.sort(rng.choice(n, size=rng.integers(0, n + 1), replace=False)).astype(np.int64)
    x = rng.normal(size=(len(rows), B)) * 10.0 ** rng.integers(-3, 12, size=(len(rows), B))
    if special:
        x[rng.random(x.shape) < 0.1] = np.nan
        x[rng.random(x.shape) < 0.1] = -0.0
    sketch = rng.integers(0, 2**32, size=(len(rows), S), dtype=np.uint32)
    got.learn(rows, x, sketch, alpha)
    with np.errstate(invalid="ignore", over="ignore"):
        _learn_reference(want, rows, x, sketch, alpha)
    for name in ("ewma", "seen", "n_obs"):
        _same(getattr(got, name), getattr(want, name), name)


def _group_reference(rows: Any, sizes: list[int], bucket: Any, status: Any, amounts: Any, latency: Any,
                     bits: Any) -> list[Any]:  # fmt: skip
    """``group_events``' whole-amounts path before its aggregation was compiled."""
    n, b0 = len(bucket), int(bucket.min())
    span = int(bucket.max()) - b0 + 1
    offsets = np.array([0, *np.cumsum(sizes)], dtype=np.int64)
    shift = n.bit_length()
    lat32 = latency.astype(np.float32)
    by_latency = np.argsort(lat32)
    rank = np.empty(n, dtype=np.int64)
    rank[by_latency] = np.arange(n)
    key = (((rows + offsets[:-1, None]) * span + (bucket - b0)) << shift) | rank
    key = np.sort(key[rows >= 0])
    event = by_latency[key & ((1 << shift) - 1)]
    key >>= shift
    starts, counts, label = _runs(key)
    kind = np.where(status >= 400, 5, 0)
    for i, code in enumerate((401, 403, 404, 429), start=1):
        kind[status == code] = i
    values = np.empty((len(starts), 6 + amounts.shape[1]))
    values[:, 0] = counts
    kinds = np.bincount(label * 6 + kind[event], minlength=len(starts) * 6).reshape(-1, 6)
    values[:, 1] = counts - kinds[:, 0]
    values[:, 2:6] = kinds[:, 1:5]
    values[:, 6:] = np.add.reduceat(np.take(amounts, event, axis=0), starts, axis=0)
    sketch = np.bitwise_or.reduceat(np.take(bits, event, axis=0), starts, axis=0)
    p95 = lat32[event[starts + np.floor(0.95 * (counts - 1)).astype(np.int64)]]
    return _split(key[starts], span, b0, offsets, values, sketch, p95)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(1, 20), min_size=1, max_size=4), st.integers(1, 300),
       st.integers(1, 5), st.booleans())  # fmt: skip
def test_grouping_equals_numpy(seed: int, sizes: list[int], n: int, span: int, special: bool) -> None:
    rng = np.random.default_rng(seed)
    rows = np.stack([rng.integers(-1, size, size=n) for size in sizes])
    bucket = rng.integers(1000, 1000 + span, size=n)
    status = rng.choice([200, 201, 301, 400, 401, 403, 404, 429, 500, 0], size=n)
    amounts = np.round(rng.normal(size=(n, 3)) * 10.0 ** rng.integers(0, 9, size=(n, 3)))
    latency = np.round(rng.gamma(2.0, 50.0, size=n), int(rng.integers(0, 3)))  # ties
    if special:
        amounts[rng.random(amounts.shape) < 0.1] = -0.0
        latency[rng.random(n) < 0.1] = np.nan
        latency[rng.random(n) < 0.1] = -0.0
    bits = (np.uint32(1) << rng.integers(0, 32, size=(n, S)).astype(np.uint32)).astype(np.uint32)
    got = group_events(rows, sizes, bucket, status, amounts, latency, bits)
    want = _group_reference(rows, sizes, bucket, status, amounts, latency, bits)
    for g, w in zip(got, want, strict=True):
        for name, a, b in zip(("rows", "buckets", "sums", "sketch", "p95"), g, w, strict=True):
            _same(np.asarray(a), np.asarray(b, dtype=np.asarray(a).dtype), name)
