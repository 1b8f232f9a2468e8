"""Detectors: the Sigma rule engine (single events and correlations) and the ML detectors.

Every detector turns normalized ECS events into :class:`detectors.detection.Detection` objects;
the alerting package decides what to do with them. For notebooks::

    from detectors import create
    det = create("isolation_forest", n_estimators=200)
    scores = det.fit(X).score_samples(X)  # 0-100, higher = more anomalous
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detectors.ml.base import AnomalyDetector

__all__ = ["create"]


def create(name: str, **params: Any) -> AnomalyDetector:
    """A new anomaly detector by name (see ``detectors.ml.registry.available()``); imports the ML stack lazily."""
    from detectors.ml.registry import create as _create

    return _create(name, **params)
