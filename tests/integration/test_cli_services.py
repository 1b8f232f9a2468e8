"""``logwarden ingest`` into the real Kafka and ``logwarden retention`` on the real Elasticsearch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from elasticsearch import Elasticsearch
from kafka import KafkaConsumer

from ingest.sources.synthetic import generate_api_access, to_json_line

from .conftest import Services, logwarden_cli, topic_of


def test_ingest_produces_every_line_of_a_file(services: Services, deployment: dict[str, str], tmp_path: Path) -> None:
    topic = topic_of(deployment)
    path = tmp_path / "gateway.jsonl"
    path.write_bytes(b"".join(to_json_line(e) for e in islice(generate_api_access(seed=3), 1500)) + b"\n\n")
    result = logwarden_cli("ingest", "--source", "api_access", str(path), env=deployment)
    assert result.returncode == 0, result.stderr
    assert "1500 records produced" in result.stderr
    consumer = KafkaConsumer(
        topic, bootstrap_servers=services.kafka, auto_offset_reset="earliest", consumer_timeout_ms=8000
    )
    values = [m.value for m in consumer]
    consumer.close()
    assert len(values) == 1500
    assert values[0] == path.read_bytes().splitlines()[0]


def test_retention_deletes_only_event_indices_older_than_the_period(
    services: Services, deployment: dict[str, str]
) -> None:
    prefix = deployment["LOGWARDEN_INDEX_PREFIX"]
    es = Elasticsearch(services.elasticsearch)
    today = datetime.now(UTC).date()
    old = f"{prefix}-events-{(today - timedelta(days=40)).strftime('%Y.%m.%d')}"
    recent = f"{prefix}-events-{(today - timedelta(days=2)).strftime('%Y.%m.%d')}"
    for name in (old, recent, f"{prefix}-alerts"):
        es.indices.create(index=name)

    dry = logwarden_cli("retention", "--days", "30", "--dry-run", env=deployment)
    assert dry.returncode == 0, dry.stderr
    assert f"would delete {old}" in dry.stderr and es.indices.exists(index=old)

    real = logwarden_cli("retention", "--days", "30", env=deployment)
    assert real.returncode == 0, real.stderr
    assert not es.indices.exists(index=old)
    assert es.indices.exists(index=recent) and es.indices.exists(index=f"{prefix}-alerts")
    es.close()
