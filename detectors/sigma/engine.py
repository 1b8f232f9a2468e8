"""Evaluate compiled rules over a stream of normalized events, on event time.

Single-event rules produce one detection per matching event (unless only correlations use them).
``event_count`` correlations keep, per group, the matching events of the last ``timespan``
(ordered by event time, so late events still count) and open one detection when the condition
holds; further matches while its window is open update that same detection (same id) instead of
opening new ones. Group state expires once the watermark (newest event time seen) has passed it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from detectors.detection import Detection, detection_id
from detectors.sigma.fields import field_getter
from detectors.sigma.rules import CorrelationRule, DetectionRule, RuleSet
from ingest.records import NormalizedEvent

MAX_EVENT_IDS = 100  # event ids kept per detection (the count keeps counting)
SWEEP_EVERY = 5000  # events between expiry sweeps of correlation state


def event_logsource(doc: dict[str, Any]) -> dict[str, str]:
    """The Sigma logsource an ECS document belongs to."""
    source = (doc.get("logwarden") or {}).get("source")
    return {"product": "logwarden", "service": str(source)} if source else {}


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


@dataclass
class _Group:
    """Matches of one correlation for one group value, sorted by event time."""

    times: list[float] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (epoch, iso, doc id)
    open: Detection | None = None
    open_until: float = 0.0


class RuleEngine:
    """Streams events through a :class:`RuleSet` and returns new or updated detections per batch."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._by_source: dict[tuple[tuple[str, str], ...], list[DetectionRule]] = {}
        self._correlations_of: dict[str, list[CorrelationRule]] = {}
        for corr in ruleset.correlations:
            for rule_id in corr.rules:
                self._correlations_of.setdefault(rule_id, []).append(corr)
        self._groups: dict[tuple[str, tuple[str, ...]], _Group] = {}
        self._watermark = float("-inf")
        self._since_sweep = 0
        self.matches = 0

    def rules_for(self, doc: dict[str, Any]) -> list[DetectionRule]:
        """The rules whose logsource fits the document (cached per logsource)."""
        logsource = event_logsource(doc)
        key = tuple(sorted(logsource.items()))
        rules = self._by_source.get(key)
        if rules is None:
            rules = [
                r
                for r in self.ruleset.rules
                if all(logsource.get(k, "").lower() == v.lower() for k, v in r.logsource.items())
            ]
            self._by_source[key] = rules
        return rules

    def process(self, events: Sequence[NormalizedEvent]) -> list[Detection]:
        """Evaluate a batch; returns each new or changed detection once (its latest state)."""
        changed: dict[str, Detection] = {}
        for event in events:
            doc = event.doc
            when: float | None = None
            for rule in self.rules_for(doc):
                if not rule.matches(doc):
                    continue
                self.matches += 1
                if when is None:
                    when = epoch(event.timestamp)
                    self._watermark = max(self._watermark, when)
                if rule.generate:
                    det = self._single(rule, event)
                    changed[det.id] = det
                for corr in self._correlations_of.get(rule.meta.id, ()):
                    det_or_none = self._correlate(corr, event, when)
                    if det_or_none is not None:
                        changed[det_or_none.id] = det_or_none
            self._since_sweep += 1
            if self._since_sweep >= SWEEP_EVERY:
                self.expire()
        return list(changed.values())

    def _single(self, rule: DetectionRule, event: NormalizedEvent) -> Detection:
        m = rule.meta
        return Detection(
            id=detection_id(m.id, event.doc_id, event.timestamp),
            rule_id=m.id,
            rule_name=m.name,
            title=m.title,
            description=m.description,
            level=m.level,
            group={},
            first_seen=event.timestamp,
            last_seen=event.timestamp,
            event_count=1,
            event_ids=[event.doc_id],
            tags=list(m.tags),
        )

    def _correlate(self, corr: CorrelationRule, event: NormalizedEvent, when: float) -> Detection | None:
        values: list[str] = []
        for name in corr.group_by:
            found = field_getter(name)(event.doc)
            if not found:
                return None  # an event without the group-by field cannot join a group
            values.append(str(found[0]))
        key = (corr.meta.id, tuple(values))
        group = self._groups.setdefault(key, _Group())
        pos = bisect.bisect_right(group.times, when)
        group.times.insert(pos, when)
        group.events.insert(pos, (when, event.timestamp, event.doc_id))
        # keep only the last `timespan` seconds before the newest event of the group
        horizon = group.times[-1] - corr.timespan_s
        cut = bisect.bisect_left(group.times, horizon)
        if cut:
            del group.times[:cut], group.events[:cut]
        if when < horizon:
            return None  # older than the group's current window: counted nowhere
        # an open detection takes the group's later events until its window closes, and late events up to
        # one timespan before its first event (they belong to the same burst); older stragglers do not
        if group.open is not None and group.open_until - 2 * corr.timespan_s <= when <= group.open_until:
            det = group.open
            det.event_count += 1
            det.last_seen = max(det.last_seen, event.timestamp)
            det.first_seen = min(det.first_seen, event.timestamp)
            if len(det.event_ids) < MAX_EVENT_IDS:
                det.event_ids.append(event.doc_id)
            return det
        if not corr.condition_met(len(group.events)):
            return None
        first = group.events[0]
        m = corr.meta
        group_map = dict(zip(corr.group_by, values, strict=True))
        det = Detection(
            id=detection_id(m.id, ",".join(f"{k}={v}" for k, v in sorted(group_map.items())), first[1]),
            rule_id=m.id,
            rule_name=m.name,
            title=m.title,
            description=m.description,
            level=m.level,
            group=group_map,
            first_seen=first[1],
            last_seen=group.events[-1][1],
            event_count=len(group.events),
            event_ids=[e[2] for e in group.events][:MAX_EVENT_IDS],
            tags=list(m.tags),
        )
        group.open = det
        group.open_until = first[0] + corr.timespan_s
        return det

    def expire(self) -> int:
        """Drop correlation groups the watermark has left behind; returns how many were dropped."""
        self._since_sweep = 0
        spans = {c.meta.id: c.timespan_s for c in self.ruleset.correlations}
        stale = [
            key
            for key, g in self._groups.items()
            if (g.times[-1] if g.times else float("-inf")) + spans[key[0]] < self._watermark
            and g.open_until < self._watermark
        ]
        for key in stale:
            del self._groups[key]
        return len(stale)

    @property
    def group_count(self) -> int:
        return len(self._groups)
