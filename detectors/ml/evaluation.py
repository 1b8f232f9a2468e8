"""Evaluation on labelled documents: ROC-AUC, PR-AUC, precision and recall at the threshold, alerts per day,
per anomaly type; PNG plots (score histogram, PR curve) and an HTML report.

A document is positive when its label field holds anything but null, "", false, 0, "normal" or "none"; the
label's value is its anomaly type. A unit (an entity-window, or a request for content models) is positive when
one of its documents is; for each type, positives are the units holding that type and negatives the units
holding no positive document at all (``by_type``: strict, every entity-window touched by the anomaly counts,
also an org window where it is a few events among thousands). Behaviour models also report ``by_type_incident``:
per type and hop, the highest score among the windows holding its events (does any entity alert when it
happens?) against the same clean windows, ``by_partition`` (per entity type) and ``by_type_partition`` (strict,
per type and entity type: that type's windows of one entity type against that entity type's clean windows).

``window_labels`` (behaviour models): the same tables with a unit labelled by every event its features cover, i.e.
its entity's events over the longest window (15 minutes) ending with its hop, not only the events of the hop.
The strict label calls "clean" the rows of the minutes after an attack whose 15-minute features still hold the
attack's events (a user's next request after forty failed logins against it, the legit IP of a key an attacker
used five minutes ago); ``window_labels`` counts them as positives of that type, and its clean rows hold no
labelled event at all. ``false_alerts_per_day`` counts the flagged rows among those clean rows.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from detectors.ml.data import get_field
from detectors.ml.model import TrainedModel
from detectors.ml.scoring import Scored, score_documents
from detectors.ml.training import training_days

Doc = dict[str, Any]
_NEGATIVE = (None, "", False, 0, "normal", "none")


def label_of(doc: Doc, field: str) -> str | None:
    value = get_field(doc, field)
    return None if value in _NEGATIVE else str(value)


def _metrics(y: np.ndarray, scores: np.ndarray, flags: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"positives": int(y.sum()), "negatives": int((~y).sum())}
    if y.any() and (~y).any():
        out["roc_auc"] = round(float(roc_auc_score(y, scores)), 4)
        out["pr_auc"] = round(float(average_precision_score(y, scores)), 4)
    tp = int((flags & y).sum())
    out["precision"] = round(tp / max(1, int(flags.sum())), 4)
    out["recall"] = round(tp / max(1, int(y.sum())), 4)
    return out


def evaluate(model: TrainedModel, docs: Sequence[Doc], label_field: str, out_dir: Path | None = None) -> dict[str, Any]:
    """Score ``docs`` and measure against their labels; writes plots and ``report.html`` to ``out_dir``."""
    scored = score_documents(model, docs)
    labels = [label_of(d, label_field) for d in docs]
    unit_labels: list[set[str]] = [set() for _ in scored.unit_score]
    for units, lab in zip(scored.doc_units, labels, strict=True):
        if lab is not None:
            for u in units:
                unit_labels[u].add(lab)
    scores, flags = np.asarray(scored.unit_score), np.asarray(scored.unit_anomalous, dtype=bool)
    positive = np.array([bool(s) for s in unit_labels], dtype=bool)
    days = training_days(docs)
    report: dict[str, Any] = {
        "model": model.name, "version": model.version, "documents": len(docs), "units": len(scores),
        "unit": "request" if model.family == "content" else "entity-window", "days": round(days, 4),
        "thresholds": {k: round(p.threshold, 2) for k, p in model.partitions.items()},
        "alerts_per_day": round(float(flags.sum()) / days, 1), "overall": _metrics(positive, scores, flags),
    }  # fmt: skip
    types = sorted({t for s in unit_labels for t in s})
    clean = ~positive
    report["by_type"] = _by_type(types, unit_labels, scores, flags, clean)
    if model.family == "behaviour":
        report["by_type_incident"] = _incidents(types, unit_labels, scored, scores, flags, clean)
        parts = np.asarray(scored.unit_partition)
        report["by_partition"] = {p: _metrics(positive[parts == p], scores[parts == p], flags[parts == p])
                                  for p in sorted(set(scored.unit_partition))}  # fmt: skip
        report["by_type_partition"] = _by_type_partition(types, unit_labels, parts, scores, flags, clean)
        hops = model.preset.behaviour.windows[-1] // model.preset.behaviour.windows[0] if model.preset.behaviour else 1
        covered = _covered_labels(scored, unit_labels, hops)
        window_clean = np.array([not s for s in covered], dtype=bool)
        report["window_labels"] = {
            "by_type": _by_type(types, covered, scores, flags, window_clean),
            "by_type_partition": _by_type_partition(types, covered, parts, scores, flags, window_clean),
            "false_alerts_per_day": round(float((flags & window_clean).sum()) / days, 1),
        }  # fmt: skip
        doc_scores = np.array([scored.unit_score[u] if u >= 0 else 0.0 for u in scored.doc_best.tolist()])
        doc_flags = np.array([scored.unit_anomalous[u] if u >= 0 else False for u in scored.doc_best.tolist()])
        report["documents_metrics"] = _metrics(np.array([lab is not None for lab in labels]), doc_scores, doc_flags)
    if out_dir is not None:
        write_report(report, scored, positive, out_dir)
    return report


def _by_type(types: list[str], unit_labels: list[set[str]], scores: np.ndarray, flags: np.ndarray,
             clean: np.ndarray) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per type: the units holding it against the clean units."""
    out: dict[str, dict[str, Any]] = {}
    for t in types:
        has = np.array([t in s for s in unit_labels], dtype=bool)
        sel = has | clean
        out[t] = _metrics(has[sel], scores[sel], flags[sel])
    return out


def _covered_labels(scored: Scored, unit_labels: list[set[str]], hops: int) -> list[set[str]]:
    """Per unit, the labels of its entity's events over the ``hops`` hops ending with its own."""
    by_entity: dict[tuple[str, str], dict[int, set[str]]] = {}
    for p, e, b, labs in zip(scored.unit_partition, scored.unit_entity, scored.unit_bucket, unit_labels, strict=True):
        if labs:
            by_entity.setdefault((p, e), {})[b] = labs
    out: list[set[str]] = []
    for p, e, b in zip(scored.unit_partition, scored.unit_entity, scored.unit_bucket, strict=True):
        seen = by_entity.get((p, e))
        out.append(set().union(*(seen.get(k, set()) for k in range(b - hops + 1, b + 1))) if seen else set())
    return out


def _by_type_partition(types: list[str], unit_labels: list[set[str]], parts: np.ndarray, scores: np.ndarray,
                       flags: np.ndarray, clean: np.ndarray) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Strict metrics per type and entity type (the windows of that entity type holding the type's events)."""
    out: dict[str, dict[str, Any]] = {}
    for t in types:
        has = np.array([t in s for s in unit_labels], dtype=bool)
        out[t] = {}
        for p in sorted(set(parts[has].tolist())):
            sel = (parts == p) & (has | clean)
            out[t][p] = _metrics(has[sel], scores[sel], flags[sel])
    return out


def _incidents(types: list[str], unit_labels: list[set[str]], scored: Scored, scores: np.ndarray,
               flags: np.ndarray, clean: np.ndarray) -> dict[str, Any]:  # fmt: skip
    """Per type and hop, the highest-scoring window holding that type's events (any entity) vs clean windows."""
    out: dict[str, Any] = {}
    buckets = np.asarray(scored.unit_bucket)
    for t in types:
        has = np.array([t in s for s in unit_labels], dtype=bool)
        best: dict[int, tuple[float, bool]] = {}
        for u in np.flatnonzero(has).tolist():
            b = int(buckets[u])
            if b not in best or scores[u] > best[b][0]:
                best[b] = (float(scores[u]), bool(flags[u]))
        inc_scores = np.array([s for s, _ in best.values()])
        inc_flags = np.array([f for _, f in best.values()], dtype=bool)
        y = np.r_[np.ones(len(best), dtype=bool), np.zeros(int(clean.sum()), dtype=bool)]
        out[t] = _metrics(y, np.r_[inc_scores, scores[clean]], np.r_[inc_flags, flags[clean]])
    return out


def write_report(report: dict[str, Any], scored: Scored, positive: np.ndarray, out_dir: Path) -> None:
    """``scores.png`` (histogram), ``pr_curve.png`` and ``report.html`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    out_dir.mkdir(parents=True, exist_ok=True)
    scores = np.asarray(scored.unit_score)
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 100, 51).tolist()
    ax.hist(scores[~positive], bins=bins, alpha=0.6, label="normal", log=True)
    if positive.any():
        ax.hist(scores[positive], bins=bins, alpha=0.6, label="labelled anomalous", log=True)
    for thr in report["thresholds"].values():
        ax.axvline(thr, color="red", linestyle="--", linewidth=1)
    ax.set_xlabel("score (0-100)")
    ax.set_ylabel(f"{report['unit']}s")
    ax.set_title(f"{report['model']} {report['version']}: score distribution")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "scores.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 5))
    if positive.any() and (~positive).any():
        precision, recall, _ = precision_recall_curve(positive, scores)
        ax.plot(recall, precision)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"PR curve (PR-AUC {report['overall'].get('pr_auc', 'n/a')})")
    fig.tight_layout()
    fig.savefig(out_dir / "pr_curve.png", dpi=100)
    plt.close(fig)
    rows = [("overall", report["overall"]), *list(report["by_type"].items())]
    rows += [(f"partition {k}", v) for k, v in report.get("by_partition", {}).items()]
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{m.get(k, 'n/a')}</td>" for k in ("roc_auc", "pr_auc", "precision", "recall", "positives"))
        + "</tr>"
        for name, m in rows
    )
    (out_dir / "report.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(report['model'])} evaluation</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 10px;border-bottom:1px solid #ddd}</style></head>"
        f"<body><h1>{html.escape(report['model'])} {html.escape(report['version'])}</h1>"
        f"<p>{report['documents']} documents, {report['units']} {report['unit']}s over {report['days']} days; "
        f"thresholds {html.escape(str(report['thresholds']))}; {report['alerts_per_day']} alerts per day.</p>"
        "<table><tr><th></th><th>ROC-AUC</th><th>PR-AUC</th><th>precision</th><th>recall</th><th>positives</th>"
        f"</tr>{cells}</table><h2>Scores</h2><img src='scores.png'><h2>Precision and recall</h2>"
        "<img src='pr_curve.png'></body></html>",
        encoding="utf-8",
    )
