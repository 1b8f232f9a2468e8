"""Nothing lost, nothing doubled: a killed worker and an Elasticsearch outage, on the real stack."""

from __future__ import annotations

import json
import signal
import time
from datetime import timedelta

from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, KafkaProducer

from ingest.sources.synthetic import generate_api_access, to_json_line

from .conftest import Services, logwarden_cli, logwarden_worker, services_script, topic_of, wait_until

BROKEN = [b"{broken json", b'{"timestamp": "not a time", "method": "GET", "path": "/", "status": 200}', b"\xff\xfe"]


def _produce(services: Services, topic: str, minutes: float, seed: int, broken_every: int = 0) -> tuple[int, int]:
    """Produce generated traffic (plus broken records every ``broken_every``); returns (valid, broken)."""
    producer = KafkaProducer(bootstrap_servers=services.kafka, linger_ms=20)
    valid = broken = 0
    for i, event in enumerate(generate_api_access(seed=seed, duration=timedelta(minutes=minutes), rate_per_s=10)):
        producer.send(topic, to_json_line(event))
        valid += 1
        if broken_every and i % broken_every == 0:
            producer.send(topic, BROKEN[broken % len(BROKEN)])
            broken += 1
    producer.flush()
    producer.close()
    return valid, broken


def _count(es: Elasticsearch, prefix: str) -> int:
    es.indices.refresh(index=f"{prefix}-events")
    return int(es.count(index=f"{prefix}-events")["count"])


def _dead_letter_offsets(services: Services, topic: str) -> set[tuple[int, int]]:
    consumer = KafkaConsumer(
        f"{topic}.dlq", bootstrap_servers=services.kafka, auto_offset_reset="earliest", consumer_timeout_ms=8000
    )
    letters = {(json.loads(m.value)["partition"], json.loads(m.value)["offset"]) for m in consumer}
    consumer.close()
    return letters


def test_a_killed_worker_restarts_without_loss_or_duplicates(services: Services, deployment: dict[str, str]) -> None:
    topic, prefix = topic_of(deployment), deployment["LOGWARDEN_INDEX_PREFIX"]
    assert logwarden_cli("setup", env=deployment).returncode == 0
    valid, broken = _produce(services, topic, minutes=60, seed=21, broken_every=997)  # ~36k valid records
    es = Elasticsearch(services.elasticsearch)

    worker = logwarden_worker(deployment)
    wait_until(lambda: _count(es, prefix) >= 3000, 120, "the worker to be mid-stream")
    worker.send_signal(signal.SIGKILL)  # no chance to finish the batch or commit
    worker.wait(timeout=30)
    killed_at = _count(es, prefix)
    assert killed_at < valid, "the worker must be killed mid-stream for this test to mean anything"

    restart = logwarden_cli("run", "--until-idle", "8", env={**deployment, "LOGWARDEN_METRICS_PORT": "0"}, timeout=600)
    assert restart.returncode == 0, restart.stderr[-3000:]
    assert _count(es, prefix) == valid  # exactly one document per valid record
    assert len(_dead_letter_offsets(services, topic)) == broken  # every broken record, each at its own offset
    es.close()


def test_an_elasticsearch_outage_pauses_consumption_and_loses_nothing(
    services: Services, deployment: dict[str, str]
) -> None:
    topic, prefix = topic_of(deployment), deployment["LOGWARDEN_INDEX_PREFIX"]
    assert logwarden_cli("setup", env=deployment).returncode == 0
    first, _ = _produce(services, topic, minutes=5, seed=31)
    es = Elasticsearch(services.elasticsearch)
    worker = logwarden_worker(deployment)
    try:
        wait_until(lambda: _count(es, prefix) == first, 120, "the first part indexed")
        services_script("stop-es")
        second, _ = _produce(services, topic, minutes=5, seed=32)  # produced while Elasticsearch is down
        time.sleep(30)
        assert worker.poll() is None, "the worker must survive the outage"
        services_script("resume-es")
        wait_until(lambda: _count(es, prefix) == first + second, 180, "everything indexed after the outage")
    finally:
        services_script("resume-es")  # leave the shared node running whatever happened
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr[-3000:]
    assert "consumption paused" in stderr  # the worker said what it was doing
    es.close()
