"""Evaluate compiled rules over a stream of normalized events, on event time.

Per event: the index picks the candidate rules (log source, then tested fields); each matching rule
that is not excepted raises a single-event detection (unless only correlations use it) and feeds its
correlations. Correlations see only events no older than the watermark (newest event time minus the
allowed lateness); older ones are counted in ``stats.late_events``. The watermark closes tumbling
windows, fires absences and expires state. :meth:`RuleEngine.process` returns each new or changed
detection of a batch once, in its latest state, after suppression; :meth:`RuleEngine.flush` ends the
input (closes every window).
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.detection import Detection, detection_id
from detectors.sigma.aggregates import is_eager
from detectors.sigma.corr_base import Correlator, Hit, Limits
from detectors.sigma.corr_custom import AbsenceCorrelator, FirstSeenCorrelator
from detectors.sigma.corr_native import sliding
from detectors.sigma.corr_window import TumblingCorrelator
from detectors.sigma.fields import FieldView, first_value, nest
from detectors.sigma.index import RuleIndex
from detectors.sigma.rules import CorrelationRule, DetectionRule, RuleMeta, RuleSet
from detectors.sigma.suppression import Suppressor
from detectors.sigma.taxonomy import LogSource, event_logsources
from detectors.sigma.values import number
from detectors.sigma.watermark import DEFAULT_LATENESS_S, Watermark, event_time
from ingest.records import NormalizedEvent

log = logging.getLogger(__name__)
SWEEP_EVERY = 5000  # events between expiry sweeps of correlation state


def event_logsource(doc: dict[str, Any]) -> dict[str, str]:
    """The primary Sigma logsource of an ECS document (``{}`` without ``logwarden.source``)."""
    found = event_logsources(doc)
    return dict(found[0]) if found else {}


def make_correlator(rule: CorrelationRule, limits: Limits) -> Correlator:
    if rule.type == "absence":
        return AbsenceCorrelator(rule, limits)
    if rule.type == "first_seen":
        return FirstSeenCorrelator(rule, limits)
    return sliding(rule, limits) if is_eager(rule) else TumblingCorrelator(rule, limits)


@dataclass
class EngineStats:
    """Counters for metrics (monotonic); per-rule matches for ``--stats`` and tuning."""

    events: int = 0
    matches: int = 0
    late_events: int = 0  # older than the watermark: single-event rules only, not correlated
    bad_timestamps: int = 0  # no usable @timestamp: not correlated
    excepted: int = 0  # rule matches dropped by an exception
    rule_errors: int = 0  # evaluations that raised (a bug in a rule or the engine): the event goes on
    rule_matches: Counter[str] = field(default_factory=Counter)
    exception_hits: Counter[str] = field(default_factory=Counter)


class RuleEngine:
    """Streams events through a :class:`RuleSet` and returns new or updated detections per batch."""

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        lateness_s: float = DEFAULT_LATENESS_S,
        limits: Limits | None = None,
        use_index: bool = True,
        suppress_s: float = 0.0,
    ) -> None:
        self.ruleset = ruleset
        self.limits = limits or Limits()
        self.index = RuleIndex(ruleset.rules, enabled=use_index)
        self.watermark = Watermark(lateness_s)
        self.stats = EngineStats()
        self.correlators = [make_correlator(c, self.limits) for c in ruleset.correlations]
        self._dependents: dict[str, list[Correlator]] = {}
        for correlator in self.correlators:
            for rule_id in dict.fromkeys(correlator.rule.inputs):
                self._dependents.setdefault(rule_id, []).append(correlator)
        self._exceptions: dict[str, list[Any]] = {}
        for exc in ruleset.exceptions:
            for rule_id in exc.rules:
                self._exceptions.setdefault(rule_id, []).append(exc)
        metas = [r.meta for r in ruleset.rules] + [c.meta for c in ruleset.correlations]
        self.suppressor = Suppressor({m.id: m.options.suppress_s for m in metas if m.options.suppress_s}, suppress_s)
        self._chained: OrderedDict[str, None] = OrderedDict()  # correlation detections already fed onwards
        self._next_deadline = float("inf")
        self._since_sweep = 0
        self._failed_rules: set[str] = set()

    @property
    def matches(self) -> int:
        return self.stats.matches

    def rules_for(self, doc: dict[str, Any]) -> list[DetectionRule]:
        """The rules whose logsource fits the document."""
        return self.index.rules_for(doc)

    def candidates(self, doc: dict[str, Any]) -> list[DetectionRule]:
        """The rules the index lets the document meet."""
        return list(self.index.candidates(doc))

    def process(self, events: Sequence[NormalizedEvent]) -> list[Detection]:
        """Evaluate a batch; returns each new or changed detection once (its latest state)."""
        if not self.ruleset.rules and not self.correlators:  # nothing to evaluate: the documents stay unread (an
            self.stats.events += len(events)  # event from the native path is never decoded into a dict then)
            return []
        changed: dict[str, Detection] = {}
        correlate = bool(self.correlators)
        wm, stats, index = self.watermark, self.stats, self.index
        rule_matches, dependents, exceptions = stats.rule_matches, self._dependents, self._exceptions
        observe, since_sweep = wm.observe, self._since_sweep
        for event in events:
            raw = event.doc
            doc = FieldView()  # FieldView.of, inline
            doc.doc = raw
            t: float | None = None
            if correlate:
                try:
                    stamp = str(raw["@timestamp"])
                    t = event_time(stamp)
                except (KeyError, ValueError, TypeError):
                    stats.bad_timestamps += 1
                else:
                    record = event.record
                    if not observe(t, (record.topic, record.partition)):
                        stats.late_events += 1
                        t = None
            for rule, predicate in index.for_doc(raw).plan(doc):
                try:
                    if not predicate(doc):
                        continue
                except Exception:  # a rule bug must not stop the stream: counted, logged once per rule
                    self._rule_failed(rule.meta)
                    continue
                rule_id = rule.meta.id
                if rule_id in exceptions and self._excepted(rule_id, doc):
                    continue
                stats.matches += 1
                rule_matches[rule_id] += 1
                if rule.generate:
                    det = self._single(rule, event, doc)
                    changed[det.id] = det
                if t is not None and rule_id in dependents:
                    self._correlate(rule_id, Hit(rule_id, t, stamp, event.doc_id, doc), changed)
            if wm.value >= self._next_deadline:
                self._advance(changed)
            since_sweep += 1
            if since_sweep >= SWEEP_EVERY:
                self.expire()
                since_sweep = 0
            self._since_sweep = since_sweep
        stats.events += len(events)
        return self.suppressor.apply(changed.values())

    def flush(self) -> list[Detection]:
        """End of input: close every window and fire every pending absence (the engine is done after this)."""
        changed: dict[str, Detection] = {}
        self.watermark.close_all()
        self._advance(changed)
        return self.suppressor.apply(changed.values())

    def expire(self) -> int:
        """Drop correlation state the watermark has left behind; returns how many groups were dropped."""
        self._since_sweep = 0
        return sum(c.expire(self.watermark.value) for c in self.correlators)

    @property
    def group_count(self) -> int:
        return sum(c.group_count for c in self.correlators)

    def counters(self) -> dict[str, int]:
        """Monotonic counters and gauges for the metrics bundle (no high-cardinality labels)."""
        s = self.stats
        return {
            "events": s.events,
            "matches": s.matches,
            "late_events": s.late_events,
            "bad_timestamps": s.bad_timestamps,
            "excepted": s.excepted,
            "rule_errors": s.rule_errors,
            "suppressed": self.suppressor.suppressed,
            "evicted_groups": sum(c.evicted for c in self.correlators),
            "truncated_events": sum(c.truncated for c in self.correlators),
            "groups": self.group_count,
        }

    def _rule_failed(self, meta: RuleMeta) -> None:
        self.stats.rule_errors += 1
        if meta.id not in self._failed_rules:
            self._failed_rules.add(meta.id)
            log.exception("rule %s (%s:%d) failed on an event; counted in rule_errors", meta.name, meta.path, meta.line)

    def _excepted(self, rule_id: str, doc: FieldView) -> bool:
        for exc in self._exceptions.get(rule_id, ()):
            if exc.predicate(doc):
                self.stats.excepted += 1
                self.stats.exception_hits[exc.id] += 1
                return True
        return False

    def _correlate(self, rule_id: str, hit: Hit, changed: dict[str, Detection]) -> None:
        """Feed a hit to the correlations of ``rule_id``; new correlation detections feed theirs in turn."""
        exceptions = self._exceptions
        watermark = self.watermark.value
        for correlator in self._dependents[rule_id]:
            if exceptions and correlator.rule_id in exceptions and self._excepted(correlator.rule_id, hit.doc):
                continue
            hit.risk = _risk(hit.doc, correlator.risk_field) if correlator.risk_field else None
            try:
                found = correlator.add(hit, watermark)
            except Exception:  # same for a correlation
                self._rule_failed(correlator.rule.meta)
                continue
            if found:
                self._collect(correlator, found, changed)
            if correlator.next_deadline < self._next_deadline:
                self._next_deadline = correlator.next_deadline

    def _advance(self, changed: dict[str, Detection]) -> None:
        for correlator in self.correlators:
            if correlator.next_deadline <= self.watermark.value:
                self._collect(correlator, correlator.advance(self.watermark.value), changed)
        self._next_deadline = min((c.next_deadline for c in self.correlators), default=float("inf"))

    def _collect(self, correlator: Correlator, detections: list[Detection], changed: dict[str, Detection]) -> None:
        rule = correlator.rule
        for det in detections:
            if rule.output:
                changed[det.id] = det
            if rule.meta.id in self._dependents and det.id not in self._chained:
                self._chained[det.id] = None
                if len(self._chained) > 100_000:
                    self._chained.popitem(last=False)
                view = FieldView.of(nest(dict(det.group)))
                hit = Hit(rule.meta.id, event_time(det.last_seen), det.last_seen, det.id, view)
                self._correlate(rule.meta.id, hit, changed)

    def _single(self, rule: DetectionRule, event: NormalizedEvent, doc: FieldView) -> Detection:
        m: RuleMeta = rule.meta
        stamp = str(event.doc.get("@timestamp", ""))
        group = {f: str(v) for f in m.options.suppress_by if (v := first_value(doc, f)) is not None}
        field_name = m.options.risk_score_field
        risk = _risk(doc, field_name) if field_name else None
        return Detection(
            id=detection_id(m.id, event.doc_id, stamp),
            rule_id=m.id,
            rule_name=m.name,
            title=m.title,
            description=m.description,
            level=m.level,
            group=group,
            first_seen=stamp,
            last_seen=stamp,
            event_count=1,
            event_ids=[event.doc_id],
            tags=list(m.tags),
            risk_score=risk if risk is not None else m.default_risk,
        )


def _risk(doc: FieldView, field_name: str) -> float | None:
    """A 0-100 risk score from an event field (clamped), None when absent or not a number."""
    value = number(first_value(doc, field_name))
    return None if value is None or value != value else min(100.0, max(0.0, float(value)))


__all__ = ["EngineStats", "LogSource", "RuleEngine", "event_logsource", "make_correlator"]
