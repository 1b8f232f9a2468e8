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

from detectors.ml.features.sketch import Factorized, factorize

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

    def rows_for(self, keys: npt.NDArray[np.object_], bucket: IntArray, factorized: Factorized | None = None
                 ) -> IntArray:  # fmt: skip
        """Row of each event's entity (-1 when the event has none); new entities are added (first seen first)."""
        codes, uniques = factorized if factorized is not None else factorize(keys)
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
        slot = pb % self.slots
        current = self.slot_bucket[pr, slot]
        stale = current < pb
        if stale.any():
            r, s = pr[stale], slot[stale]
            self.sums[r, s] = 0.0
            self.sketch[r, s] = 0
            self.lat[r, s] = 0.0
            self.slot_bucket[r, s] = pb[stale]
        ok = current <= pb  # a slot already holding a newer bucket: the event is too late for it
        if not ok.all():
            pr, pb, slot, sums, sketch, p95 = pr[ok], pb[ok], slot[ok], sums[ok], sketch[ok], p95[ok]
        self.sums[pr, slot] += sums.astype(np.float32)
        self.sketch[pr, slot] |= sketch
        self.lat[pr, slot] = np.maximum(self.lat[pr, slot], p95.astype(np.float32))
        np.maximum.at(self.last, pr, pb.astype(np.int32))
        return np.asarray((pr << 32) | pb, dtype=np.int64)

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


Groups = tuple[IntArray, IntArray, F64, U32, npt.NDArray[np.floating[Any]]]
_STATUS: Final = (401, 403, 404, 429)  # counted one by one (METRICS 2-5), after requests and errors (>= 400)


def group_events(rows: IntArray, sizes: Sequence[int], bucket: IntArray, status: IntArray, amounts: F64,
                 latency: F64, bits: U32) -> list[Groups]:  # fmt: skip
    """Events per (entity type, row, bucket), summed: ``(rows, buckets, sums, sketches, latency p95)`` per type.

    ``rows``: (types, events), -1 where an event has no entity of a type; ``sizes``: the rows of each type;
    ``amounts``: bytes out, input and output tokens. Sums are the METRICS (requests, errors, the four status
    counts, then the amounts), summed in latency order within a group (ties in event order). When the amounts are
    whole numbers any order gives the same sums: two sorts of combined keys (group and event, group and latency)
    then group every type at once, and the p95 is read in float32 (what the slots keep)."""
    n = len(bucket)
    if not n:
        return [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2 + len(_STATUS) + amounts.shape[1])),
                 np.zeros((0, bits.shape[1]), np.uint32), np.zeros(0)) for _ in sizes]  # fmt: skip
    b0 = int(bucket.min())
    span = int(bucket.max()) - b0 + 1
    offsets = np.array([0, *accumulate(sizes)], dtype=np.int64)
    if int(offsets[-1]) * span >= 1 << 31 or not _whole(amounts) or bits.shape[1] % 2:
        return _group_in_latency_order(rows, offsets, bucket, _values(status, amounts), latency, bits)
    group = (rows + offsets[:-1, None]) * span + (bucket - b0)  # (types, events)
    valid = rows >= 0
    key = np.sort((group * n + np.arange(n))[valid])
    event = key % n
    key //= n
    starts, counts, label = _runs(key)
    values = np.empty((len(starts), 2 + len(_STATUS) + amounts.shape[1]))
    values[:, 0] = counts
    kinds = np.bincount(label * 6 + _status_kind(status)[event], minlength=len(starts) * 6).reshape(-1, 6)
    values[:, 1] = counts - kinds[:, 0]
    values[:, 2:6] = kinds[:, 1:5]
    values[:, 6:] = np.add.reduceat(np.take(amounts, event, axis=0), starts, axis=0)  # take: faster than [event]
    sketch = np.bitwise_or.reduceat(np.take(np.ascontiguousarray(bits).view(np.uint64), event, axis=0), starts, axis=0)
    sketch = sketch.view(np.uint32)  # two sketches per 64-bit word: half the work
    by_latency = np.sort(((group << 32) | _ordered_bits(latency))[valid])
    p95 = _float_of(by_latency[starts + np.floor(0.95 * (counts - 1)).astype(np.int64)] & 0xFFFFFFFF)
    return _split(key[starts], span, b0, offsets, values, sketch, p95)


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


def _status_kind(status: IntArray) -> npt.NDArray[np.intp]:
    """0 below 400, 1-4 the counted statuses (:data:`_STATUS`), 5 other errors."""
    kind = np.where(status >= 400, 5, 0)
    for i, code in enumerate(_STATUS, start=1):
        kind[status == code] = i
    return kind


def _values(status: IntArray, amounts: F64) -> F64:
    """Each event's METRICS (requests, errors, the counted statuses, the amounts)."""
    values = np.empty((len(status), 2 + len(_STATUS) + amounts.shape[1]))
    values[:, 0] = 1.0
    values[:, 1] = status >= 400
    for i, code in enumerate(_STATUS, start=2):
        values[:, i] = status == code
    values[:, 2 + len(_STATUS) :] = amounts
    return values


def _ordered_bits(latency: F64) -> IntArray:
    """float32 latencies as 32-bit unsigned keys in the order of their values (NaN last, like ``np.sort``)."""
    f32 = latency.astype(np.float32)
    f32[np.isnan(f32)] = np.nan
    i32 = (f32 + np.float32(0.0)).view(np.int32)  # + 0.0: -0.0 becomes 0.0
    return (i32 ^ ((i32 >> 31) & 0x7FFFFFFF)).astype(np.int64) + (1 << 31)


def _float_of(ordered: IntArray) -> F32:
    """Inverse of :func:`_ordered_bits`."""
    i32 = (ordered - (1 << 31)).astype(np.int32)
    return np.asarray((i32 ^ ((i32 >> 31) & 0x7FFFFFFF)).view(np.float32), dtype=np.float32)
