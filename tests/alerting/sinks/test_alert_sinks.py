"""Alert sinks without services: DuckDB for real, error handling of the Alertmanager and Elasticsearch sinks."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from elasticsearch import ConnectionError as ESConnectionError

from alerting.alert import Alert
from alerting.catalog import RuleInfo
from alerting.errors import AlertRejected, DeliveryError
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
    return Alert(det, "2026-11-02T08:01:05.000Z", RuleInfo(runbook_url="https://rb.example#api_login_brute_force"))


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


class FakeAlertmanager(BaseHTTPRequestHandler):
    """Records POST bodies; answers with the status the server was given."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server: Any = self.server
        server.bodies.append(orjson.loads(body))
        self.send_response(server.status)
        self.end_headers()
        self.wfile.write(b"bad alert" if server.status >= 400 else b"")

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def fake_am() -> Iterator[Any]:
    server: Any = HTTPServer(("127.0.0.1", 0), FakeAlertmanager)
    server.bodies, server.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_alertmanager_gets_ends_at_ttl_ahead_for_open_alerts_and_resolved_at_for_resolved(fake_am: Any) -> None:
    url = f"http://127.0.0.1:{fake_am.server_address[1]}"
    sink = AlertmanagerSink(url, ttl_s=120, kibana_url="http://kibana:5601", wall=lambda: 1_800_000_000.0)
    resolved = Alert(alert("d2").detection, "2026-11-02T08:01:05.000Z", resolved_at="2026-11-02T09:00:00.000Z")
    sink.emit([alert("d1"), resolved])
    (body,) = fake_am.bodies
    assert body[0]["endsAt"] == "2027-01-15T08:02:00.000Z"  # 1_800_000_000 + 120 s
    assert body[1]["endsAt"] == "2026-11-02T09:00:00.000Z"
    assert body[0]["annotations"]["runbook_url"] == "https://rb.example#api_login_brute_force"
    assert body[0]["generatorURL"].startswith("http://kibana:5601/app/discover")
    assert sink.expires is True


def test_alertmanager_400_is_a_refusal_and_5xx_a_retryable_failure(fake_am: Any) -> None:
    sink = AlertmanagerSink(f"http://127.0.0.1:{fake_am.server_address[1]}")
    fake_am.status = 400
    with pytest.raises(AlertRejected, match="answered 400: bad alert") as refused:
        sink.emit([alert()])
    assert refused.value.alert_ids is None
    fake_am.status = 503
    with pytest.raises(DeliveryError, match="answered 503") as failed:
        sink.emit([alert()])
    assert not isinstance(failed.value, AlertRejected)


def test_alert_index_partial_rejection_names_the_refused_alerts() -> None:
    error = {"type": "document_parsing_exception", "reason": "bad"}
    items = [{"index": {"status": 201}}, {"index": {"status": 400, "error": error}}]
    client = FakeBulk({"errors": True, "items": items})
    with pytest.raises(AlertRejected) as refused:
        ElasticsearchAlertIndex(client, "lw").emit([alert("d1"), alert("d2")])  # type: ignore[arg-type]
    assert refused.value.alert_ids == ["d2"]


def test_alert_index_overload_is_retried_not_refused() -> None:
    error = {"type": "es_rejected_execution_exception", "reason": "queue full"}
    client = FakeBulk({"errors": True, "items": [{"index": {"status": 429, "error": error}}]})
    with pytest.raises(DeliveryError, match="could not take 1 alerts now") as failed:
        ElasticsearchAlertIndex(client, "lw").emit([alert()])  # type: ignore[arg-type]
    assert not isinstance(failed.value, AlertRejected)
    assert ElasticsearchAlertIndex.expires is False
