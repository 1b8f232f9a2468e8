"""The outbox contract, for the durable SQLite outbox and the in-memory one alike."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerting.errors import OutboxError
from alerting.outbox import MemoryOutbox, OpenAlert, Outbox, Put, SqliteOutbox


@pytest.fixture(params=["sqlite", "memory"])
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outbox]:
    box: Outbox = SqliteOutbox(tmp_path / "outbox.sqlite") if request.param == "sqlite" else MemoryOutbox()
    yield box
    box.close()


def ids(box: Outbox, sink: str = "am") -> list[tuple[str, str, bytes]]:
    return [(p.alert_id, p.kind, p.payload) for p in box.pending(sink, 100)]


def test_rows_come_out_per_sink_in_the_order_they_went_in(outbox: Outbox) -> None:
    outbox.write([Put("am", "a", "new", b"1"), Put("es", "a", "new", b"1"), Put("am", "b", "new", b"2")], 10.0)
    outbox.write([Put("am", "c", "new", b"3")], 11.0)
    assert ids(outbox) == [("a", "new", b"1"), ("b", "new", b"2"), ("c", "new", b"3")]
    assert ids(outbox, "es") == [("a", "new", b"1")]
    assert [p.enqueued for p in outbox.pending("am", 100)] == [10.0, 10.0, 11.0]
    assert len(outbox.pending("am", 2)) == 2
    assert outbox.depth() == {"am": (3, 10.0), "es": (1, 10.0)}


def test_a_newer_state_replaces_the_waiting_one_and_moves_to_the_end(outbox: Outbox) -> None:
    outbox.write([Put("am", "a", "new", b"a1"), Put("am", "b", "new", b"b1")], 1.0)
    outbox.write([Put("am", "a", "update", b"a2")], 2.0)
    assert ids(outbox) == [("b", "new", b"b1"), ("a", "update", b"a2")]


def test_a_resend_never_displaces_a_waiting_state(outbox: Outbox) -> None:
    outbox.write([Put("am", "a", "update", b"a2")], 1.0)
    outbox.write([Put("am", "a", "resend", b"a1"), Put("am", "b", "resend", b"b1")], 2.0)
    assert ids(outbox) == [("a", "update", b"a2"), ("b", "resend", b"b1")]


def test_ack_removes_what_was_delivered_and_keeps_a_state_written_meanwhile(outbox: Outbox) -> None:
    outbox.write([Put("am", "a", "new", b"a1"), Put("am", "b", "new", b"b1")], 1.0)
    in_flight = outbox.pending("am", 100)
    outbox.write([Put("am", "a", "update", b"a2")], 2.0)  # while the batch is being delivered
    outbox.ack("am", [p.seq for p in in_flight])
    assert ids(outbox) == [("a", "update", b"a2")]
    outbox.ack("es", [p.seq for p in outbox.pending("am", 100)])  # another sink's ack touches nothing here
    assert len(ids(outbox)) == 1


def test_trim_drops_the_oldest_beyond_the_limit(outbox: Outbox) -> None:
    outbox.write([Put("am", str(i), "new", b"x") for i in range(5)], 1.0)
    assert outbox.trim("am", 10) == 0
    assert outbox.trim("am", 2) == 3
    assert [a for a, _, _ in ids(outbox)] == ["3", "4"]
    assert outbox.depth()["am"][0] == 2


def test_open_alerts_are_recorded_and_forgotten_with_the_writes(outbox: Outbox) -> None:
    a, b = OpenAlert("a", b"pa", 1.0, 1.0, 5.0), OpenAlert("b", b"pb", 2.0, 2.0, 6.0)
    outbox.write([], 2.0, opened=[a, b])
    outbox.write([], 3.0, opened=[OpenAlert("a", b"pa", 1.0, 3.0, 5.0)], closed=["b"])
    assert outbox.open_alerts() == [OpenAlert("a", b"pa", 1.0, 3.0, 5.0)]
    assert outbox.depth() == {}


def test_the_sqlite_outbox_survives_a_reopen_and_is_durable(tmp_path: Path) -> None:
    path = tmp_path / "store" / "outbox.sqlite"  # the directory is created
    first = SqliteOutbox(path)
    first.write([Put("am", "a", "new", b"1")], 1.0, opened=[OpenAlert("a", b"1", 1.0, 1.0, 2.0)])
    first.close()
    second = SqliteOutbox(path)
    assert ids(second) == [("a", "new", b"1")] and len(second.open_alerts()) == 1
    second.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_sequence_numbers_are_never_reused_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    first = SqliteOutbox(path)
    first.write([Put("am", "a", "new", b"1")], 1.0)
    seq = first.pending("am", 1)[0].seq
    first.ack("am", [seq])
    first.close()
    second = SqliteOutbox(path)
    second.write([Put("am", "b", "new", b"2")], 2.0)
    assert second.pending("am", 1)[0].seq > seq
    second.close()


def test_an_unusable_path_is_an_outbox_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutboxError, match="cannot open the alert outbox"):
        SqliteOutbox(blocker / "outbox.sqlite")
