"""Behaviour per entity: sliding windows per API key, user, source IP and org, incrementally, per micro-batch.

Time is cut into hops (the shortest window, 1 minute by default; it must divide an hour). When a hop closes (the
newest event is more than ``lateness_hops`` hops later), every entity active in it gets one row: its features over
each window ending with that hop (1 and 15 minutes by default), its first-seen flags, its deviation from its own
history and its context. Per window: requests, error ratio, 401/403/404/429 counts, distinct routes, paths, IPs,
countries and ASNs (when enriched), user agents, users and API keys (32-bit linear-counting sketches), bytes out,
input and output tokens, latency p95 (the max of per-batch p95s within a hop: approximate), share of off-hours
requests (from the hops' hours: no state). History: values ever seen (first-seen flags) and EWMA baselines of six
hop metrics. Context (:data:`CONTEXT_FEATURES`), from the entities it was seen with in the hop, over the longest
window: ``key_ips`` (the widest IP spread of the API keys it used), ``key_not_found`` (their most 404s) and
``ip_auth_failures`` (the most 401/403 of the source IPs it came from). A key or IP the entity always used (in its
first-seen sketch, and the entity is older than the longest window) is its habit, not its context, and is left out
(for orgs too many values are habitual for the sketch to tell: their context is every member). So the victim of
credential stuffing, an IP using a leaked key and the org of either see the attacker's spread, while the owner's
usual IP does not. Rows are scored before they are learned, and ``decide`` may refuse to learn some (a model never
learns from the rows it flagged). Comparison with peers is the detector's job: one is trained per entity type on its
population of entity-windows.

Events older than the last closed hop are counted in ``late_events`` and left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate, pairwise
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors.ml.features.columns import ENTITY_FIELDS, EventColumns
from detectors.ml.features.entity_state import EntityTable, group_events
from detectors.ml.features.hop_contexts import link_max, row_positions
from detectors.ml.features.hop_windows import hop_windows
from detectors.ml.features.sketch import Factorized, bits_of, distinct

Matrix = npt.NDArray[np.float64]
U32 = npt.NDArray[np.uint32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

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
_NEW_SKETCH: Final = [0, 2, 3, 4, 5, 7]  # sketches with a first-seen flag (not paths: ids are always new)
CHUNK_HOPS: Final = 2  # hops added at once (a batch spanning more is cut)
_Z_FLOOR: Final = np.array([0.25, 0.01, 0.25, 0.25, 0.1, 0.1])  # variance floors of the baselines


_EXACT: Final = float(1 << 24)  # float32 sums of counts below this are exact (in any order)
_HOP_VALUES: Final = [WINDOW_FEATURES.index(b) for b in BASELINES]  # the hop window's columns behind BASELINES
_EXPM1: Final = [i for i, b in enumerate(BASELINES) if b not in _RATIOS]  # baselines kept as log1p


def _sorted_unique(values: IntArray) -> IntArray:
    """``np.unique`` of a 1-D int array by one sort (numpy's hash-based ``unique`` is slower on small arrays)."""
    values = np.sort(values)
    first = np.empty(len(values), dtype=bool)
    first[:1] = True
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return values[first]


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


@dataclass
class _Hop:
    """The features of one closed hop's rows of every entity type, stacked, with what the contexts need."""

    X: Matrix
    values: Matrix  # the hop values behind BASELINES
    sketch: U32  # the hop's sketches
    usual: Matrix
    history: npt.NDArray[np.int32]
    linked: Matrix  # each row's values for the contexts of the entities linked to it
    exact: BoolArray  # whether ``linked`` is exact (else computed again)
    seen: U32
    first: npt.NDArray[np.int32]


class EntityBehaviour:
    """Incremental entity-window features; ``process`` returns the rows of the hops its batch closed."""

    def __init__(self, config: BehaviourConfig | None = None) -> None:
        self.config = config or BehaviourConfig()
        c = self.config
        self.hop = c.windows[0]
        self.slots = c.windows[-1] // self.hop + c.lateness_hops + CHUNK_HOPS  # slots a pending row may need
        self.tables = {t: EntityTable(self.slots, len(METRICS), len(SKETCHES), len(BASELINES)) for t in c.entities}
        self.feature_names = feature_names(c)
        self._pending: dict[str, IntArray] = {t: np.zeros(0, np.int64) for t in c.entities}
        self._events: list[IntArray] = []  # the open hops' events: their row of each entity type, then bucket
        self._max_bucket = -1
        self.closed_until = -1  # every bucket below this one is closed
        self._next_evict = -1
        self.late_events = 0
        start, end = c.offhours_utc
        hours = np.arange(24)
        self._offhours = (hours >= start) | (hours < end) if start > end else (hours >= start) & (hours < end)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle, also a state saved before the open hops kept events (their links become two-entity events)."""
        links: dict[tuple[str, str], IntArray] | None = state.pop("_links", None)
        self.__dict__.update(state)
        if links is not None:
            self._events = self._events_of_links(links)

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
            chunks: list[tuple[EventColumns, IntArray]] = [(cols, bucket)]
        elif bool((bucket[1:] >= bucket[:-1]).all()):  # in time order (the usual case): the chunks are slices
            bounds = [0, *(np.flatnonzero(np.diff(bucket // CHUNK_HOPS)) + 1).tolist(), len(bucket)]
            chunks = [(cols.part(a, z), bucket[a:z]) for a, z in pairwise(bounds)]
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
        self._events = []
        self._max_bucket = self.closed_until = self._next_evict = -1

    def _link_pairs(self) -> list[tuple[str, str]]:
        """(entity type, linked type): whose context comes from which linked entities."""
        return [(t, lt) for t in self.tables for lt in _LINKED if lt in self.tables and lt != t]

    def _events_of_links(self, links: dict[tuple[str, str], IntArray]) -> list[IntArray]:
        """Links ``[entity row << 32 | bucket, linked row]`` (the former state) as events of two entities."""
        types = list(self.tables)
        out = []
        for (etype, linked), link in links.items():
            events = np.full((len(types) + 1, len(link)), -1, dtype=np.int64)
            events[types.index(etype)], events[-1] = link[:, 0] >> 32, link[:, 0] & 0xFFFFFFFF
            events[types.index(linked)] = link[:, 1]
            out.append(events)
        return [ev for ev in out if ev.shape[1]]

    def entity_count(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def _ingest(self, cols: EventColumns, bucket: IntArray) -> None:
        late = bucket < self.closed_until
        if late.any():
            self.late_events += int(late.sum())
            keep = np.flatnonzero(~late)
            cols, bucket = cols.take(keep), bucket[keep]
            if not len(cols):
                return
        self._max_bucket = max(self._max_bucket, int(bucket.max()))
        if not self.tables:
            return
        linked = dict.fromkeys(("source_ip", "user", "api_key", *self.tables))  # the sketches' and the tables'
        fact = {etype: cols.factorize(etype) for etype in linked}  # hashed once (or known from the columns step)
        bits = _bits(cols, fact)
        rows = np.stack([table.rows_for(fact[etype], bucket) for etype, table in self.tables.items()])
        sizes = [len(table) for table in self.tables.values()]
        amounts = np.column_stack([cols.bytes_out, cols.input_tokens, cols.output_tokens]).astype(np.float64)
        groups = group_events(rows, sizes, bucket, cols.status, amounts, cols.latency_ms, bits)
        for (etype, table), group in zip(self.tables.items(), groups, strict=True):
            self._pending[etype] = np.concatenate([self._pending[etype], table.add_groups(*group)])
        if self._link_pairs():  # who was seen with which key and IP: the context, when the hop closes
            self._events.append(np.concatenate([rows, bucket[None]]))

    def _close(self, before: int, decide: Callable[[BehaviourRows], BoolArray] | None) -> list[BehaviourRows]:
        if before <= self.closed_until:
            return []
        by_bucket: dict[int, dict[str, IntArray]] = {}
        for etype, pairs in self._pending.items():
            pairs = _sorted_unique(pairs)
            buckets = pairs & 0xFFFFFFFF
            closed = buckets < before
            self._pending[etype] = pairs[~closed]
            for b in _sorted_unique(buckets[closed]).tolist():
                by_bucket.setdefault(b, {})[etype] = pairs[closed & (buckets == b)] >> 32
        events = self._take_events(before)
        out: list[BehaviourRows] = []
        for b in sorted(by_bucket):
            out += self._close_hop(b, by_bucket[b], np.ascontiguousarray(events[:, events[-1] == b]), decide)
        self.closed_until = before
        self._maybe_evict()
        return out

    def _take_events(self, before: int) -> IntArray:
        """Remove and return the open events of buckets before ``before``."""
        if not self._events:
            return np.zeros((len(self.tables) + 1, 0), dtype=np.int64)
        events = np.concatenate(self._events, axis=1) if len(self._events) > 1 else self._events[0]
        closed = events[-1] < before
        self._events = [events[:, ~closed]] if not closed.all() else []
        return events[:, closed]

    def _close_hop(self, b: int, rows_of: dict[str, IntArray], events: IntArray,
                   decide: Callable[[BehaviourRows], BoolArray] | None) -> list[BehaviourRows]:  # fmt: skip
        """The rows of hop ``b``: computed for every entity type at once (stacked), decided and learned per type."""
        cuts = [0, *accumulate(len(rows) for rows in rows_of.values())]
        at = {etype: (a, z) for etype, a, z in zip(rows_of, cuts[:-1], cuts[1:], strict=True)}
        hop = self._hop_features(b, rows_of, cuts[-1])
        hop.X[:, -len(CONTEXT_FEATURES) :] = self._contexts(b, rows_of, at, hop, events)
        out: list[BehaviourRows] = []
        for etype, rows in rows_of.items():
            a, z = at[etype]
            keys = list(map(self.tables[etype].keys.__getitem__, rows.tolist()))
            batch = BehaviourRows(etype, b, keys, hop.X[a:z], hop.usual[a:z], hop.history[a:z], rows, hop.values[a:z],
                                  hop.sketch[a:z])  # fmt: skip
            learn = decide(batch) if decide is not None else np.ones(len(keys), dtype=bool)
            self._learn(etype, batch, learn)
            out.append(batch)
        return out

    def _hop_features(self, b: int, rows_of: dict[str, IntArray], n: int) -> _Hop:
        """Window, first-seen and deviation features of every row of hop ``b`` (context columns left 0)."""
        windows = self.config.windows
        g = hop_windows([self.tables[etype] for etype in rows_of], list(rows_of.values()), b,
                        tuple(w // self.hop for w in windows), self.hop, self._offhours)  # fmt: skip
        X = np.zeros((n, len(self.feature_names)))
        for i in range(len(windows)):
            _window_columns(X[:, i * len(WINDOW_FEATURES) : (i + 1) * len(WINDOW_FEATURES)], g.sums[i], g.night[i],
                            g.sketch[i], g.p95[i])  # fmt: skip
        linked, exact = _linked_columns(X[:, (len(windows) - 1) * len(WINDOW_FEATURES) :], g.sums[-1])
        hop_sketch = g.sketch[0]
        at = len(windows) * len(WINDOW_FEATURES)
        hop_vals = X[:, _HOP_VALUES]
        X[:, at] = g.first == b
        new_bits = hop_sketch[:, _NEW_SKETCH] & ~g.seen[:, _NEW_SKETCH]
        X[:, at + 1 : at + len(NEW_FEATURES)] = np.log1p(np.bitwise_count(new_bits).astype(np.float64))
        at += len(NEW_FEATURES)
        mean, var = g.ewma[:, :, 0].astype(np.float64), g.ewma[:, :, 1].astype(np.float64)
        z = (hop_vals - mean) / np.sqrt(var + _Z_FLOOR)
        z = np.where((g.n_obs >= self.config.min_history)[:, None], np.clip(z, -50.0, 50.0), 0.0)
        X[:, at : at + len(BASELINES)] = z
        usual = mean.copy()
        usual[:, _EXPM1] = np.expm1(usual[:, _EXPM1])
        return _Hop(X, hop_vals, hop_sketch, usual, g.n_obs, linked, exact, g.seen, g.first)

    def _contexts(self, b: int, rows_of: dict[str, IntArray], at: dict[str, tuple[int, int]], hop: _Hop,
                  events: IntArray) -> Matrix:  # fmt: skip
        """The context features of the hop's stacked rows: for each, the highest value among the entities linked to
        its entity in hop ``b`` (a linked type's own rows: their own values)."""
        out = np.zeros((len(hop.X), len(CONTEXT_FEATURES)))
        types = list(self.tables)
        settled_from = b - self.config.windows[-1] // self.hop
        pos = {etype: row_positions(rows, at[etype][0], len(self.tables[etype])) for etype, rows in rows_of.items()}
        none = np.zeros(0, dtype=np.int64)
        for linked in _LINKED:
            cols = [i for i, name in enumerate(CONTEXT_FEATURES) if _CONTEXT[name][0] == linked]
            if linked in at:
                a, z = at[linked]
                own = hop.linked[a:z] if hop.exact[a:z].all() else self._linked_at(linked, b, rows_of[linked], rows_of,
                                                                                   at, hop)[0]  # fmt: skip
                out[a:z, cols] = own[:, cols]
            for etype in rows_of:
                if etype == linked or linked not in self.tables:
                    continue
                e, li = events[types.index(etype)], events[types.index(linked)]
                left = link_max(e, li, pos[etype], pos.get(linked, none), hop.linked, hop.exact, hop.sketch,
                                hop.seen, _SEEN_SKETCH[linked], np.array(cols, dtype=np.int64), etype != "org",
                                hop.first, settled_from, _SEEN_BITS_MAX, out)  # fmt: skip
                if left.any():  # linked entities without an exact row of the hop: computed again
                    self._link_contexts(b, etype, linked, cols, e[left], li[left], rows_of, at, hop, out)
        return out

    def _link_contexts(self, b: int, etype: str, linked: str, cols: list[int], e: IntArray, li: IntArray,
                       rows_of: dict[str, IntArray], at: dict[str, tuple[int, int]], hop: _Hop, out: Matrix
                       ) -> None:  # fmt: skip
        """Raise the context columns ``cols`` of ``etype``'s rows by the events' links (``e``, ``li``: their rows)."""
        owner, lr = _pairs(e, li, len(self.tables[linked]))
        if not len(owner):
            return
        where, found = _positions(rows_of[etype], owner)
        where += at[etype][0]
        value, bit = self._linked_at(linked, b, lr, rows_of, at, hop)
        if etype != "org":  # an org's context is its worst member, habitual or not (its sketches fill up)
            seen = hop.seen[where, _SEEN_SKETCH[linked]]  # what the entity knew before
            settled = hop.first[where] <= b - self.config.windows[-1] // self.hop
            found &= ~(((seen & bit) != 0) & (np.bitwise_count(seen) <= _SEEN_BITS_MAX) & settled)  # habits
        for i in cols:
            np.maximum.at(out[:, i], where[found], value[found, i])

    def _linked_at(self, linked: str, b: int, lr: IntArray, rows_of: dict[str, IntArray],
                   at: dict[str, tuple[int, int]], hop: _Hop) -> tuple[Matrix, U32]:  # fmt: skip
        """The context values (:data:`CONTEXT_FEATURES` order) and key bits of rows of a linked type in hop ``b``.

        Read from that type's rows of the hop; computed again only for rows it lacks (or sums too large for the
        float32 window sums to be exact)."""
        value = np.zeros((len(lr), len(CONTEXT_FEATURES)))
        bit = np.zeros(len(lr), dtype=np.uint32)
        hit = np.zeros(len(lr), dtype=bool)
        if linked in at:
            where, hit = _positions(rows_of[linked], lr)
            where += at[linked][0]
            hit &= hop.exact[where]
            value[hit], bit[hit] = hop.linked[where[hit]], hop.sketch[where[hit], _SEEN_SKETCH[linked]]
        if not hit.all():
            miss = np.flatnonzero(~hit)
            keys = self.tables[linked].keys
            bit[miss] = bits_of(np.array([keys[i] for i in lr[miss].tolist()] + [None], dtype=object))[:-1]
            for i, name in enumerate(CONTEXT_FEATURES):
                if _CONTEXT[name][0] == linked:
                    value[miss, i] = self._linked_value(linked, _CONTEXT[name][1], b, lr[miss])
        return value, bit

    def _linked_value(self, linked: str, what: str, b: int, lr: IntArray) -> Matrix:
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
        rows, values, sketch = batch._rows[learn], batch._hop[learn], batch._sketch[learn]
        self.tables[etype].learn(rows, values, sketch, self.config.ewma_alpha)

    def _maybe_evict(self) -> None:
        if self.closed_until < self._next_evict:
            return
        ttl = max(1, self.config.idle_ttl_minutes // self.hop)
        self._next_evict = self.closed_until + max(1, ttl // 10)
        events = self._take_events(np.iinfo(np.int64).max)  # the open hops' events (all of them now)
        for i, (etype, table) in enumerate(self.tables.items()):
            pending = self._pending[etype]
            mapping = table.evict(self.closed_until - ttl, np.concatenate([pending >> 32, events[i][events[i] >= 0]]))
            if mapping is None:
                continue
            self._pending[etype] = (mapping[pending >> 32] << 32) | (pending & 0xFFFFFFFF)
            events[i] = np.where(events[i] >= 0, mapping[events[i]], -1)  # the open hops' events follow the moved rows
        self._events = [events] if events.shape[1] else []


def _bits(cols: EventColumns, fact: dict[str, Factorized]) -> U32:
    """Each event's sketch bit per :data:`SKETCHES` column (0 when missing; the path stands in for a missing route)."""
    route = cols.factorize("route")
    bits = np.empty((len(cols), len(SKETCHES)), dtype=np.uint32)
    bits[:, 1] = _column_bits(cols, "path", fact)
    bits[:, 0] = np.where(route[0] < 0, bits[:, 1], _column_bits(cols, "route", fact))
    bits[:, 2] = _column_bits(cols, "source_ip", fact)
    bits[:, 3], bits[:, 4] = _column_bits(cols, "country", fact), _column_bits(cols, "asn", fact)
    bits[:, 5] = _column_bits(cols, "user_agent", fact)
    bits[:, 6], bits[:, 7] = _column_bits(cols, "user", fact), _column_bits(cols, "api_key", fact)
    return bits


def _column_bits(cols: EventColumns, name: str, fact: dict[str, Factorized]) -> U32:
    """:func:`bits_of` a text column (a field or an entity type): known from the columns step, or computed."""
    known = cols.bits.get(name)
    if known is not None:
        return known
    column = cols.text(name)
    return bits_of(column, fact[name] if name in fact else cols.factorize(name))


def _window_columns(X: Matrix, sums: Matrix, night: Matrix, sketch: U32, p95: npt.NDArray[np.floating[Any]]) -> None:
    """Fill the :data:`WINDOW_FEATURES` columns of one window from its sums, off-hours requests, sketches and p95."""
    counts = distinct(sketch)
    n = np.maximum(sums[:, 0], 1.0)
    logs = np.log1p(sums)
    X[:, 0] = logs[:, 0]
    X[:, 1] = sums[:, 1] / n
    X[:, 2:6] = logs[:, 2:6]
    X[:, 6:14] = np.log1p(counts)
    X[:, 14:17] = logs[:, 6:9]
    X[:, 17] = np.log1p(p95)
    X[:, 18] = night / n


def _linked_columns(X: Matrix, sums: Matrix) -> tuple[Matrix, BoolArray]:
    """A linked type's context values (:data:`CONTEXT_FEATURES` order) from its longest window's columns and sums,
    and whether they are exact (counts too large for float32 window sums are computed again by the caller)."""
    auth = sums[:, 2] + sums[:, 3]
    values = np.column_stack([X[:, WINDOW_FEATURES.index("ips")], X[:, WINDOW_FEATURES.index("status_404")],
                              np.log1p(auth)])  # fmt: skip
    return values, (auth < _EXACT) & (sums[:, 4] < _EXACT)


def _positions(sorted_rows: IntArray, rows: IntArray) -> tuple[IntArray, BoolArray]:
    """Where ``rows`` are in ``sorted_rows`` (clipped), and whether they are there."""
    where = np.minimum(np.searchsorted(sorted_rows, rows), len(sorted_rows) - 1)
    return where, sorted_rows[where] == rows


def _pairs(owner: IntArray, linked: IntArray, n_linked: int) -> tuple[IntArray, IntArray]:
    """The distinct (owner row, linked row) pairs of events that have both."""
    both = (owner >= 0) & (linked >= 0)
    key = _sorted_unique(owner[both] * n_linked + linked[both])
    return key // n_linked, key % n_linked
