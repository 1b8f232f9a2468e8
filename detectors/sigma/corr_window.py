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
from detectors.sigma.rules import CorrelationRule
from detectors.sigma.watermark import iso
from detectors.sigma.windows import RUNNING, Window, running


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
    __slots__ = ("claimed", "everything", "items", "lo", "open", "open_start", "open_until", "window")

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.open: Detection | None = None
        self.open_start = 0.0
        self.open_until = float("-inf")
        self.claimed = float("-inf")  # events up to here belong to a reported detection
        # the running aggregate of the window ending at the newest item: always exactly the aggregate of the
        # suffix items[lo:] (but the newest item between its append and _check_newest), kept across late inserts
        # and cuts; _check_newest moves lo to the window's start before deciding (None: to rebuild)
        self.window: Window | None = None
        self.lo = 0
        # the aggregate of all the items, kept once a late event needed it (None until then): no window is
        # larger, so when it does not meet a monotone condition no window does
        self.everything: Window | None = None


def _drop_front(g: _Slide, cut: int, covered: int) -> None:
    """Delete ``g.items[:cut]``, keeping the running aggregate of the newest window: the items it covers are
    ``items[g.lo:covered]``; those among the deleted ones leave it (a limit on the group's items can cut into
    the window), so a busy group is never recounted from scratch."""
    window = g.window
    if window is not None and cut > g.lo:
        for gone in g.items[g.lo : min(cut, covered)]:
            window.remove(gone[3])
    g.lo = max(g.lo - cut, 0)
    del g.items[:cut]


class SlidingCorrelator(Correlator):
    """Monotone conditions on sliding windows (fire early)."""

    def __init__(self, rule: CorrelationRule, limits: Limits) -> None:
        super().__init__(rule, limits)
        self.groups: GroupStore[_Slide] = GroupStore(_Slide, limits.max_groups)
        self._states = self.groups.states
        self.value_of = value_reader(rule)
        self._running = rule.type in RUNNING
        self._span = rule.timespan_s
        self._max_items = limits.max_items

    def add(self, hit: Hit, watermark: float) -> list[Detection]:
        keyer = self._keyers.get(hit.rule_id)
        key = self.key_of(hit) if keyer is None else keyer(hit.doc)
        if key is None:
            return []
        value = self.value_of(hit)
        if value is SKIP:
            return []
        g = self._states.get(key)  # GroupStore.touch, inline for a known group
        if g is None:
            g = self.groups.touch(key)
        else:
            self._states.move_to_end(key)
        t, span = hit.t, self._span
        item: Item = (t, hit.ts, hit.event_id, value, hit.risk)
        if g.open is not None:
            if g.open_start - span <= t <= g.open_until:
                return [absorb(g.open, item)]
            if t > g.open_until:
                g.open = None
        if t <= g.claimed:
            return []  # a straggler of a burst already reported
        items = g.items
        in_order = not items or t >= items[-1][0]
        if in_order:
            items.append(item)
            at = len(items) - 1
        else:
            at = _after(items, t)
            items.insert(at, item)
            if g.window is not None:  # keep the running aggregate a suffix of the items (see _Slide)
                if at >= g.lo:
                    g.window.add(value)
                else:
                    g.lo += 1
        everything = g.everything
        if everything is not None:
            everything.add(value)
        horizon = watermark - span  # older items can join no future window
        if items[0][0] < horizon or len(items) > self._max_items:
            if (  # the common case of _cut, inline: one item, not the new one and before the newest window, leaves
                at > 0
                and g.lo > 0
                and everything is None
                and len(items) <= self._max_items + 1
                and items[0][0] < horizon <= items[1][0]
            ):
                del items[0]
                g.lo -= 1
                at -= 1
            else:
                at = self._cut(g, horizon, at, pending=in_order)
                if at < 0:
                    return []  # the new event itself was the oldest of a full group
        if in_order and self._running:
            window = g.window
            if window is not None and not window.slide(g, t - span, value):  # the common case, inline
                return []
            return self._check_newest(g, key, item) if window is None else self._fire(g, key, items[g.lo :])
        everything = g.everything
        if everything is not None and everything.rules_out(items):  # the bound of _check, inline
            return []
        return self._check(g, key, at)

    def _cut(self, g: _Slide, horizon: float, at: int, *, pending: bool) -> int:
        """Drop the items older than ``horizon`` and those beyond the group's limit; the new position of ``at``.

        ``pending``: the newest item was just appended and is not in the running aggregate yet."""
        items = g.items
        cut = 0
        while cut < len(items) and items[cut][0] < horizon:
            cut += 1
        excess = len(items) - cut - self._max_items
        if excess > 0:
            self.truncated += excess
            cut += excess
        if g.everything is not None:
            for gone in items[:cut]:
                g.everything.remove(gone[3])
        if cut <= g.lo:  # the common case, inline: only items before the newest window go
            g.lo -= cut
            del items[:cut]
        else:
            _drop_front(g, cut, len(items) - pending)
        return at - cut

    def _check_newest(self, g: _Slide, key: tuple[str, ...], item: Item) -> list[Detection]:
        """The window ending at a new newest event, from its running aggregate."""
        items = g.items
        start = item[0] - self._span
        window = g.window
        if window is None:
            g.lo = _at_or_after(items, start)
            window = g.window = running(self.rule, items[g.lo :])
            return self._fire(g, key, items[g.lo :]) if window.met(items, g.lo, len(items)) else []
        return self._fire(g, key, items[g.lo :]) if window.slide(g, start, item[3]) else []

    def _check(self, g: _Slide, key: tuple[str, ...], at: int) -> list[Detection]:
        """Check every window ending at an event within a timespan after the new one (a late event, or a type
        without a running aggregate): the first satisfied one fires."""
        items = g.items
        span = self._span
        if not self._running:
            end = _after(items, items[at][0] + span)  # windows end at items[at:end]
            for j in range(at, end):
                lo = _at_or_after(items, items[j][0] - span)
                if satisfied(self.rule, items[lo : j + 1]):
                    return self._fire(g, key, items[lo : j + 1])
            return []
        # Late events are common (Kafka partitions interleave in time) and groups can be busy: first the bound
        # (all the items together), then one pass where the window [t_j - span, t_j] slides right with j and
        # its aggregate is kept up to date, never a full recount per window.
        if g.everything is None:
            g.everything = running(self.rule, items)
        if g.everything.rules_out(items):
            return []
        end = _after(items, items[at][0] + span)
        lo = _at_or_after(items, items[at][0] - span)
        window = running(self.rule, items[lo : at + 1])
        for j in range(at, end):
            if j > at:
                window.add(items[j][3])
                start = items[j][0] - span
                while items[lo][0] < start:
                    window.remove(items[lo][3])
                    lo += 1
            if window.met(items, lo, j + 1):
                return self._fire(g, key, items[lo : j + 1])
        return []

    def _fire(self, g: _Slide, key: tuple[str, ...], window: list[Item]) -> list[Detection]:
        det = make_detection(self.rule, group_map(self.rule, key), window)
        g.open, g.open_start = det, window[0][0]
        g.open_until = g.claimed = window[0][0] + self.rule.timespan_s
        g.items = [i for i in g.items if i[0] > g.claimed]
        g.window = None
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
                _drop_front(g, cut, len(g.items))
                g.everything = None
            if not g.items and g.open is None:
                self.groups.pop(key)
                dropped += 1
        return dropped


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
