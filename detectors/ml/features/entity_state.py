"""Per-entity window state in flat numpy arrays: bounded memory, vectorized updates, no per-event Python objects.

One :class:`EntityTable` per entity type. Row ``i`` of every array belongs to one entity (``keys[i]``,
``index[key] == i``). Each entity keeps a ring of ``K`` hop slots (``K = longest window / hop``), each slot holding
additive metrics (float32), a latency p95 estimate and one 32-bit distinct-value sketch per categorical field
(linear counting), plus its history: the first-seen sketches and EWMA baselines of a few hop metrics. With the
default windows (1 and 15 minutes) that is 1,460 bytes of arrays per entity, plus the key in the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

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
            for i in new.tolist():
                rows[i] = self._add(uniques[i], int(first_bucket[i]))
        return np.asarray(rows[codes], dtype=np.int64)

    def _add(self, key: str, bucket: int) -> int:
        row = len(self.keys)
        if row >= self.n_obs.shape[0]:
            self._allocate(row + row // 4 + 1024)  # grow by a quarter: little slack
        self.index[key] = row
        self.keys.append(key)
        for name in _ARRAYS:  # the row may have belonged to an evicted entity
            getattr(self, name)[row] = -1 if name == "slot_bucket" else 0
        self.first[row] = bucket
        self.last[row] = bucket
        return row

    def update(self, rows: IntArray, bucket: IntArray, values: npt.NDArray[np.float64], latency: F64, bits: U32
               ) -> IntArray:  # fmt: skip
        """Add events; returns the (row, bucket) pairs they touched, as ``row << 32 | bucket``."""
        (groups,) = group_events(rows[None], [len(self)], bucket, values, latency, bits)
        return self.add_groups(*groups)

    def add_groups(self, pr: IntArray, pb: IntArray, sums: F64, sketch: U32, p95: F64) -> IntArray:
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


Groups = tuple[IntArray, IntArray, F64, U32, F64]


def group_events(rows: IntArray, sizes: Sequence[int], bucket: IntArray, values: F64, latency: F64, bits: U32
                 ) -> list[Groups]:  # fmt: skip
    """Events per (entity type, row, bucket), summed: ``(rows, buckets, sums, sketches, latency p95)`` per type.

    ``rows``: (types, events), -1 where an event has no entity of a type; ``sizes``: the rows of each type. One
    sort of a combined key (type and row, bucket, latency rank) groups every type at once; within a group events
    are summed in latency order (ties in event order)."""
    n = len(bucket)
    if not n:
        return [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, values.shape[1])),
                 np.zeros((0, bits.shape[1]), np.uint32), np.zeros(0)) for _ in sizes]  # fmt: skip
    b0 = int(bucket.min())
    span = int(bucket.max()) - b0 + 1
    offsets = np.cumsum([0, *sizes])
    if int(offsets[-1]) * span * n >= 1 << 62:  # the combined key does not fit: one type at a time
        return [group_events(r[None], [size], bucket, values, latency, bits)[0]
                for r, size in zip(rows, sizes, strict=True)]  # fmt: skip
    by_latency = np.argsort(latency, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_latency] = np.arange(n)
    key = ((rows + offsets[:-1, None]) * span + (bucket - b0)) * n + rank
    key = np.sort(key[rows >= 0])
    group, event = np.divmod(key, n)
    event = by_latency[event]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    sums = np.add.reduceat(values[event], starts, axis=0)
    sketch = np.bitwise_or.reduceat(bits[event], starts, axis=0)
    p95 = latency[event[starts + np.floor(0.95 * (counts - 1)).astype(np.int64)]]
    gid, gb = np.divmod(group[starts], span)
    cuts = np.searchsorted(gid, offsets).tolist()
    return [(gid[a:z] - off, gb[a:z] + b0, sums[a:z], sketch[a:z], p95[a:z])
            for a, z, off in zip(cuts[:-1], cuts[1:], offsets[:-1].tolist(), strict=True)]  # fmt: skip
