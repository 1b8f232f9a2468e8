"""Alert sinks without services: DuckDB for real, error handling of the Alertmanager and Elasticsearch sinks."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import orjson
import pytest
from elasticsearch import ConnectionError as ESConnectionError

from alerting.alert import Alert
from alerting.errors import DeliveryError
from alerting.sinks.alertmanager import AlertmanagerSink
from alerting.sinks.duckdb_store import DuckDBAlertSink
from alerting.sinks.elasticsearch import ElasticsearchAlertIndex, alerts_index
from detectors.detection import Detection
from ingest.sinks.duckdb_store import connect, rows


def alert(det_id: str = "d1", n: int = 10) -> Alert:
    det = Detection(
        id=det_id,
        rule_id="rule-1",
        rule_name="api_login_brute_force",
        title="Brute force",
        description="many failures",
        level="high",
        group={"user.id": "u1"},
        first_seen="2026-11-02T08:00:00.000Z",
        last_seen="2026-11-02T08:01:00.000Z",
        event_count=n,
    )
    return Alert(det, "2026-11-02T08:01:05.000Z")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_duckdb_alert_sink_upserts_by_alert_id(tmp_path: Path) -> None:
    conn = connect(tmp_path / "store.duckdb")
    try:
        sink = DuckDBAlertSink(conn)
        sink.emit([alert("d1", 10), alert("d2", 10)])
        sink.emit([alert("d1", 15)])
        sink.emit([])
        stored = rows(conn, "SELECT id, event_count, severity, doc->>'$.event.kind' FROM alerts ORDER BY id")
    finally:
        conn.close()
    assert stored == [("d1", 15, "high", "alert"), ("d2", 10, "high", "alert")]


def test_alertmanager_unreachable_is_a_delivery_error() -> None:
    sink = AlertmanagerSink(f"http://127.0.0.1:{closed_port()}/", timeout_s=2)
    assert not sink.url.endswith("/")
    with pytest.raises(DeliveryError, match="cannot reach Alertmanager"):
        sink.emit([alert()])
    sink.emit([])  # nothing to send: no request, no error


class FakeBulk:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.bodies: list[bytes] = []

    def bulk(self, *, operations: bytes, refresh: Any) -> Any:
        self.bodies.append(operations)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_alert_index_writes_one_document_per_alert_id() -> None:
    client = FakeBulk({"errors": False, "items": [{"index": {"status": 200}}]})
    ElasticsearchAlertIndex(client, "lw").emit([alert("d1")])  # type: ignore[arg-type]
    action, doc = (orjson.loads(line) for line in client.bodies[0].splitlines())
    assert action == {"index": {"_index": alerts_index("lw"), "_id": "d1"}}
    assert doc["logwarden"]["alert"]["id"] == "d1"


def test_alert_index_rejection_is_a_delivery_error() -> None:
    error = {"type": "document_parsing_exception", "reason": "bad"}
    client = FakeBulk({"errors": True, "items": [{"index": {"status": 400, "error": error}}]})
    with pytest.raises(DeliveryError, match="rejected 1 alerts"):
        ElasticsearchAlertIndex(client, "lw").emit([alert()])  # type: ignore[arg-type]


def test_alert_index_connection_error_is_a_delivery_error() -> None:
    client = FakeBulk(ESConnectionError("refused", errors=(ConnectionRefusedError(111, "refused"),)))
    with pytest.raises(DeliveryError, match="cannot write alerts"):
        ElasticsearchAlertIndex(client, "lw").emit([alert()])  # type: ignore[arg-type]
