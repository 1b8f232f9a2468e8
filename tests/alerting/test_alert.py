"""The alert model and its wire forms (ECS alert document, Alertmanager v2 alert)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from alerting.alert import LEVELS, Alert, discover_url
from detectors.detection import Detection
from ingest.ecs import ALERT_FIELDS, ECS_VERSION


def detection(**changes: Any) -> Detection:
    fields: dict[str, Any] = {
        "id": "a" * 32,
        "rule_id": "7d1e9b35-6c2a-4e8f-b0d4-3a9c1f5e2b68",
        "rule_name": "api_login_brute_force",
        "title": "Brute-force sign-in against one user",
        "description": "Ten or more failed sign-ins",
        "level": "high",
        "group": {"user.id": "user_1"},
        "first_seen": "2026-11-02T08:00:00.000Z",
        "last_seen": "2026-11-02T08:03:00.000Z",
        "event_count": 12,
        "event_ids": ["e1", "e2"],
        "tags": ["attack.credential-access", "attack.t1110.001", "attack.t1078"],
    }
    fields.update(changes)
    return Detection(**fields)


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_to_document_is_an_ecs_alert() -> None:
    doc = flatten(Alert(detection(), "2026-11-02T08:03:05.000Z").to_document())
    assert doc["@timestamp"] == "2026-11-02T08:03:05.000Z"
    assert doc["ecs.version"] == ECS_VERSION
    assert doc["event.kind"] == "alert"
    assert doc["event.severity"] == 4
    assert doc["event.risk_score"] == 73.0
    assert doc["event.start"] == "2026-11-02T08:00:00.000Z"
    assert doc["event.end"] == "2026-11-02T08:03:00.000Z"
    assert doc["rule.id"] == "7d1e9b35-6c2a-4e8f-b0d4-3a9c1f5e2b68"
    assert doc["rule.name"] == "api_login_brute_force"
    assert doc["rule.description"] == "Ten or more failed sign-ins"
    assert doc["threat.framework"] == "MITRE ATT&CK"
    assert doc["threat.technique.id"] == ["T1110.001", "T1078"]
    assert doc["threat.tactic.name"] == ["credential-access"]
    assert doc["tags"] == ["attack.credential-access", "attack.t1110.001", "attack.t1078"]
    assert doc["logwarden.alert.id"] == "a" * 32
    assert doc["logwarden.alert.severity"] == "high"
    assert doc["logwarden.alert.group_key"] == "user.id=user_1"
    assert doc["logwarden.alert.entity"] == "user.id=user_1"
    assert doc["logwarden.alert.event_count"] == 12
    assert doc["logwarden.alert.source_event_ids"] == ["e1", "e2"]
    assert "user_1" in doc["message"] and "12 events" in doc["message"]


def test_alert_document_only_uses_catalogued_fields() -> None:
    doc = flatten(Alert(detection(), "2026-11-02T08:03:05.000Z").to_document())
    assert set(doc) - set(ALERT_FIELDS) == set()


def test_group_and_software_ids_are_neither_tactics_nor_techniques() -> None:
    tags = ["attack.defense-evasion", "attack.t1562", "attack.g0016", "attack.s0002", "cve.2021-44228", "attack.ta0005"]
    doc = Alert(detection(tags=tags), "2026-11-02T08:03:05.000Z").to_document()
    assert doc["threat"]["technique"]["id"] == ["T1562"]
    assert doc["threat"]["tactic"]["name"] == ["defense-evasion"]


def test_without_attack_tags_there_is_no_framework() -> None:
    doc = Alert(detection(tags=[]), "2026-11-02T08:03:05.000Z").to_document()
    assert doc["threat"]["framework"] is None
    assert doc["threat"]["technique"]["id"] == []


@pytest.mark.parametrize(("level", "severity", "risk"), [(k, *v) for k, v in LEVELS.items()] + [("weird", 3, 47.0)])
def test_severity_and_risk_score_per_level(level: str, severity: int, risk: float) -> None:
    alert = Alert(detection(level=level), "2026-11-02T08:03:05.000Z")
    assert alert.to_document()["event"]["severity"] == severity
    assert alert.risk_score == risk
    assert alert.severity in LEVELS


def test_single_event_alert_has_no_entity() -> None:
    alert = Alert(detection(group={}, event_count=1), "2026-11-02T08:03:05.000Z")
    assert alert.entity == "-"
    assert " for " not in alert.summary


def test_to_alertmanager_labels_are_exactly_the_low_cardinality_ones() -> None:
    am = Alert(detection(), "2026-11-02T08:03:05.000Z").to_alertmanager()
    assert am["labels"] == {
        "alertname": "api_login_brute_force",
        "severity": "high",
        "rule_id": "7d1e9b35-6c2a-4e8f-b0d4-3a9c1f5e2b68",
        "alert_id": "a" * 32,
        "service": "logwarden",
        "team": "security",
    }
    assert am["annotations"]["entity"] == "user.id=user_1"
    assert am["annotations"]["event_count"] == "12"
    assert am["annotations"]["risk_score"] == "73"
    assert am["annotations"]["first_seen"] == "2026-11-02T08:00:00.000Z"
    assert am["annotations"]["last_seen"] == "2026-11-02T08:03:00.000Z"
    assert all(isinstance(v, str) for v in am["annotations"].values())
    assert am["startsAt"] == "2026-11-02T08:00:00.000Z"
    assert "endsAt" not in am
    assert "generatorURL" not in am
    assert "user_1" not in str(am["labels"])


def test_to_alertmanager_with_kibana_and_end() -> None:
    am = Alert(detection(), "2026-11-02T08:03:05.000Z").to_alertmanager(
        ends_at="2026-11-02T09:00:00.000Z", kibana_url="http://kibana:5601/"
    )
    assert am["endsAt"] == "2026-11-02T09:00:00.000Z"
    assert am["generatorURL"] == discover_url("http://kibana:5601", "a" * 32)
    assert am["generatorURL"].startswith("http://kibana:5601/app/discover#/")
    assert f'logwarden.alert.id:"{"a" * 32}"' in unquote(am["generatorURL"])
