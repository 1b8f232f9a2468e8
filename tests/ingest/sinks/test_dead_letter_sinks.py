"""Dead-letter sinks: the JSON-lines file of the embedded pipeline, and the .dlq topic naming."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson

from ingest.records import DeadLetter, Record
from ingest.sinks.dead_letters import FileDeadLetterSink, dead_letter_topic


def letter(i: int, raw: bytes = b"broken") -> DeadLetter:
    return DeadLetter(Record("api_access", raw, "api-access", 1, i), "invalid_json", f"error {i}")


def test_dead_letter_topic() -> None:
    assert dead_letter_topic("api-access") == "api-access.dlq"
    assert dead_letter_topic("") == "logwarden.dlq"
    assert dead_letter_topic("", fallback="demo") == "demo.dlq"


def test_file_sink_writes_json_lines_on_flush(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dead-letters.jsonl"
    sink = FileDeadLetterSink(path)
    sink.add(letter(1))
    sink.add(letter(2, b"\xff\x00"))
    assert path.read_bytes() == b""  # nothing written before flush
    sink.flush()
    lines = path.read_bytes().splitlines()
    sink.close()
    assert [orjson.loads(line)["offset"] for line in lines] == [1, 2]
    first, second = (orjson.loads(line) for line in lines)
    assert first["reason"] == "invalid_json"
    assert first["error"] == "error 1"
    assert first["raw_text"] == "broken"
    assert second["raw_text"] is None
    assert base64.b64decode(second["raw_base64"]) == b"\xff\x00"


def test_file_sink_appends_and_close_flushes(tmp_path: Path) -> None:
    path = tmp_path / "dead-letters.jsonl"
    first = FileDeadLetterSink(path)
    first.add(letter(1))
    first.close()
    second = FileDeadLetterSink(path)
    second.add(letter(2))
    second.flush()
    second.flush()  # nothing pending: nothing written twice
    second.close()
    assert [orjson.loads(line)["offset"] for line in path.read_bytes().splitlines()] == [1, 2]
