"""Feature drift: population stability index (PSI) of each feature against its training distribution.

Training keeps ten quantile bins per feature; a :class:`DriftMonitor` counts scored rows into them and, every
``window_rows`` rows, computes the PSI of each feature for that window (``sum((a - e) * ln(a / e))``; < 0.1
stable, 0.1-0.25 moderate, > 0.25 significant shift). ``values()`` gives the last window's figures as plain
numbers for the metrics bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]
_EPS = 1e-4


@dataclass
class DriftReference:
    """Inner bin edges and expected proportions per feature, from the training rows."""

    names: list[str]
    edges: list[npt.NDArray[np.float64]]
    expected: list[npt.NDArray[np.float64]]

    @classmethod
    def fit(cls, X: Matrix, names: Sequence[str], bins: int = 10) -> DriftReference:
        edges, expected = [], []
        for j in range(X.shape[1]):
            inner = np.unique(np.quantile(X[:, j], np.linspace(0, 1, bins + 1)[1:-1]))
            counts = np.bincount(np.searchsorted(inner, X[:, j], side="right"), minlength=len(inner) + 1)
            edges.append(inner)
            expected.append(np.maximum(counts / max(1, X.shape[0]), _EPS))
        return cls(list(names), edges, expected)


def psi(expected: npt.NDArray[np.float64], counts: npt.NDArray[np.float64]) -> float:
    actual = np.maximum(counts / max(1.0, float(counts.sum())), _EPS)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


class DriftMonitor:
    """Counts scored rows per feature bin; every ``window_rows`` rows the PSI per feature is recomputed."""

    def __init__(self, reference: DriftReference, window_rows: int = 5000) -> None:
        self.reference = reference
        self.window_rows = window_rows
        self._counts = [np.zeros(len(e) + 1) for e in reference.edges]
        self._rows = 0
        self.windows = 0
        self._last: dict[str, float] = {}

    def observe(self, X: Matrix) -> None:
        for j, edges in enumerate(self.reference.edges):
            self._counts[j] += np.bincount(np.searchsorted(edges, X[:, j], side="right"), minlength=len(edges) + 1)
        self._rows += X.shape[0]
        if self._rows >= self.window_rows:
            self._last = {name: psi(self.reference.expected[j], self._counts[j])
                          for j, name in enumerate(self.reference.names)}  # fmt: skip
            self._counts = [np.zeros_like(c) for c in self._counts]
            self._rows = 0
            self.windows += 1

    def values(self) -> dict[str, float]:
        """PSI per feature of the last complete window ({} before the first one)."""
        return dict(self._last)
