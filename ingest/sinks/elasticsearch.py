"""Bulk-index events into daily indices behind an alias, with deterministic ids and per-item handling."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
from elasticsearch import ApiError, Elasticsearch, TransportError

from ingest.errors import SinkError
from ingest.records import DeadLetter, NormalizedEvent

log = logging.getLogger(__name__)

#: What is read of a bulk response (one small object per item instead of the whole result: less to send and parse).
BULK_RESPONSE_FIELDS = ["errors", "items.*.status", "items.*.error.type", "items.*.error.reason"]
#: What one bulk round gives back: the events to retry, and those rejected for good (as dead letters).
_Round = tuple[list[NormalizedEvent], list[DeadLetter]]
#: Per-item statuses worth retrying (overload and server errors); other 4xx are the document's fault.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def daily_index(prefix: str, timestamp: str) -> str:
    """``<prefix>-events-YYYY.MM.DD`` of the event's own day (so a replay hits the same index).

    >>> daily_index("logwarden", "2026-11-02T08:00:00.000Z")
    'logwarden-events-2026.11.02'
    """
    return f"{prefix}-events-{timestamp[0:4]}.{timestamp[5:7]}.{timestamp[8:10]}"


def bulk_body(items: list[tuple[str, str, dict[str, Any] | bytes]]) -> bytes:
    """NDJSON bulk body of ``index`` actions for ``(index, id, document)`` triples; a document given as
    bytes is already its JSON text (one line: JSON text from orjson or the native path has no raw newline)."""
    lines: list[bytes] = []
    for index, doc_id, doc in items:
        lines.append(orjson.dumps({"index": {"_index": index, "_id": doc_id}}))
        lines.append(doc if type(doc) is bytes else orjson.dumps(doc))
    return b"\n".join(lines) + b"\n"


class ElasticsearchEventSink:
    """Buffers events and writes them with one bulk request per flush.

    Retries the items Elasticsearch answers with 429/5xx (exponential backoff, ``max_retries``
    rounds); items rejected for good (mapping errors) come back as dead letters carrying the
    Elasticsearch error. A failed request (connection refused, timeout) raises :class:`SinkError`.

    ``concurrency`` > 1 cuts each round into that many contiguous bulk requests sent at once (one
    Elasticsearch write thread each, so one shard's indexing can use several cores); the flush
    still returns only when every request answered, with the results in buffer order. If any
    request fails, the whole flush fails and the caller retries it: a part that was indexed is
    indexed again under the same ids, which overwrites it (no duplicate).
    """

    def __init__(
        self,
        client: Elasticsearch,
        index_prefix: str = "logwarden",
        *,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        concurrency: int = 1,
        min_request: int = 200,
    ) -> None:
        if concurrency < 1 or min_request < 1:
            raise ValueError("concurrency and min_request must be at least 1")
        self._client = client
        self._prefix = index_prefix
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._concurrency = concurrency
        self._min_request = min_request  # fewer documents than this per request: not worth a split
        self._pool = ThreadPoolExecutor(concurrency - 1, "es-bulk") if concurrency > 1 else None
        self._buffer: list[NormalizedEvent] = []

    def add(self, event: NormalizedEvent) -> None:
        self._buffer.append(event)

    def flush(self) -> list[DeadLetter]:
        pending = self._buffer
        rejected: list[DeadLetter] = []
        for attempt in range(self._max_retries + 1):
            if not pending:
                break
            if attempt:
                time.sleep(min(self._backoff_s * 2 ** (attempt - 1), 30.0))
            retry, failed = self._bulk(pending)
            rejected.extend(failed)
            pending = retry
        if pending:
            raise SinkError(f"Elasticsearch kept refusing {len(pending)} documents after {self._max_retries} retries")
        self._buffer = []
        return rejected

    def _bulk(self, events: list[NormalizedEvent]) -> _Round:
        """One round: the events in ``concurrency`` requests at once (fewer for small rounds)."""
        parts = min(self._concurrency, len(events) // self._min_request)
        if self._pool is None or parts < 2:
            return self._bulk_request(events)
        size = -(-len(events) // parts)  # ceiling division: every part but the last is full
        chunks = [events[start : start + size] for start in range(0, len(events), size)]
        others: list[Future[_Round]] = [self._pool.submit(self._bulk_request, chunk) for chunk in chunks[1:]]
        results: list[_Round] = []
        failure: SinkError | None = None
        try:
            results.append(self._bulk_request(chunks[0]))
        except SinkError as exc:
            failure = exc
        for future in others:  # wait for every request, so none is still running when the caller retries
            try:
                results.append(future.result())
            except SinkError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return [e for retry, _ in results for e in retry], [d for _, rejected in results for d in rejected]

    def _bulk_request(self, events: list[NormalizedEvent]) -> _Round:
        """One bulk request: the events to retry (429/5xx) and those rejected for good, as dead letters."""
        body = bulk_body([(daily_index(self._prefix, e.timestamp), e.doc_id, e.json) for e in events])
        try:
            response = self._client.bulk(
                operations=body,  # type: ignore[arg-type]  # NDJSON bytes pass through
                refresh=False,
                filter_path=BULK_RESPONSE_FIELDS,
            )
        except (TransportError, ApiError) as exc:
            raise SinkError(f"bulk request to Elasticsearch failed: {exc}") from exc
        if not response.get("errors"):
            return [], []
        retry: list[NormalizedEvent] = []
        rejected: list[DeadLetter] = []
        for event, item in zip(events, response["items"], strict=True):
            result = item.get("index", {})
            status = int(result.get("status", 500))
            if status < 300:
                continue
            if status in RETRYABLE_STATUS:
                retry.append(event)
            else:
                error = result.get("error", {})
                message = f"Elasticsearch rejected the document ({status}): {error.get('type')}: {error.get('reason')}"
                rejected.append(DeadLetter(event.record, "index_rejected", message, stage="sink"))
        log.warning("bulk: %d to retry, %d rejected", len(retry), len(rejected))
        return retry, rejected

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        self._client.close()
