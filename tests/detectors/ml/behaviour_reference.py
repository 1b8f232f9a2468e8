"""The behaviour features as they were before the speed work (commit 9175fcc), frozen: what the fast code must equal.

sketch.py, entity_state.py and behaviour.py of that commit, in one module; only the imports changed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from detectors.ml.features.columns import ENTITY_FIELDS, EventColumns

Matrix = npt.NDArray[np.float64]
U32 = npt.NDArray[np.uint32]


_BIT_CACHE: dict[Any, int] = {}


Factorized = tuple[npt.NDArray[np.intp], list[Any]]


def factorize(column: npt.NDArray[np.object_]) -> Factorized:
    """Codes (-1 for missing) and distinct values of a column: hashed once, shared by sketches and entity rows."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return codes, uniques.tolist()


def bits_of(column: npt.NDArray[np.object_], factorized: Factorized | None = None) -> U32:
    """One bit (of 32) per distinct value, from a stable hash (crc32, not the salted ``hash``)."""
    codes, uniques = factorized if factorized is not None else factorize(column)
    if len(_BIT_CACHE) > 1_000_000:
        _BIT_CACHE.clear()
    ub = np.zeros(len(uniques), dtype=np.uint32)
    for i, value in enumerate(uniques):
        bit = _BIT_CACHE.get(value)
        if bit is None:
            bit = _BIT_CACHE[value] = 1 << (zlib.crc32(str(value).encode()) & 31)
        ub[i] = bit
    out = np.zeros(len(column), dtype=np.uint32)
    valid = codes >= 0
    out[valid] = ub[codes[valid]]
    return out


def distinct(sketch: U32) -> Matrix:
    """Linear-counting estimate of distinct values from 32-bit sketches (exact-ish to ~10, saturates near 110)."""
    zeros = 32.0 - np.bitwise_count(sketch).astype(np.float64)
    return np.asarray(32.0 * np.log(32.0 / np.maximum(zeros, 0.5)), dtype=np.float64)


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


Matrix = npt.NDArray[np.float64]
U32 = npt.NDArray[np.uint32]
BoolArray = npt.NDArray[np.bool_]

METRICS: Final = ("requests", "errors", "status_401", "status_403", "status_404", "status_429", "bytes_out",
                  "input_tokens", "output_tokens")  # fmt: skip
SKETCHES: Final = ("routes", "paths", "ips", "countries", "asns", "user_agents", "users", "api_keys")
WINDOW_FEATURES: Final = ("requests", "error_ratio", "status_401", "status_403", "status_404", "status_429", "routes",
                          "paths", "ips", "countries", "asns", "user_agents", "users", "api_keys", "bytes_out",
                          "input_tokens", "output_tokens", "latency_p95", "offhours_share")  # fmt: skip
NEW_FEATURES: Final = (
    "new_entity",
    "new_routes",
    "new_ips",
    "new_countries",
    "new_asns",
    "new_user_agents",
    "new_api_keys",
)
BASELINES: Final = ("requests", "error_ratio", "bytes_out", "output_tokens", "ips", "paths")
#: Context from the entities an entity was seen with in the hop (the worst of them, over the longest window):
#: the API keys' distinct IPs and 404s, the source IPs' authentication failures (401 and 403).
CONTEXT_FEATURES: Final = ("key_ips", "key_not_found", "ip_auth_failures")
_CONTEXT: Final = {
    "key_ips": ("api_key", "ips"),
    "key_not_found": ("api_key", "status_404"),
    "ip_auth_failures": ("source_ip", "status_401+status_403"),
}  # linked type, what (sum of metrics)
_LINKED: Final = ("api_key", "source_ip")  # entity types other entities are linked to, for the context
_SEEN_SKETCH: Final = {"api_key": SKETCHES.index("api_keys"), "source_ip": SKETCHES.index("ips")}
_SEEN_BITS_MAX: Final = 16  # a first-seen sketch with more bits set no longer tells known values from new ones
_RATIOS: Final = frozenset({"error_ratio", "offhours_share"})
_NEW_SKETCH: Final = (0, 2, 3, 4, 5, 7)  # sketches with a first-seen flag (not paths: ids are always new)
CHUNK_HOPS: Final = 2  # hops added at once (a batch spanning more is cut)
_Z_FLOOR: Final = np.array([0.25, 0.01, 0.25, 0.25, 0.1, 0.1])  # variance floors of the baselines


def _unique_links(rows: npt.NDArray[np.int64], bucket: npt.NDArray[np.int64], other: npt.NDArray[np.int64]
                  ) -> npt.NDArray[np.int64]:  # fmt: skip
    """The distinct ``[row << 32 | bucket, other]`` links (one 1-D sort of a combined key when it fits in 63 bits)."""
    if not len(rows):
        return np.zeros((0, 2), np.int64)
    b0, span, n_other = int(bucket.min()), int(bucket.max() - bucket.min()) + 1, int(other.max()) + 1
    if (int(rows.max()) + 1) * n_other * span < 1 << 62:
        key = np.unique((rows * n_other + other) * span + (bucket - b0))
        bucket, key = key % span + b0, key // span
        rows, other = key // n_other, key % n_other
        return np.column_stack([(rows << 32) | bucket, other])
    pair = (rows << 32) | bucket
    order = np.lexsort((other, pair))
    pair, other = pair[order], other[order]
    first = np.r_[True, (pair[1:] != pair[:-1]) | (other[1:] != other[:-1])]
    return np.column_stack([pair[first], other[first]])


@dataclass(frozen=True)
class BehaviourConfig:
    """Windows in minutes (the first is the hop; each a multiple of it), entity types, history settings."""

    windows: tuple[int, ...] = (1, 15)
    entities: tuple[str, ...] = tuple(ENTITY_FIELDS)
    lateness_hops: int = 1
    offhours_utc: tuple[int, int] = (22, 6)  # [start, end) hours UTC, wrapping midnight
    ewma_alpha: float = 0.1
    min_history: int = 3  # hops of history before the deviation features count
    idle_ttl_minutes: int = 7 * 24 * 60  # entities idle longer are forgotten

    def __post_init__(self) -> None:
        hop = self.windows[0]
        if hop < 1 or any(w % hop or w < hop for w in self.windows):
            raise ValueError(f"windows must be positive multiples of the first (the hop): {self.windows}")
        if 60 % hop:  # each hop then lies in one hour: its off-hours share is 0 or 1, no state needed
            raise ValueError(f"the hop (first window) must divide an hour: {hop}")
        unknown = set(self.entities) - set(ENTITY_FIELDS)
        if unknown:
            raise ValueError(f"unknown entity types {sorted(unknown)}; known: {', '.join(ENTITY_FIELDS)}")


def feature_names(config: BehaviourConfig) -> list[str]:
    """Column names of the feature matrix, in order."""
    names = [f"{f}_{w}m" for w in config.windows for f in WINDOW_FEATURES]
    return names + list(NEW_FEATURES) + [f"{b}_vs_usual" for b in BASELINES] + list(CONTEXT_FEATURES)


@dataclass
class BehaviourRows:
    """The rows of one entity type for one closed hop (``bucket`` = epoch minute // hop)."""

    entity_type: str
    bucket: int
    keys: list[str]
    X: Matrix
    usual: Matrix  # the entity's EWMA baseline of BASELINES (back in natural units)
    history: npt.NDArray[np.int32]  # hops of history behind the baseline
    _rows: npt.NDArray[np.int64] = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    _hop: Matrix = field(repr=False, default_factory=lambda: np.zeros((0, 0)))
    _sketch: U32 = field(repr=False, default_factory=lambda: np.zeros((0, 0), np.uint32))


class EntityBehaviour:
    """Incremental entity-window features; ``process`` returns the rows of the hops its batch closed."""

    def __init__(self, config: BehaviourConfig | None = None) -> None:
        self.config = config or BehaviourConfig()
        c = self.config
        self.hop = c.windows[0]
        self.slots = c.windows[-1] // self.hop + c.lateness_hops + CHUNK_HOPS  # slots a pending row may need
        self.tables = {t: EntityTable(self.slots, len(METRICS), len(SKETCHES), len(BASELINES)) for t in c.entities}
        self.feature_names = feature_names(c)
        self._pending: dict[str, npt.NDArray[np.int64]] = {t: np.zeros(0, np.int64) for t in c.entities}
        self._links: dict[tuple[str, str], npt.NDArray[np.int64]] = self._no_links()
        self._max_bucket = -1
        self.closed_until = -1  # every bucket below this one is closed
        self._next_evict = -1
        self.late_events = 0
        start, end = c.offhours_utc
        hours = np.arange(24)
        self._offhours = (hours >= start) | (hours < end) if start > end else (hours >= start) & (hours < end)

    def process(self, cols: EventColumns, decide: Callable[[BehaviourRows], BoolArray] | None = None
                ) -> list[BehaviourRows]:  # fmt: skip
        """Add a batch; return the rows of every hop it closed (``decide`` says which rows to learn).

        The batch is cut into chunks of at most ``CHUNK_HOPS`` hops (in time order); before a chunk is added,
        every hop whose window its slots would overwrite is closed, so rows never lose data."""
        if not len(cols):
            return []
        bucket = cols.minute // self.hop
        lateness = self.config.lateness_hops
        if int(bucket.max() - bucket.min()) < CHUNK_HOPS:
            chunks: list[tuple[EventColumns, npt.NDArray[np.int64]]] = [(cols, bucket)]
        else:
            order = np.argsort(bucket, kind="stable")
            sorted_b = bucket[order]
            cuts = np.flatnonzero(np.diff(sorted_b // CHUNK_HOPS)) + 1
            chunks = [(cols.take(part), bucket[part]) for part in np.split(order, cuts)]
        out: list[BehaviourRows] = []
        for part, part_bucket in chunks:
            out += self._close(int(part_bucket.max()) - lateness - CHUNK_HOPS + 1, decide)
            self._ingest(part, part_bucket)
            out += self._close(self._max_bucket - lateness, decide)
        return out

    def flush(self, decide: Callable[[BehaviourRows], BoolArray] | None = None) -> list[BehaviourRows]:
        """End of input: close every open hop."""
        return self._close(self._max_bucket + 1, decide)

    def reset_clock(self) -> None:
        """Forget the open windows and the watermark, keep each entity's history (first-seen sketches, baselines).

        For scoring data that does not continue the stream this state last saw (e.g. a trained model's state)."""
        for table in self.tables.values():
            table.slot_bucket[:] = -1
            table.sums[:] = 0.0
            table.sketch[:] = 0
            table.lat[:] = 0.0
        self._pending = {t: np.zeros(0, np.int64) for t in self.tables}
        self._links = self._no_links()
        self._max_bucket = self.closed_until = self._next_evict = -1

    def _no_links(self) -> dict[tuple[str, str], npt.NDArray[np.int64]]:
        """(entity type, linked type) -> rows ``[entity row << 32 | bucket, linked row]`` of the open hops."""
        return {(t, lt): np.zeros((0, 2), np.int64) for t in self.tables for lt in _LINKED
                if lt in self.tables and lt != t}  # fmt: skip

    def entity_count(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def _ingest(self, cols: EventColumns, bucket: npt.NDArray[np.int64]) -> None:
        late = bucket < self.closed_until
        if late.any():
            self.late_events += int(late.sum())
            keep = np.flatnonzero(~late)
            cols, bucket = cols.take(keep), bucket[keep]
            if not len(cols):
                return
        self._max_bucket = max(self._max_bucket, int(bucket.max()))
        status = cols.status
        values = np.column_stack([
            np.ones(len(cols)), status >= 400, status == 401, status == 403, status == 404, status == 429,
            cols.bytes_out, cols.input_tokens, cols.output_tokens,
        ]).astype(np.float64)  # fmt: skip
        route = np.where(pd.isna(cols.route), cols.path, cols.route)
        ent = cols.entities
        fact = {etype: factorize(ent[etype]) for etype in ("source_ip", "user", "api_key")}  # hashed once
        bits = np.column_stack([bits_of(route), bits_of(cols.path), bits_of(ent["source_ip"], fact["source_ip"]),
                                bits_of(cols.country), bits_of(cols.asn), bits_of(cols.user_agent),
                                bits_of(ent["user"], fact["user"]),
                                bits_of(ent["api_key"], fact["api_key"])])  # fmt: skip
        latency = cols.latency_ms
        by_latency = np.argsort(latency, kind="stable")
        rows_of: dict[str, npt.NDArray[np.int64]] = {}
        for etype, table in self.tables.items():
            rows = rows_of[etype] = table.rows_for(ent[etype], bucket, fact.get(etype))
            ok = rows >= 0
            if ok.all():
                pairs = table.update(rows, bucket, values, latency, bits, by_latency)
            else:
                pairs = table.update(rows[ok], bucket[ok], values[ok], latency[ok], bits[ok])
            self._pending[etype] = np.concatenate([self._pending[etype], pairs])
        for (etype, linked), links in self._links.items():  # who was seen with which key and IP (the context)
            rows, other = rows_of[etype], rows_of[linked]
            both = (rows >= 0) & (other >= 0)
            link = _unique_links(rows[both], bucket[both], other[both])
            self._links[etype, linked] = np.vstack([links, link])  # duplicates are harmless (max)

    def _close(self, before: int, decide: Callable[[BehaviourRows], BoolArray] | None) -> list[BehaviourRows]:
        if before <= self.closed_until:
            return []
        by_bucket: dict[int, dict[str, npt.NDArray[np.int64]]] = {}
        for etype, pairs in self._pending.items():
            pairs = np.unique(pairs)
            buckets = pairs & 0xFFFFFFFF
            closed = buckets < before
            self._pending[etype] = pairs[~closed]
            for b in np.unique(buckets[closed]).tolist():
                by_bucket.setdefault(b, {})[etype] = pairs[closed & (buckets == b)] >> 32
        out: list[BehaviourRows] = []
        for b in sorted(by_bucket):
            for etype, rows in by_bucket[b].items():
                batch = self._rows(etype, b, rows)
                learn = decide(batch) if decide is not None else np.ones(len(rows), dtype=bool)
                self._learn(etype, batch, learn)
                out.append(batch)
        self.closed_until = before
        for pair, link in self._links.items():
            self._links[pair] = link[(link[:, 0] & 0xFFFFFFFF) >= before]
        self._maybe_evict()
        return out

    def _rows(self, etype: str, b: int, rows: npt.NDArray[np.int64]) -> BehaviourRows:
        t = self.tables[etype]
        sb = t.slot_bucket[rows]
        cols: list[Matrix] = []
        hop_sketch: U32 = np.zeros(0, np.uint32)
        hop_vals: Matrix = np.zeros(0)
        off = self._offhours[(sb * self.hop // 60) % 24]  # off-hours slots (a hop lies in one hour)
        all_sums, all_sketch, all_lat = t.sums[rows], t.sketch[rows], t.lat[rows]  # gathered once
        for w in self.config.windows:
            if w == self.hop:  # one slot: read it directly
                slot = b % self.slots
                here = sb[:, slot] == b
                sums = np.where(here[:, None], all_sums[:, slot], 0.0).astype(np.float64)
                night = np.where(here & off[:, slot], sums[:, 0], 0.0)
                sketch = np.where(here[:, None], all_sketch[:, slot], np.uint32(0))
                p95 = np.where(here, all_lat[:, slot], 0.0)
            else:
                inside = (sb > b - w // self.hop) & (sb <= b)
                sums = np.einsum("rk,rkm->rm", inside.astype(np.float32), all_sums).astype(np.float64)
                night = np.einsum("rk,rk->r", (inside & off).astype(np.float32), all_sums[:, :, 0]).astype(np.float64)
                sketch = np.bitwise_or.reduce(np.where(inside[:, :, None], all_sketch, np.uint32(0)), axis=1)
                p95 = np.where(inside, all_lat, 0.0).max(axis=1)
            counts = distinct(sketch)
            n = np.maximum(sums[:, 0], 1.0)
            c = sums
            cols += [np.log1p(c[:, 0]), c[:, 1] / n, *np.log1p(c[:, 2:6]).T, *np.log1p(counts).T,
                     *np.log1p(c[:, 6:9]).T, np.log1p(p95), night / n]  # fmt: skip
            if w == self.config.windows[0]:
                hop_sketch = sketch
                hop_vals = np.column_stack([cols[0], cols[1], np.log1p(c[:, 6]), np.log1p(c[:, 8]),
                                            np.log1p(counts[:, 2]), np.log1p(counts[:, 1])])  # fmt: skip
        new_bits = hop_sketch & ~t.seen[rows]
        cols.append((t.first[rows] == b).astype(np.float64))
        cols += list(np.log1p(np.bitwise_count(new_bits[:, list(_NEW_SKETCH)]).astype(np.float64)).T)
        mean, var = t.ewma[rows, :, 0].astype(np.float64), t.ewma[rows, :, 1].astype(np.float64)
        history = t.n_obs[rows].copy()
        z = (hop_vals - mean) / np.sqrt(var + _Z_FLOOR)
        z = np.where((history >= self.config.min_history)[:, None], np.clip(z, -50.0, 50.0), 0.0)
        cols += list(z.T)
        cols += self._contexts(etype, b, rows)
        usual = mean.copy()
        usual[:, [0, 2, 3, 4, 5]] = np.expm1(usual[:, [0, 2, 3, 4, 5]])
        keys = [t.keys[i] for i in rows.tolist()]
        return BehaviourRows(etype, b, keys, np.column_stack(cols), usual, history, rows, hop_vals, hop_sketch)

    def _contexts(self, etype: str, b: int, rows: npt.NDArray[np.int64]) -> list[Matrix]:
        """The context features (highest value among the entities linked to each row's entity in hop ``b``)."""
        out = {name: np.zeros(len(rows)) for name in CONTEXT_FEATURES}
        for linked in _LINKED:
            names = [name for name in CONTEXT_FEATURES if _CONTEXT[name][0] == linked]
            if linked == etype:  # its own values
                out |= {name: self._linked_value(linked, _CONTEXT[name][1], b, rows) for name in names}
                continue
            link = self._links.get((etype, linked))
            if link is None or not len(link):
                continue
            link = link[(link[:, 0] & 0xFFFFFFFF) == b]
            if not len(link):
                continue
            owner = link[:, 0] >> 32
            keep = np.ones(len(link), dtype=bool)
            if etype != "org":  # an org's context is its worst member, habitual or not (its sketches fill up anyway)
                seen = self.tables[etype].seen[owner, _SEEN_SKETCH[linked]]  # what the entity knew before
                linked_keys = self.tables[linked].keys
                bit = bits_of(np.array([linked_keys[i] for i in link[:, 1].tolist()], dtype=object))
                settled = self.tables[etype].first[owner] <= b - self.config.windows[-1] // self.hop
                keep = ~(((seen & bit) != 0) & (np.bitwise_count(seen) <= _SEEN_BITS_MAX) & settled)  # not a habit
            where = np.searchsorted(rows, owner)
            found = keep & (where < len(rows)) & (rows[np.minimum(where, len(rows) - 1)] == owner)
            for name in names:
                value = self._linked_value(linked, _CONTEXT[name][1], b, link[found, 1])
                np.maximum.at(out[name], where[found], value)
        return [out[name] for name in CONTEXT_FEATURES]

    def _linked_value(self, linked: str, what: str, b: int, lr: npt.NDArray[np.int64]) -> Matrix:
        """log1p of ``what`` (a sketch's distinct count or a sum of metrics) over the longest window ending at ``b``."""
        table = self.tables[linked]
        inside = (table.slot_bucket[lr] > b - self.config.windows[-1] // self.hop) & (table.slot_bucket[lr] <= b)
        if what in SKETCHES:
            sketch = np.bitwise_or.reduce(np.where(inside, table.sketch[lr, :, SKETCHES.index(what)], 0), axis=1)
            value = np.log1p(distinct(sketch.astype(np.uint32)))
        else:
            metrics = [METRICS.index(m) for m in what.split("+")]
            value = np.log1p((inside * table.sums[lr][:, :, metrics].sum(axis=2)).sum(axis=1, dtype=np.float64))
        return np.asarray(value, dtype=np.float64)

    def _learn(self, etype: str, batch: BehaviourRows, learn: BoolArray) -> None:
        t, a = self.tables[etype], self.config.ewma_alpha
        rows, x = batch._rows[learn], batch._hop[learn]
        if not len(rows):
            return
        mean, var = t.ewma[rows, :, 0].astype(np.float64), t.ewma[rows, :, 1].astype(np.float64)
        fresh = (t.n_obs[rows] == 0)[:, None]
        diff = x - mean
        t.ewma[rows, :, 0] = np.where(fresh, x, mean + a * diff)
        t.ewma[rows, :, 1] = np.where(fresh, 0.0, (1.0 - a) * (var + a * diff * diff))
        t.seen[rows] |= batch._sketch[learn]
        t.n_obs[rows] += 1

    def _maybe_evict(self) -> None:
        if self.closed_until < self._next_evict:
            return
        ttl = max(1, self.config.idle_ttl_minutes // self.hop)
        self._next_evict = self.closed_until + max(1, ttl // 10)
        for etype, table in self.tables.items():
            pending = self._pending[etype]
            linked = [link[:, 1] for (_, other), link in self._links.items() if other == etype]
            mapping = table.evict(self.closed_until - ttl, np.concatenate([pending >> 32, *linked]))
            if mapping is None:
                continue
            self._pending[etype] = (mapping[pending >> 32] << 32) | (pending & 0xFFFFFFFF)
            for (owner, other), link in self._links.items():  # the open hops' links follow the moved rows
                if owner == etype:
                    link = np.column_stack([(mapping[link[:, 0] >> 32] << 32) | (link[:, 0] & 0xFFFFFFFF), link[:, 1]])
                if other == etype:
                    link = np.column_stack([link[:, 0], mapping[link[:, 1]]])
                self._links[owner, other] = link
