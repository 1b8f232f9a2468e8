"""Our correlation types (formats in :mod:`detectors.sigma.custom`): ``absence`` and ``first_seen``."""

from __future__ import annotations

import bisect
import heapq
from collections import OrderedDict

from detectors.detection import Detection
from detectors.sigma.corr_base import (
    Correlator,
    GroupStore,
    Hit,
    Item,
    Limits,
    group_map,
    make_detection,
)
from detectors.sigma.fields import first_value
from detectors.sigma.rules import CorrelationRule


def _time(item: Item) -> float:
    return item[0]


class _Waiting:
    __slots__ = ("follows", "triggers")

    def __init__(self) -> None:
        self.triggers: list[Item] = []  # triggers still waiting for a follow-up, by time
        self.follows: list[float] = []  # times of follow-ups, kept for triggers that arrive late


class AbsenceCorrelator(Correlator):
    """A trigger with no follow-up within the timespan (same group) fires once the watermark passes
    trigger time + timespan; one detection per trigger (triggers at the same instant share one)."""

    def __init__(self, rule: CorrelationRule, limits: Limits) -> None:
        super().__init__(rule, limits)
        self.groups: GroupStore[_Waiting] = GroupStore(_Waiting, limits.max_groups)
        self._triggers = frozenset(rule.rules)
        self._follows = frozenset(rule.followed_by)
        self._timers: list[tuple[float, tuple[str, ...]]] = []

    def add(self, hit: Hit, watermark: float) -> list[Detection]:
        key = self.key_of(hit)
        if key is None:
            return []
        g = self.groups.touch(key)
        span = self.rule.timespan_s
        if hit.rule_id in self._follows:
            bisect.insort(g.follows, hit.t)
            g.triggers = [a for a in g.triggers if not a[0] <= hit.t <= a[0] + span]
            del g.follows[: bisect.bisect_left(g.follows, watermark)]  # later triggers are never older
        if hit.rule_id in self._triggers:
            at = bisect.bisect_left(g.follows, hit.t)
            if at < len(g.follows) and g.follows[at] <= hit.t + span:
                return []  # its follow-up is already here
            if len(g.triggers) >= self.limits.max_items:
                self.truncated += 1
                return []
            bisect.insort(g.triggers, (hit.t, hit.ts, hit.event_id, None, hit.risk), key=_time)
            heapq.heappush(self._timers, (hit.t + span, key))
            self.next_deadline = self._timers[0][0]
        return []

    def advance(self, watermark: float) -> list[Detection]:
        out: list[Detection] = []
        span = self.rule.timespan_s
        timers = self._timers
        while timers and timers[0][0] < watermark:
            _, key = heapq.heappop(timers)
            g = self.groups.get(key)
            if g is None:
                continue
            due = [a for a in g.triggers if a[0] + span < watermark]
            if due:
                g.triggers = [a for a in g.triggers if a[0] + span >= watermark]
                by_time: dict[str, list[Item]] = {}
                for a in due:  # triggers at the same instant share a detection (same id)
                    by_time.setdefault(a[1], []).append(a)
                out.extend(make_detection(self.rule, group_map(self.rule, key), same) for same in by_time.values())
            del g.follows[: bisect.bisect_left(g.follows, watermark)]
            if not g.triggers and not g.follows:
                self.groups.pop(key)
        self.next_deadline = timers[0][0] if timers else float("inf")
        return out

    def expire(self, watermark: float) -> int:
        dropped = 0
        for key, g in self.groups.items():
            del g.follows[: bisect.bisect_left(g.follows, watermark)]
            if not g.triggers and not g.follows:
                self.groups.pop(key)
                dropped += 1
        return dropped


class _Seen:
    __slots__ = ("learn_until", "values")

    def __init__(self) -> None:
        self.values: OrderedDict[str, float] = OrderedDict()  # value -> last seen
        self.learn_until: float | None = None


class FirstSeenCorrelator(Correlator):
    """The first sighting of a value of ``field`` for a group, once the learning period is over."""

    def __init__(self, rule: CorrelationRule, limits: Limits) -> None:
        super().__init__(rule, limits)
        self.groups: GroupStore[_Seen] = GroupStore(_Seen, limits.max_groups)
        self.learn_until: float | None = None  # learning-scope: rule
        self._field = rule.value_fields[0]

    def add(self, hit: Hit, watermark: float) -> list[Detection]:
        key = self.key_of(hit)
        raw = first_value(hit.doc, self._field)
        if key is None or raw is None:
            return []
        value = str(raw)
        g = self.groups.touch(key)
        if self.rule.learning_scope == "group":
            if g.learn_until is None:
                g.learn_until = hit.t + self.rule.learning_s
            until = g.learn_until
        else:
            if self.learn_until is None:
                self.learn_until = hit.t + self.rule.learning_s
            until = self.learn_until
        seen = g.values.get(value)
        if seen is not None and seen < hit.t - self.rule.timespan_s:
            seen = None  # remembered for `timespan` only (docs/rules.md), whenever the expiry sweep runs
        g.values[value] = hit.t if seen is None else max(seen, hit.t)
        g.values.move_to_end(value)
        if len(g.values) > self.limits.max_items:
            g.values.popitem(last=False)
            self.truncated += 1
        if seen is not None or hit.t < until:
            return []
        group = group_map(self.rule, key, {self._field: value})
        return [make_detection(self.rule, group, [(hit.t, hit.ts, hit.event_id, value, hit.risk)])]

    def expire(self, watermark: float) -> int:
        """Forget values not seen for ``timespan``; drop groups that know nothing any more."""
        horizon = watermark - self.rule.timespan_s
        dropped = 0
        for key, g in self.groups.items():
            for value in [v for v, last in g.values.items() if last < horizon]:
                del g.values[value]
            if not g.values and self.rule.learning_scope == "rule":
                self.groups.pop(key)
                dropped += 1
        return dropped
