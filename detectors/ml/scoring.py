"""Offline scoring of documents with a trained model: per unit (entity-window or request) and per document.

Behaviour models score entity-windows as the engine does (a row is scored before it is learned; flagged rows
are not learned); each document gets the highest score of the windows it belongs to (its API key's, user's,
source IP's and org's) with that window's explanation. Content models score each request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.ml.explain import describe
from detectors.ml.features.behaviour import BehaviourRows
from detectors.ml.features.columns import columns_from_docs
from detectors.ml.model import TrainedModel
from detectors.ml.training import behaviour_rows

Doc = dict[str, Any]


@dataclass
class Scored:
    """Units (entity-windows or requests) with scores, plus each document's unit."""

    unit_partition: list[str] = field(default_factory=list)
    unit_entity: list[str] = field(default_factory=list)
    unit_bucket: list[int] = field(default_factory=list)
    unit_score: list[float] = field(default_factory=list)
    unit_anomalous: list[bool] = field(default_factory=list)
    unit_explanation: list[list[dict[str, Any]]] = field(default_factory=list)
    doc_units: list[list[int]] = field(default_factory=list)  # every unit of each document
    doc_best: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def doc_record(self, i: int) -> dict[str, Any]:
        """The JSON record of document ``i``: score, anomalous, explanation, entity, details."""
        u = int(self.doc_best[i])
        if u < 0:
            return {"score": 0.0, "anomalous": False, "explanation": "no entity to score", "entity": None}
        details = self.unit_explanation[u]
        return {
            "score": round(self.unit_score[u], 2),
            "anomalous": self.unit_anomalous[u],
            "explanation": describe(details),
            "entity": self.unit_entity[u],
            "partition": self.unit_partition[u],
            "features": details,
        }


def score_documents(model: TrainedModel, docs: Sequence[Doc]) -> Scored:
    """Score every document (input order is kept in ``doc_units`` / ``doc_best``)."""
    out = Scored()
    if model.family == "content":
        assert model.content is not None
        X = model.content.transform(docs)
        scores, flags = model.score("request", X)
        http = np.array([bool(d.get("url", {}).get("path")) for d in docs], dtype=bool)
        scores, flags = np.where(http, scores, 0.0), flags & http  # only HTTP requests are scored
        out.unit_explanation = model.explain("request", X)
        out.unit_partition = ["request"] * len(docs)
        out.unit_entity = [_request_entity(d) for d in docs]
        out.unit_bucket = [0] * len(docs)
        out.unit_score, out.unit_anomalous = scores.tolist(), flags.tolist()
        out.doc_units = [[i] for i in range(len(docs))]
        out.doc_best = np.arange(len(docs))
        return out
    index: dict[tuple[str, str, int], int] = {}

    def decide(rows: BehaviourRows) -> npt.NDArray[np.bool_]:
        scores, flags = model.score(rows.entity_type, rows.X)
        explanations = model.explain(rows.entity_type, rows.X, rows.usual) if rows.entity_type in model.partitions \
            else [[] for _ in rows.keys]  # fmt: skip
        for key, s, f, e in zip(rows.keys, scores.tolist(), flags.tolist(), explanations, strict=True):
            index[rows.entity_type, key, rows.bucket] = len(out.unit_score)
            out.unit_partition.append(rows.entity_type)
            out.unit_entity.append(f"{rows.entity_type}={key}")
            out.unit_bucket.append(rows.bucket)
            out.unit_score.append(s)
            out.unit_anomalous.append(f)
            out.unit_explanation.append(e)
        return ~flags

    eb = model.new_behaviour()
    behaviour_rows(eb, docs, decide)
    cols = columns_from_docs(docs)
    buckets = (cols.minute // eb.hop).tolist()
    per_type = {t: cols.entities[t].tolist() for t in eb.tables}
    scores = np.asarray([*out.unit_score, -1.0])
    best = np.full(len(docs), -1, dtype=np.int64)
    for i, b in enumerate(buckets):
        units = [u for t, keys in per_type.items() if (u := index.get((t, keys[i], b), -1)) >= 0]
        out.doc_units.append(units)
        if units:
            best[i] = units[int(np.argmax(scores[units]))]
    out.doc_best = best
    return out


def _request_entity(doc: Doc) -> str:
    key = doc.get("logwarden", {}).get("api", {}).get("key_id")
    if key:
        return f"api_key={key}"
    ip = doc.get("source", {}).get("ip")
    return f"source_ip={ip}" if ip else "-"
