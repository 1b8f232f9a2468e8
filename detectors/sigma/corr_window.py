"""Windowed correlations: Sigma's counting, aggregating and temporal types (see :mod:`aggregates`).

Sliding (eager) windows: a group fires as soon as the events of some ``[t - timespan, t]`` satisfy the
condition (``t`` the time of one of its events; with a late event, every window containing it is checked).
That detection stays open until ``first event + timespan``: later events up to then, and late events up to
one timespan before its first event, update it (same id); events it covered never count again.

Tumbling windows (decided at close): ``[k * timespan, (k + 1) * timespan)`` per group, evaluated when the
watermark passes the end; the detection id is stable for the rule, group and window start.
"""

from __future__ import annotations

import bisect
import heapq
import math
from typing import Any

from detectors.detection import Detection
from detectors.sigma.aggregates import SKIP, satisfied, value_reader
from detectors.sigma.corr_base import (
    Correlator,
    GroupStore,
    Hit,
    Item,
    Limits,
    absorb,
    group_map,
    make_detection,
)
from detectors.sigma.rules import COMPARATORS, CorrelationRule
from detectors.sigma.watermark import iso


def _time(item: Item) -> float:
    return item[0]


def _at_or_after(items: list[Item], t: float) -> int:
    """The first position whose time is ``>= t`` (items sorted by time; ``(t,)`` sorts before every item at ``t``,
    and no key function is called per comparison)."""
    return bisect.bisect_left(items, (t,))


def _after(items: list[Item], t: float) -> int:
    """The first position whose time is ``> t``."""
    return bisect.bisect_left(items, (math.nextafter(t, math.inf),))


class _Slide:
    __slots__ = ("claimed", "counts", "everything", "items", "lo", "open", "open_start", "open_until", "total", "valid")

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.open: Detection | None = None
        self.open_start = 0.0
        self.open_until = float("-inf")
        self.claimed = float("-inf")  # events up to here belong to a reported detection
        # running aggregate of the window ending at the newest item (items[lo:]), while events come in order
        self.valid = False
        self.lo = 0
        self.counts: dict[Any, int] = {}
        self.total = 0.0
        # the aggregate of all the items, kept once a late event needed it (None until then): no window is
        # larger, so when it does not meet a monotone condition no window does
        self.everything: _Running | None = None


_RUNNING = frozenset({"event_count", "value_count", "value_sum", "temporal"})


class _Running:
    """The aggregate of a window of a running type (:data:`_RUNNING`) as values enter and leave it."""

    __slots__ = ("counts", "n", "negative", "rule", "total")

    def __init__(self, rule: CorrelationRule, items: list[Item]) -> None:
        self.rule = rule
        self.n = 0
        self.total = 0.0
        self.negative = 0  # negative values summed (a sum over fewer items may then be larger)
        self.counts: dict[Any, int] = {}
        for item in items:
            self.add(item[3])

    def add(self, value: Any) -> None:
        self.n += 1
        if self.rule.type == "value_sum":
            self.total += value
            self.negative += value < 0
        elif self.rule.type != "event_count":
            self.counts[value] = self.counts.get(value, 0) + 1

    def remove(self, value: Any) -> None:
        self.n -= 1
        if self.rule.type == "value_sum":
            self.total -= value
            self.negative -= value < 0
        elif self.rule.type != "event_count":
            left = self.counts[value] - 1
            if left:
                self.counts[value] = left
            else:
                del self.counts[value]

    def met(self, window: list[Item]) -> bool:
        """Whether the condition holds (``window``: the same items, for the exact sum when needed)."""
        rule = self.rule
        if rule.expression is not None:
            return bool(rule.expression(frozenset(self.counts)))
        if rule.type == "event_count":
            return rule.condition_met(self.n)
        if rule.type == "value_sum":
            if not math.isfinite(self.total):  # inf - inf: count it again
                return satisfied(rule, window)
            return rule.condition_met(self.total)
        return rule.condition_met(len(self.counts))

    def bounds_every_window(self) -> bool:
        """Whether no subset of these items can aggregate to more (so a window can meet the monotone condition
        only if all of them do)."""
        return self.rule.type != "value_sum" or self.negative == 0


class SlidingCorrelator(Correlator):
    """Monotone conditions on sliding windows (fire early)."""

    def __init__(self, rule: CorrelationRule, limits: Limits) -> None:
        super().__init__(rule, limits)
        self.groups: GroupStore[_Slide] = GroupStore(_Slide, limits.max_groups)
        self.value_of = value_reader(rule)
        self._running = rule.type in _RUNNING
        self._counts = rule.type in ("value_count", "temporal")
        self._sum = rule.type == "value_sum"
        self._cmp = COMPARATORS[rule.op]
        self._threshold = rule.count

    def add(self, hit: Hit, watermark: float) -> list[Detection]:
        key = self.key_of(hit)
        if key is None:
            return []
        value = self.value_of(hit)
        if value is SKIP:
            return []
        g = self.groups.touch(key)
        item: Item = (hit.t, hit.ts, hit.event_id, value, hit.risk)
        span = self.rule.timespan_s
        if g.open is not None:
            if g.open_start - span <= hit.t <= g.open_until:
                return [absorb(g.open, item)]
            if hit.t > g.open_until:
                g.open = None
        if hit.t <= g.claimed:
            return []  # a straggler of a burst already reported
        items = g.items
        in_order = not items or hit.t >= items[-1][0]
        if in_order:
            items.append(item)
            at = len(items) - 1
        else:
            at = _after(items, hit.t)
            items.insert(at, item)
            g.valid = False
        if g.everything is not None:
            g.everything.add(value)
        horizon = watermark - span  # older items can join no future window
        if items[0][0] < horizon or len(items) > self.limits.max_items:
            cut = 1
            while cut < len(items) and items[cut][0] < horizon:
                cut += 1
            if items[0][0] >= horizon:
                cut = 0
            excess = len(items) - cut - self.limits.max_items
            if excess > 0:
                self.truncated += excess
                cut += excess
            if g.everything is not None:
                for gone in items[:cut]:
                    g.everything.remove(gone[3])
            del items[:cut]
            at -= cut
            if g.lo >= cut:
                g.lo -= cut
            else:
                g.valid = False
            if at < 0:
                return []  # the new event itself was the oldest of a full group
        if in_order and self._running:
            return self._check_newest(g, key, item)
        return self._check(g, key, at)

    def _check_newest(self, g: _Slide, key: tuple[str, ...], item: Item) -> list[Detection]:
        """The window ending at a new newest event, from running aggregates."""
        items = g.items
        start = item[0] - self.rule.timespan_s
        counts = self._counts
        if not g.valid:
            g.lo = _at_or_after(items, start)
            g.counts, g.total, g.valid = {}, 0.0, True
            window = items[g.lo :]
        else:
            window = [item]
            while items[g.lo][0] < start:
                old = items[g.lo][3]
                if counts:
                    left = g.counts[old] - 1
                    if left:
                        g.counts[old] = left
                    else:
                        del g.counts[old]
                elif self._sum:
                    g.total -= old
                g.lo += 1
        for it in window:
            if counts:
                g.counts[it[3]] = g.counts.get(it[3], 0) + 1
            elif self._sum:
                g.total += it[3]
        rule = self.rule
        if rule.expression is not None:
            met = rule.expression(frozenset(g.counts))
        elif counts:
            met = self._cmp(len(g.counts), self._threshold)
        elif self._sum:
            met = self._cmp(g.total, self._threshold)
        else:
            met = self._cmp(len(items) - g.lo, self._threshold)
        return self._fire(g, key, items[g.lo :]) if met else []

    def _check(self, g: _Slide, key: tuple[str, ...], at: int) -> list[Detection]:
        """Check every window ending at an event within a timespan after the new one (a late event, or a type
        without a running aggregate): the first satisfied one fires."""
        items = g.items
        span = self.rule.timespan_s
        end = _after(items, items[at][0] + span)  # windows end at items[at:end]
        lo = _at_or_after(items, items[at][0] - span)
        if not self._running:
            for j in range(at, end):
                lo = _at_or_after(items, items[j][0] - span)
                if satisfied(self.rule, items[lo : j + 1]):
                    return self._fire(g, key, items[lo : j + 1])
            return []
        # Late events are common (Kafka partitions interleave in time) and groups can be busy: first the bound
        # (all the items together), then one pass where the window [t_j - span, t_j] slides right with j and
        # its aggregate is kept up to date, never a full recount per window.
        if g.everything is None:
            g.everything = _Running(self.rule, items)
        if g.everything.bounds_every_window() and not g.everything.met(items):
            return []
        window = _Running(self.rule, items[lo : at + 1])
        for j in range(at, end):
            if j > at:
                window.add(items[j][3])
                start = items[j][0] - span
                while items[lo][0] < start:
                    window.remove(items[lo][3])
                    lo += 1
            if window.met(items[lo : j + 1]):
                return self._fire(g, key, items[lo : j + 1])
        return []

    def _fire(self, g: _Slide, key: tuple[str, ...], window: list[Item]) -> list[Detection]:
        det = make_detection(self.rule, group_map(self.rule, key), window)
        g.open, g.open_start = det, window[0][0]
        g.open_until = g.claimed = window[0][0] + self.rule.timespan_s
        g.items = [i for i in g.items if i[0] > g.claimed]
        g.valid = False
        g.everything = None
        return [det]

    def expire(self, watermark: float) -> int:
        span = self.rule.timespan_s
        dropped = 0
        for key, g in self.groups.items():
            if g.open is not None and g.open_until < watermark:
                g.open = None
            cut = _at_or_after(g.items, watermark - span)
            if cut:
                del g.items[:cut]
                g.valid = False
                g.everything = None
            if not g.items and g.open is None:
                self.groups.pop(key)
                dropped += 1
        return dropped

    @property
    def group_count(self) -> int:
        return len(self.groups)

    @property
    def evicted(self) -> int:
        return self.groups.evicted


class TumblingCorrelator(Correlator):
    """Non-monotone conditions on tumbling windows, decided when the watermark passes their end."""

    def __init__(self, rule: CorrelationRule, limits: Limits) -> None:
        super().__init__(rule, limits)
        self.groups: GroupStore[dict[int, list[Item]]] = GroupStore(dict, limits.max_groups)
        self.value_of = value_reader(rule)
        self._timers: list[tuple[float, tuple[str, ...], int]] = []

    def add(self, hit: Hit, watermark: float) -> list[Detection]:
        rule = self.rule
        key = self.key_of(hit)
        value = self.value_of(hit)
        if key is None or value is SKIP:
            return []
        buckets = self.groups.touch(key)
        index = math.floor(hit.t / rule.timespan_s)
        bucket = buckets.get(index)
        if bucket is None:
            bucket = buckets[index] = []
            heapq.heappush(self._timers, ((index + 1) * rule.timespan_s, key, index))
            self.next_deadline = self._timers[0][0]
        if len(bucket) >= self.limits.max_items:
            self.truncated += 1
            return []
        bucket.append((hit.t, hit.ts, hit.event_id, value, hit.risk))
        return []

    def advance(self, watermark: float) -> list[Detection]:
        out: list[Detection] = []
        timers = self._timers
        while timers and timers[0][0] <= watermark:
            _, key, index = heapq.heappop(timers)
            buckets = self.groups.get(key)
            items = buckets.pop(index, None) if buckets is not None else None
            if buckets is not None and not buckets:
                self.groups.pop(key)
            if not items:
                continue
            items.sort(key=_time)
            if satisfied(self.rule, items):
                start = iso(index * self.rule.timespan_s)
                out.append(make_detection(self.rule, group_map(self.rule, key), items, window_start=start))
        self.next_deadline = timers[0][0] if timers else float("inf")
        return out

    @property
    def group_count(self) -> int:
        return len(self.groups)

    @property
    def evicted(self) -> int:
        return self.groups.evicted
