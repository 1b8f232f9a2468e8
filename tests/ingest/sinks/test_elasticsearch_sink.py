"""Error handling of the Elasticsearch event sink, against a fake client (the real one is in tests/integration)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig, ObjectApiResponse
from elasticsearch import ApiError
from elasticsearch import ConnectionError as ESConnectionError

from ingest.errors import SinkError
from ingest.pipeline import Normalizer
from ingest.records import NormalizedEvent, Record
from ingest.sinks.elasticsearch import BULK_RESPONSE_FIELDS, ElasticsearchEventSink, bulk_body, daily_index

Responder = Callable[[list[tuple[dict[str, Any], dict[str, Any]]]], Any]


def meta(status: int = 200) -> ApiResponseMeta:
    return ApiResponseMeta(status, "1.1", HttpHeaders(), 0.001, NodeConfig("http", "localhost", 9200))


def parse_bulk(body: bytes) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    lines = body.split(b"\n")
    assert lines[-1] == b"", "the bulk body must end with a newline"
    decoded = [orjson.loads(line) for line in lines[:-1]]
    return list(zip(decoded[0::2], decoded[1::2], strict=True))


def answer(statuses: dict[str, int], error: dict[str, Any] | None = None) -> Responder:
    """A bulk response giving each document id its status (default 201)."""

    def respond(actions: list[tuple[dict[str, Any], dict[str, Any]]]) -> ObjectApiResponse[Any]:
        items = []
        for action, _doc in actions:
            doc_id = action["index"]["_id"]
            status = statuses.get(doc_id, 201)
            item: dict[str, Any] = {"_index": action["index"]["_index"], "_id": doc_id, "status": status}
            if status >= 300:
                item["error"] = error or {"type": "es_rejected_execution_exception", "reason": "queue full"}
            items.append({"index": item})
        errors = any(i["index"]["status"] >= 300 for i in items)
        return ObjectApiResponse(body={"took": 1, "errors": errors, "items": items}, meta=meta())

    return respond


class FakeClient:
    """Stands in for ``Elasticsearch``: records every bulk call and answers from a script."""

    def __init__(self, *script: Responder | Exception) -> None:
        self.script = list(script)
        self.calls: list[list[tuple[dict[str, Any], dict[str, Any]]]] = []
        self.closed = False

    def bulk(self, *, operations: bytes, refresh: Any, filter_path: list[str]) -> Any:
        assert refresh is False
        assert filter_path == BULK_RESPONSE_FIELDS  # the real server's answer is checked in tests/integration
        actions = parse_bulk(operations)
        self.calls.append(actions)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step(actions)

    def close(self) -> None:
        self.closed = True


def events(n: int) -> list[NormalizedEvent]:
    out = []
    for i in range(n):
        raw = (
            b'{"timestamp": "2026-11-0%dT23:59:59.999+00:00", "method": "GET", "path": "/v1/models/%d", "status": 200}'
            % (1 + i % 2, i)
        )
        result = Normalizer().normalize(Record("api_access", raw, "api-access", 0, i))
        assert isinstance(result, NormalizedEvent)
        out.append(result)
    return out


def sink_for(client: FakeClient, **kw: Any) -> ElasticsearchEventSink:
    return ElasticsearchEventSink(client, "lw", backoff_s=0.0, **kw)  # type: ignore[arg-type]


def test_daily_index_uses_the_event_day() -> None:
    assert daily_index("logwarden", "2026-11-02T23:59:59.999Z") == "logwarden-events-2026.11.02"
    assert daily_index("lw", "0385-01-31T00:00:00.000Z") == "lw-events-0385.01.31"


def test_bulk_body_is_valid_ndjson() -> None:
    body = bulk_body([("i1", "a", {"x": 1, "msg": "line\nbreak"}), ("i2", "b", {"y": [1, 2]})])
    assert body.endswith(b"\n")
    lines = body.split(b"\n")[:-1]
    assert len(lines) == 4
    assert [orjson.loads(line) for line in lines] == [
        {"index": {"_index": "i1", "_id": "a"}},
        {"x": 1, "msg": "line\nbreak"},
        {"index": {"_index": "i2", "_id": "b"}},
        {"y": [1, 2]},
    ]


def test_flush_sends_one_bulk_with_deterministic_ids_and_daily_indices() -> None:
    batch = events(3)
    client = FakeClient(answer({}))
    sink = sink_for(client)
    for e in batch:
        sink.add(e)
    assert sink.flush() == []
    (call,) = client.calls
    assert [a["index"]["_id"] for a, _ in call] == [e.doc_id for e in batch]
    assert [a["index"]["_index"] for a, _ in call] == [
        "lw-events-2026.11.01",
        "lw-events-2026.11.02",
        "lw-events-2026.11.01",
    ]
    assert [doc for _, doc in call] == [e.doc for e in batch]
    assert sink.flush() == []  # buffer emptied: nothing is sent again
    assert len(client.calls) == 1


def test_per_item_429_is_retried_then_succeeds() -> None:
    batch = events(3)
    throttled = batch[1].doc_id
    client = FakeClient(answer({throttled: 429}), answer({throttled: 503}), answer({}))
    sink = sink_for(client)
    for e in batch:
        sink.add(e)
    assert sink.flush() == []
    assert [[a["index"]["_id"] for a, _ in call] for call in client.calls] == [
        [e.doc_id for e in batch],
        [throttled],
        [throttled],
    ]


def test_mapping_error_becomes_index_rejected_dead_letter() -> None:
    batch = events(3)
    bad = batch[2]
    error = {"type": "document_parsing_exception", "reason": "failed to parse field [source.ip] of type [ip]"}
    client = FakeClient(answer({bad.doc_id: 400}, error))
    sink = sink_for(client)
    for e in batch:
        sink.add(e)
    (letter,) = sink.flush()
    assert letter.reason == "index_rejected"
    assert letter.stage == "sink"
    assert letter.record is bad.record
    assert "400" in letter.message
    assert "document_parsing_exception" in letter.message
    assert "failed to parse field [source.ip]" in letter.message
    assert len(client.calls) == 1  # a 400 is the document's fault: not retried


def test_retry_and_reject_in_the_same_flush() -> None:
    batch = events(3)
    client = FakeClient(answer({batch[0].doc_id: 429, batch[1].doc_id: 400}), answer({}))
    sink = sink_for(client)
    for e in batch:
        sink.add(e)
    letters = sink.flush()
    assert [d.record for d in letters] == [batch[1].record]
    assert [a["index"]["_id"] for a, _ in client.calls[1]] == [batch[0].doc_id]


def test_connection_error_raises_sink_error_and_keeps_the_buffer() -> None:
    batch = events(2)
    refused = ESConnectionError("Connection refused", errors=(ConnectionRefusedError(111, "Connection refused"),))
    client = FakeClient(refused, answer({}))
    sink = sink_for(client)
    for e in batch:
        sink.add(e)
    with pytest.raises(SinkError, match="bulk request to Elasticsearch failed"):
        sink.flush()
    assert sink.flush() == []  # the next flush sends the same batch
    assert [a["index"]["_id"] for a, _ in client.calls[1]] == [e.doc_id for e in batch]


def test_request_level_api_error_raises_sink_error() -> None:
    too_large = ApiError("request entity too large", meta(413), {"error": "too large"})
    sink = sink_for(FakeClient(too_large))
    sink.add(events(1)[0])
    with pytest.raises(SinkError):
        sink.flush()


def test_retries_exhausted_raise_sink_error_and_keep_everything() -> None:
    batch = events(2)
    always_busy = answer({e.doc_id: 429 for e in batch})
    client = FakeClient(always_busy, always_busy, always_busy, answer({}))
    sink = sink_for(client, max_retries=2)
    for e in batch:
        sink.add(e)
    with pytest.raises(SinkError, match="after 2 retries"):
        sink.flush()
    assert len(client.calls) == 3
    assert sink.flush() == []
    assert [a["index"]["_id"] for a, _ in client.calls[3]] == [e.doc_id for e in batch]


def test_close_closes_the_client() -> None:
    client = FakeClient()
    sink_for(client).close()
    assert client.closed


class SteadyClient(FakeClient):
    """Answers every request alike, whatever the order the sink's threads send them in: ``statuses`` per document id;
    a request holding an id of ``refuse`` raises a connection error instead."""

    def __init__(self, statuses: dict[str, int] | None = None, refuse: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.statuses = dict(statuses or {})
        self.refuse = refuse

    def bulk(self, *, operations: bytes, refresh: Any, filter_path: list[str]) -> Any:
        actions = parse_bulk(operations)
        self.calls.append(actions)
        if any(a["index"]["_id"] in self.refuse for a, _ in actions):
            raise ESConnectionError("Connection reset", errors=(ConnectionResetError(104, "Connection reset"),))
        return answer(self.statuses)(actions)


def ids(actions: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    return [a["index"]["_id"] for a, _ in actions]


def test_concurrent_flush_cuts_the_buffer_into_contiguous_requests() -> None:
    batch = events(10)
    client = SteadyClient()
    sink = sink_for(client, concurrency=3, min_request=2)
    for e in batch:
        sink.add(e)
    assert sink.flush() == []
    assert sorted(map(len, client.calls)) == [2, 4, 4]  # ceil(10 / 3) = 4 per request, the rest in the last
    sent = sorted((ids(call) for call in client.calls), key=lambda part: [e.doc_id for e in batch].index(part[0]))
    assert [i for part in sent for i in part] == [e.doc_id for e in batch]  # every event once, in order
    assert sink.flush() == []
    assert len(client.calls) == 3
    sink.close()


def test_small_rounds_are_not_cut() -> None:
    client = SteadyClient()
    sink = sink_for(client, concurrency=4, min_request=3)
    for e in events(5):  # two requests of at least 3 do not fit in 5
        sink.add(e)
    assert sink.flush() == []
    assert len(client.calls) == 1
    sink.close()


def test_concurrent_flush_merges_retries_and_rejections_in_buffer_order() -> None:
    batch = events(8)
    client = SteadyClient({batch[1].doc_id: 400, batch[6].doc_id: 400, batch[2].doc_id: 429, batch[5].doc_id: 503})
    sink = sink_for(client, concurrency=2, min_request=2, max_retries=1)
    for e in batch:
        sink.add(e)
    with pytest.raises(SinkError, match="after 1 retries"):  # the 429/503 items never succeed here
        sink.flush()
    assert sorted(ids(client.calls[2])) == sorted([batch[2].doc_id, batch[5].doc_id])  # one retry round of 2
    client.statuses = {batch[1].doc_id: 400, batch[6].doc_id: 400}
    letters = sink.flush()  # the whole buffer again: the ids overwrite what was indexed
    assert [d.record for d in letters] == [batch[1].record, batch[6].record]
    sink.close()


def test_one_failed_request_fails_the_whole_flush_and_keeps_the_buffer() -> None:
    batch = events(6)
    client = SteadyClient(refuse=frozenset({batch[4].doc_id}))
    sink = sink_for(client, concurrency=3, min_request=2)
    for e in batch:
        sink.add(e)
    with pytest.raises(SinkError, match="bulk request to Elasticsearch failed"):
        sink.flush()
    assert len(client.calls) == 3  # the other requests were sent and answered before the flush failed
    client.refuse = frozenset()
    assert sink.flush() == []
    assert sorted(i for call in client.calls[3:] for i in ids(call)) == sorted(e.doc_id for e in batch)
    sink.close()


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        sink_for(SteadyClient(), concurrency=0)
