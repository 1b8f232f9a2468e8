"""Per-entity window state in flat numpy arrays: bounded memory, vectorized updates, no per-event Python objects.

One :class:`EntityTable` per entity type. Row ``i`` of every array belongs to one entity (``keys[i]``,
``index[key] == i``). Each entity keeps a ring of ``K`` hop slots (``K = longest window / hop``), each slot holding
additive metrics (float32), a latency p95 estimate and one 32-bit distinct-value sketch per categorical field
(linear counting), plus its history: the first-seen sketches and EWMA baselines of a few hop metrics. With the
default windows (1 and 15 minutes) that is 1,460 bytes of arrays per entity, plus the key in the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate, repeat
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors.ml.features.sketch import Factorized
from detectors.ml.jit import jit

IntArray = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
_ARRAYS = ("slot_bucket", "sums", "lat", "sketch", "seen", "ewma", "n_obs", "first", "last")


class EntityTable:
    """Window slots and history of every entity of one type."""

    slot_bucket: npt.NDArray[np.int32]  # (entities, slots): the hop bucket each slot holds, -1 empty
    sums: F32  # (entities, slots, metrics)
    lat: F32  # (entities, slots): latency p95 estimate
    sketch: U32  # (entities, slots, sketches)
    seen: U32  # (entities, sketches): values ever seen (first-seen flags)
    ewma: F32  # (entities, baselines, 2): mean and variance
    n_obs: npt.NDArray[np.int32]  # hops learned
    first: npt.NDArray[np.int32]  # first bucket seen
    last: npt.NDArray[np.int32]  # last bucket seen

    def __init__(self, slots: int, metrics: int, sketches: int, baselines: int, capacity: int = 1024) -> None:
        self.slots, self.metrics, self.sketches, self.baselines = slots, metrics, sketches, baselines
        self.index: dict[str, int] = {}
        self.keys: list[str] = []
        self._allocate(capacity)

    def _allocate(self, cap: int) -> None:
        k, m, s, b = self.slots, self.metrics, self.sketches, self.baselines
        new: dict[str, npt.NDArray[Any]] = {
            "slot_bucket": np.full((cap, k), -1, dtype=np.int32),
            "sums": np.zeros((cap, k, m), dtype=np.float32),
            "lat": np.zeros((cap, k), dtype=np.float32),
            "sketch": np.zeros((cap, k, s), dtype=np.uint32),
            "seen": np.zeros((cap, s), dtype=np.uint32),
            "ewma": np.zeros((cap, b, 2), dtype=np.float32),  # mean, variance
            "n_obs": np.zeros(cap, dtype=np.int32),
            "first": np.zeros(cap, dtype=np.int32),
            "last": np.zeros(cap, dtype=np.int32),
        }
        used = len(self.keys)
        for name, array in new.items():
            if used:
                array[:used] = getattr(self, name)[:used]
            setattr(self, name, array)

    def __len__(self) -> int:
        return len(self.keys)

    def bytes_per_entity(self) -> int:
        """Array bytes per entity row (the index's key strings come on top)."""
        return sum(getattr(self, name)[0].nbytes for name in _ARRAYS)

    def rows_for(self, factorized: Factorized, bucket: IntArray) -> IntArray:
        """Row of each event's entity (``factorized``: the events' keys as :func:`factorize` gives them; -1 when the
        event has none); new entities are added (first seen first)."""
        codes, uniques = factorized
        rows = np.full(len(uniques) + 1, -1, dtype=np.int64)  # the last one for the missing keys (code -1)
        rows[:-1] = np.fromiter(map(self.index.get, uniques, repeat(-1)), dtype=np.int64, count=len(uniques))
        new = np.flatnonzero(rows[:-1] < 0)
        if len(new):
            first_bucket = np.full(len(uniques), np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first_bucket, codes[codes >= 0], bucket[codes >= 0])
            rows[new] = self._add([uniques[i] for i in new.tolist()], first_bucket[new])
        return np.asarray(rows[codes], dtype=np.int64)

    def _add(self, keys: list[Any], bucket: IntArray) -> IntArray:
        """Rows for new entities (first seen in ``bucket``), after the existing ones."""
        start, end = len(self.keys), len(self.keys) + len(keys)
        capacity = self.n_obs.shape[0]
        while capacity < end:
            capacity += capacity // 4 + 1024  # grow by a quarter: little slack
        if capacity > self.n_obs.shape[0]:
            self._allocate(capacity)
        self.index.update(zip(keys, range(start, end), strict=True))
        self.keys += keys
        for name in _ARRAYS:  # the rows may have belonged to evicted entities
            getattr(self, name)[start:end] = -1 if name == "slot_bucket" else 0
        self.first[start:end] = bucket
        self.last[start:end] = bucket
        return np.arange(start, end)

    def add_groups(self, pr: IntArray, pb: IntArray, sums: F64, sketch: U32, p95: npt.NDArray[np.floating[Any]]
                   ) -> IntArray:  # fmt: skip
        """Add per-(row, bucket) aggregates (from :func:`group_events`); returns the pairs as ``row << 32 | bucket``."""
        if not len(pr):
            return np.zeros(0, dtype=np.int64)
        return np.asarray(_add_table_slots(self.slot_bucket, self.sums, self.sketch, self.lat, self.last, pr, pb, sums,
                                           sketch, p95), dtype=np.int64)  # fmt: skip

    def learn(self, rows: IntArray, values: F64, sketch: U32, alpha: float) -> None:
        """Learn one hop of ``rows`` (distinct): EWMA baselines of ``values``, first-seen ``sketch``, hops learned."""
        if len(rows):
            _learn_rows(self.ewma, self.seen, self.n_obs, np.ascontiguousarray(rows, dtype=np.int64), values, sketch,
                        alpha)  # fmt: skip

    def evict(self, before_bucket: int, keep_rows: IntArray) -> IntArray | None:
        """Drop entities last active before ``before_bucket`` (except ``keep_rows``).

        Returns the new row of every old row (-1 when dropped), or None when nothing was dropped.
        """
        n = len(self.keys)
        keep = self.last[:n] >= before_bucket
        keep[keep_rows] = True
        if keep.all():
            return None
        survivors = np.flatnonzero(keep)
        for name in _ARRAYS:
            array = getattr(self, name)
            array[: len(survivors)] = array[survivors]
        self.keys = [self.keys[i] for i in survivors.tolist()]
        self.index = {key: i for i, key in enumerate(self.keys)}
        mapping = np.full(n, -1, dtype=np.int64)
        mapping[survivors] = np.arange(len(survivors))
        return mapping


@jit()
def _add_slots(slot_bucket: npt.NDArray[np.int32], sums: F32, sketch: U32, lat: F32, last: npt.NDArray[np.int32],
               pr: IntArray, pb: IntArray, group_sums: F64, group_sketch: U32, p95: npt.NDArray[np.floating[Any]],
               k: int) -> npt.NDArray[np.bool_]:  # fmt: skip
    """Add groups to their (row, bucket) slots of the flat (row * k + slot) arrays; True where added.

    A slot holding an older bucket starts again from zero; one holding a newer bucket refuses the group (the events
    are too late for it). Sums are added in float32 (the group's float64 sum rounded first), sketches OR-ed, the
    latency is the max (numpy's ``maximum``: NaN wins, the second of equal values); ``last`` takes the newest bucket.
    Every slot is read before any is written (as numpy's gather, compute, scatter would)."""
    n, m, s = len(pr), sums.shape[1], sketch.shape[1]
    ok = np.empty(n, dtype=np.bool_)
    stale = np.empty(n, dtype=np.bool_)
    at = np.empty(n, dtype=np.int64)
    new_sums = np.empty((n, m), dtype=np.float32)
    new_sketch = np.empty((n, s), dtype=np.uint32)
    new_lat = np.empty(n, dtype=np.float32)
    for i in range(n):
        at[i] = pr[i] * k + pb[i] % k
        current = slot_bucket[at[i]]
        ok[i] = current <= pb[i]
        stale[i] = current < pb[i]
        for j in range(m):
            base = np.float32(0.0) if stale[i] else sums[at[i], j]
            new_sums[i, j] = base + np.float32(group_sums[i, j])
        for j in range(s):
            new_sketch[i, j] = (np.uint32(0) if stale[i] else sketch[at[i], j]) | group_sketch[i, j]
        a, b = (np.float32(0.0) if stale[i] else lat[at[i]]), np.float32(p95[i])
        new_lat[i] = a if (a > b or np.isnan(a)) else b
    for i in range(n):
        if not ok[i]:
            continue
        if stale[i]:
            slot_bucket[at[i]] = pb[i]
        sums[at[i]] = new_sums[i]
        sketch[at[i]] = new_sketch[i]
        lat[at[i]] = new_lat[i]
        last[pr[i]] = max(last[pr[i]], np.int32(pb[i]))
    return ok


@jit()
def _learn_rows(ewma: F32, seen: U32, n_obs: npt.NDArray[np.int32], rows: IntArray, values: F64, sketch: U32,
                alpha: float) -> None:  # fmt: skip
    """:meth:`EntityTable.learn`: a new entity's mean is its first value (variance 0); then the mean moves by
    ``alpha`` of the difference and the variance to ``(1 - alpha) * (var + alpha * diff**2)``, in float64 (numpy's
    order of operations), stored in float32."""
    keep = 1.0 - alpha
    for i in range(len(rows)):
        r = rows[i]
        fresh = n_obs[r] == 0
        for j in range(values.shape[1]):
            x = values[i, j]
            mean, var = np.float64(ewma[r, j, 0]), np.float64(ewma[r, j, 1])
            diff = x - mean
            ewma[r, j, 0] = x if fresh else mean + alpha * diff
            ewma[r, j, 1] = 0.0 if fresh else keep * (var + alpha * diff * diff)
        for j in range(sketch.shape[1]):
            seen[r, j] |= sketch[i, j]
        n_obs[r] += 1


@jit()
def _add_table_slots(slot_bucket: npt.NDArray[np.int32], sums: F32, sketch: U32, lat: F32,
                     last: npt.NDArray[np.int32], pr: IntArray, pb: IntArray, group_sums: F64, group_sketch: U32,
                     p95: npt.NDArray[np.floating[Any]]) -> IntArray:  # fmt: skip
    """:func:`_add_slots` on a table's (row, slot) arrays, seen flat (views: the writes reach the table); returns
    the added groups as ``row << 32 | bucket``."""
    rows, k = slot_bucket.shape
    flat_sums = sums.reshape(rows * k, sums.shape[2])
    flat_sketch = sketch.reshape(rows * k, sketch.shape[2])
    ok = _add_slots(slot_bucket.reshape(rows * k), flat_sums, flat_sketch, lat.reshape(rows * k), last, pr, pb,
                    group_sums, group_sketch, p95, k)  # fmt: skip
    pairs = np.empty(ok.sum(), dtype=np.int64)
    j = 0
    for i in range(len(ok)):
        if ok[i]:
            pairs[j] = (pr[i] << 32) | pb[i]
            j += 1
    return pairs


Groups = tuple[IntArray, IntArray, F64, U32, npt.NDArray[np.floating[Any]]]
_STATUS: Final = (401, 403, 404, 429)  # counted one by one (METRICS 2-5), after requests and errors (>= 400)


def group_events(rows: IntArray, sizes: Sequence[int], bucket: IntArray, status: IntArray, amounts: F64,
                 latency: F64, bits: U32) -> list[Groups]:  # fmt: skip
    """Events per (entity type, row, bucket), summed: ``(rows, buckets, sums, sketches, latency p95)`` per type.

    ``rows``: (types, events), -1 where an event has no entity of a type; ``sizes``: the rows of each type;
    ``amounts``: bytes out, input and output tokens. Sums are the METRICS (requests, errors, the four status
    counts, then the amounts), in latency order within a group (ties in event order), and the p95 is a latency
    in float32 (what the slots keep). When the amounts are whole numbers the order does not change the sums and
    equal float32 latencies give the same p95: one sort of a combined key (type and row, bucket, float32 latency
    rank) then groups every type at once."""
    n = len(bucket)
    if not n:
        return [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2 + len(_STATUS) + amounts.shape[1])),
                 np.zeros((0, bits.shape[1]), np.uint32), np.zeros(0)) for _ in sizes]  # fmt: skip
    b0 = int(bucket.min())
    span = int(bucket.max()) - b0 + 1
    offsets = np.array([0, *accumulate(sizes)], dtype=np.int64)
    shift = n.bit_length()
    if int(offsets[-1]) * span >= 1 << (62 - shift) or not _whole(amounts) or bits.shape[1] % 2:
        return _group_in_latency_order(rows, offsets, bucket, _values(status, amounts), latency, bits)
    lat32 = latency.astype(np.float32)
    by_latency = np.argsort(lat32)  # not stable: equal float32 latencies may come in any order
    rank = np.empty(n, dtype=np.int64)
    rank[by_latency] = np.arange(n)
    key = (((rows + offsets[:-1, None]) * span + (bucket - b0)) << shift) | rank
    key = np.sort(key[rows >= 0])
    group, values, sketch, p95 = _aggregate(key, shift, by_latency, status, np.ascontiguousarray(amounts),
                                            np.ascontiguousarray(bits), lat32)  # fmt: skip
    return _split(group, span, b0, offsets, values, sketch, p95)


@jit()
def _aggregate(key: IntArray, shift: int, by_latency: npt.NDArray[np.intp], status: IntArray, amounts: F64,
               bits: U32, lat32: F32) -> tuple[IntArray, F64, U32, F32]:  # fmt: skip
    """The groups of sorted keys (group << ``shift`` | latency rank): each group's key and METRICS (requests, errors,
    the counted statuses, the amounts summed in rank order from the first), sketch OR and p95 (the latency at rank
    ``floor(0.95 * (count - 1))`` within the group)."""
    n = len(key)
    mask = (1 << shift) - 1
    n_groups = 0
    for i in range(n):
        if i == 0 or key[i] >> shift != key[i - 1] >> shift:
            n_groups += 1
    n_amounts, n_bits = amounts.shape[1], bits.shape[1]
    group = np.empty(n_groups, dtype=np.int64)
    values = np.zeros((n_groups, 2 + len(_STATUS) + n_amounts))
    sketch = np.zeros((n_groups, n_bits), dtype=np.uint32)
    p95 = np.empty(n_groups, dtype=np.float32)
    g, start = -1, 0
    for i in range(n):
        event = by_latency[key[i] & mask]
        if i == 0 or key[i] >> shift != key[i - 1] >> shift:
            g += 1
            group[g], start = key[i] >> shift, i
            for j in range(n_amounts):
                values[g, 6 + j] = amounts[event, j]
        else:
            for j in range(n_amounts):
                values[g, 6 + j] += amounts[event, j]
        values[g, 0] += 1.0
        code = status[event]
        if code >= 400:
            values[g, 1] += 1.0
            for j in range(len(_STATUS)):
                if code == _STATUS[j]:
                    values[g, 2 + j] += 1.0
        for j in range(n_bits):
            sketch[g, j] |= bits[event, j]
        if i == n - 1 or key[i + 1] >> shift != key[i] >> shift:  # the group's last event: its p95
            count = i - start + 1
            p95[g] = lat32[by_latency[key[start + np.int64(np.floor(0.95 * (count - 1)))] & mask]]
    return group, values, sketch, p95


def _group_in_latency_order(rows: IntArray, offsets: IntArray, bucket: IntArray, values: F64, latency: F64,
                            bits: U32) -> list[Groups]:  # fmt: skip
    """:func:`group_events` summing each group in latency order (fractional amounts: order matters)."""
    n, b0 = len(bucket), int(bucket.min())
    span = int(bucket.max()) - b0 + 1
    if int(offsets[-1]) * span * n >= 1 << 62:  # the combined key does not fit: one type at a time
        return [_group_in_latency_order(r[None], offsets[i : i + 2] - offsets[i], bucket, values, latency, bits)[0]
                for i, r in enumerate(rows)]  # fmt: skip
    by_latency = np.argsort(latency, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_latency] = np.arange(n)
    key = ((rows + offsets[:-1, None]) * span + (bucket - b0)) * n + rank
    key = np.sort(key[rows >= 0])
    event = by_latency[key % n]
    key //= n
    starts, counts, _ = _runs(key)
    sums = np.add.reduceat(np.take(values, event, axis=0), starts, axis=0)
    sketch = np.bitwise_or.reduceat(np.take(bits, event, axis=0), starts, axis=0)
    p95 = latency[event[starts + np.floor(0.95 * (counts - 1)).astype(np.int64)]]
    return _split(key[starts], span, b0, offsets, sums, sketch, p95)


def _split(group: IntArray, span: int, b0: int, offsets: IntArray, sums: F64, sketch: U32,
           p95: npt.NDArray[np.floating[Any]]) -> list[Groups]:  # fmt: skip
    """Per entity type: rows and buckets of the (sorted) groups, with their aggregates."""
    gid, gb = np.divmod(group, span)
    cuts = np.searchsorted(gid, offsets).tolist()
    return [(gid[a:z] - off, gb[a:z] + b0, sums[a:z], sketch[a:z], p95[a:z])
            for a, z, off in zip(cuts[:-1], cuts[1:], offsets[:-1].tolist(), strict=True)]  # fmt: skip


def _runs(key: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Start, length and run number (per element) of the runs of equal values of a sorted array."""
    first = np.empty(len(key), dtype=bool)
    first[:1] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.empty(len(starts), dtype=np.int64)
    counts[:-1] = starts[1:] - starts[:-1]
    counts[-1:] = len(key) - starts[-1:]
    return starts, counts, np.cumsum(first) - 1


def _whole(amounts: F64) -> bool:
    """Whole numbers whose sums are exact in float64 in any order."""
    return bool(np.array_equal(amounts, np.trunc(amounts)) and float(np.abs(amounts).sum()) < 2.0**53)


def _values(status: IntArray, amounts: F64) -> F64:
    """Each event's METRICS (requests, errors, the counted statuses, the amounts)."""
    values = np.empty((len(status), 2 + len(_STATUS) + amounts.shape[1]))
    values[:, 0] = 1.0
    values[:, 1] = status >= 400
    for i, code in enumerate(_STATUS, start=2):
        values[:, i] = status == code
    values[:, 2 + len(_STATUS) :] = amounts
    return values
