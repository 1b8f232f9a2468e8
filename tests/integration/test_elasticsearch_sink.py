"""The Elasticsearch sink against the real server: per-item results read from the filtered bulk response."""

from __future__ import annotations

import uuid

import pytest
from elasticsearch import Elasticsearch

from ingest.ecs import EVENT_FIELDS, index_template
from ingest.records import NormalizedEvent, Record
from ingest.sinks.elasticsearch import ElasticsearchEventSink
from logwarden.settings import Settings
from logwarden.wiring import elasticsearch_client

from .conftest import Services


def _event(n: int, status: object) -> NormalizedEvent:
    doc = {"@timestamp": "2026-11-02T08:00:00.000Z", "http": {"response": {"status_code": status}}}
    return NormalizedEvent(f"doc-{n}", doc, Record("api_access", f"raw {n}".encode(), "api-access", 0, n))


@pytest.mark.parametrize("concurrency", [1, 2], ids=["one request", "two requests at once"])
def test_mapping_rejections_become_dead_letters_and_the_rest_is_indexed(services: Services, concurrency: int) -> None:
    prefix = f"sink-{uuid.uuid4().hex[:8]}"
    es: Elasticsearch = elasticsearch_client(Settings(elasticsearch_url=services.elasticsearch))  # as the worker does
    es.indices.put_index_template(name=prefix, **index_template(f"{prefix}-events-*", None, EVENT_FIELDS))
    try:
        sink = ElasticsearchEventSink(es, prefix, concurrency=concurrency, min_request=1)
        for n, status in enumerate([200, "not a number", 404, "also not"]):
            sink.add(_event(n, status))
        rejected = sink.flush()
        assert [letter.record.offset for letter in rejected] == [1, 3]
        assert all(letter.reason == "index_rejected" and letter.stage == "sink" for letter in rejected)
        assert "(400): document_parsing_exception: " in rejected[0].message
        assert "http.response.status_code" in rejected[0].message  # Elasticsearch's reason names the field
        es.indices.refresh(index=f"{prefix}-events-*")
        ids = {hit["_id"] for hit in es.search(index=f"{prefix}-events-*", size=10)["hits"]["hits"]}
        assert ids == {"doc-0", "doc-2"}
    finally:
        es.indices.delete(index=f"{prefix}-events-*", ignore_unavailable=True)
        es.indices.delete_index_template(name=prefix)
