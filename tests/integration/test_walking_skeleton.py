"""The walking skeleton on the real stack.

API-access JSON events produced to Kafka -> ``logwarden run`` -> ECS documents in Elasticsearch
(templates from ``logwarden setup``) -> the brute-force rule -> an alert in the alerts index, in
Alertmanager (labels alertname, severity, rule_id) and in ``logwarden_alerts_total`` as scraped by
the real Prometheus. Offsets are committed after Elasticsearch acknowledged; a replay duplicates nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from datetime import timedelta
from typing import Any

from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ingest.sources.synthetic import generate_api_access, to_json_line

from .conftest import Services, get_json, logwarden_cli, pseudonym, wait_until

RULE = "api_login_brute_force"
MALFORMED = [b"{not json", b'{"timestamp": "2026-11-02T08:00:00Z", "method": "GET", "path": "/v1/models"}']


def test_events_flow_from_kafka_to_elasticsearch_alertmanager_and_prometheus(
    services: Services, deployment: dict[str, str]
) -> None:
    topic = next(iter(json.loads(deployment["LOGWARDEN_TOPICS"])))
    prefix = deployment["LOGWARDEN_INDEX_PREFIX"]
    group = deployment["LOGWARDEN_KAFKA_GROUP_ID"]
    es = Elasticsearch(services.elasticsearch)

    # 1. setup: templates, alerts index, topics (twice: it is idempotent)
    for _ in range(2):
        setup = logwarden_cli("setup", env=deployment)
        assert setup.returncode == 0, setup.stderr
    assert es.indices.exists_index_template(name=f"{prefix}-events")
    assert es.indices.exists(index=f"{prefix}-alerts")

    # 2. produce 15 minutes of traffic with a brute-force attack, plus malformed records
    events = list(generate_api_access(seed=11, duration=timedelta(minutes=15), rate_per_s=2.0))
    attack = [e for e in events if e.scenario == "brute_force"]
    assert len(attack) >= 30
    producer = KafkaProducer(bootstrap_servers=services.kafka)
    for event in events:
        producer.send(topic, to_json_line(event), key=event.raw["user_id"].encode())
    for raw in MALFORMED:
        producer.send(topic, raw)
    producer.flush()
    producer.close()

    # 3. the worker, scraped by the real Prometheus
    port = deployment["LOGWARDEN_METRICS_PORT"]
    services.prometheus_targets.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"]}]))
    worker = subprocess.Popen(
        [sys.executable, "-m", "logwarden", "run"], env=deployment, stderr=subprocess.PIPE, text=True
    )
    try:
        # every valid event is in Elasticsearch, once
        def indexed() -> bool:
            es.indices.refresh(index=f"{prefix}-events")
            return int(es.count(index=f"{prefix}-events")["count"]) == len(events)

        wait_until(indexed, 90, f"{len(events)} events in {prefix}-events")
        doc = es.search(index=f"{prefix}-events", size=1, query={"term": {"event.action": "user-login"}})
        source = doc["hits"]["hits"][0]["_source"]
        assert source["event"]["category"] == ["authentication", "web"]
        assert source["logwarden"]["source"] == "api_access"
        # privacy: user identifiers are pseudonymized before Elasticsearch, consistently across events
        victim = attack[0].raw["user_id"]
        raw_hits = es.count(index=f"{prefix}-events", query={"term": {"user.id": victim}})["count"]
        pseudo_hits = es.count(index=f"{prefix}-events", query={"term": {"user.id": pseudonym(victim)}})["count"]
        assert raw_hits == 0 and pseudo_hits >= len(attack)

        # the alert document
        def alert_docs() -> list[dict[str, Any]]:
            hits = es.search(index=f"{prefix}-alerts", query={"term": {"rule.name": RULE}})["hits"]["hits"]
            return [h["_source"] for h in hits]

        alerts = wait_until(alert_docs, 60, "the brute-force alert in the alerts index")
        assert isinstance(alerts, list)
        alert = alerts[0]
        target_user = attack[0].raw["user_id"]
        entity = f"user.id={pseudonym(target_user)}"  # identifiers reach Elasticsearch only as pseudonyms
        assert alert["event"]["kind"] == "alert"
        assert alert["logwarden"]["alert"]["entity"] == entity
        assert alert["logwarden"]["alert"]["event_count"] >= 10
        assert "T1110.001" in alert["threat"]["technique"]["id"]

        # the same alert in Alertmanager, with identity/routing labels
        alert_id = alert["logwarden"]["alert"]["id"]
        query = urllib.parse.quote(f'alert_id="{alert_id}"')

        def in_alertmanager() -> list[dict[str, Any]]:
            return list(get_json(f"{services.alertmanager}/api/v2/alerts?filter={query}"))

        am_alerts = wait_until(in_alertmanager, 30, "the alert in Alertmanager")
        assert isinstance(am_alerts, list) and len(am_alerts) == 1
        labels = am_alerts[0]["labels"]
        assert labels["alertname"] == RULE
        assert labels["severity"] == "high"
        assert labels["rule_id"] == alert["rule"]["id"]
        assert pseudonym(target_user) not in json.dumps(labels), "entities belong in annotations, not labels"
        assert am_alerts[0]["annotations"]["entity"] == entity
        assert am_alerts[0]["generatorURL"].startswith("http://kibana.example:5601/app/discover")

        # logwarden_alerts_total, scraped by the real Prometheus
        promql = urllib.parse.quote(f'logwarden_alerts_total{{rule_id="{alert["rule"]["id"]}"}}')

        def scraped() -> float:
            result = get_json(f"{services.prometheus}/api/v1/query?query={promql}")["data"]["result"]
            return sum(float(r["value"][1]) for r in result)

        assert wait_until(scraped, 60, "logwarden_alerts_total in Prometheus") == 1.0

        # malformed records are dead letters with their reason, not dropped
        dlq = KafkaConsumer(
            f"{topic}.dlq",
            bootstrap_servers=services.kafka,
            auto_offset_reset="earliest",
            consumer_timeout_ms=10_000,
        )
        letters = [json.loads(m.value) for m in dlq]
        dlq.close()
        assert sorted(letter["reason"] for letter in letters) == ["invalid_json", "missing_field"]
        assert all(letter["topic"] == topic and letter["offset"] >= 0 for letter in letters)

        # offsets committed up to the end of every partition (after the Elasticsearch acks)
        probe = KafkaConsumer(bootstrap_servers=services.kafka, group_id=group, enable_auto_commit=False)
        partitions = [TopicPartition(topic, p) for p in probe.partitions_for_topic(topic)]
        assert len(partitions) == 2
        ends = probe.end_offsets(partitions)

        def committed_to_end() -> bool:
            return all(probe.committed(tp) == ends[tp] for tp in partitions)

        wait_until(committed_to_end, 30, "offsets committed to the end of the topic")
        probe.close(autocommit=False)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    assert "Traceback" not in stderr

    # a replay from the start (new consumer group) duplicates nothing: deterministic ids
    replay_env = {**deployment, "LOGWARDEN_KAFKA_GROUP_ID": group + "-replay", "LOGWARDEN_METRICS_PORT": "0"}
    replay = logwarden_cli("run", "--until-idle", "5", env=replay_env)
    assert replay.returncode == 0, replay.stderr
    es.indices.refresh(index=f"{prefix}-*")
    assert int(es.count(index=f"{prefix}-events")["count"]) == len(events)
    assert len(alert_docs()) == len(alerts)
    es.close()
