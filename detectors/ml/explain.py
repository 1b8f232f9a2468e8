"""Explanations: which features made a row anomalous, with their values and what is usual.

Per feature a robust z-score against the training distribution of the row's partition (median, and IQR / 1.349
as the scale, floored); the top contributors are the features with the largest ``|z|``. "Usual" is the
entity's own baseline when the feature has one (behaviour rows), else the training median (its peers). Values
are shown in natural units (counts, bytes...), features kept as ``log1p`` are transformed back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]


@dataclass
class FeatureStats:
    """Training median and robust scale of every feature (for z-scores and drift)."""

    names: list[str]
    median: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    log_features: frozenset[str]

    @classmethod
    def fit(cls, X: Matrix, names: Sequence[str], log_features: frozenset[str]) -> FeatureStats:
        q1, med, q3 = np.quantile(X, [0.25, 0.5, 0.75], axis=0)
        spread = np.maximum((q3 - q1) / 1.349, 0.05 * np.maximum(X.std(axis=0), 1e-9))
        return cls(list(names), med, np.maximum(spread, 0.1), log_features)

    def z(self, X: Matrix) -> Matrix:
        return np.asarray((X - self.median) / self.scale, dtype=np.float64)

    def natural(self, name: str, value: float) -> float:
        return float(np.expm1(value)) if name in self.log_features else float(value)


def explain(
    stats: FeatureStats, X: Matrix, *, top: int = 3, usual_own: dict[int, Matrix] | None = None
) -> list[list[dict[str, Any]]]:
    """The ``top`` contributing features of every row: ``{"feature", "value", "usual", "z"}`` (vectorized z).

    Contributors are ranked by ``|z|``: the detectors flag both tails, so a count that collapsed explains a
    row as well as one that exploded (its ``z`` is negative). Features within one scale unit of the median
    (``|z| < 1``) never explain anything."""
    z = stats.z(X)
    order = np.argsort(-np.abs(z), axis=1)[:, :top]
    out: list[list[dict[str, Any]]] = []
    own = usual_own or {}
    for i, cols in enumerate(order.tolist()):
        items = []
        for j in cols:
            if abs(z[i, j]) < 1:
                break
            name = stats.names[j]
            usual = float(own[j][i]) if j in own else stats.natural(name, float(stats.median[j]))
            items.append({"feature": name, "value": round(stats.natural(name, float(X[i, j])), 3),
                          "usual": round(usual, 3), "z": round(float(z[i, j]), 1)})  # fmt: skip
        out.append(items)
    return out


def describe(items: list[dict[str, Any]]) -> str:
    """One line for an analyst: ``ips_15m = 23 (usually 1, z +9.1); ...``."""
    if not items:
        return "no single feature stands out (a combination of several)"
    return "; ".join(f"{i['feature']} = {i['value']:g} (usually {i['usual']:g}, z {i['z']:+g})" for i in items)
