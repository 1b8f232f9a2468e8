"""The alert model and its two wire forms: an ECS alert document and an Alertmanager alert."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final

import orjson

from alerting.catalog import RuleInfo
from alerting.links import discover_url
from detectors.detection import Detection
from detectors.ml.detection import MLDetection
from ingest.ecs import ECS_VERSION

#: Sigma level -> (ECS event.severity, default risk score 0-100), as Elastic Security scores them.
LEVELS: Final[dict[str, tuple[int, float]]] = {
    "informational": (1, 10.0),
    "low": (2, 21.0),
    "medium": (3, 47.0),
    "high": (4, 73.0),
    "critical": (5, 99.0),
}

#: Sigma ATT&CK tags: ``attack.t1110.001`` is a technique, ``attack.credential-access`` a tactic;
#: group (``attack.g0016``), software (``attack.s0002``) and tactic ids (``attack.ta0006``) are neither.
_TECHNIQUE_TAG: Final = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$")
_TACTIC_TAG: Final = re.compile(r"^attack\.([a-z]+(?:-[a-z]+)*)$")
_DETECTION_TYPES: Final[dict[str, type[Detection]]] = {"Detection": Detection, "MLDetection": MLDetection}


@dataclass(frozen=True)
class Alert:
    """One alert: a detection plus the context needed to act on it.

    ``resolved_at`` (RFC 3339) is set once the alert is over: its window closed and it stayed quiet.
    """

    detection: Detection
    created: str  # when logwarden raised it (wall clock, RFC 3339)
    info: RuleInfo = field(default_factory=RuleInfo)
    resolved_at: str | None = None

    @property
    def id(self) -> str:
        return self.detection.id

    @property
    def status(self) -> str:
        return "resolved" if self.resolved_at else "open"

    @property
    def version(self) -> str | None:
        """The rule's version from the catalog, else the model version an ML detection carries."""
        if self.info.version:
            return self.info.version
        if isinstance(self.detection, MLDetection):
            version = self.detection.ml.get("model_version")
            return str(version) if version is not None else None
        return None

    @property
    def severity(self) -> str:
        return self.detection.level if self.detection.level in LEVELS else "medium"

    @property
    def risk_score(self) -> float:
        """The rule's (or the event's) risk score when it set one, else the default of the severity."""
        score = self.detection.risk_score
        return float(score) if score is not None else LEVELS[self.severity][1]

    @property
    def entity(self) -> str:
        return self.detection.group_key or "-"

    @property
    def entity_key(self) -> str | None:
        """A short digest of the entity (the group key): an Alertmanager label for inhibition by entity.

        It reveals nothing about the entity and adds no cardinality beyond the ``alert_id`` label.
        """
        key = self.detection.group_key
        return _digest(key) if key else None

    @property
    def explanation(self) -> str:
        """Why the alert fired, in words: what matched, how often, for whom, and the rule's rationale."""
        d = self.detection
        who = f" for {self.entity}" if d.group else ""
        what = f"{d.event_count} event{'s' if d.event_count != 1 else ''} matched {d.rule_name}{who}"
        when = f" between {d.first_seen} and {d.last_seen}" if d.first_seen != d.last_seen else f" at {d.first_seen}"
        more = f"; {d.suppressed_count} later detections folded in" if d.suppressed_count else ""
        why = f" {d.description.strip()}" if d.description.strip() else ""
        return f"{what}{when} (risk score {self.risk_score:g}{more}).{why}"

    @property
    def summary(self) -> str:
        d = self.detection
        who = f" for {self.entity}" if d.group else ""
        return f"{d.title}{who}: {d.event_count} events {d.first_seen} .. {d.last_seen}"

    def to_document(self) -> dict[str, Any]:
        """The alerts-index document (ECS ``event.kind: alert``)."""
        d = self.detection
        techniques = [m[1].upper() for t in d.tags if (m := _TECHNIQUE_TAG.match(t))]
        tactics = [m[1] for t in d.tags if (m := _TACTIC_TAG.match(t))]
        doc: dict[str, Any] = {
            "@timestamp": self.created,
            "ecs": {"version": ECS_VERSION},
            "message": self.summary,
            "tags": d.tags,
            "event": {
                "kind": "alert",
                "severity": LEVELS[self.severity][0],
                "risk_score": self.risk_score,
                "start": d.first_seen,
                "end": d.last_seen,
            },
            "rule": {
                "id": d.rule_id,
                "name": d.rule_name,
                "description": d.description or d.title,
                "version": self.version,
                "reference": self.info.runbook_url,
            },
            "threat": {
                "framework": "MITRE ATT&CK" if techniques or tactics else None,
                "tactic": {"name": tactics},
                "technique": {"id": techniques},
            },
            "logwarden": {
                "alert": {
                    "id": self.id,
                    "severity": self.severity,
                    "group_key": d.group_key,
                    "entity": self.entity,
                    "event_count": d.event_count,
                    "suppressed_count": self.detection.suppressed_count,
                    "source_event_ids": d.event_ids,
                    "explanation": self.explanation,
                    "status": self.status,
                    "resolved_at": self.resolved_at,
                }
            },
        }
        if isinstance(d, MLDetection):
            doc["logwarden"]["alert"]["ml"] = d.alert_fields()
        return doc

    def to_alertmanager(self, *, ends_at: str | None = None, kibana_url: str | None = None) -> dict[str, Any]:
        """The Alertmanager v2 alert: identity and routing in labels, the rest in annotations.

        ``ends_at``: when Alertmanager should consider the alert over unless re-sent (a resolved alert
        sends its ``resolved_at``). Labels never hold the entity itself, only its digest ``entity_key``.
        """
        d = self.detection
        labels = {
            "alertname": d.rule_name,
            "severity": self.severity,
            "rule_id": d.rule_id,
            "alert_id": self.id,
            "service": "logwarden",
            "team": self.info.team,  # routes detections to the team's receivers (deploy/alertmanager)
        }
        if self.entity_key:
            labels["entity_key"] = self.entity_key
        if isinstance(d, MLDetection):
            labels.update(_campaign_labels(d))
        annotations = {
            "summary": self.summary,
            "description": self.explanation,
            "entity": self.entity,
            "event_count": str(d.event_count),
            "suppressed_count": str(d.suppressed_count),
            "first_seen": d.first_seen,
            "last_seen": d.last_seen,
            "risk_score": f"{self.risk_score:g}",
        }
        if self.info.runbook_url:
            annotations["runbook_url"] = self.info.runbook_url
        if self.version:
            annotations["rule_version"] = self.version
        alert: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": d.first_seen}
        if ends_at:
            alert["endsAt"] = ends_at
        if kibana_url:
            alert["generatorURL"] = discover_url(kibana_url, d, self.id)
        return alert


def _campaign_labels(detection: MLDetection) -> dict[str, str]:
    """``entity_type`` and ``campaign_key`` (a digest of the campaign, like ``entity_key``) of an ML alert.

    The campaign of an alert about a source IP is the IP itself, so its ``campaign_key`` equals its ``entity_key``
    and the alerts about the accounts that IP drove carry the same key: Alertmanager mutes them under it
    (deploy/alertmanager/alertmanager.yml).
    """
    labels = {"entity_type": str(detection.ml.get("entity_type") or "request")}
    campaign = detection.ml.get("campaign")
    if campaign:
        labels["campaign_key"] = _digest(str(campaign))
    return labels


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def alert_to_json(alert: Alert) -> bytes:
    """The alert as JSON (the outbox's payload): detection, creation, rule facts, resolution."""
    return orjson.dumps(
        {
            "type": type(alert.detection).__name__,
            "detection": asdict(alert.detection),
            "created": alert.created,
            "info": asdict(alert.info),
            "resolved_at": alert.resolved_at,
        }
    )


def alert_from_json(payload: bytes) -> Alert:
    """The inverse of :func:`alert_to_json`; detection fields this version does not know are ignored."""
    data = orjson.loads(payload)
    kind = _DETECTION_TYPES.get(data.get("type", "Detection"), Detection)
    known = {f.name for f in fields(kind)}
    detection = kind(**{k: v for k, v in data["detection"].items() if k in known})
    return Alert(detection, data["created"], RuleInfo(**data.get("info") or {}), data.get("resolved_at"))
