"""``logwarden setup`` without services: the templates it installs, and a clear error when a service is down."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from elasticsearch import ConnectionError as ESConnectionError

from ingest.ecs import ALERT_FIELDS, EVENT_FIELDS
from logwarden.errors import ServiceUnavailable
from logwarden.settings import Settings
from logwarden.setup import events_alias, setup_elasticsearch, setup_kafka, templates


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("LOGWARDEN_"):
            monkeypatch.delenv(name)
    return Settings(index_prefix="acme", index_replicas=2)


def leaves(properties: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for name, spec in properties.items():
        if "properties" in spec:
            out |= leaves(spec["properties"], f"{prefix}{name}.")
        else:
            out.add(f"{prefix}{name}")
    return out


def test_templates_for_events_and_alerts(settings: Settings) -> None:
    bodies = templates(settings)
    assert set(bodies) == {"acme-events", "acme-alerts"}
    events, alerts = bodies["acme-events"], bodies["acme-alerts"]
    assert events["index_patterns"] == ["acme-events-*"]
    assert events["template"]["aliases"] == {events_alias("acme"): {}}
    assert alerts["index_patterns"] == ["acme-alerts"]
    assert alerts["template"]["aliases"] == {}
    assert leaves(events["template"]["mappings"]["properties"]) == set(EVENT_FIELDS)
    assert leaves(alerts["template"]["mappings"]["properties"]) == set(ALERT_FIELDS)
    assert {b["template"]["settings"]["number_of_replicas"] for b in bodies.values()} == {2}


class DownIndices:
    def put_index_template(self, **_: Any) -> None:
        raise ESConnectionError("Connection refused", errors=(ConnectionRefusedError(111, "refused"),))


class DownElasticsearch:
    indices = DownIndices()


def test_elasticsearch_down_is_service_unavailable_naming_the_setting(settings: Settings) -> None:
    with pytest.raises(ServiceUnavailable, match="LOGWARDEN_ELASTICSEARCH_URL"):
        setup_elasticsearch(DownElasticsearch(), settings)  # type: ignore[arg-type]


def test_kafka_down_is_service_unavailable_naming_the_setting(settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = settings.model_copy(
        update={"kafka_bootstrap_servers": f"127.0.0.1:{port}", "kafka_bootstrap_timeout_s": 0.5}
    )
    with pytest.raises(ServiceUnavailable, match="LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS"):
        setup_kafka(down)
