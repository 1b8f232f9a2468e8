"""Bulk-index events into daily indices behind an alias, with deterministic ids and per-item handling."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from elasticsearch import ApiError, Elasticsearch, TransportError

from ingest.errors import SinkError
from ingest.records import DeadLetter, NormalizedEvent

log = logging.getLogger(__name__)

#: What is read of a bulk response (one small object per item instead of the whole result: less to send and parse).
BULK_RESPONSE_FIELDS = ["errors", "items.*.status", "items.*.error.type", "items.*.error.reason"]
#: Per-item statuses worth retrying (overload and server errors); other 4xx are the document's fault.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def daily_index(prefix: str, timestamp: str) -> str:
    """``<prefix>-events-YYYY.MM.DD`` of the event's own day (so a replay hits the same index).

    >>> daily_index("logwarden", "2026-11-02T08:00:00.000Z")
    'logwarden-events-2026.11.02'
    """
    return f"{prefix}-events-{timestamp[0:4]}.{timestamp[5:7]}.{timestamp[8:10]}"


def bulk_body(items: list[tuple[str, str, dict[str, Any]]]) -> bytes:
    """NDJSON bulk body of ``index`` actions for ``(index, id, document)`` triples."""
    lines: list[bytes] = []
    for index, doc_id, doc in items:
        lines.append(orjson.dumps({"index": {"_index": index, "_id": doc_id}}))
        lines.append(orjson.dumps(doc))
    return b"\n".join(lines) + b"\n"


class ElasticsearchEventSink:
    """Buffers events and writes them with one bulk request per flush.

    Retries the items Elasticsearch answers with 429/5xx (exponential backoff, ``max_retries``
    rounds); items rejected for good (mapping errors) come back as dead letters carrying the
    Elasticsearch error. A failed request (connection refused, timeout) raises :class:`SinkError`.
    """

    def __init__(
        self,
        client: Elasticsearch,
        index_prefix: str = "logwarden",
        *,
        max_retries: int = 5,
        backoff_s: float = 0.5,
    ) -> None:
        self._client = client
        self._prefix = index_prefix
        self._max_retries = max_retries
        self._backoff_s = backoff_s
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

    def _bulk(self, events: list[NormalizedEvent]) -> tuple[list[NormalizedEvent], list[DeadLetter]]:
        body = bulk_body([(daily_index(self._prefix, e.timestamp), e.doc_id, e.doc) for e in events])
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
        self._client.close()
