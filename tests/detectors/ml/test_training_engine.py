"""Training, the model store, offline scoring and evaluation, and the streaming MLEngine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import orjson
import pytest

from detectors.detection import Detection
from detectors.ml import store
from detectors.ml.detection import MLDetection
from detectors.ml.engine import MLEngine
from detectors.ml.evaluation import evaluate
from detectors.ml.model import TrainedModel
from detectors.ml.presets import PresetError, load_preset
from detectors.ml.scoring import score_documents
from detectors.ml.training import threshold_of, train
from ingest.ecs import ALERT_FIELDS

from .conftest import docs, events

SCENARIOS = ("key_leak", "brute_force")


@pytest.fixture(scope="module")
def behaviour() -> TrainedModel:
    preset = dataclasses.replace(load_preset("entity-behaviour"), threshold={"quantile": 0.999})
    return train(preset, docs(60), data_hash="test")


@pytest.fixture(scope="module")
def content() -> TrainedModel:
    return train(load_preset("request-content"), docs(60))


def test_threshold_policies() -> None:
    scores = np.linspace(0, 100, 1001)
    assert threshold_of({"quantile": 0.99}, scores, 1.0) == pytest.approx(99.0)
    assert threshold_of({"alerts_per_day": 10}, scores, 1.0) == pytest.approx(99.0, abs=0.01)  # 10 of 1001 a day
    assert threshold_of({"score": 42}, scores, 1.0) == 42
    assert threshold_of({"alerts_per_day": 0.01}, scores, 1.0) == 100.0  # rarer than the data: extrapolated


def test_presets_and_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "m.yml"
    cfg.write_text("detector: hbos\nparams: {n_bins: 20}\nwindows: [1, 10]\nthreshold: {quantile: 0.99}\n")
    preset = load_preset("entity-behaviour", cfg)
    assert preset.detector == "hbos" and preset.params == {"n_bins": 20}
    assert preset.behaviour is not None and preset.behaviour.windows == (1, 10)
    cfg.write_text("windowz: [1]\n")
    with pytest.raises(PresetError, match="windowz"):
        load_preset("entity-behaviour", cfg)
    with pytest.raises(PresetError, match="entity-behaviour"):
        load_preset("nope")


def test_training_metadata(behaviour: TrainedModel) -> None:
    meta = behaviour.metadata
    assert set(meta["thresholds"]) == {"api_key", "user", "source_ip", "org"}
    assert meta["data_hash"] == "test" and meta["features"] == behaviour.feature_names
    assert meta["training_window"]["start"].startswith("2026-11-02T08:00")
    assert {"numpy", "scikit-learn", "pyod"} <= set(meta["libraries"])
    assert all(0 < t <= 100 for t in meta["thresholds"].values())


def test_store_versions_and_promotion(tmp_path: Path, content: TrainedModel) -> None:
    first = store.save(content, tmp_path)
    second = store.save(content, tmp_path)
    assert (first.name, second.name) == ("v1", "v2")
    assert orjson.loads((second / "metadata.json").read_bytes())["version"] == "v2"
    base = tmp_path / "request-content"
    assert store.resolve(base) == second  # no pointer: the latest
    store.promote(base, "v1")
    store.promote(base, "v2", "shadow")
    assert store.resolve(base) == first and store.pointers(base) == {"current": "v1", "shadow": "v2"}
    assert store.load(base, "shadow").version == "v2"
    with pytest.raises(store.ModelStoreError, match="v9"):
        store.promote(base, "v9")


def test_behaviour_model_finds_the_key_leak(behaviour: TrainedModel) -> None:
    test = docs(30, SCENARIOS, offset_min=60)
    report = evaluate(behaviour, test, "labels.scenario")
    assert report["by_partition"]["api_key"]["roc_auc"] > 0.9
    assert report["by_type"]["brute_force"]["roc_auc"] > 0.9
    scored = score_documents(behaviour, test)
    leak = [i for i, d in enumerate(test) if d.get("labels", {}).get("scenario") == "key_leak"]
    top = max(leak, key=lambda i: scored.doc_record(i)["score"])
    record = scored.doc_record(top)
    assert record["anomalous"] and record["features"] and "usually" in record["explanation"]


def test_content_model_scores_each_request_in_order(content: TrainedModel, tmp_path: Path) -> None:
    test = docs(20, ("payload_attack",), offset_min=60)
    scored = score_documents(content, test)
    assert len(scored.doc_best) == len(test) and list(scored.doc_best) == list(range(len(test)))
    report = evaluate(content, test, "labels.scenario", tmp_path)
    assert report["by_type"]["payload_attack"]["roc_auc"] > 0.9
    assert {"scores.png", "pr_curve.png", "report.html"} <= {p.name for p in tmp_path.iterdir()}
    assert (tmp_path / "scores.png").read_bytes()[:4] == b"\x89PNG"


def test_engine_raises_explained_detections_and_learns_only_unflagged(behaviour: TrainedModel) -> None:
    stream = events(30, SCENARIOS, offset_min=60)
    engine = MLEngine([behaviour], drift_window_rows=500)
    found = []
    for start in range(0, len(stream), 1000):
        found += engine.process(stream[start : start + 1000])
    found += engine.flush()
    assert found and all(isinstance(d, MLDetection) for d in found)
    leak_ids = {e.doc_id for e in stream if e.doc.get("labels", {}).get("scenario") == "key_leak"}
    hits = [d for d in found if leak_ids & set(d.event_ids)]
    assert hits, "the leaked key is flagged"
    d = hits[0]
    assert d.rule_id == "ml.entity-behaviour" and 0 <= (d.risk_score or 0) <= 100
    assert d.level in {"low", "medium", "high"}
    assert "usually" in d.description and d.ml["features"]
    assert {f"logwarden.alert.ml.{k}" for k in d.alert_fields()} <= set(ALERT_FIELDS)
    assert engine.rules() == {"ml.entity-behaviour": {"name": "ml_entity_behaviour", "version": "unversioned",
                                                      "window_s": 60.0}}  # fmt: skip
    counters = engine.counters()
    assert counters["events"] == len(stream) and counters["rows_scored"] > 0 and counters["anomalies"] == len(found)
    buckets, total = engine.score_histograms()["entity-behaviour"]
    assert buckets[-1] == (float("inf"), counters["rows_scored"]) and 0 < total <= 100 * counters["rows_scored"]
    assert [c for _, c in buckets] == sorted(c for _, c in buckets), "cumulative"
    drift = engine.drift()["entity-behaviour"]
    assert set(drift) <= set(behaviour.feature_names) and all(v >= 0 for v in drift.values())
    again = MLEngine([behaviour])
    ids = [d.id for start in range(0, len(stream), 1000) for d in again.process(stream[start : start + 1000])]
    assert ids + [d.id for d in again.flush()] == [d.id for d in found], "same input, same detections"
    twice = MLEngine([behaviour], shadow=[behaviour])  # the two runners share each batch's columns
    ids = [d.id for start in range(0, len(stream), 1000) for d in twice.process(stream[start : start + 1000])]
    assert ids + [d.id for d in twice.flush()] == [d.id for d in found], "a shadow model changes nothing"
    assert twice.counters()["rows_scored"] == 2 * counters["rows_scored"]


def test_an_entitys_consecutive_anomalous_windows_are_one_incident(behaviour: TrainedModel) -> None:
    stream = events(30, SCENARIOS, offset_min=60)
    engine = MLEngine([behaviour])
    found: list[Detection] = []
    for start in range(0, len(stream), 1000):
        found += engine.process(stream[start : start + 1000])
    found += engine.flush()
    by_entity: dict[str, list[MLDetection]] = {}
    for d in found:
        assert isinstance(d, MLDetection)
        by_entity.setdefault(repr(sorted(d.group.items())), []).append(d)
    repeated = [ds for ds in by_entity.values() if len(ds) > 1]
    assert repeated, "some entity stays anomalous for several windows"
    for ds in repeated:
        firsts = {d.first_seen for d in ds}
        for first in firsts:  # one id per incident, its later states only grow
            states = [d for d in ds if d.first_seen == first]
            assert len({d.id for d in states}) == 1
            assert [d.event_count for d in states] == sorted(d.event_count for d in states)
            assert [d.last_seen for d in states] == sorted(d.last_seen for d in states)
            assert [d.risk_score or 0 for d in states] == sorted(d.risk_score or 0 for d in states)
    apart = MLEngine([behaviour], incident_gap_min=-(10**6))  # no merging at all: one id per window
    split = [d for start in range(0, len(stream), 1000) for d in apart.process(stream[start : start + 1000])]
    split += apart.flush()
    assert len({d.id for d in split}) == len(split) > len({d.id for d in found})


def test_shadow_models_record_but_never_alert(content: TrainedModel, tmp_path: Path) -> None:
    log = tmp_path / "shadow.jsonl"
    engine = MLEngine([], shadow=[content], shadow_log=log)
    stream = events(20, ("payload_attack",), offset_min=60)
    assert engine.process(stream) == [] and engine.flush() == []
    engine.close()
    lines = log.read_bytes().splitlines()
    assert lines and engine.counters()["shadow_anomalies"] == len(lines)
    assert orjson.loads(lines[0])["model"]["shadow"] is True


def test_ml_alerts_carry_the_campaign_of_the_address_behind_them(behaviour: TrainedModel) -> None:
    """The campaign of an alert is the source IP with the most failed requests in its entity's first anomalous
    window (an address is its own): the brute-force victim's alert names the attacker's address, so Alertmanager
    can mute it under the address's alert (equal campaign_key labels)."""
    stream = events(30, SCENARIOS, offset_min=60)
    engine = MLEngine([behaviour])
    found: list[Detection] = [d for start in range(0, len(stream), 1000) for d in engine.process(stream[start:][:1000])]
    found += engine.flush()
    docs_by_id = {e.doc_id: e.doc for e in stream}
    for d in found:
        assert isinstance(d, MLDetection)
        campaign = d.ml["campaign"]
        if d.ml["entity_type"] == "source_ip":
            assert campaign == d.group_key
        elif campaign is not None:
            ips = {docs_by_id[i].get("source", {}).get("ip") for i in d.event_ids}
            assert campaign.removeprefix("source.ip=") in ips
    brute = [e.doc for e in stream if e.doc.get("labels", {}).get("scenario") == "brute_force"]
    attacker, victim = brute[0]["source"]["ip"], brute[0]["user"]["id"]
    victim_alerts = [d for d in found if d.group == {"user.id": victim}]
    assert victim_alerts, "the brute-force victim is flagged"
    assert {d.ml["campaign"] for d in victim_alerts} == {f"source.ip={attacker}"}
    assert all(d.alert_fields()["campaign"] == f"source.ip={attacker}" for d in victim_alerts)
