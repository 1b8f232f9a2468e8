"""Batch detectors: scikit-learn's IsolationForest and PyOD's ECOD, COPOD, HBOS, LOF and KNN, one interface.

Each wrapper converts at the boundary: IsolationForest's ``score_samples`` (higher = more normal) is negated,
PyOD's ``decision_function`` already has our sign. ECOD and COPOD are fitted with PyOD (its in-sample scores are
kept in ``pyod_train_scores_``) and then score new rows against ECDFs frozen at fit time: PyOD re-ranks every
scored batch together with the whole training set, which makes a row's score depend on the rest of its batch
and costs O(n_train) per call. The frozen ECDFs keep up to 1024 knots per feature (exact for features with at
most that many distinct training values, interpolated between quantiles otherwise); on the training rows the
scores match PyOD's (tested). Beyond the training range PyOD's tail probability stops at ``1 / (n + 1)``, so a
value ten times the training maximum scores like the maximum; with ``tails="exponential"`` (the default) the tail
is extrapolated instead (peaks over threshold: ``-log p`` grows by ``(x - max) / beta``, ``beta`` the mean excess
of the top 1% of training values), capped at ``3 log(n + 1)`` per feature so one wild feature cannot drown the
others. ``tails="clip"`` keeps PyOD's behaviour.

``aggregate`` combines the per-feature tail scores: ``"sum"`` (PyOD's ECOD: many mildly unusual features add up),
``"max"`` (the rarest feature alone) or ``"sum_max"`` (``sum / sqrt(d) + max``: a row stands out by many
unusual features or by one very unusual one; the sum of ~50 noisy features otherwise drowns a single extreme
feature, e.g. an org window in which one IP fails logins against forty users).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pyod.models.copod import COPOD
from pyod.models.ecod import ECOD
from pyod.models.hbos import HBOS
from pyod.models.knn import KNN
from pyod.models.lof import LOF
from scipy.stats import skew
from sklearn.ensemble import IsolationForest

from detectors.ml.base import AnomalyDetector, Matrix, Vector
from detectors.ml.ecdf_index import KnotIndex


class IsolationForestDetector(AnomalyDetector):
    """scikit-learn's IsolationForest; raw score = minus its ``score_samples`` (higher = more anomalous)."""

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: int | float | str = "auto",
        max_features: float = 1.0,
        random_state: int | None = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.random_state = random_state

    def _fit(self, X: Matrix) -> Vector:
        self.model_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            random_state=self.random_state,
        ).fit(X)
        return self._raw(X)

    def _raw(self, X: Matrix) -> Vector:
        return np.asarray(-self.model_.score_samples(X), dtype=np.float64)


_KNOTS = 1024  # ECDF knots per feature: exact for up to this many distinct values, else interpolated quantiles
_TAILS = ("exponential", "clip")
_AGGREGATES = ("sum", "max", "sum_max")
_TAIL_CAP = 3.0  # at most this many times log(n + 1) per feature (the training extreme scores 1x)


def _mean_excess(top: Matrix, base: Matrix, spread: Matrix) -> Matrix:
    """Per column: the mean excess of ``top`` rows over ``base`` (floored at 1% of the column's spread)."""
    return np.asarray(np.maximum((top - base).mean(axis=0), np.maximum(0.01 * spread, 1e-9)), dtype=np.float64)


class _FrozenEcdf(AnomalyDetector):
    """ECOD/COPOD tail scores against per-feature ECDFs of the training data (frozen at fit)."""

    _copula = False
    tails: str = "clip"  # models pickled before the parameter existed keep their behaviour
    aggregate: str = "sum"  # idem

    def _fit(self, X: Matrix) -> Vector:
        if self.tails not in _TAILS:
            raise ValueError(f"tails must be one of {_TAILS}, got {self.tails!r}")
        if self.aggregate not in _AGGREGATES:
            raise ValueError(f"aggregate must be one of {_AGGREGATES}, got {self.aggregate!r}")
        with warnings.catch_warnings():  # near-constant features: scipy warns about the skewness' precision
            warnings.simplefilter("ignore", RuntimeWarning)
            model = (COPOD if self._copula else ECOD)(n_jobs=1).fit(X)
            self.skew_sign_ = np.sign(np.nan_to_num(skew(X, axis=0)))
        self.pyod_train_scores_ = np.asarray(model.decision_scores_, dtype=np.float64)
        n, d = X.shape
        s = np.sort(X, axis=0)
        # knots per column: every distinct value (up to _KNOTS), else quantiles; counts of values <= and < each
        knots, le, lt, offsets = [], [], [], []
        end = 0.0
        for j in range(d):
            col = s[:, j]
            v = np.unique(col)
            if len(v) > _KNOTS:
                v = np.unique(np.quantile(col, np.linspace(0.0, 1.0, _KNOTS)))
            offset = end - v[0] + 1.0  # each column's knots shifted past the previous ones: one searchsorted
            knots.append(v + offset)
            offsets.append(offset)
            le.append(np.searchsorted(col, v, side="right"))
            lt.append(np.searchsorted(col, v, side="left"))
            end = v[-1] + offset + 1.0
        self.knots_ = np.concatenate(knots)
        self.offset_ = np.asarray(offsets)
        self.lo_ = np.asarray([k[0] - o for k, o in zip(knots, offsets, strict=True)])
        self.hi_ = np.asarray([k[-1] - o for k, o in zip(knots, offsets, strict=True)])
        self.first_ = np.cumsum([0] + [len(k) for k in knots[:-1]])
        self.last_ = self.first_ + np.asarray([len(k) - 1 for k in knots])
        self.count_le_ = np.concatenate(le).astype(np.float64)
        self.count_lt_ = np.concatenate(lt).astype(np.float64)
        self.n_train_ = n
        k = max(10, n // 100) if n > 20 else max(1, n // 2)
        spread = s[-1] - s[0]
        self.beta_hi_ = _mean_excess(s[n - k :], s[n - k - 1], spread)
        self.beta_lo_ = _mean_excess(-s[:k], -s[k], spread)
        self.index_ = self._build_index()
        return self._raw(X)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the knot index: it is derived data (rebuilt at the first scoring, ~0.1 s), so saved models
        stay small and always get the index of the code that loads them."""
        state: dict[str, Any] = super().__getstate__()
        state = dict(state)
        state.pop("index_", None)
        return state

    def _build_index(self) -> KnotIndex | None:
        """The knot index, or None when the shifted knots are out of order (training values near 1e16 and beyond,
        where adding the offsets rounds; ``np.searchsorted``'s answers on them are what they are)."""
        if not bool((self.knots_[1:] >= self.knots_[:-1]).all()):
            return None
        low, high = (self.lo_ - 0.5) + self.offset_, (self.hi_ + 0.5) + self.offset_  # the shifted values' range
        return KnotIndex.build(self.knots_, self.first_, self.last_, low, high)

    def _raw(self, X: Matrix) -> Vector:
        if not hasattr(self, "index_"):  # a model pickled before the index existed
            self.index_ = self._build_index()
        x = np.clip(X, self.lo_ - 0.5, self.hi_ + 0.5) + self.offset_
        ecdf = (self.knots_, self.first_, self.last_, self.count_le_, self.count_lt_)
        counts = self.index_.counts(ecdf, x) if self.index_ is not None else None
        return self._scores(X, *(counts if counts is not None else self._counts_reference(x)))

    def _raw_reference(self, X: Matrix) -> Vector:
        """:meth:`_raw` by ``np.searchsorted`` and numpy (what the knot index must equal, bit for bit)."""
        return self._scores(X, *self._counts_reference(np.clip(X, self.lo_ - 0.5, self.hi_ + 0.5) + self.offset_))

    def _counts_reference(self, x: Matrix) -> tuple[Matrix, Matrix]:
        """Training values <= and < each shifted value ``x`` (interpolated between the knots)."""
        i = np.searchsorted(self.knots_, x, side="right") - 1  # the last knot <= x (first_ - 1 when below all)
        below = i < self.first_
        i = np.maximum(i, self.first_)
        nxt = np.minimum(i + 1, self.last_)
        k0, k1 = self.knots_[i], self.knots_[nxt]
        exact = x == k0
        frac = np.where(k1 > k0, np.clip((x - k0) / np.where(k1 > k0, k1 - k0, 1.0), 0.0, 1.0), 0.0)
        between = self.count_le_[i] + (self.count_lt_[nxt] - self.count_le_[i]) * np.where(nxt > i, frac, 0.0)
        le = np.where(below, 0.0, between)  # training values <= x
        lt = np.where(below, 0.0, np.where(exact, self.count_lt_[i], le))  # training values < x
        return le, lt

    def _scores(self, X: Matrix, le: Matrix, lt: Matrix) -> Vector:
        n = float(self.n_train_)
        u_l = -np.log((le + 1.0) / (n + 1.0))
        u_r = -np.log((n - lt + 1.0) / (n + 1.0))
        if self.tails == "exponential":
            cap = (_TAIL_CAP - 1.0) * np.log(n + 1.0)
            u_r = u_r + np.clip((X - self.hi_) / self.beta_hi_, 0.0, cap)
            u_l = u_l + np.clip((self.lo_ - X) / self.beta_lo_, 0.0, cap)
        sk = self.skew_sign_
        u_skew = u_l * -np.sign(sk - 1) + u_r * np.sign(sk + 1)
        o = np.maximum(u_skew, (u_l + u_r) / 2.0) if self._copula else np.maximum(np.maximum(u_l, u_r), u_skew)
        if self.aggregate == "max":
            return np.asarray(o.max(axis=1), dtype=np.float64)
        if self.aggregate == "sum_max":
            return np.asarray(o.sum(axis=1) / o.shape[1] ** 0.5 + o.max(axis=1), dtype=np.float64)
        return np.asarray(o.sum(axis=1), dtype=np.float64)


class ECODDetector(_FrozenEcdf):
    """PyOD's ECOD (empirical-CDF outlier detection): fast, per-feature explainable; tails and aggregation above."""

    def __init__(self, tails: str = "exponential", aggregate: str = "sum") -> None:
        self.tails = tails
        self.aggregate = aggregate


class COPODDetector(_FrozenEcdf):
    """PyOD's COPOD (copula-based outlier detection): parameter-free."""

    _copula = True

    def __init__(self, tails: str = "exponential", aggregate: str = "sum") -> None:
        self.tails = tails
        self.aggregate = aggregate


class _PyODDetector(AnomalyDetector):
    """A PyOD detector whose ``decision_function`` is scored as is (its sign is already ours)."""

    def _make(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit(self, X: Matrix) -> Vector:
        self.model_ = self._make().fit(X)
        return np.asarray(self.model_.decision_scores_, dtype=np.float64)  # in-sample (self excluded)

    def _raw(self, X: Matrix) -> Vector:
        return np.asarray(self.model_.decision_function(X), dtype=np.float64)


class HBOSDetector(_PyODDetector):
    """PyOD's HBOS (histogram-based outlier score): per-feature histograms, very fast."""

    def __init__(self, n_bins: int = 10, alpha: float = 0.1, tol: float = 0.5) -> None:
        self.n_bins = n_bins
        self.alpha = alpha
        self.tol = tol

    def _make(self) -> Any:
        return HBOS(n_bins=self.n_bins, alpha=self.alpha, tol=self.tol)


class LOFDetector(_PyODDetector):
    """PyOD's LOF (local outlier factor, novelty mode); slow to score on wide data."""

    def __init__(self, n_neighbors: int = 20) -> None:
        self.n_neighbors = n_neighbors

    def _make(self) -> Any:
        return LOF(n_neighbors=self.n_neighbors, novelty=True)


class KNNDetector(_PyODDetector):
    """PyOD's KNN (distance to the k-th nearest training row)."""

    def __init__(self, n_neighbors: int = 5, method: str = "largest") -> None:
        self.n_neighbors = n_neighbors
        self.method = method

    def _make(self) -> Any:
        return KNN(n_neighbors=self.n_neighbors, method=self.method)
