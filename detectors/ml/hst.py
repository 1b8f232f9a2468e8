"""Half-space trees (Tan, Ting & Liu, 2011): a streaming detector for cold start, vectorized over rows.

Random binary trees split a perturbed copy of the feature space (features scaled to [0, 1] with limits learned
from the first rows or from ``fit``). Each node counts the rows of the latest window (``l``); when a window of
``window_size`` rows is complete, those counts become the reference profile (``r``) used for scoring. A row in a
sparsely populated region of the reference window has a low mass and a high anomaly score. River's
``HalfSpaceTrees`` has the same algorithm; this one scores whole batches with numpy.

Streaming: ``learn_one(x)`` / ``score_one(x)`` (river's shape) and ``learn_many(X)``; batch: ``fit`` /
``score_samples`` like every detector. Until it has seen a full window, ``score_samples`` uses the analytic
scale ``100 x (1 - mass / max mass)``; after ``fit`` (or ``calibrate``) the tail-probability scale of
:mod:`detectors.ml.scaling`. The caller decides what it learns: the engine never feeds it rows it flagged.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import numpy.typing as npt

from detectors.ml.base import AnomalyDetector, Matrix, Vector, as_matrix
from detectors.ml.scaling import ScoreScaler


class HalfSpaceTreesDetector(AnomalyDetector):
    """Streaming half-space trees with learn_one/score_one and vectorized batch methods."""

    feature_: npt.NDArray[np.int64]  # (trees, internal nodes): split feature
    split_: Matrix  # (trees, internal nodes): split value in [0, 1] units
    r_mass_: Matrix  # (trees, nodes): reference window profile
    l_mass_: Matrix  # (trees, nodes): latest window profile
    seen_in_window_: int
    windows_: int

    def __init__(
        self, n_trees: int = 25, height: int = 8, window_size: int = 250, random_state: int | None = 0
    ) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.random_state = random_state

    # --- streaming ---------------------------------------------------------------------------------------

    def learn_one(self, x: npt.ArrayLike) -> Self:
        """Learn one row (river's shape)."""
        return self.learn_many(np.asarray(x, dtype=np.float64).reshape(1, -1))

    def score_one(self, x: npt.ArrayLike) -> float:
        """The 0-100 score of one row (river's shape; prefer ``score_samples`` on batches)."""
        return float(self.score_samples(np.asarray(x, dtype=np.float64).reshape(1, -1))[0])

    def learn_many(self, X: Any) -> Self:
        """Learn rows in order; every ``window_size`` rows the latest profile becomes the reference."""
        matrix = as_matrix(X)
        if not hasattr(self, "feature_"):
            self._build(matrix)
        start = 0
        while start < matrix.shape[0]:
            room = self.window_size - self.seen_in_window_
            chunk = matrix[start : start + room]
            paths = self._paths(chunk)  # (rows, trees, height + 1) node indices
            np.add.at(self.l_mass_, (self._tree_index(chunk.shape[0])[:, :, None], paths), 1)
            self.seen_in_window_ += chunk.shape[0]
            start += chunk.shape[0]
            if self.seen_in_window_ >= self.window_size:
                self.r_mass_, self.l_mass_ = self.l_mass_, np.zeros_like(self.l_mass_)
                self.seen_in_window_ = 0
                self.windows_ += 1
        return self

    def calibrate(self, X: Any) -> Self:
        """Switch to the tail-probability scale, using the scores of ``X`` (rows believed normal)."""
        self.scaler_ = ScoreScaler().fit(self.raw_scores(X))
        return self

    # --- batch interface ---------------------------------------------------------------------------------

    def _fit(self, X: Matrix) -> Vector:
        for name in ("feature_", "windows_"):
            self.__dict__.pop(name, None)
        self._build(X)
        self.learn_many(X)
        if self.windows_ == 0:  # fewer rows than a window: use them as the reference anyway
            self.r_mass_ = self.l_mass_ * (self.window_size / max(1, self.seen_in_window_))
        return self._raw(X)

    def score_samples(self, X: Any) -> Vector:
        if hasattr(self, "scaler_"):
            return super().score_samples(X)
        raw = self.raw_scores(X)
        max_mass = float(self.window_size * 2**self.height)
        return np.asarray(np.clip(100.0 * (1.0 + raw / max_mass), 0.0, 100.0), dtype=np.float64)

    def raw_scores(self, X: Any) -> Vector:
        matrix = as_matrix(X)
        if not hasattr(self, "feature_"):
            self._build(matrix)
        return self._raw(matrix)

    def _raw(self, X: Matrix) -> Vector:
        """Minus the summed mass (``r[node] x 2**depth`` at the first node below ``size_limit``)."""
        paths = self._paths(X)
        trees = self._tree_index(X.shape[0])
        mass = self.r_mass_[trees[:, :, None], paths]  # (rows, trees, height + 1)
        limit = 0.1 * self.window_size
        stop = mass < limit
        stop[:, :, -1] = True
        depth = stop.argmax(axis=2)  # first depth where the mass falls below the limit (or the leaf)
        chosen = np.take_along_axis(mass, depth[:, :, None], axis=2)[:, :, 0]
        return np.asarray(-(chosen * 2.0**depth).sum(axis=1) / self.n_trees, dtype=np.float64)

    # --- internals -----------------------------------------------------------------------------------------

    def _build(self, X: Matrix) -> None:
        rng = np.random.default_rng(self.random_state)
        d = X.shape[1]
        self.n_features_in_ = d
        lo, hi = X.min(axis=0), X.max(axis=0)
        self.lo_, self.span_ = lo, np.where(hi > lo, hi - lo, 1.0)
        n_internal = 2**self.height - 1
        n_nodes = 2 ** (self.height + 1) - 1
        self.feature_ = rng.integers(0, d, size=(self.n_trees, n_internal))
        self.split_ = np.zeros((self.n_trees, n_internal))
        for t in range(self.n_trees):  # perturbed work space per tree, halved at every split
            s = rng.random(d)
            width = 2.0 * np.maximum(s, 1.0 - s)
            low, high = s - width, s + width
            self._split(t, 0, low.copy(), high.copy())
        self.r_mass_ = np.zeros((self.n_trees, n_nodes))
        self.l_mass_ = np.zeros((self.n_trees, n_nodes))
        self.seen_in_window_ = 0
        self.windows_ = 0

    def _split(self, tree: int, node: int, low: Vector, high: Vector) -> None:
        if node >= self.split_.shape[1]:
            return
        q = self.feature_[tree, node]
        mid = (low[q] + high[q]) / 2.0
        self.split_[tree, node] = mid
        left_high, right_low = high.copy(), low.copy()
        left_high[q], right_low[q] = mid, mid
        self._split(tree, 2 * node + 1, low, left_high)
        self._split(tree, 2 * node + 2, right_low, high)

    def _tree_index(self, n_rows: int) -> npt.NDArray[np.intp]:
        return np.broadcast_to(np.arange(self.n_trees), (n_rows, self.n_trees))

    def _paths(self, X: Matrix) -> npt.NDArray[np.intp]:
        """Node index at every depth, for every row and tree: shape (rows, trees, height + 1)."""
        unit = (X - self.lo_) / self.span_
        n = X.shape[0]
        trees = np.arange(self.n_trees)
        node = np.zeros((n, self.n_trees), dtype=np.intp)
        out = np.empty((n, self.n_trees, self.height + 1), dtype=np.intp)
        out[:, :, 0] = 0
        rows = np.arange(n)[:, None]
        for depth in range(self.height):
            feat = self.feature_[trees, node]  # (n, trees)
            go_right = unit[rows, feat] > self.split_[trees, node]
            node = 2 * node + 1 + go_right
            out[:, :, depth + 1] = node
        return out
