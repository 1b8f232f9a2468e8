"""Metric collectors: the outbox and the rule engine, read at scrape time; no high-cardinality labels."""

from __future__ import annotations

from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry, generate_latest

from alerting.metrics import AlertMetrics, ModelCollector, OutboxCollector, RuleMetrics
from alerting.outbox import MemoryOutbox, Put, SqliteOutbox
from detectors.sigma.engine import RuleEngine
from detectors.sigma.loader import load_rules
from ingest.metrics import IngestMetrics
from ingest.pipeline import Normalizer
from ingest.records import Record

RULES = Path(__file__).resolve().parents[2] / "rules"
BRUTE_FORCE = "7d1e9b35-6c2a-4e8f-b0d4-3a9c1f5e2b68"
FAILED_LOGIN = "0c6f7e4a-2b1d-4f0e-9a43-5d2f8e61b7a1"
ALLOWED_LABELS = {"rule_id", "severity", "sink", "source", "reason", "topic", "partition", "le"}


def test_outbox_depth_and_age_per_sink() -> None:
    outbox = MemoryOutbox()
    outbox.write([Put("alertmanager", "a", "new", b"x"), Put("alertmanager", "b", "new", b"x")], 100.0)
    registry = CollectorRegistry()
    registry.register(OutboxCollector(outbox, ["alertmanager", "elasticsearch"], wall=lambda: 130.0))
    assert registry.get_sample_value("logwarden_alert_outbox_depth", {"sink": "alertmanager"}) == 2.0
    assert registry.get_sample_value("logwarden_alert_outbox_oldest_seconds", {"sink": "alertmanager"}) == 30.0
    assert registry.get_sample_value("logwarden_alert_outbox_depth", {"sink": "elasticsearch"}) == 0.0
    assert registry.get_sample_value("logwarden_alert_outbox_oldest_seconds", {"sink": "elasticsearch"}) == 0.0


def test_a_closed_outbox_does_not_break_the_scrape(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path / "o.sqlite")
    registry = CollectorRegistry()
    registry.register(OutboxCollector(outbox, ["alertmanager"]))
    outbox.close()  # the worker closes it at shutdown while the metrics endpoint still answers
    assert "logwarden_alert_outbox_depth" in generate_latest(registry).decode()
    assert registry.get_sample_value("logwarden_alert_outbox_depth", {"sink": "alertmanager"}) is None


def failed_login(i: int, user: str = "user_1") -> Record:
    raw = {
        "timestamp": f"2026-11-02T08:00:{i:02d}.000Z",
        "request_id": f"req_{i}",
        "method": "POST",
        "path": "/v1/auth/login",
        "status": 401,
        "user_id": user,
        "auth_method": "password",
    }
    return Record("api_access", orjson.dumps(raw), "api-access", 0, i)


def test_rule_engine_counters_are_exported_per_rule() -> None:
    engine = RuleEngine(load_rules([RULES]))
    registry = CollectorRegistry()
    metrics = RuleMetrics.create(registry, engine)
    events, dead = Normalizer().normalize_all([failed_login(i) for i in range(12)])
    assert not dead
    assert engine.process(events)
    metrics.evaluation_seconds.observe(0.01)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("logwarden_rule_matches_total", rule_id=FAILED_LOGIN) == 12.0
    assert value("logwarden_rule_engine_events_total") == 12.0
    assert value("logwarden_rule_suppressed_total") == 0.0
    assert value("logwarden_rule_errors_total") == 0.0
    assert value("logwarden_rule_engine_groups") == 1.0
    assert value("logwarden_rules_loaded") == float(engine.ruleset.loaded)
    assert value("logwarden_rules_failed") == 0.0
    assert value("logwarden_rule_evaluation_seconds_count") == 1.0
    assert value("logwarden_rule_engine_watermark_seconds") is not None


def test_no_metric_has_a_high_cardinality_label() -> None:
    registry = CollectorRegistry()
    AlertMetrics.create(registry)
    IngestMetrics.create(registry).init_sources(["api_access"])
    RuleMetrics.create(registry, RuleEngine(load_rules([RULES])))
    registry.register(OutboxCollector(MemoryOutbox(), ["alertmanager"]))
    text = generate_latest(registry).decode()
    assert "logwarden_events_received_total" in text
    labels = {
        label.split("=")[0]
        for metric in registry.collect()
        for sample in metric.samples
        for label in (f"{k}=" for k in sample.labels)
    }
    assert labels <= ALLOWED_LABELS, labels - ALLOWED_LABELS


class FakeModels:
    def drift(self) -> dict[str, dict[str, float]]:
        return {"iforest_behaviour": {"requests": 0.31, "bytes": 0.02}, "hst@shadow": {"a": 0.1}, "empty": {}}

    def counters(self) -> dict[str, int]:
        return {"events": 100, "rows_scored": 40, "anomalies": 2, "shadow_anomalies": 1, "entities": 9}

    def score_histograms(self) -> dict[str, tuple[list[tuple[float, int]], float]]:
        return {"iforest_behaviour": ([(50.0, 30), (95.0, 38), (float("inf"), 40)], 1234.5)}


def test_model_collector_exports_drift_per_model_and_the_engine_counters() -> None:
    registry = CollectorRegistry()
    registry.register(ModelCollector(FakeModels()))
    assert registry.get_sample_value("logwarden_model_drift", {"model_id": "iforest_behaviour"}) == 0.31
    assert registry.get_sample_value("logwarden_model_drift", {"model_id": "hst@shadow"}) == 0.1
    assert registry.get_sample_value("logwarden_model_drift", {"model_id": "empty"}) is None
    assert registry.get_sample_value("logwarden_model_scored_total") == 40.0
    assert registry.get_sample_value("logwarden_model_alerts_total") == 2.0
    assert registry.get_sample_value("logwarden_model_entities") == 9.0
    model = {"model_id": "iforest_behaviour"}
    assert registry.get_sample_value("logwarden_model_score_bucket", {**model, "le": "95.0"}) == 38.0
    assert registry.get_sample_value("logwarden_model_score_bucket", {**model, "le": "+Inf"}) == 40.0
    assert registry.get_sample_value("logwarden_model_score_count", model) == 40.0
    assert registry.get_sample_value("logwarden_model_score_sum", model) == 1234.5


def test_the_real_ml_engine_fits_the_collector() -> None:
    from detectors.ml.engine import MLEngine

    registry = CollectorRegistry()
    registry.register(ModelCollector(MLEngine([])))
    assert registry.get_sample_value("logwarden_model_events_total") == 0.0
