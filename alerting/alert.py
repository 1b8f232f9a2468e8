"""The alert model and its two wire forms: an ECS alert document and an Alertmanager alert."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from detectors.detection import Detection
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


@dataclass(frozen=True)
class Alert:
    """One alert: a detection plus the context needed to act on it."""

    detection: Detection
    created: str  # when logwarden raised it (wall clock, RFC 3339)

    @property
    def id(self) -> str:
        return self.detection.id

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
    def summary(self) -> str:
        d = self.detection
        who = f" for {self.entity}" if d.group else ""
        return f"{d.title}{who}: {d.event_count} events {d.first_seen} .. {d.last_seen}"

    def to_document(self) -> dict[str, Any]:
        """The alerts-index document (ECS ``event.kind: alert``)."""
        d = self.detection
        techniques = [m[1].upper() for t in d.tags if (m := _TECHNIQUE_TAG.match(t))]
        tactics = [m[1] for t in d.tags if (m := _TACTIC_TAG.match(t))]
        return {
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
            "rule": {"id": d.rule_id, "name": d.rule_name, "description": d.description or d.title},
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
                    "explanation": d.description,
                }
            },
        }

    def to_alertmanager(self, *, ends_at: str | None = None, kibana_url: str | None = None) -> dict[str, Any]:
        """The Alertmanager v2 alert: identity and routing in labels, the rest in annotations."""
        d = self.detection
        alert: dict[str, Any] = {
            "labels": {
                "alertname": d.rule_name,
                "severity": self.severity,
                "rule_id": d.rule_id,
                "alert_id": self.id,
                "service": "logwarden",
                "team": "security",  # routes detections to the security receivers (deploy/alertmanager)
            },
            "annotations": {
                "summary": self.summary,
                "description": d.description or d.title,
                "entity": self.entity,
                "event_count": str(d.event_count),
                "first_seen": d.first_seen,
                "last_seen": d.last_seen,
                "risk_score": f"{self.risk_score:g}",
            },
            "startsAt": d.first_seen,
        }
        if ends_at:
            alert["endsAt"] = ends_at
        if kibana_url:
            alert["generatorURL"] = discover_url(kibana_url, self.id)
        return alert


def discover_url(kibana_url: str, alert_id: str) -> str:
    """A Kibana Discover link to the alert document (its source events are listed in it)."""
    query = quote(f'logwarden.alert.id:"{alert_id}"', safe="")
    return f"{kibana_url.rstrip('/')}/app/discover#/?_a=(query:(language:kuery,query:'{query}'))"
