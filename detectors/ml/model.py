"""A trained model: feature extraction settings, one fitted detector and threshold per partition, explanations.

Partitions: the entity types for behaviour models (``api_key``, ``user``, ``source_ip``, ``org``: each has its
own population), ``request`` for content models. Columns constant in training are left out of the detector
(they carry no information) but stay in explanations.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.ml.base import AnomalyDetector
from detectors.ml.drift import DriftReference
from detectors.ml.explain import FeatureStats, explain
from detectors.ml.features.behaviour import BASELINES, EntityBehaviour
from detectors.ml.features.content import RequestContent
from detectors.ml.presets import Preset

Matrix = npt.NDArray[np.float64]
Vector = npt.NDArray[np.float64]


@dataclass
class Partition:
    """The fitted detector of one partition and what it needs to score and explain."""

    detector: AnomalyDetector
    columns: npt.NDArray[np.intp]  # feature columns the detector sees
    threshold: float  # 0-100
    stats: FeatureStats
    drift: DriftReference
    train_rows: int


@dataclass
class TrainedModel:
    """Everything needed to score: the preset, the fitted content vocabulary, partitions, metadata."""

    preset: Preset
    feature_names: list[str]
    partitions: dict[str, Partition]
    content: RequestContent | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    state: EntityBehaviour | None = None  # entity history at the end of training (behaviour models)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", self.preset.name))

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unversioned"))

    @property
    def family(self) -> str:
        return self.preset.family

    def new_behaviour(self) -> EntityBehaviour:
        """Entity state to score with: a copy of the history learned in training (open windows cleared)."""
        if self.preset.behaviour is None:
            raise ValueError(f"model {self.name} is not a behaviour model")
        if self.state is None:
            return EntityBehaviour(self.preset.behaviour)
        state = copy.deepcopy(self.state)
        state.reset_clock()
        return state

    def score(self, partition: str, X: Matrix) -> tuple[Vector, npt.NDArray[np.bool_]]:
        """0-100 scores and the anomalous flags (score > threshold) of feature rows of one partition."""
        part = self.partitions.get(partition)
        if part is None or X.shape[0] == 0:
            return np.zeros(X.shape[0]), np.zeros(X.shape[0], dtype=bool)
        scores = part.detector.score_samples(X[:, part.columns])
        return scores, scores > part.threshold

    def explain(self, partition: str, X: Matrix, usual: Matrix | None = None) -> list[list[dict[str, Any]]]:
        """Top contributing features per row; behaviour rows pass the entity's own baselines (``usual``)."""
        part = self.partitions[partition]
        own: dict[int, Matrix] = {}
        if usual is not None and self.preset.behaviour is not None:
            hop = self.preset.behaviour.windows[0]
            for b, base in enumerate(BASELINES):
                name = f"{base}_{hop}m"
                if name in self.feature_names:
                    own[self.feature_names.index(name)] = usual[:, b]
        return explain(part.stats, X, top=self.preset.top_features, usual_own=own)
