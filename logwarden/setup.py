"""``logwarden setup``: index templates and the alerts index in Elasticsearch, topics in Kafka. Idempotent."""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from alerting.sinks.elasticsearch import alerts_index
from ingest.ecs import ALERT_FIELDS, EVENT_FIELDS, index_template
from ingest.sinks.dead_letters import dead_letter_topic
from logwarden.errors import ServiceUnavailable
from logwarden.settings import Settings

log = logging.getLogger(__name__)


def events_alias(prefix: str) -> str:
    return f"{prefix}-events"


def templates(settings: Settings) -> dict[str, dict[str, Any]]:
    """Template name -> body, for the event indices and the alerts index."""
    prefix = settings.index_prefix
    out = {
        f"{prefix}-events": index_template(f"{prefix}-events-*", events_alias(prefix), EVENT_FIELDS),
        f"{prefix}-alerts": index_template(alerts_index(prefix), None, ALERT_FIELDS),
    }
    for body in out.values():
        body["template"]["settings"]["number_of_replicas"] = settings.index_replicas
    return out


def setup_elasticsearch(es: Elasticsearch, settings: Settings) -> list[str]:
    """Install (or update) the templates and create the alerts index; returns what was done."""
    done = []
    try:
        for name, body in templates(settings).items():
            es.indices.put_index_template(
                name=name,
                index_patterns=body["index_patterns"],
                priority=body["priority"],
                template=body["template"],
                meta=body["_meta"],
            )
            done.append(f"index template {name}")
        index = alerts_index(settings.index_prefix)
        if not es.indices.exists(index=index):
            es.indices.create(index=index)
            done.append(f"index {index}")
    except (TransportError, ApiError) as exc:
        raise ServiceUnavailable(f"LOGWARDEN_ELASTICSEARCH_URL: setup failed: {exc}") from None
    return done


def setup_kafka(settings: Settings) -> list[str]:
    """Create every configured topic and its ``.dlq`` topic (existing topics are left alone)."""
    names = [t for topic in settings.topics for t in (topic, dead_letter_topic(topic))]
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
            bootstrap_timeout_ms=int(settings.kafka_bootstrap_timeout_s * 1000),
        )
    except KafkaError as exc:
        raise ServiceUnavailable(
            f"LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS: cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}"
        ) from None
    done = []
    try:
        existing = set(admin.list_topics())
        for name in names:
            if name in existing:
                continue
            try:
                admin.create_topics(
                    {
                        name: {
                            "num_partitions": settings.kafka_topic_partitions,
                            "replication_factor": settings.kafka_replication_factor,
                        }
                    },
                    wait_for_metadata=True,
                )
                done.append(f"topic {name}")
            except TopicAlreadyExistsError:
                pass
    except KafkaError as exc:
        raise ServiceUnavailable(f"LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS: topic creation failed: {exc}") from None
    finally:
        admin.close()
    return done
