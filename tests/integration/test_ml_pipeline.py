"""ML models in ``logwarden run`` on the real stack.

A model is trained the way an operator would: generated gateway history normalized by ``logwarden normalize``
(with the deployment's privacy settings, so the model knows the same pseudonyms the worker writes), then
``logwarden models train``. A worker started with ``LOGWARDEN_MODELS_DIR`` then reads traffic with a leaked key
and a credential-stuffing run from Kafka: its ML alerts reach the alerts index with their explanation and the
model's version, Alertmanager lists them, and /metrics exports the model counters, score histogram and drift.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from kafka import KafkaProducer

from ingest.sources.synthetic import generate_api_access, to_json_line

from .conftest import Services, get_json, logwarden_cli, logwarden_worker, topic_of, wait_until
from .test_alerting import metric, stop

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
MODEL = "entity-behaviour"


def raw_traffic(path: Path, start: datetime, minutes: int, scenarios: tuple[str, ...]) -> list[bytes]:
    lines = [
        to_json_line(e)
        for e in generate_api_access(
            seed=7, start=start, duration=timedelta(minutes=minutes), rate_per_s=5.0, scenarios=scenarios
        )
    ]
    path.write_bytes(b"".join(lines))
    return [line.rstrip(b"\n") for line in lines]


def ml_alerts(es: Elasticsearch, prefix: str) -> list[dict[str, Any]]:
    es.indices.refresh(index=f"{prefix}-alerts")
    found = es.search(index=f"{prefix}-alerts", query={"prefix": {"rule.id": "ml."}}, size=200)
    return [h["_source"] for h in found["hits"]["hits"]]


def test_a_trained_model_raises_explained_alerts_in_the_running_pipeline(
    services: Services, deployment: dict[str, str], tmp_path: Path
) -> None:
    history = tmp_path / "history.jsonl"
    raw_traffic(history, START - timedelta(hours=3), 180, ())
    normalized = logwarden_cli("normalize", "--source", "api_access", str(history), env=deployment)
    assert normalized.returncode == 0, normalized.stderr[-2000:]
    docs = tmp_path / "history.ecs.jsonl"
    docs.write_text(normalized.stdout)
    registry = tmp_path / "models"
    trained = logwarden_cli("models", "train", "--preset", MODEL, "--data", str(docs), "--out", str(registry),
                            env=deployment, timeout=600)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (registry / MODEL / "v1" / "model.joblib").is_file()

    env = {**deployment, "LOGWARDEN_MODELS_DIR": str(registry)}
    setup = logwarden_cli("setup", env=env)
    assert setup.returncode == 0, setup.stderr
    worker = logwarden_worker(env)
    try:
        records = raw_traffic(tmp_path / "live.jsonl", START, 30, ("key_leak", "credential_stuffing"))
        producer = KafkaProducer(bootstrap_servers=services.kafka)
        for record in records:
            producer.send(topic_of(env), record)
        producer.flush()
        producer.close()
        port = env["LOGWARDEN_METRICS_PORT"]
        wait_until(
            lambda: metric(port, "logwarden_model_events_total") >= len(records), 180, "the model saw every event"
        )
        es = Elasticsearch(services.elasticsearch)
        alerts = wait_until(lambda: ml_alerts(es, env["LOGWARDEN_INDEX_PREFIX"]), 60, "an ML alert in the index")
        assert isinstance(alerts, list)
        for alert in alerts:
            assert alert["rule"]["id"] == f"ml.{MODEL}" and alert["rule"]["version"] == "v1"
            ml = alert["logwarden"]["alert"]["ml"]
            assert ml["model_id"] == MODEL and ml["score"] >= ml["threshold"]
            assert ml["top_features"] and all("usual" in f for f in ml["top_features"]), ml
            assert "usually" in alert["logwarden"]["alert"]["explanation"]
            assert alert["logwarden"]["alert"]["source_event_ids"], "evidence: the ids of the source events"
        assert len({a["logwarden"]["alert"]["id"] for a in alerts}) == len(alerts), "one document per alert"

        query = urllib.parse.quote('alertname="ml_entity_behaviour"')
        listed = wait_until(
            lambda: get_json(f"{services.alertmanager}/api/v2/alerts?filter={query}"), 60, "ML alerts in Alertmanager"
        )
        assert isinstance(listed, list)
        ours = {a["labels"]["alert_id"] for a in listed} & {a["logwarden"]["alert"]["id"] for a in alerts}
        assert ours, json.dumps(listed)[:2000]
        assert metric(port, "logwarden_model_scored_total") > 0
        assert metric(port, "logwarden_model_score_count", model_id=MODEL) == metric(
            port, "logwarden_model_scored_total"
        )
        assert metric(port, "logwarden_model_alerts_total") >= len(alerts)
    finally:
        stderr = stop(worker)
    assert "Traceback" not in stderr, stderr[-3000:]
