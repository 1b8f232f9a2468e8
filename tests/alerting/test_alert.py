"""The alert model and its wire forms (ECS alert document, Alertmanager v2 alert)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest

from alerting.alert import LEVELS, Alert, alert_from_json, alert_to_json
from alerting.catalog import RuleInfo
from alerting.links import discover_url
from detectors.detection import Detection
from detectors.ml.detection import MLDetection
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
    assert doc["logwarden.alert.suppressed_count"] == 0
    assert doc["logwarden.alert.status"] == "open"
    assert doc["logwarden.alert.resolved_at"] is None
    assert doc["rule.version"] is None and doc["rule.reference"] is None  # no catalog entry given
    assert "user_1" in doc["message"] and "12 events" in doc["message"]
    explanation = doc["logwarden.alert.explanation"]
    assert explanation.startswith("12 events matched api_login_brute_force for user.id=user_1 between ")
    assert "risk score 73" in explanation and explanation.endswith("Ten or more failed sign-ins")


def test_document_carries_rule_version_runbook_risk_suppression_and_resolution() -> None:
    info = RuleInfo(version="2026-11-28+0a1b2c3d", runbook_url="https://runbooks.example/brute", team="iam")
    det = detection(risk_score=88.5, suppressed_count=3)
    doc = flatten(Alert(det, "2026-11-02T08:03:05.000Z", info, "2026-11-02T09:00:00.000Z").to_document())
    assert doc["rule.version"] == "2026-11-28+0a1b2c3d"
    assert doc["rule.reference"] == "https://runbooks.example/brute"
    assert doc["event.risk_score"] == 88.5
    assert doc["logwarden.alert.suppressed_count"] == 3
    assert doc["logwarden.alert.status"] == "resolved"
    assert doc["logwarden.alert.resolved_at"] == "2026-11-02T09:00:00.000Z"
    assert "3 later detections folded in" in doc["logwarden.alert.explanation"]


def test_alert_document_only_uses_catalogued_fields() -> None:
    info = RuleInfo(version="1", runbook_url="https://r.example")
    doc = flatten(Alert(detection(), "2026-11-02T08:03:05.000Z", info, "2026-11-02T09:00:00.000Z").to_document())
    assert set(doc) - set(ALERT_FIELDS) == set()


def test_json_round_trip_keeps_everything() -> None:
    info = RuleInfo(version="v2", runbook_url="https://r.example", team="iam", window_s=300.0)
    alert = Alert(detection(risk_score=12.0, suppressed_count=2), "2026-11-02T08:03:05.000Z", info, None)
    assert alert_from_json(alert_to_json(alert)) == alert


def test_json_from_a_newer_version_ignores_unknown_detection_fields() -> None:
    payload = alert_to_json(Alert(detection(), "2026-11-02T08:03:05.000Z")).replace(
        b'"event_count"', b'"model_feature":1,"event_count"'
    )
    assert alert_from_json(payload).detection == detection()


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
    one = detection(group={}, event_count=1, last_seen="2026-11-02T08:00:00.000Z")
    alert = Alert(one, "2026-11-02T08:03:05.000Z")
    assert alert.entity == "-"
    assert alert.entity_key is None
    assert " for " not in alert.summary
    assert "entity_key" not in alert.to_alertmanager()["labels"]
    assert alert.explanation.startswith("1 event matched api_login_brute_force at ")


def test_entity_key_is_a_stable_digest_of_the_entity_that_reveals_nothing() -> None:
    one = Alert(detection(), "2026-11-02T08:03:05.000Z")
    other_rule_same_user = Alert(detection(id="b" * 32, rule_id="r2", rule_name="x"), "2026-11-02T08:05:00.000Z")
    other_user = Alert(detection(group={"user.id": "user_2"}), "2026-11-02T08:03:05.000Z")
    assert one.entity_key == other_rule_same_user.entity_key != other_user.entity_key
    assert one.entity_key is not None and len(one.entity_key) == 16 and "user" not in one.entity_key


def test_to_alertmanager_labels_are_exactly_the_low_cardinality_ones() -> None:
    am = Alert(detection(), "2026-11-02T08:03:05.000Z").to_alertmanager()
    assert am["labels"] == {
        "alertname": "api_login_brute_force",
        "severity": "high",
        "rule_id": "7d1e9b35-6c2a-4e8f-b0d4-3a9c1f5e2b68",
        "alert_id": "a" * 32,
        "service": "logwarden",
        "team": "security",
        "entity_key": Alert(detection(), "x").entity_key,
    }
    assert am["annotations"]["entity"] == "user.id=user_1"
    assert am["annotations"]["event_count"] == "12"
    assert am["annotations"]["risk_score"] == "73"
    assert am["annotations"]["first_seen"] == "2026-11-02T08:00:00.000Z"
    assert am["annotations"]["last_seen"] == "2026-11-02T08:03:00.000Z"
    assert am["annotations"]["suppressed_count"] == "0"
    assert am["annotations"]["description"].startswith("12 events matched api_login_brute_force")
    assert "runbook_url" not in am["annotations"]  # no catalog: see the next test
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
    assert am["generatorURL"] == discover_url("http://kibana:5601", detection(), "a" * 32)
    assert am["generatorURL"].startswith("http://kibana:5601/app/discover#/")
    assert 'user.id : "user_1"' in unquote(am["generatorURL"])  # the entity's events in the window


def test_to_alertmanager_routes_by_the_rules_team_and_links_its_runbook() -> None:
    info = RuleInfo(version="2026-11-28+0a1b2c3d", runbook_url="https://runbooks.example/brute", team="iam")
    am = Alert(detection(), "2026-11-02T08:03:05.000Z", info).to_alertmanager()
    assert am["labels"]["team"] == "iam"
    assert am["annotations"]["runbook_url"] == "https://runbooks.example/brute"
    assert am["annotations"]["rule_version"] == "2026-11-28+0a1b2c3d"


def ml_detection() -> MLDetection:
    ml = {
        "model_id": "iforest_behaviour",
        "model_version": "7",
        "score": 97.5,
        "threshold": 90.0,
        "entity_type": "user",
        "features": [{"feature": "requests", "value": 420.0, "usual": 12.0, "z": 8.1}],
    }
    base = detection(rule_id="iforest_behaviour", rule_name="iforest_behaviour", level="high", risk_score=97.5)
    return MLDetection(**{**base.__dict__, "ml": ml})


def test_ml_detections_fill_the_ml_fields_and_the_model_version() -> None:
    alert = Alert(ml_detection(), "2026-11-02T08:03:05.000Z")
    doc = flatten(alert.to_document())
    assert doc["logwarden.alert.ml.model_id"] == "iforest_behaviour"
    assert doc["logwarden.alert.ml.score"] == 97.5
    assert doc["logwarden.alert.ml.top_features"] == ["requests=420 (usual 12, z +8.1)"]
    assert doc["rule.version"] == "7"  # no catalog entry: the model version the detection carries
    assert set(doc) - set(ALERT_FIELDS) == set()
    assert alert.to_alertmanager()["annotations"]["rule_version"] == "7"
    assert Alert(ml_detection(), "x", RuleInfo(version="8")).version == "8"  # the catalog wins


def test_ml_alerts_are_labelled_with_their_entity_type_and_campaign_for_inhibition() -> None:
    member = ml_detection()
    member.ml["campaign"] = "source.ip=203.0.113.9"
    origin = ml_detection()
    origin.group = {"source.ip": "203.0.113.9"}
    origin.ml = {**origin.ml, "entity_type": "source_ip", "campaign": "source.ip=203.0.113.9"}
    member_labels = Alert(member, "x").to_alertmanager()["labels"]
    origin_labels = Alert(origin, "x").to_alertmanager()["labels"]
    assert member_labels["entity_type"] == "user" and origin_labels["entity_type"] == "source_ip"
    # the address's alert and the alerts of the accounts it drove share one key: its own entity key
    assert member_labels["campaign_key"] == origin_labels["campaign_key"] == origin_labels["entity_key"]
    assert "203.0.113.9" not in str(member_labels)  # a digest, never the address
    assert flatten(Alert(member, "x").to_document())["logwarden.alert.ml.campaign"] == "source.ip=203.0.113.9"
    assert "campaign_key" not in Alert(ml_detection(), "x").to_alertmanager()["labels"]  # no campaign: no key
    assert "entity_type" not in Alert(detection(), "x").to_alertmanager()["labels"]  # rule alerts: unchanged


def test_ml_detections_survive_the_outbox_round_trip() -> None:
    alert = Alert(ml_detection(), "2026-11-02T08:03:05.000Z")
    back = alert_from_json(alert_to_json(alert))
    assert isinstance(back.detection, MLDetection) and back == alert
