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
    "http.request.body.content": "keyword",
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
    # enrichment (ingest/enrich/): user agent and GeoIP (source.geo.* / source.as.* partly listed with Okta below)
    "user_agent.name": "keyword",
    "user_agent.version": "keyword",
    "user_agent.os.name": "keyword",
    "user_agent.os.version": "keyword",
    "user_agent.device.name": "keyword",
    "source.geo.location": "geo_point",
    # privacy (ingest/privacy/): pseudonymization key id, what was redacted/masked/dropped, sealed originals
    "logwarden.privacy.key_id": "keyword",
    "logwarden.privacy.redacted": "keyword",
    "logwarden.privacy.masked": "keyword",
    "logwarden.privacy.dropped": "keyword",
    "logwarden.privacy.sealed": "keyword",
    "logwarden.privacy.sealed_key_id": "keyword",
    # nginx / Apache access logs (ingest/parsers/web_access.py)
    "source.domain": "keyword",
    "http.version": "keyword",
    "http.request.referrer": "keyword",
    "http.response.body.bytes": "long",
    "url.scheme": "keyword",
    "url.domain": "keyword",
    "url.port": "long",
    "logwarden.web.malformed_request": "boolean",
    # AWS CloudTrail (ingest/parsers/cloudtrail.py); also uses user.roles, user.target.name
    "event.provider": "keyword",
    "cloud.provider": "keyword",
    "cloud.region": "keyword",
    "cloud.account.id": "keyword",
    "user.target.group.name": "keyword",
    "error.code": "keyword",
    "error.message": "text",
    "logwarden.cloudtrail.event_type": "keyword",
    "logwarden.cloudtrail.user_identity_type": "keyword",
    "logwarden.cloudtrail.access_key_id": "keyword",
    "logwarden.cloudtrail.invoked_by": "keyword",
    "logwarden.cloudtrail.mfa_authenticated": "boolean",
    "logwarden.cloudtrail.read_only": "boolean",
    "logwarden.cloudtrail.request_id": "keyword",
    "logwarden.cloudtrail.request_parameters": "keyword",
    # Kubernetes audit events (ingest/parsers/k8s_audit.py)
    "user.group.name": "keyword",
    "user.effective.name": "keyword",
    "orchestrator.type": "keyword",
    "orchestrator.namespace": "keyword",
    "orchestrator.api_version": "keyword",
    "orchestrator.resource.type": "keyword",
    "orchestrator.resource.name": "keyword",
    "logwarden.k8s.stage": "keyword",
    "logwarden.k8s.level": "keyword",
    "logwarden.k8s.subresource": "keyword",
    "logwarden.k8s.api_group": "keyword",
    "logwarden.k8s.authz_decision": "keyword",
    # platform audit events (ingest/parsers/audit.py)
    "event.reason": "keyword",
    "user.roles": "keyword",
    "user.target.id": "keyword",
    "user.target.email": "keyword",
    "user.target.name": "keyword",
    "logwarden.audit.known_action": "boolean",
    "logwarden.audit.privileged_action": "boolean",
    "logwarden.audit.actor_type": "keyword",
    "logwarden.audit.actor_is_admin": "boolean",
    "logwarden.audit.target_type": "keyword",
    "logwarden.audit.target_id": "keyword",
    "logwarden.audit.target_name": "keyword",
    "logwarden.audit.self_action": "boolean",
    "logwarden.audit.hour_utc": "long",
    "logwarden.audit.weekday_utc": "long",
    "logwarden.audit.role": "keyword",
    "logwarden.audit.mfa_method": "keyword",
    "logwarden.audit.export.rows": "long",
    "logwarden.audit.export.bytes": "long",
    "logwarden.audit.export.format": "keyword",
    "logwarden.audit.changed_keys": "keyword",
    "logwarden.audit.retention_days.old": "long",
    "logwarden.audit.retention_days.new": "long",
    "logwarden.audit.retention_shortened": "boolean",
    "logwarden.audit.logging_enabled.old": "boolean",
    "logwarden.audit.logging_enabled.new": "boolean",
    "logwarden.audit.logging_disabled": "boolean",
    "logwarden.audit.metadata": "keyword",
    # Okta System Log (ingest/parsers/okta.py)
    "source.geo.country_name": "keyword",
    "source.geo.region_name": "keyword",
    "source.geo.city_name": "keyword",
    "source.as.number": "long",
    "source.as.organization.name": "keyword",
    "group.id": "keyword",
    "group.name": "keyword",
    "logwarden.okta.severity": "keyword",
    "logwarden.okta.outcome_result": "keyword",
    "logwarden.okta.actor.type": "keyword",
    "logwarden.okta.actor.id": "keyword",
    "logwarden.okta.actor.name": "keyword",
    "logwarden.okta.target.type": "keyword",
    "logwarden.okta.target.id": "keyword",
    "logwarden.okta.target.name": "keyword",
    "logwarden.okta.client.os": "keyword",
    "logwarden.okta.client.browser": "keyword",
    "logwarden.okta.client.device": "keyword",
    "logwarden.okta.geo.lat": "double",
    "logwarden.okta.geo.lon": "double",
    "logwarden.okta.isp": "keyword",
    "logwarden.okta.is_proxy": "boolean",
    "logwarden.okta.session_id": "keyword",
    "logwarden.okta.credential_type": "keyword",
    "logwarden.okta.auth_provider": "keyword",
    "logwarden.okta.transaction.id": "keyword",
    "logwarden.okta.transaction.type": "keyword",
    "logwarden.okta.request_id": "keyword",
    "logwarden.okta.threat_suspected": "boolean",
    "logwarden.okta.risk_level": "keyword",
    "logwarden.okta.behaviors": "keyword",
    "logwarden.okta.factor": "keyword",
    "logwarden.okta.privilege_granted": "keyword",
    # GitHub organization audit log (ingest/parsers/github_audit.py)
    "source.geo.country_iso_code": "keyword",
    "organization.name": "keyword",
    "logwarden.github.repo": "keyword",
    "logwarden.github.visibility": "keyword",
    "logwarden.github.team": "keyword",
    "logwarden.github.permission": "keyword",
    "logwarden.github.operation_type": "keyword",
    "logwarden.github.business": "keyword",
    "logwarden.github.actor_is_bot": "boolean",
    "logwarden.github.transport_protocol": "keyword",
    "logwarden.github.programmatic_access_type": "keyword",
    "logwarden.github.hashed_token": "keyword",
    "logwarden.github.integration": "keyword",
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
    "rule.reference": "keyword",
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
    # ML detections (detectors/ml/detection.py: MLDetection.alert_fields)
    "logwarden.alert.ml.model_id": "keyword",
    "logwarden.alert.ml.model_version": "keyword",
    "logwarden.alert.ml.score": "double",
    "logwarden.alert.ml.threshold": "double",
    "logwarden.alert.ml.entity_type": "keyword",
    "logwarden.alert.ml.campaign": "keyword",
    "logwarden.alert.ml.top_features": "keyword",
    "logwarden.alert.status": "keyword",
    "logwarden.alert.resolved_at": "date",
}

FIELDS: Final[dict[str, str]] = {**EVENT_FIELDS, **ALERT_FIELDS}

#: Kept in ``_source`` only (not indexed, no doc values): the raw record and the sealed originals (ciphertext).
SOURCE_ONLY_FIELDS: Final = frozenset({"event.original", "logwarden.privacy.sealed"})


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
        if name in SOURCE_ONLY_FIELDS:
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
