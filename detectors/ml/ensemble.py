"""An ensemble: member detectors' normalized scores (0-100) combined by mean or max, then normalized again."""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.ml.base import AnomalyDetector, Matrix, Vector


class EnsembleDetector(AnomalyDetector):
    """Fits every member on the same rows; the raw score is the mean (or max) of their 0-100 scores.

    ``members`` names registered detectors; ``member_params`` gives their parameters by name
    (``{"isolation_forest": {"n_estimators": 200}}``). Members that take a ``random_state`` get this one's.
    """

    def __init__(
        self,
        members: tuple[str, ...] = ("isolation_forest", "ecod", "hbos"),
        combine: str = "mean",
        member_params: dict[str, dict[str, Any]] | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.members = members
        self.combine = combine
        self.member_params = member_params
        self.random_state = random_state

    def _fit(self, X: Matrix) -> Vector:
        from detectors.ml.registry import create

        if self.combine not in ("mean", "max"):
            raise ValueError(f"combine must be 'mean' or 'max', not {self.combine!r}")
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        params = self.member_params or {}
        self.detectors_: list[AnomalyDetector] = []
        for name in self.members:
            detector = create(name, **params.get(name, {}))
            if "random_state" in detector.get_params():
                detector.set_params(random_state=self.random_state)
            self.detectors_.append(detector.fit(X))
        return self._combine([d.train_scores_ for d in self.detectors_])

    def _raw(self, X: Matrix) -> Vector:
        return self._combine([d.score_samples(X) for d in self.detectors_])

    def member_scores(self, X: Any) -> dict[str, Vector]:
        """Each member's normalized scores, by member name (for tuning and explanations)."""
        matrix = self._check(X)
        return {name: d.score_samples(matrix) for name, d in zip(self.members, self.detectors_, strict=True)}

    def _combine(self, scores: list[Vector]) -> Vector:
        stacked = np.vstack(scores)
        return np.asarray(stacked.max(axis=0) if self.combine == "max" else stacked.mean(axis=0), dtype=np.float64)
