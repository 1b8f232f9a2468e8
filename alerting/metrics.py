"""Prometheus metrics of the alerting stage and of the rule engine (injected registry).

No label holds a user, an IP, a path or an alert id: ``rule_id``, ``severity`` and ``sink`` are bounded
by the rule set and the configuration. The names are listed in ``docs/metrics.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from alerting.errors import OutboxError
from alerting.outbox import Outbox
from detectors.sigma.engine import RuleEngine

#: end-to-end latency buckets: seconds for live traffic, up to an hour for backfills and outages
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)


@dataclass(frozen=True)
class AlertMetrics:
    alerts: Counter
    updates: Counter
    resolved: Counter
    resends: Counter
    open: Gauge
    delivered: Counter
    delivery_failures: Counter
    rejected: Counter
    dropped: Counter
    end_to_end: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AlertMetrics:
        return cls(
            alerts=Counter(
                "logwarden_alerts",
                "Alerts raised (first emission only)",
                ["rule_id", "severity"],
                registry=registry,
            ),
            updates=Counter(
                "logwarden_alert_updates",
                "Updates of open alerts (more events in the same window)",
                ["rule_id"],
                registry=registry,
            ),
            resolved=Counter(
                "logwarden_alerts_resolved",
                "Alerts resolved (window closed, then quiet)",
                ["rule_id"],
                registry=registry,
            ),
            resends=Counter(
                "logwarden_alert_resends", "Open alerts re-sent to sinks where they expire", registry=registry
            ),
            open=Gauge("logwarden_alerts_open", "Alerts raised and not resolved yet", registry=registry),
            delivered=Counter(
                "logwarden_alert_deliveries",
                "Alert states delivered to a sink (new, updated, re-sent, resolved)",
                ["sink"],
                registry=registry,
            ),
            delivery_failures=Counter(
                "logwarden_alert_delivery_failures",
                "Failed delivery attempts to a sink (the alerts stay in the outbox and are retried)",
                ["sink"],
                registry=registry,
            ),
            rejected=Counter(
                "logwarden_alerts_rejected",
                "Alert states a sink refused for good (dropped from the outbox, logged)",
                ["sink"],
                registry=registry,
            ),
            dropped=Counter(
                "logwarden_alert_outbox_dropped",
                "Alert states dropped because the sink's outbox was full",
                ["sink"],
                registry=registry,
            ),
            end_to_end=Histogram(
                "logwarden_alert_end_to_end_seconds",
                "From the event time of an alert's newest event to its delivery (new and updated alerts)",
                ["sink"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
        )


class OutboxCollector(Collector):
    """``logwarden_alert_outbox_depth{sink}`` and ``..._oldest_seconds{sink}``, read at scrape time."""

    def __init__(self, outbox: Outbox, sinks: Iterable[str], wall: Callable[[], float] = time.time) -> None:
        self._outbox = outbox
        self._sinks = list(sinks)
        self._wall = wall

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "logwarden_alert_outbox_depth", "Alert states waiting in the outbox for a sink", labels=["sink"]
        )
        oldest = GaugeMetricFamily(
            "logwarden_alert_outbox_oldest_seconds",
            "Age of the oldest alert state waiting for a sink (0 when none waits)",
            labels=["sink"],
        )
        try:
            found = self._outbox.depth()
        except OutboxError:  # closed at shutdown (or broken, which the dispatcher reports): no samples
            found = {}
            self._sinks = []
        now = self._wall()
        for sink in sorted({*self._sinks, *found}):
            n, first = found.get(sink, (0, None))
            depth.add_metric([sink], n)
            oldest.add_metric([sink], max(0.0, now - first) if first is not None else 0.0)
        yield depth
        yield oldest


#: RuleEngine.counters() key -> (metric name, help); the monotonic ones become counters
_ENGINE_COUNTERS = {
    "events": ("logwarden_rule_engine_events", "Events evaluated by the rule engine"),
    "matches": ("logwarden_rule_engine_matches", "Rule matches, all rules (see logwarden_rule_matches_total)"),
    "late_events": ("logwarden_rule_engine_late_events", "Events older than the watermark (not correlated)"),
    "bad_timestamps": ("logwarden_rule_engine_bad_timestamps", "Events without a usable @timestamp"),
    "excepted": ("logwarden_rule_engine_excepted", "Rule matches dropped by an exception"),
    "rule_errors": ("logwarden_rule_errors", "Rule evaluations that raised (the event went on)"),
    "suppressed": ("logwarden_rule_suppressed", "Detections folded into an earlier one by suppression"),
    "evicted_groups": ("logwarden_rule_engine_evicted_groups", "Correlation groups evicted at the state limit"),
    "truncated_events": ("logwarden_rule_engine_truncated_events", "Events dropped from full correlation groups"),
}


class RuleEngineCollector(Collector):
    """The rule engine's own counters, read at scrape time (the engine keeps plain integers)."""

    def __init__(self, engine: RuleEngine) -> None:
        self._engine = engine

    def collect(self) -> Iterable[Metric]:
        engine = self._engine
        counters = engine.counters()
        for key, (name, text) in _ENGINE_COUNTERS.items():
            yield CounterMetricFamily(name, text, value=counters.get(key, 0))
        per_rule = CounterMetricFamily("logwarden_rule_matches", "Matches per rule", labels=["rule_id"])
        for rule_id, n in sorted(dict(engine.stats.rule_matches).items()):  # dict(): an atomic copy
            per_rule.add_metric([rule_id], n)
        yield per_rule
        groups = counters.get("groups", 0)
        yield GaugeMetricFamily("logwarden_rule_engine_groups", "Correlation groups in memory", value=groups)
        ruleset = engine.ruleset
        yield GaugeMetricFamily("logwarden_rules_loaded", "Rules loaded and running", value=ruleset.loaded)
        yield GaugeMetricFamily("logwarden_rules_failed", "Rules that failed to load (skipped)", value=ruleset.failed)
        watermark = engine.watermark.value
        if watermark not in (float("inf"), float("-inf")):
            yield GaugeMetricFamily(
                "logwarden_rule_engine_watermark_seconds",
                "Event time (epoch seconds) up to which correlation windows are closed",
                value=watermark,
            )


@dataclass(frozen=True)
class RuleMetrics:
    """Rule-engine metrics: the collector above plus the evaluation time the runner observes."""

    evaluation_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry, engine: RuleEngine) -> RuleMetrics:
        registry.register(RuleEngineCollector(engine))
        return cls(
            evaluation_seconds=Histogram(
                "logwarden_rule_evaluation_seconds", "Time to evaluate the rules over one batch", registry=registry
            )
        )


class ModelEngine(Protocol):
    """What :class:`ModelCollector` reads (``detectors.ml.engine.MLEngine``; not imported: it pulls numpy)."""

    def drift(self) -> dict[str, dict[str, float]]: ...

    def counters(self) -> dict[str, int]: ...

    def score_histograms(self) -> dict[str, tuple[list[tuple[float, int]], float]]: ...


_MODEL_COUNTERS = {
    "events": ("logwarden_model_events", "Events the ML engine evaluated"),
    "rows_scored": ("logwarden_model_scored", "Rows (entity windows, requests) scored by the models"),
    "anomalies": ("logwarden_model_alerts", "Scores above a live model's threshold (detections)"),
    "shadow_anomalies": ("logwarden_model_shadow_alerts", "Scores above a shadow model's threshold (never alerted)"),
    "late_events": ("logwarden_model_late_events", "Events too late for their behaviour window"),
}


def _le(bound: float) -> str:
    """A bucket bound as the ``le`` label value prometheus-client's own histograms use (``95.0``, ``+Inf``)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class ModelCollector(Collector):
    """The ML engine's counters and drift, read at scrape time.

    ``logwarden_model_drift{model_id}`` is the largest PSI over the model's features in its last drift
    window (``MLEngine.drift()``; shadow models as ``<name>@shadow``); ``logwarden_model_score{model_id}`` is
    the histogram of every score the model gave (``MLEngine.score_histograms()``, counted per batch).
    """

    def __init__(self, engine: ModelEngine) -> None:
        self._engine = engine

    def collect(self) -> Iterable[Metric]:
        counters = self._engine.counters()
        for key, (name, text) in _MODEL_COUNTERS.items():
            yield CounterMetricFamily(name, text, value=counters.get(key, 0))
        yield GaugeMetricFamily(
            "logwarden_model_entities", "Entities with behaviour state in memory", value=counters.get("entities", 0)
        )
        drift = GaugeMetricFamily(
            "logwarden_model_drift",
            "Largest population stability index over a model's features (last drift window)",
            labels=["model_id"],
        )
        for model_id, per_feature in sorted(self._engine.drift().items()):
            if per_feature:
                drift.add_metric([model_id], max(per_feature.values()))
        scores = HistogramMetricFamily(
            "logwarden_model_score", "Anomaly scores a model gave (0-100, higher = more anomalous)", labels=["model_id"]
        )
        for model_id, (buckets, total) in sorted(self._engine.score_histograms().items()):
            scores.add_metric([model_id], [(_le(b), c) for b, c in buckets], total)
        yield drift
        yield scores
