"""NormalizedEvent: one document, as a dict or as JSON text, each made from the other on first use."""

from __future__ import annotations

import orjson
import pytest

from ingest.records import NormalizedEvent, Record

RECORD = Record("api_access", b"{}", "api-access", 2, 7)
DOC = {"@timestamp": "2026-11-02T08:00:00.000Z", "event": {"kind": "event"}, "user": {"id": "ps_k_00"}}


def test_json_text_is_decoded_once_on_first_use() -> None:
    text = orjson.dumps(DOC)
    event = NormalizedEvent("id-1", None, RECORD, json=text, timestamp="2026-11-02T08:00:00.000Z")
    assert event.json is text
    assert event.forms == ("json",)
    first = event.doc
    assert first == DOC
    assert event.doc is first
    assert event.forms == ("doc", "json")


def test_a_dict_is_serialized_once_on_first_use() -> None:
    event = NormalizedEvent("id-1", DOC, RECORD)
    assert event.forms == ("doc",)
    text = event.json
    assert orjson.loads(text) == DOC
    assert event.json is text
    assert event.doc is DOC


def test_timestamp_given_with_the_text_is_used_without_decoding() -> None:
    event = NormalizedEvent("id-1", None, RECORD, json=b"not decoded", timestamp="2026-01-01T00:00:00.000Z")
    assert event.timestamp == "2026-01-01T00:00:00.000Z"
    with pytest.raises(orjson.JSONDecodeError):
        event.doc  # noqa: B018 (the text was never decoded before)


def test_timestamp_otherwise_comes_from_the_document() -> None:
    assert NormalizedEvent("id-1", DOC, RECORD).timestamp == DOC["@timestamp"]
    assert NormalizedEvent("id-1", None, RECORD, json=orjson.dumps(DOC)).timestamp == DOC["@timestamp"]


def test_events_are_equal_whatever_form_their_document_takes() -> None:
    as_dict = NormalizedEvent("id-1", DOC, RECORD)
    as_text = NormalizedEvent("id-1", None, RECORD, json=orjson.dumps(DOC))
    assert as_dict == as_text
    assert as_dict != NormalizedEvent("id-2", DOC, RECORD)
    assert as_dict != NormalizedEvent("id-1", {**DOC, "extra": 1}, RECORD)
    assert "doc_id='id-1'" in repr(as_text)


def test_an_event_without_a_document_is_refused() -> None:
    with pytest.raises(ValueError, match="document or its JSON text"):
        NormalizedEvent("id-1", None, RECORD)


def test_with_record_keeps_the_document_in_every_form_made() -> None:
    event = NormalizedEvent("id-1", None, RECORD, json=orjson.dumps(DOC), timestamp="t")
    moved = event.with_record(Record("api_access", b"{}", "api-access", 1, 7))
    assert moved.record.partition == 1 and moved.doc_id == "id-1"
    assert moved.json is event.json and moved.timestamp == "t"
    assert moved.forms == ("json",)
    assert moved.doc == DOC


def test_other_missing_attributes_are_still_errors() -> None:
    event = NormalizedEvent("id-1", DOC, RECORD)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        event.nothing  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError):
        event.extra = 1  # type: ignore[attr-defined]  # slotted: no new attributes
