"""The one catalogue of document fields (ECS plus our ``logwarden.*`` namespace) and the index templates.

Every field a parser writes, a rule tests, a feature reads or a dashboard shows must be listed here;
a test enforces it. The Elasticsearch templates are generated from this table using core field types
only (no ``wildcard``, ``match_only_text``, ``constant_keyword``...), so they install on any
Elasticsearch, the stripped integ-test distribution included.

>>> FIELDS["source.ip"]
'ip'
>>> mapping_properties({"a.b": "keyword"})
{'a': {'properties': {'b': {'type': 'keyword'}}}}
"""

from __future__ import annotations

from typing import Any, Final

ECS_VERSION: Final = "8.17.0"

#: Fields of normalized events. Arrays need no special type in Elasticsearch.
EVENT_FIELDS: Final[dict[str, str]] = {
    "@timestamp": "date",
    "message": "text",
    "tags": "keyword",
    "ecs.version": "keyword",
    "event.kind": "keyword",
    "event.category": "keyword",
    "event.type": "keyword",
    "event.action": "keyword",
    "event.outcome": "keyword",
    "event.dataset": "keyword",
    "event.module": "keyword",
    "event.id": "keyword",
    "event.duration": "long",
    "event.ingested": "date",
    "event.original": "keyword",
    "source.ip": "ip",
    "source.address": "keyword",
    "network.forwarded_ip": "ip",
    "user.id": "keyword",
    "user.name": "keyword",
    "user.email": "keyword",
    "organization.id": "keyword",
    "http.request.id": "keyword",
    "http.request.method": "keyword",
    "http.request.bytes": "long",
    "http.response.status_code": "long",
    "http.response.bytes": "long",
    "url.path": "keyword",
    "url.query": "keyword",
    "url.original": "keyword",
    "user_agent.original": "keyword",
    "tls.version": "keyword",
    "tls.version_protocol": "keyword",
    "related.ip": "ip",
    "related.user": "keyword",
    "gen_ai.request.model.id": "keyword",
    "gen_ai.usage.input_tokens": "long",
    "gen_ai.usage.output_tokens": "long",
    # our namespace: what ECS has no field for
    "logwarden.source": "keyword",
    "logwarden.api.key_id": "keyword",
    "logwarden.api.route": "keyword",
    "logwarden.api.auth_method": "keyword",
    "logwarden.api.mfa": "boolean",
    "logwarden.api.latency_ms": "double",
}

#: Fields of alert documents (the alerts index).
ALERT_FIELDS: Final[dict[str, str]] = {
    "@timestamp": "date",
    "tags": "keyword",
    "message": "text",
    "ecs.version": "keyword",
    "event.kind": "keyword",
    "event.severity": "long",
    "event.risk_score": "double",
    "event.start": "date",
    "event.end": "date",
    "rule.id": "keyword",
    "rule.name": "keyword",
    "rule.description": "text",
    "rule.version": "keyword",
    "threat.framework": "keyword",
    "threat.tactic.name": "keyword",
    "threat.technique.id": "keyword",
    "logwarden.alert.id": "keyword",
    "logwarden.alert.severity": "keyword",
    "logwarden.alert.group_key": "keyword",
    "logwarden.alert.entity": "keyword",
    "logwarden.alert.event_count": "long",
    "logwarden.alert.suppressed_count": "long",
    "logwarden.alert.source_event_ids": "keyword",
    "logwarden.alert.explanation": "text",
}

FIELDS: Final[dict[str, str]] = {**EVENT_FIELDS, **ALERT_FIELDS}


def mapping_properties(fields: dict[str, str]) -> dict[str, Any]:
    """Turn dotted ``name -> type`` pairs into nested Elasticsearch mapping properties."""
    root: dict[str, Any] = {}
    for name, field_type in sorted(fields.items()):
        node = root
        *parents, leaf = name.split(".") if name != "@timestamp" else [name]
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        spec: dict[str, Any] = {"type": field_type}
        if field_type == "keyword":
            spec["ignore_above"] = 1024
        if name == "event.original":
            spec = {"type": "keyword", "index": False, "doc_values": False}
        node[leaf] = spec
    return root


def index_template(pattern: str, alias: str | None, fields: dict[str, str], *, priority: int = 200) -> dict[str, Any]:
    """A composable index template for ``pattern`` whose indices join ``alias`` (when given).

    ``dynamic: false`` keeps unknown fields in ``_source`` without mapping them, so a new
    producer field can never explode the mapping or fail a bulk request.
    """
    return {
        "index_patterns": [pattern],
        "priority": priority,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
            "mappings": {
                "dynamic": False,
                "date_detection": False,
                "properties": mapping_properties(fields),
            },
            "aliases": {alias: {}} if alias else {},
        },
        "_meta": {"managed_by": "logwarden", "ecs_version": ECS_VERSION},
    }
