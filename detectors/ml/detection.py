"""The detection an ML model reports: a :class:`Detection` plus structured model output.

``ml`` holds the model id and version, the score, the threshold, the entity type, the top features
(``{"feature", "value", "usual", "z"}``) and the campaign (``source.ip=<ip>``: where the anomaly came from, see
:func:`detectors.ml.engine.campaign_of`); :meth:`MLDetection.alert_fields` flattens it for the alert document's
``logwarden.alert.ml.*`` fields (catalogued in ``ingest.ecs.ALERT_FIELDS``). Imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.detection import Detection


@dataclass
class MLDetection(Detection):
    """A model's detection; ``description`` is the human-readable explanation."""

    ml: dict[str, Any] = field(default_factory=dict)

    def alert_fields(self) -> dict[str, Any]:
        """The ``logwarden.alert.ml`` object of the alert document."""
        m = self.ml
        return {
            "model_id": m.get("model_id"),
            "model_version": m.get("model_version"),
            "score": m.get("score"),
            "threshold": m.get("threshold"),
            "entity_type": m.get("entity_type"),
            "campaign": m.get("campaign"),
            "top_features": [
                f"{f['feature']}={f['value']:g} (usual {f['usual']:g}, z {f['z']:+g})" for f in m.get("features", [])
            ],
        }


def level_of(score: float) -> str:
    """Severity of a model score: high from 95, medium from 85, else low (models alone never say critical)."""
    return "high" if score >= 95 else "medium" if score >= 85 else "low"
