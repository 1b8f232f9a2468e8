"""MLEngine: trained models on the event stream, the same shape as the rule engine.

``process(events) -> list[Detection]`` per micro-batch (vectorized scoring, never one row at a time),
``flush()`` at the end of input, ``drift()`` for the metrics bundle, ``counters()`` for monitoring. Behaviour
models keep entity state (starting from the history learned in training) and score one row per entity and hop;
content models flag requests, grouped per entity and minute (the highest-scoring request explains it). The
anomalous windows of an entity that follow each other within ``incident_gap_min`` minutes are one incident: one
detection id (from its first window), whose later states update the same alert. A row a model flags is never
learned. Shadow models score and record (JSON lines in ``shadow_log``) but never alert.

>>> engine = MLEngine([])
>>> engine.process([]), engine.drift(), engine.counters()["events"]
([], {}, 0)
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import orjson

from detectors.detection import Detection, detection_id
from detectors.ml import store
from detectors.ml.detection import MLDetection, level_of
from detectors.ml.drift import DriftMonitor
from detectors.ml.explain import describe
from detectors.ml.features.behaviour import BehaviourRows, EntityBehaviour
from detectors.ml.features.columns import ENTITY_FIELDS, EventColumns, columns_from_docs, epoch_minute
from detectors.ml.model import TrainedModel
from ingest.records import NormalizedEvent

log = logging.getLogger(__name__)

#: Upper bounds of the score histogram buckets (scores are 0-100; the last bucket is +Inf).
SCORE_BUCKETS: tuple[float, ...] = (10, 25, 50, 75, 85, 90, 95, 99)
#: Open incidents kept per model (entities with a recent anomaly); beyond it the stale ones are forgotten.
_MAX_INCIDENTS = 10_000


def campaign_of(etype: str, key: str, requests: Counter[str], failures: Counter[str]) -> str | None:
    """Where an entity's anomalous window came from, as a group key: ``source.ip=<ip>`` of the address with the
    most failed requests (HTTP status >= 400) in it, then the most requests (a source IP is its own campaign).
    The accounts a credential-stuffing address tried share the campaign of that address, even when they also
    signed in from home in the same minute, so their alerts group under its alert instead of paging one by one.

    >>> ips = Counter({"198.51.100.2": 40, "203.0.113.9": 1})
    >>> campaign_of("user", "u1", ips, Counter({"203.0.113.9": 1}))
    'source.ip=203.0.113.9'
    >>> campaign_of("user", "u1", ips, Counter()), campaign_of("user", "u1", Counter(), Counter())
    ('source.ip=198.51.100.2', None)
    >>> campaign_of("source_ip", "203.0.113.9", Counter(), Counter())
    'source.ip=203.0.113.9'
    """
    if etype == "source_ip":
        return f"{ENTITY_FIELDS[etype]}={key}"
    if not requests:
        return None
    ip = min(requests, key=lambda a: (-failures[a], -requests[a], a))  # ties: the smallest address
    return f"{ENTITY_FIELDS['source_ip']}={ip}"


def _requests_by_ip(requests: Iterable[tuple[str | None, Any]]) -> tuple[Counter[str], Counter[str]]:
    """Requests and failed requests (status >= 400) per source IP, from ``(source IP, status)`` pairs."""
    by_ip: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for ip, status in requests:
        if ip:
            by_ip[ip] += 1
            failures[ip] += type(status) is int and status >= 400
    return by_ip, failures


def _ip_and_status(doc: dict[str, Any]) -> tuple[str | None, Any]:
    return doc.get("source", {}).get("ip"), doc.get("http", {}).get("response", {}).get("status_code")


def _iso(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class _Runner:
    """One model on the stream: its entity state, drift monitor and the events of its open windows."""

    def __init__(self, model: TrainedModel, shadow: bool, drift_rows: int, max_ids: int, gap_min: int) -> None:
        self.model, self.shadow, self.max_ids, self.gap_min = model, shadow, max_ids, gap_min
        self.incidents: dict[tuple[str, str], _Incident] = {}
        self.score_counts = np.zeros(len(SCORE_BUCKETS) + 1, dtype=np.int64)  # per bucket, not cumulative
        self.score_sum = 0.0
        self.state: EntityBehaviour | None = model.new_behaviour() if model.family == "behaviour" else None
        self.drift = {name: DriftMonitor(p.drift, drift_rows) for name, p in model.partitions.items()}
        self.recent: deque[tuple[int, EventColumns]] = deque()
        self.out: list[MLDetection] = []
        self.rows_scored = 0
        self.anomalies = 0

    def process(self, docs: list[dict[str, Any]], ids: list[str], cols: EventColumns | None = None
                ) -> list[MLDetection]:  # fmt: skip
        """Score a batch (``cols``: its columns, when the caller has them; read-only, shared between runners)."""
        self.out = []
        if self.model.family == "content":
            self._content(docs, ids)
        elif self.state is not None and docs:
            cols = cols if cols is not None else columns_from_docs(docs, ids)
            self.recent.append((int(cols.minute.max()) // self.state.hop, cols))
            self.state.process(cols, self._decide)
            while self.recent and self.recent[0][0] < self.state.closed_until:
                self.recent.popleft()
        return self.out

    def flush(self) -> list[MLDetection]:
        self.out = []
        if self.state is not None:
            self.state.flush(self._decide)
            self.recent.clear()
        return self.out

    def _decide(self, rows: BehaviourRows) -> npt.NDArray[np.bool_]:
        scores, flags = self.model.score(rows.entity_type, rows.X)
        self._observe(scores)
        if rows.entity_type in self.drift:
            self.drift[rows.entity_type].observe(rows.X)
        if flags.any():
            hop = self.model.preset.behaviour.windows[0] if self.model.preset.behaviour else 1
            idx = np.flatnonzero(flags)
            explained = self.model.explain(rows.entity_type, rows.X[idx], rows.usual[idx])
            for i, features in zip(idx.tolist(), explained, strict=True):
                key = rows.keys[i]
                count = round(float(np.expm1(rows.X[i, 0])))
                ids, campaign = self._window_events(rows.entity_type, key, rows.bucket)
                self._emit(rows.entity_type, key, rows.bucket * hop, hop, float(scores[i]), features, count, ids,
                           campaign)  # fmt: skip
        return ~flags

    def _content(self, docs: list[dict[str, Any]], ids: list[str]) -> None:
        assert self.model.content is not None
        keep = [i for i, d in enumerate(docs) if d.get("url", {}).get("path")]  # HTTP requests only
        if len(keep) < len(docs):
            docs, ids = [docs[i] for i in keep], [ids[i] for i in keep]
        if not docs:
            return
        X = self.model.content.transform(docs)
        scores, flags = self.model.score("request", X)
        self._observe(scores)
        if "request" in self.drift:
            self.drift["request"].observe(X)
        groups: dict[tuple[str, str, int], list[int]] = {}
        for i in np.flatnonzero(flags).tolist():
            doc = docs[i]
            key = doc.get("logwarden", {}).get("api", {}).get("key_id")
            etype, value = ("api_key", key) if key else ("source_ip", doc.get("source", {}).get("ip", "-"))
            groups.setdefault((etype, str(value), epoch_minute(str(doc["@timestamp"]))), []).append(i)
        for (etype, value, minute), members in groups.items():
            top = max(members, key=lambda j: scores[j])
            features = self.model.explain("request", X[top : top + 1])[0]
            campaign = campaign_of(etype, value, *_requests_by_ip(_ip_and_status(docs[j]) for j in members))
            self._emit(etype, value, minute, 1, float(scores[top]), features, len(members),
                       [ids[j] for j in members][: self.max_ids], campaign)  # fmt: skip

    def _observe(self, scores: npt.NDArray[np.float64]) -> None:
        """Count scored rows into the score histogram (vectorized: one searchsorted per batch)."""
        self.rows_scored += len(scores)
        self.score_counts += np.bincount(
            np.searchsorted(SCORE_BUCKETS, scores, side="left"), minlength=len(SCORE_BUCKETS) + 1
        )
        self.score_sum += float(scores.sum())

    def _window_events(self, etype: str, key: str, bucket: int) -> tuple[list[str], str | None]:
        """The first ``max_ids`` event ids of an entity's window, and its campaign (:func:`campaign_of`)."""
        found: list[str] = []
        requests: list[tuple[str | None, Any]] = []
        hop = self.state.hop if self.state is not None else 1
        for _, cols in self.recent:
            rows = np.flatnonzero((cols.entities[etype] == key) & (cols.minute // hop == bucket))
            if len(found) < self.max_ids:
                found += [cols.event_ids[j] for j in rows[: self.max_ids - len(found)].tolist()]
            requests += zip(cols.entities["source_ip"][rows].tolist(), cols.status[rows].tolist(), strict=True)
        return found, campaign_of(etype, key, *_requests_by_ip(requests))

    def _emit(self, etype: str, key: str, minute: int, hop: int, score: float, features: list[dict[str, Any]],
              count: int, event_ids: list[str], campaign: str | None) -> None:  # fmt: skip
        self.anomalies += 1
        incident = self._incident(etype, key, minute, hop, score, count, event_ids, campaign)
        model = self.model
        part = model.partitions.get("request" if model.family == "content" else etype)
        threshold = part.threshold if part is not None else 0.0
        group = {ENTITY_FIELDS[etype]: key}
        rule_id = f"ml.{model.name}"
        start = _iso(incident.start)
        group_key = ",".join(f"{k}={v}" for k, v in sorted(group.items()))
        what = "requests" if model.family == "content" else "behaviour"
        why = describe(features)
        since = f" (anomalous since {start}, {incident.windows} windows)" if incident.windows > 1 else ""
        self.out.append(MLDetection(
            id=detection_id(rule_id, group_key, start), rule_id=rule_id, rule_name=f"ml_{model.name.replace('-', '_')}",
            title=f"Unusual {what} of {etype.replace('_', ' ')} {key} (ML {model.name})",
            description=f"score {score:.0f}/100 (threshold {threshold:.0f}) for {etype} {key} in {hop} min from "
                        f"{_iso(minute)}{since}: {why}",
            level=level_of(incident.peak), group=group, first_seen=start, last_seen=_iso(incident.end),
            event_count=incident.events, event_ids=list(incident.event_ids), tags=["ml", rule_id],
            risk_score=round(incident.peak, 1),
            ml={"model_id": model.name, "model_version": model.version, "score": round(score, 2),
                "threshold": round(threshold, 2), "entity_type": etype, "features": features,
                "shadow": self.shadow, "campaign": incident.campaign},
        ))  # fmt: skip

    def _incident(self, etype: str, key: str, minute: int, hop: int, score: float, count: int,
                  event_ids: list[str], campaign: str | None) -> _Incident:  # fmt: skip
        """The entity's open incident, extended by this anomalous window (a new one after ``gap_min`` quiet minutes).

        Consecutive anomalous windows of one entity are one incident: one detection id (from its first
        window), so they update one alert instead of paging once a minute. Its campaign is its first window's
        (an alert's labels never change)."""
        incident = self.incidents.get((etype, key))
        if incident is None or minute > incident.end + self.gap_min:
            if len(self.incidents) >= _MAX_INCIDENTS:
                self._forget_before(minute - self.gap_min)
            incident = self.incidents[(etype, key)] = _Incident(start=minute, end=minute + hop, campaign=campaign)
        incident.end = max(incident.end, minute + hop)
        incident.windows += 1
        incident.events += count
        incident.peak = max(incident.peak, score)
        room = self.max_ids - len(incident.event_ids)
        if room > 0:
            incident.event_ids += event_ids[:room]
        return incident

    def _forget_before(self, minute: int) -> None:
        """Drop incidents that ended before ``minute`` (they can no longer be extended)."""
        self.incidents = {k: v for k, v in self.incidents.items() if v.end >= minute}
        while len(self.incidents) >= _MAX_INCIDENTS:  # still full: drop the oldest
            del self.incidents[min(self.incidents, key=lambda k: self.incidents[k].end)]


@dataclass
class _Incident:
    """Consecutive anomalous windows of one entity (epoch minutes)."""

    start: int
    end: int
    windows: int = 0
    events: int = 0
    peak: float = 0.0
    event_ids: list[str] = field(default_factory=list)
    campaign: str | None = None


class MLEngine:
    """Runs trained models (and shadow models) over batches of normalized events."""

    def __init__(self, models: Sequence[TrainedModel], *, shadow: Sequence[TrainedModel] = (),
                 shadow_log: Path | None = None, drift_window_rows: int = 5000, max_event_ids: int = 100,
                 incident_gap_min: int = 15) -> None:  # fmt: skip
        self.runners = [_Runner(m, False, drift_window_rows, max_event_ids, incident_gap_min) for m in models]
        self.runners += [_Runner(m, True, drift_window_rows, max_event_ids, incident_gap_min) for m in shadow]
        self._shadow_file: BinaryIO | None = shadow_log.open("ab") if shadow_log is not None else None
        self.stats: Counter[str] = Counter()

    @classmethod
    def from_registry(cls, root: Path, names: Sequence[str], **kwargs: Any) -> MLEngine:
        """The ``current`` version of each model name under ``root`` (and its ``shadow`` version, if set)."""
        live = [store.load(root / n) for n in names]
        shadow = [store.load(root / n, "shadow") for n in names if (root / n / "shadow").is_file()]
        return cls(live, shadow=shadow, **kwargs)

    def process(self, events: Sequence[NormalizedEvent]) -> list[Detection]:
        """Score a batch; returns the detections of live models (shadow ones are only recorded)."""
        docs, ids = [], []
        for event in events:
            if isinstance(event.doc.get("@timestamp"), str):
                docs.append(event.doc)
                ids.append(event.doc_id)
            else:
                self.stats["bad_timestamps"] += 1
        self.stats["events"] += len(events)
        behaviour = bool(docs) and any(r.state is not None for r in self.runners)
        cols = columns_from_docs(docs, ids) if behaviour else None  # once for every behaviour model
        return self._collect([r.process(docs, ids, cols) for r in self.runners])

    def flush(self) -> list[Detection]:
        """End of input: close every open window."""
        return self._collect([r.flush() for r in self.runners])

    def drift(self) -> dict[str, dict[str, float]]:
        """PSI per feature of each model's last drift window, the max over its partitions: ``{model: {f: psi}}``.

        Shadow models appear as ``<name>@shadow``; a model appears once it has scored a full window of rows."""
        out: dict[str, dict[str, float]] = {}
        for r in self.runners:
            merged: dict[str, float] = {}
            for monitor in r.drift.values():
                for feature, value in monitor.values().items():
                    merged[feature] = max(merged.get(feature, 0.0), round(value, 4))
            if merged:
                out[f"{r.model.name}{'@shadow' if r.shadow else ''}"] = merged
        return out

    def score_histograms(self) -> dict[str, tuple[list[tuple[float, int]], float]]:
        """Per model (shadow ones as ``<name>@shadow``): cumulative ``[(upper bound, count)]`` ending with
        ``(inf, total)``, and the sum of the scores (Prometheus histogram semantics: ``le`` buckets)."""
        out: dict[str, tuple[list[tuple[float, int]], float]] = {}
        for r in self.runners:
            cumulative = np.cumsum(r.score_counts).tolist()
            bounds = [*SCORE_BUCKETS, float("inf")]
            out[f"{r.model.name}{'@shadow' if r.shadow else ''}"] = (
                [(float(b), int(c)) for b, c in zip(bounds, cumulative, strict=True)],
                r.score_sum,
            )
        return out

    def rules(self) -> dict[str, dict[str, Any]]:
        """Rule id -> ``{"name", "version", "window_s"}`` of the live models (for the alerting rule catalogue)."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.runners:
            if not r.shadow:
                hop = r.model.preset.behaviour.windows[0] if r.model.preset.behaviour else 1
                name = f"ml_{r.model.name.replace('-', '_')}"
                out[f"ml.{r.model.name}"] = {"name": name, "version": r.model.version, "window_s": 60.0 * hop}
        return out

    def counters(self) -> dict[str, int]:
        """Monotonic counters and gauges (no high-cardinality labels)."""
        out = {"events": self.stats["events"], "bad_timestamps": self.stats["bad_timestamps"],
               "shadow_anomalies": self.stats["shadow_anomalies"], "anomalies": self.stats["anomalies"]}  # fmt: skip
        out["rows_scored"] = sum(r.rows_scored for r in self.runners)
        out["late_events"] = sum(r.state.late_events for r in self.runners if r.state is not None)
        out["entities"] = sum(r.state.entity_count() for r in self.runners if r.state is not None)
        return out

    def close(self) -> None:
        if self._shadow_file is not None:
            self._shadow_file.close()
            self._shadow_file = None

    def _collect(self, outputs: list[list[MLDetection]]) -> list[Detection]:
        live: list[Detection] = []
        for runner, found in zip(self.runners, outputs, strict=True):
            if not runner.shadow:
                self.stats["anomalies"] += len(found)
                live += found
                continue
            self.stats["shadow_anomalies"] += len(found)
            if self._shadow_file is not None:
                for d in found:
                    record = {"id": d.id, "model": d.ml, "group": d.group, "first_seen": d.first_seen,
                              "description": d.description, "event_count": d.event_count}  # fmt: skip
                    self._shadow_file.write(orjson.dumps(record) + b"\n")
                self._shadow_file.flush()
        return live
