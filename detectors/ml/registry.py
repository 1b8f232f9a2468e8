"""The registered detectors by name, and ``create(name, **params)``.

>>> sorted(available())[:3]
['copod', 'ecod', 'ensemble']
>>> create("hbos", n_bins=20).get_params()["n_bins"]
20
"""

from __future__ import annotations

from typing import Any

from detectors.errors import DetectorError
from detectors.ml.base import AnomalyDetector
from detectors.ml.ensemble import EnsembleDetector
from detectors.ml.hst import HalfSpaceTreesDetector
from detectors.ml.models import (
    COPODDetector,
    ECODDetector,
    HBOSDetector,
    IsolationForestDetector,
    KNNDetector,
    LOFDetector,
)

DETECTORS: dict[str, type[AnomalyDetector]] = {
    "isolation_forest": IsolationForestDetector,
    "ecod": ECODDetector,
    "copod": COPODDetector,
    "hbos": HBOSDetector,
    "lof": LOFDetector,
    "knn": KNNDetector,
    "ensemble": EnsembleDetector,
    "half_space_trees": HalfSpaceTreesDetector,
}
"""Name -> detector class. Every entry passes the contract tests (tests/detectors/ml/test_contract.py)."""


class UnknownDetector(DetectorError):
    """A detector name that is not registered."""


def available() -> list[str]:
    """The registered detector names."""
    return list(DETECTORS)


def create(name: str, **params: Any) -> AnomalyDetector:
    """A new, unfitted detector: ``create("isolation_forest", n_estimators=200)``."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise UnknownDetector(f"unknown detector {name!r}; available: {', '.join(DETECTORS)}") from None
    return cls(**params)
