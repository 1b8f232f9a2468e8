"""Per-entity window state in flat numpy arrays: bounded memory, vectorized updates, no per-event Python objects.

One :class:`EntityTable` per entity type. Row ``i`` of every array belongs to one entity (``keys[i]``,
``index[key] == i``). Each entity keeps a ring of ``K`` hop slots (``K = longest window / hop``), each slot holding
additive metrics (float32), a latency p95 estimate and one 32-bit distinct-value sketch per categorical field
(linear counting), plus its history: the first-seen sketches and EWMA baselines of a few hop metrics. With the
default windows (1 and 15 minutes) that is 1,460 bytes of arrays per entity, plus the key in the index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

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

    def rows_for(self, keys: npt.NDArray[np.object_], bucket: IntArray,
                 factorized: tuple[npt.NDArray[np.intp], list[Any]] | None = None) -> IntArray:  # fmt: skip
        """Row of each event's entity (-1 when the event has none); new entities are added."""
        codes, uniques = factorized if factorized is not None else pd.factorize(keys, use_na_sentinel=True)
        rows = np.empty(len(uniques), dtype=np.int64)
        index = self.index
        first_bucket: IntArray | None = None
        for i, key in enumerate(uniques if isinstance(uniques, list) else uniques.tolist()):
            row = index.get(key)
            if row is None:
                if first_bucket is None:
                    first_bucket = np.full(len(uniques), np.iinfo(np.int64).max, dtype=np.int64)
                    np.minimum.at(first_bucket, codes[codes >= 0], bucket[codes >= 0])
                row = self._add(key, int(first_bucket[i]))
            rows[i] = row
        out = np.full(len(codes), -1, dtype=np.int64)
        valid = codes >= 0
        out[valid] = rows[codes[valid]]
        return out

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

    def update(self, rows: IntArray, bucket: IntArray, values: npt.NDArray[np.float64], latency: F64, bits: U32,
               by_latency: IntArray | None = None) -> IntArray:  # fmt: skip
        """Add events; returns the (row, bucket) pairs they touched, as ``row << 32 | bucket``.

        ``by_latency``: the events' order by latency, when the caller sorted them already (shared by entity types)."""
        if len(rows) == 0:
            return np.zeros(0, dtype=np.int64)
        pair = rows * (1 << 32) + bucket
        if by_latency is None:
            by_latency = np.argsort(latency, kind="stable")
        order = by_latency[np.argsort(pair[by_latency], kind="stable")]  # by pair, then latency: one sort for all
        sorted_pair = pair[order]
        starts = np.flatnonzero(np.r_[True, sorted_pair[1:] != sorted_pair[:-1]])
        uniques = sorted_pair[starts]
        counts = np.diff(np.r_[starts, len(order)])
        pr, pb = uniques >> 32, uniques & 0xFFFFFFFF
        sums = np.add.reduceat(values[order], starts, axis=0)
        sketch = np.bitwise_or.reduceat(bits[order], starts, axis=0)
        p95 = latency[order][starts + np.floor(0.95 * (counts - 1)).astype(np.int64)]
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
        pr, pb, slot = pr[ok], pb[ok], slot[ok]
        self.sums[pr, slot] += sums[ok].astype(np.float32)
        self.sketch[pr, slot] |= sketch[ok]
        self.lat[pr, slot] = np.maximum(self.lat[pr, slot], p95[ok].astype(np.float32))
        np.maximum.at(self.last, pr, pb.astype(np.int32))
        return np.asarray(uniques[ok], dtype=np.int64)

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
