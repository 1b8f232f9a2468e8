"""The detector interface shared by every anomaly detector: scikit-learn's shape, one sign, one scale.

- ``fit(X)`` returns ``self``; ``X`` is a 2-D numpy array or a pandas DataFrame (its column names are kept in
  ``feature_names_in_``); non-finite values are replaced by 0 (NaN) or clipped (inf).
- ``score_samples(X)`` returns normalized scores 0-100 (:mod:`detectors.ml.scaling`), higher = more anomalous;
  ``raw_scores(X)`` the detector's own score, with the same sign.
- Constructors only store their parameters (so ``get_params``/``set_params``/``clone`` work); everything learned
  ends in ``_``. Subclasses implement ``_fit(X) -> training raw scores`` and ``_raw(X)``.

>>> import numpy as np
>>> from detectors.ml.registry import create
>>> X = np.random.default_rng(0).normal(size=(500, 3))
>>> det = create("isolation_forest", n_estimators=50, random_state=1).fit(X)
>>> scores = det.score_samples(np.vstack([X[:2], [[8.0, 8.0, 8.0]]]))
>>> bool(scores[2] > scores[0] and scores[2] > scores[1]), bool(0 <= scores.min() and scores.max() <= 100)
(True, True)
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from detectors.ml.scaling import ScoreScaler

Matrix = npt.NDArray[np.float64]
Vector = npt.NDArray[np.float64]
_BIG = 1e30  # fits float32 (scikit-learn trees cast to it)


def as_matrix(X: Any) -> Matrix:
    """A float64 2-D array (C order) from an array, a list of rows or a DataFrame; NaN -> 0, inf clipped."""
    values = X.to_numpy(dtype=np.float64) if hasattr(X, "to_numpy") else X
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array of shape (n_samples, n_features), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        arr = np.nan_to_num(arr, nan=0.0, posinf=_BIG, neginf=-_BIG)
    return arr


class AnomalyDetector(BaseEstimator):  # type: ignore[misc]
    """Base class: fit, raw scores and normalized 0-100 scores (higher = more anomalous)."""

    def fit(self, X: Any, y: Any = None) -> Self:
        """Learn from ``X`` (rows assumed mostly normal); returns ``self``."""
        matrix = self._check(X, fitting=True)
        train_raw = self._fit(matrix)
        self.scaler_ = ScoreScaler().fit(train_raw)
        self.train_scores_ = self.scaler_.transform(train_raw)
        return self

    def raw_scores(self, X: Any) -> Vector:
        """The detector's own anomaly scores (higher = more anomalous, unbounded)."""
        return np.asarray(self._raw(self._check(X)), dtype=np.float64)

    def score_samples(self, X: Any) -> Vector:
        """Normalized anomaly scores 0-100 (higher = more anomalous)."""
        raw = self.raw_scores(X)  # checks that the detector is fitted first
        return self.scaler_.transform(raw)

    def _check(self, X: Any, *, fitting: bool = False) -> Matrix:
        matrix = as_matrix(X)
        if fitting:
            if matrix.shape[0] < 2:
                raise ValueError("need at least 2 rows to fit")
            self.n_features_in_ = matrix.shape[1]
            if hasattr(X, "columns"):
                self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        else:
            if not hasattr(self, "n_features_in_"):
                raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(X) first")
            if matrix.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {matrix.shape[1]} features, the detector was fitted on {self.n_features_in_}")
        return matrix

    def _fit(self, X: Matrix) -> Vector:  # pragma: no cover - abstract
        raise NotImplementedError

    def _raw(self, X: Matrix) -> Vector:  # pragma: no cover - abstract
        raise NotImplementedError
