"""The embedded event store on a real DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingest.errors import SinkError
from ingest.pipeline import Normalizer
from ingest.records import NormalizedEvent, Record
from ingest.sinks.duckdb_store import DuckDBEventSink, connect, rows


def events(n: int, *, start: int = 0) -> list[NormalizedEvent]:
    out = []
    for i in range(start, start + n):
        raw = (
            b'{"timestamp": "2026-11-02T09:%02d:00.250+01:00", "method": "GET", "path": "/v1/models",'
            b' "status": 200, "user_id": "user_%d"}' % (i % 60, i)
        )
        result = Normalizer().normalize(Record("api_access", raw, "api-access", 0, i))
        assert isinstance(result, NormalizedEvent)
        out.append(result)
    return out


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(tmp_path / "store" / "logwarden.duckdb")
    yield connection
    connection.close()


def store(sink: DuckDBEventSink, batch: list[NormalizedEvent]) -> None:
    for event in batch:
        sink.add(event)
    assert sink.flush() == []


def test_connect_creates_the_file_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.duckdb"
    conn = connect(path)
    try:
        tables = {r[0] for r in rows(conn, "SELECT table_name FROM information_schema.tables")}
    finally:
        conn.close()
    assert path.is_file()
    assert {"events", "alerts"} <= tables


def test_flush_writes_every_event(conn: duckdb.DuckDBPyConnection) -> None:
    sink = DuckDBEventSink(conn)
    batch = events(5)
    store(sink, batch)
    assert sink.count() == 5
    stored = dict(rows(conn, "SELECT id, doc->>'$.user.id' FROM events"))
    assert stored == {e.doc_id: e.doc["user"]["id"] for e in batch}
    assert rows(conn, "SELECT DISTINCT source FROM events") == [("api_access",)]


def test_empty_flush_is_a_no_op(conn: duckdb.DuckDBPyConnection) -> None:
    sink = DuckDBEventSink(conn)
    assert sink.flush() == []
    assert sink.count() == 0


def test_replay_does_not_duplicate(conn: duckdb.DuckDBPyConnection) -> None:
    sink = DuckDBEventSink(conn)
    batch = events(4)
    store(sink, batch)
    store(sink, batch)  # a replay after a crash before the commit
    store(sink, [*batch[:2], *batch[:2]])  # duplicates within one batch
    assert sink.count() == 4
    store(sink, events(2, start=4))
    assert sink.count() == 6


def test_replay_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "logwarden.duckdb"
    batch = events(3)
    first = connect(path)
    store(DuckDBEventSink(first), batch)
    first.close()
    second = connect(path)
    try:
        sink = DuckDBEventSink(second)
        store(sink, batch)
        assert sink.count() == 3
    finally:
        second.close()


def test_ts_is_stored_as_timestamptz(conn: duckdb.DuckDBPyConnection) -> None:
    sink = DuckDBEventSink(conn)
    (event,) = events(1, start=7)
    store(sink, [event])
    ((type_name, ts),) = rows(conn, "SELECT typeof(ts), ts FROM events")
    assert type_name == "TIMESTAMP WITH TIME ZONE"
    assert ts == datetime(2026, 11, 2, 8, 7, 0, 250_000, tzinfo=UTC)
    ((column_type,),) = rows(conn, "SELECT data_type FROM information_schema.columns WHERE column_name = 'ts'")
    assert column_type == "TIMESTAMP WITH TIME ZONE"


def test_failed_write_raises_sink_error_and_keeps_the_buffer(conn: duckdb.DuckDBPyConnection) -> None:
    sink = DuckDBEventSink(conn)
    good = events(2)
    broken = NormalizedEvent("bad-id", {"@timestamp": "not a time"}, Record("api_access", b"{}"))
    for event in [*good, broken]:
        sink.add(event)
    with pytest.raises(SinkError, match="embedded store write failed"):
        sink.flush()
    assert sink.count() == 0  # rolled back: all or nothing
    with pytest.raises(SinkError):
        sink.flush()  # the same batch is tried again, not dropped


def test_connect_failure_is_a_sink_error(tmp_path: Path) -> None:
    not_a_db = tmp_path / "x.duckdb"
    not_a_db.write_bytes(b"this is not a duckdb file" * 100)
    with pytest.raises(SinkError, match="cannot open the embedded store"):
        connect(not_a_db)
