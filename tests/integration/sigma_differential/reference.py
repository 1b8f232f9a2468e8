"""A brute-force reference for the Sigma correlations, written from docs/rules.md (not from the engine's code).

Events are fed in time order. Each event hits the single-event rules whose logsource and predicate it satisfies
(minus exceptions); each hit goes to the correlations that use the rule. Per correlation:

- group key: the first non-null value of each group-by field (aliases resolved per rule), as text; a hit without
  one joins no group; value fields the same way (``value_count``: the text; ``value_sum`` and friends: the number,
  numeric text included, booleans and NaN not; ``temporal``: the rule; ``temporal_ordered``: its position);
- sliding (fires early), for conditions that only grow as events arrive (``event_count``/``value_count``/
  ``value_sum`` with ``gt``/``gte``, ``temporal``/``temporal_ordered`` without ``not``): at each hit the unclaimed
  hits of ``[t - timespan, t]`` are checked; a detection starts at its first hit, stays open until first hit +
  timespan and takes the group's hits until then; hits it covered never count again;
- tumbling (decided at close) for everything else, on ``[k * timespan, (k + 1) * timespan)``;
- absence: a trigger without a follow-up of its group in ``[t, t + timespan]``; triggers at the same instant share
  a detection;
- first_seen: a value new for its group (never seen, or last seen more than a timespan ago), from the end of the
  learning period on (per rule or per group).

Correlations of correlations take the first report of each input detection as a hit at its last event; only
inputs that report at once (sliding, first_seen) are modelled (``NotImplementedError`` otherwise). A correlation
that only feeds others (Sigma's ``generate``: ``output`` false) reports nothing itself.
"""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from detectors.detection import detection_id
from detectors.sigma.fields import FieldView, nest
from detectors.sigma.rules import CorrelationRule, RuleSet
from detectors.sigma.taxonomy import event_logsources, logsource_matches
from detectors.sigma.watermark import event_time, iso

OPS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "neq": operator.ne,
}
NUMERIC = ("value_sum", "value_avg", "value_median", "value_percentile")
SKIP: Any = object()


@dataclass
class RefHit:
    rule_id: str
    t: float
    ts: str
    event_id: str
    view: FieldView


@dataclass
class RefDetection:
    rule_id: str
    group: dict[str, str]
    anchor: str  # what the detection id is made of besides rule and group: window start or first event time
    first: tuple[float, str]
    last: tuple[float, str]
    event_ids: list[str] = field(default_factory=list)

    def absorb(self, hit: RefHit) -> None:
        self.event_ids.append(hit.event_id)
        if hit.t < self.first[0]:
            self.first = (hit.t, hit.ts)
        if hit.t > self.last[0]:
            self.last = (hit.t, hit.ts)

    def key(self) -> tuple[Any, ...]:
        """What the test compares: id, rule, group, first and last event time, count and event ids."""
        group_key = ",".join(f"{k}={v}" for k, v in sorted(self.group.items()))
        return (
            detection_id(self.rule_id, group_key, self.anchor),
            self.rule_id,
            tuple(sorted(self.group.items())),
            self.first[1],
            self.last[1],
            len(self.event_ids),
            tuple(sorted(self.event_ids)) if len(self.event_ids) <= 100 else None,
        )


def first_text(view: FieldView, name: str) -> str | None:
    for v in view[name]:
        if v is not None:
            return str(v)
    return None


def as_number(view: FieldView, name: str) -> float | None:
    for v in view[name]:
        if v is None:
            continue
        if isinstance(v, bool):
            return None
        try:
            n = float(v)
        except (TypeError, ValueError):
            return None
        return None if math.isnan(n) else n
    return None


def interpolated_percentile(values: list[float], p: float) -> float:
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def longest_ordered_chain(items: list[tuple[float, int]]) -> int:
    """Longest run of strictly increasing rule positions in time order (same instant: lower position first)."""
    positions = [p for _, p in sorted(items)]
    best = [1] * len(positions)
    for i, p in enumerate(positions):
        for j in range(i):
            if positions[j] < p:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


class RefCorrelation:
    """One correlation rule: hits in, detections out."""

    def __init__(self, rule: CorrelationRule) -> None:
        self.rule = rule
        self.span = rule.timespan_s
        self.sliding = self._is_sliding()
        self.groups: dict[tuple[str, ...], Any] = {}
        self.buckets: dict[tuple[tuple[str, ...], int], list[tuple[RefHit, Any]]] = defaultdict(list)
        self.triggers: dict[tuple[str, ...], list[RefHit]] = defaultdict(list)
        self.follows: dict[tuple[str, ...], list[float]] = defaultdict(list)
        self.learn_until: dict[Any, float] = {}

    def _is_sliding(self) -> bool:
        r = self.rule
        if r.type in ("temporal", "temporal_ordered"):
            return not r.negated and (r.expression is not None or r.op in ("gt", "gte"))
        return r.type in ("event_count", "value_count", "value_sum") and r.op in ("gt", "gte")

    @property
    def immediate(self) -> bool:
        """Whether detections are reported when the hit that completes them arrives."""
        return self.sliding or self.rule.type == "first_seen"

    def group_of(self, hit: RefHit) -> tuple[str, ...] | None:
        values = []
        for name in self.rule.group_by:
            actual = self.rule.aliases.get(name, {}).get(hit.rule_id, name)
            v = first_text(hit.view, actual)
            if v is None:
                return None
            values.append(v)
        return tuple(values)

    def value_of(self, hit: RefHit) -> Any:
        r = self.rule
        if r.type == "event_count":
            return None
        if r.type == "temporal":
            return hit.rule_id
        if r.type == "temporal_ordered":
            return r.rules.index(hit.rule_id)
        if r.type in NUMERIC:
            n = as_number(hit.view, r.value_fields[0])
            return SKIP if n is None else n
        texts = [first_text(hit.view, name) for name in r.value_fields]
        if any(t is None for t in texts):
            return SKIP
        return texts[0] if len(texts) == 1 else tuple(texts)

    def met(self, values: list[Any]) -> bool:
        r = self.rule
        if not values:
            return False
        if r.expression is not None:
            return r.expression(frozenset(values))
        if r.type == "event_count":
            n: float = len(values)
        elif r.type in ("value_count", "temporal"):
            n = len(set(values))
        elif r.type == "temporal_ordered":
            n = longest_ordered_chain(values)
        elif r.type == "value_sum":
            n = sum(values)
        elif r.type == "value_avg":
            n = sum(values) / len(values)
        elif r.type == "value_median":
            n = interpolated_percentile(values, 50)
        else:
            n = interpolated_percentile(values, r.percentile or 0)
        return OPS[r.op](n, r.count)

    def add(self, hit: RefHit) -> list[RefDetection]:
        key = self.group_of(hit)
        if key is None:
            return []
        if self.rule.type == "absence":
            if hit.rule_id in self.rule.followed_by:
                self.follows[key].append(hit.t)
            if hit.rule_id in self.rule.rules:
                self.triggers[key].append(hit)
            return []
        if self.rule.type == "first_seen":
            return self._first_seen(key, hit)
        value = self.value_of(hit)
        if value is SKIP:
            return []
        if not self.sliding:
            self.buckets[(key, math.floor(hit.t / self.span))].append((hit, value))
            return []
        return self._slide(key, hit, value)

    def _slide(self, key: tuple[str, ...], hit: RefHit, value: Any) -> list[RefDetection]:
        state = self.groups.setdefault(key, {"history": [], "open": None, "until": -math.inf})
        if state["open"] is not None and hit.t <= state["until"]:
            state["open"].absorb(hit)
            return []
        state["open"] = None
        state["history"].append((hit, value))
        window = [(h, v) for h, v in state["history"] if h.t >= hit.t - self.span]
        values = [(h.t, v) for h, v in window] if self.rule.type == "temporal_ordered" else [v for _, v in window]
        if not self.met(values):
            return []
        det = self._detection(key, [h for h, _ in window], anchor=window[0][0].ts)
        state["open"], state["until"], state["history"] = det, window[0][0].t + self.span, []
        return [det]

    def _first_seen(self, key: tuple[str, ...], hit: RefHit) -> list[RefDetection]:
        value = first_text(hit.view, self.rule.value_fields[0])
        if value is None:
            return []
        scope = key if self.rule.learning_scope == "group" else ()
        until = self.learn_until.setdefault(scope, hit.t + self.rule.learning_s)
        seen = self.groups.setdefault(key, {})  # value -> last seen
        last = seen.get(value)
        seen[value] = hit.t if last is None else max(last, hit.t)
        if last is not None and last >= hit.t - self.span:
            return []
        if hit.t < until:
            return []
        group = dict(zip(self.rule.group_by, key, strict=True)) | {self.rule.value_fields[0]: value}
        return [RefDetection(self.rule.meta.id, group, hit.ts, (hit.t, hit.ts), (hit.t, hit.ts), [hit.event_id])]

    def _detection(self, key: tuple[str, ...], hits: list[RefHit], anchor: str) -> RefDetection:
        ordered = sorted(hits, key=lambda h: h.t)
        last = max(ordered, key=lambda h: h.t)
        group = dict(zip(self.rule.group_by, key, strict=True))
        first = ordered[0]
        return RefDetection(
            self.rule.meta.id, group, anchor, (first.t, first.ts), (last.t, last.ts), [h.event_id for h in ordered]
        )

    def close(self) -> list[RefDetection]:
        """End of input: the tumbling windows and the absences."""
        out: list[RefDetection] = []
        if self.rule.type == "absence":
            for key, triggers in self.triggers.items():
                follows = self.follows[key]
                lonely = [h for h in triggers if not any(h.t <= f <= h.t + self.span for f in follows)]
                by_instant: dict[str, list[RefHit]] = defaultdict(list)
                for h in lonely:
                    by_instant[h.ts].append(h)
                out.extend(self._detection(key, same, anchor=same[0].ts) for same in by_instant.values())
            return out
        for (key, index), items in self.buckets.items():
            values = [(h.t, v) for h, v in items] if self.rule.type == "temporal_ordered" else [v for _, v in items]
            if self.met(values):
                out.append(self._detection(key, [h for h, _ in items], anchor=iso(index * self.span)))
        return out


class Reference:
    """Every correlation of a rule set, fed with the events in time order."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.correlations = [RefCorrelation(c) for c in ruleset.correlations]
        self.by_input: dict[str, list[RefCorrelation]] = defaultdict(list)
        for ref in self.correlations:
            for rule_id in dict.fromkeys(ref.rule.inputs):
                self.by_input[rule_id].append(ref)
        self.exceptions: dict[str, list[Any]] = defaultdict(list)
        for exc in ruleset.exceptions:
            for rule_id in exc.rules:
                self.exceptions[rule_id].append(exc)
        self.detections: list[RefDetection] = []

    def run(self, events: Iterable[tuple[str, dict[str, Any]]]) -> list[RefDetection]:
        previous = -math.inf
        for event_id, doc in events:
            view = FieldView.of(doc)
            t = event_time(str(doc["@timestamp"]))
            if t < previous:
                raise ValueError("the reference needs events in time order")
            previous = t
            logsources = event_logsources(doc)
            for rule in self.ruleset.rules:
                if not logsource_matches(rule.logsource, logsources) or not rule.matches(view):
                    continue
                if any(exc.predicate(view) for exc in self.exceptions.get(rule.meta.id, ())):
                    continue
                self._feed(RefHit(rule.meta.id, t, str(doc["@timestamp"]), event_id, view))
        for ref in self.correlations:
            closed = ref.close()
            if closed and self.by_input.get(ref.rule.meta.id):
                raise NotImplementedError(f"{ref.rule.meta.name}: a correlation input reported at window close")
            if ref.rule.output:
                self.detections.extend(closed)
        return self.detections

    def _feed(self, hit: RefHit) -> None:
        for ref in self.by_input.get(hit.rule_id, ()):
            if any(exc.predicate(hit.view) for exc in self.exceptions.get(ref.rule.meta.id, ())):
                continue
            for det in ref.add(hit):
                if ref.rule.output:  # False: only other correlations use it (Sigma's generate)
                    self.detections.append(det)
                if self.by_input.get(ref.rule.meta.id):
                    if not ref.immediate:  # pragma: no cover  (close() raises for these)
                        raise NotImplementedError(ref.rule.meta.name)
                    view = FieldView.of(nest(dict(det.group)))
                    self._feed(RefHit(ref.rule.meta.id, det.last[0], det.last[1], det.key()[0], view))
