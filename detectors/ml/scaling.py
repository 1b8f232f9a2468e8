"""Raw anomaly scores to the 0-100 scale, and thresholds on it.

A normalized score says how rare a raw score is among the training scores: ``100 / 6 x -log10(p)``, where ``p``
is the tail probability (the share of training rows scoring at least as high), capped at 100. So 0 is a typical
row, 33 a 1-in-100 row, 50 a 1-in-1,000 row, 67 a 1-in-10,000 row and 100 a one-in-a-million row. Beyond the
highest training score the tail is extrapolated exponentially (peaks over threshold), so rows more extreme than
anything seen in training still get higher scores, up to 100.

>>> import numpy as np
>>> scaler = ScoreScaler().fit(np.random.default_rng(0).normal(size=200_000))
>>> [round(float(s)) for s in scaler.transform(np.array([-3.0, 0.0, 2.33, 3.09, 6.0]))]
[0, 5, 33, 50, 100]
>>> round(threshold_for_tail(0.001), 1)
50.0
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]

DECADES: Final = 6.0  # a tail probability of 10**-6 scores 100
_KNOTS: Final = 96


def threshold_for_tail(p: float) -> float:
    """The normalized score that a share ``p`` of training-like rows exceeds (e.g. 0.001 -> 50)."""
    if p <= 0:
        return 100.0
    return float(min(100.0, max(0.0, -math.log10(min(p, 1.0)) * 100.0 / DECADES)))


class ScoreScaler:
    """Maps raw scores (higher = more anomalous) to 0-100 by their tail probability in the training scores."""

    def fit(self, raw: npt.ArrayLike) -> ScoreScaler:
        s = np.sort(np.asarray(raw, dtype=np.float64).ravel())
        s = s[np.isfinite(s)]
        if s.size == 0:
            s = np.zeros(1)
        n = s.size
        decades = np.linspace(0.0, math.log10(n), _KNOTS)  # -log10 of the tail probability
        values = np.quantile(s, np.clip(1.0 - 10.0**-decades, 0.0, 1.0))
        xs, first = np.unique(values, return_index=True)  # ties keep the lowest level (the least anomalous)
        self.knots_x_ = xs
        self.knots_y_ = decades[first]
        self.knots_y_[-1] = max(self.knots_y_[-1], math.log10(n))  # the maximum is a 1-in-n row
        k = max(10, n // 100)
        top, base = s[-k:], s[max(0, n - k - 1)]
        spread = float(s[-1] - s[0]) or 1.0
        self.beta_ = max(float(np.mean(top - base)), 1e-9 * spread)  # exponential tail: mean excess
        self.n_ = n
        return self

    def transform(self, raw: npt.ArrayLike) -> Vector:
        r = np.asarray(raw, dtype=np.float64)
        y = np.interp(r, self.knots_x_, self.knots_y_, left=0.0)
        top = self.knots_x_[-1]
        above = r > top
        if above.any():
            y[above] = self.knots_y_[-1] + (r[above] - top) / (self.beta_ * math.log(10.0))
        out: Vector = np.clip(np.nan_to_num(y, nan=0.0, posinf=DECADES) * (100.0 / DECADES), 0.0, 100.0)
        return out
