"""Training: documents -> feature rows per partition -> fitted detectors, thresholds and explanation stats.

The threshold is set on the training scores: ``{quantile: q}`` flags a share ``1 - q`` of training-like rows,
``{alerts_per_day: n}`` about ``n`` rows per day at the training data's rate. With ``refit_without_flagged``
the detector is fitted again without the training rows it flagged (attacks in the training data are not
learned as normal).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.ml.drift import DriftReference
from detectors.ml.explain import FeatureStats
from detectors.ml.features.behaviour import _RATIOS, BehaviourRows, EntityBehaviour
from detectors.ml.features.columns import columns_from_docs, epoch_minute
from detectors.ml.features.content import FEATURES as CONTENT_FEATURES
from detectors.ml.features.content import RequestContent
from detectors.ml.model import Partition, TrainedModel
from detectors.ml.presets import Preset
from detectors.ml.registry import create
from detectors.ml.scaling import threshold_for_tail

Matrix = npt.NDArray[np.float64]
Doc = dict[str, Any]
CHUNK = 5000
_CONTENT_LOG = frozenset({"path_length", "query_length", "body_length", "max_segment_length", "max_param_length",
                          "user_agent_length", *(f for f in CONTENT_FEATURES if f.startswith("seq_"))})  # fmt: skip


def time_order(docs: Sequence[Doc]) -> list[int]:
    """Indices of ``docs`` in @timestamp order (stable)."""
    return sorted(range(len(docs)), key=lambda i: str(docs[i]["@timestamp"]))


def behaviour_rows(
    eb: EntityBehaviour, docs: Sequence[Doc], decide: Callable[[BehaviourRows], Any] | None = None
) -> list[BehaviourRows]:
    """All entity-window rows of ``docs`` (sorted by time first), the state ``eb`` flushed at the end."""
    order = time_order(docs)
    rows: list[BehaviourRows] = []
    for start in range(0, len(order), CHUNK):
        part = [docs[i] for i in order[start : start + CHUNK]]
        rows += eb.process(columns_from_docs(part), decide)
    return rows + eb.flush(decide)


def training_days(docs: Sequence[Doc]) -> float:
    """How many days of traffic the documents cover: the hours that hold any of their @timestamps (at least one).

    Hours, not the span from first to last: training data with gaps (the same hour of several days, an outage)
    must not count the gaps, or ``alerts_per_day`` thresholds would flag far more than they should.

    >>> training_days([{"@timestamp": "2026-11-01T08:10:00Z"}, {"@timestamp": "2026-11-02T08:50:00Z"}])
    0.08333333333333333
    """
    hours = {epoch_minute(str(d["@timestamp"])) // 60 for d in docs}
    return max(len(hours), 1) / 24.0 if hours else 1.0


def tail_share(policy: dict[str, float], n_rows: int, days: float) -> float | None:
    """The share of training rows a policy flags (None for a fixed ``score``)."""
    if "quantile" in policy:
        return 1.0 - float(policy["quantile"])
    if "alerts_per_day" in policy:
        return float(policy["alerts_per_day"]) * days / max(1, n_rows)
    if "score" in policy:
        return None
    raise ValueError(f"threshold needs quantile, alerts_per_day or score: {policy}")


def threshold_of(policy: dict[str, float], train_scores: Matrix, days: float) -> float:
    """The 0-100 threshold of a policy: the quantile of the training scores that flags the wanted share."""
    share = tail_share(policy, len(train_scores), days)
    if share is None:
        return float(policy["score"])
    if share * len(train_scores) < 1:  # rarer than the training data can show: the tail scale extrapolates
        return max(threshold_for_tail(share), float(np.max(train_scores)))
    return float(np.quantile(train_scores, 1.0 - share))


def fit_partition(preset: Preset, X: Matrix, names: list[str], days: float, log_features: frozenset[str]
                  ) -> Partition:  # fmt: skip
    """Fit the preset's detector on one partition's rows (again without its flagged rows, when configured)."""
    columns = np.flatnonzero(X.std(axis=0) > 0) if X.shape[0] > 1 else np.arange(X.shape[1])
    if len(columns) == 0:
        columns = np.arange(X.shape[1])
    detector = create(preset.detector, **preset.params).fit(X[:, columns])
    scores = detector.train_scores_
    if preset.refit_without_flagged:
        keep = scores < threshold_of(preset.threshold, scores, days)
        if 10 <= keep.sum() < X.shape[0]:
            detector = create(preset.detector, **preset.params).fit(X[keep][:, columns])
            scores = detector.score_samples(X[:, columns])  # the threshold holds for all the training rows
    threshold = threshold_of(preset.threshold, scores, days)
    return Partition(detector, columns, threshold, FeatureStats.fit(X, names, log_features),
                     DriftReference.fit(X, names), X.shape[0])  # fmt: skip


def train(preset: Preset, docs: Sequence[Doc], *, data_hash: str = "", name: str | None = None) -> TrainedModel:
    """Fit a model of ``preset`` on ECS documents (assumed mostly normal)."""
    if len(docs) < 10:
        raise ValueError(f"need at least 10 documents to train, got {len(docs)}")
    days = training_days(docs)
    content: RequestContent | None = None
    state: EntityBehaviour | None = None
    if preset.family == "behaviour":
        eb = state = EntityBehaviour(preset.behaviour)
        names = eb.feature_names
        by_type: dict[str, list[Matrix]] = {}
        for rows in behaviour_rows(eb, docs):
            by_type.setdefault(rows.entity_type, []).append(rows.X)
        logs = frozenset(n for n in names if not n.startswith(tuple(_RATIOS)) and "vs_usual" not in n
                         and n != "new_entity")  # fmt: skip
        parts = {t: fit_partition(preset, np.vstack(xs), names, days, logs) for t, xs in by_type.items()
                 if sum(len(x) for x in xs) >= 2}  # fmt: skip
    else:
        content = RequestContent().fit(docs)
        names = list(content.feature_names)
        parts = {"request": fit_partition(preset, content.transform(docs), names, days, _CONTENT_LOG)}
    stamps = sorted(str(d["@timestamp"]) for d in (docs[0], docs[-1]))
    times = [str(d["@timestamp"]) for d in docs]
    metadata = {
        "name": name or preset.name,
        "preset": preset.name,
        "family": preset.family,
        "detector": preset.detector,
        "params": preset.params,
        "threshold_policy": preset.threshold,
        "thresholds": {k: round(p.threshold, 3) for k, p in parts.items()},
        "refit_without_flagged": preset.refit_without_flagged,
        "behaviour": preset.behaviour.__dict__ if preset.behaviour else None,
        "features": names,
        "columns_used": {k: [names[i] for i in p.columns] for k, p in parts.items()},
        "training_rows": {k: p.train_rows for k, p in parts.items()},
        "training_documents": len(docs),
        "training_window": {"start": min(times), "end": max(times), "days": round(days, 4)} if stamps else {},
        "data_hash": data_hash,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "libraries": {lib: version(lib) for lib in ("numpy", "scikit-learn", "pyod", "scipy", "pandas", "joblib")}
        | {"python": platform.python_version()},
    }
    return TrainedModel(preset, names, parts, content, metadata, state)
