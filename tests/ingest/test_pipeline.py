"""The pure middle of ingest: document ids, the Normalizer, dead letters."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.errors import ParseError
from ingest.pipeline import Normalizer, document_id
from ingest.records import DeadLetter, NormalizedEvent, Record

GOOD = b'{"timestamp": "2026-11-02T08:00:00Z", "method": "GET", "path": "/v1/models", "status": 200}'


def record(value: bytes = GOOD, **kw: Any) -> Record:
    return Record(kw.pop("source", "api_access"), value, **kw)


def test_document_id_is_deterministic_and_independent_of_position() -> None:
    a = document_id(record(topic="api-access", partition=0, offset=1))
    b = document_id(record(topic="other", partition=2, offset=99, key=b"k"))
    assert a == b
    assert len(a) == 32
    assert set(a) <= set("0123456789abcdef")


def test_document_id_depends_on_bytes_and_source() -> None:
    assert document_id(record(GOOD)) != document_id(record(GOOD + b" "))
    assert document_id(record(GOOD)) != document_id(record(GOOD, source="audit"))


def test_document_id_separates_source_from_bytes() -> None:
    # without the separator, ("ab", b"c") and ("a", b"bc") would hash the same material
    assert document_id(Record("ab", b"c")) != document_id(Record("a", b"bc"))


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_document_id_collides_only_for_equal_bytes(x: bytes, y: bytes) -> None:
    assert (document_id(Record("api_access", x)) == document_id(Record("api_access", y))) == (x == y)


def test_normalizer_returns_event_with_deterministic_id() -> None:
    rec = record(offset=5)
    result = Normalizer().normalize(rec)
    assert isinstance(result, NormalizedEvent)
    assert result.doc_id == document_id(rec)
    assert result.record is rec
    assert result.timestamp == "2026-11-02T08:00:00.000Z"
    assert result.doc["url"]["path"] == "/v1/models"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"garbage", "invalid_json"),
        (b"[]", "not_an_object"),
        (b'{"method": "GET", "path": "/", "status": 200}', "missing_field"),
        (b'{"timestamp": "yesterday", "method": "GET", "path": "/", "status": 200}', "bad_timestamp"),
    ],
)
def test_parse_error_becomes_dead_letter_with_reason(value: bytes, reason: str) -> None:
    rec = record(value, topic="api-access", offset=3)
    result = Normalizer().normalize(rec)
    assert isinstance(result, DeadLetter)
    assert result.reason == reason
    assert result.stage == "parse"
    assert result.record is rec
    assert result.message  # the full explanation travels with the letter


def test_unknown_source_becomes_dead_letter() -> None:
    result = Normalizer().normalize(record(source="no_such_source"))
    assert isinstance(result, DeadLetter)
    assert result.reason == "unknown_source"


def test_transforms_apply_in_order() -> None:
    def tag(name: str) -> Any:
        def transform(doc: dict[str, Any]) -> dict[str, Any]:
            return {**doc, "tags": [*doc.get("tags", []), name]}

        return transform

    result = Normalizer(transforms=[tag("enrich"), tag("privacy"), tag("last")]).normalize(record())
    assert isinstance(result, NormalizedEvent)
    assert result.doc["tags"] == ["enrich", "privacy", "last"]


def test_transform_parse_error_is_a_transform_dead_letter() -> None:
    calls: list[str] = []

    def refuse(doc: dict[str, Any]) -> dict[str, Any]:
        calls.append("refuse")
        raise ParseError("secret_found", "a secret could not be redacted")

    def never(doc: dict[str, Any]) -> dict[str, Any]:
        calls.append("never")
        return doc

    result = Normalizer(transforms=[refuse, never]).normalize(record())
    assert isinstance(result, DeadLetter)
    assert (result.reason, result.stage, result.message) == (
        "secret_found",
        "transform",
        "a secret could not be redacted",
    )
    assert calls == ["refuse"]


def test_normalize_all_splits_events_and_dead_letters_keeping_order() -> None:
    records = [record(GOOD, offset=0), record(b"x", offset=1), record(GOOD.replace(b"200", b"201"), offset=2)]
    events, dead = Normalizer().normalize_all(records)
    assert [e.record.offset for e in events] == [0, 2]
    assert [d.record.offset for d in dead] == [1]


def test_dead_letter_json_carries_reason_provenance_and_raw_bytes() -> None:
    rec = Record("api_access", b"not json", "api-access", 2, 41, key=b"k")
    letter = DeadLetter(rec, "invalid_json", "not valid JSON: ...")
    body = orjson.loads(letter.to_json())
    assert body == {
        "reason": "invalid_json",
        "error": "not valid JSON: ...",
        "stage": "parse",
        "source": "api_access",
        "topic": "api-access",
        "partition": 2,
        "offset": 41,
        "raw_base64": base64.b64encode(b"not json").decode(),
        "raw_text": "not json",
    }


@given(st.binary(max_size=200))
def test_dead_letter_raw_bytes_round_trip(raw: bytes) -> None:
    body = orjson.loads(DeadLetter(Record("api_access", raw), "invalid_json", "x").to_json())
    assert base64.b64decode(body["raw_base64"]) == raw
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    assert body["raw_text"] == text


def test_dead_letter_raw_text_is_none_for_non_utf8() -> None:
    body = orjson.loads(DeadLetter(Record("api_access", b"\xff\xfe\x00"), "invalid_json", "x").to_json())
    assert body["raw_text"] is None
    assert base64.b64decode(body["raw_base64"]) == b"\xff\xfe\x00"
