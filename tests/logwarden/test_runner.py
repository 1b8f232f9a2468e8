"""The stage loop: commit only after the stores acknowledged, retry while they are down, count everything.

The embedded stores are real (DuckDB file, JSON-lines file); failures are injected by subclasses that raise
SinkError a given number of times before doing the real work.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from alerting.dispatch import AlertDispatcher
from alerting.metrics import AlertMetrics
from alerting.sinks.duckdb_store import DuckDBAlertSink
from detectors.detection import Detection
from detectors.sigma.engine import RuleEngine
from detectors.sigma.loader import load_rules
from ingest.errors import SinkError
from ingest.metrics import IngestMetrics
from ingest.pipeline import Normalizer
from ingest.records import DeadLetter, NormalizedEvent, Record
from ingest.sinks.dead_letters import FileDeadLetterSink
from ingest.sinks.duckdb_store import DuckDBEventSink, connect, rows
from ingest.sources.memory import IterableSource
from logwarden.runner import Pipeline, RunStats

RULES = Path(__file__).resolve().parents[2] / "rules"


def api(i: int, *, user: str = "user_1", status: int = 200, path: str = "/v1/models") -> bytes:
    return orjson.dumps(
        {
            "timestamp": f"2026-11-02T08:{i // 60:02d}:{i % 60:02d}.000Z",
            "request_id": f"req_{i}",
            "method": "POST" if path.startswith("/v1/auth") else "GET",
            "path": path,
            "status": status,
            "user_id": user,
        }
    )


def records(values: Iterable[bytes]) -> list[Record]:
    return [Record("api_access", v, "api-access", 0, i) for i, v in enumerate(values)]


class TracingSource(IterableSource):
    """The in-process source, noting pause/resume/keepalive/commit in a shared log."""

    def __init__(self, items: Iterable[Record], log: list[str]) -> None:
        super().__init__(items)
        self.log = log
        self.commits: list[list[int]] = []

    def pause(self) -> None:
        self.log.append("pause")
        super().pause()

    def resume(self) -> None:
        self.log.append("resume")
        super().resume()

    def keepalive(self) -> None:
        self.log.append("keepalive")

    def commit(self, batch: Sequence[Record]) -> None:
        self.log.append("commit")
        self.commits.append([r.offset for r in batch])
        super().commit(batch)


class FlakyEventSink(DuckDBEventSink):
    """The DuckDB store, down for the first ``failures`` flushes."""

    def __init__(self, conn: Any, log: list[str], failures: int = 0) -> None:
        super().__init__(conn)
        self.log = log
        self.failures = failures

    def flush(self) -> list[DeadLetter]:
        if self.failures:
            self.failures -= 1
            self.log.append("events.flush.failed")
            raise SinkError("store down")
        result = super().flush()
        self.log.append("events.flush.ok")
        return result


class FlakyDeadLetterSink(FileDeadLetterSink):
    def __init__(self, path: Path, log: list[str], failures: int = 0) -> None:
        super().__init__(path)
        self.log = log
        self.failures = failures

    def flush(self) -> None:
        if self.failures:
            self.failures -= 1
            self.log.append("dead_letters.flush.failed")
            raise SinkError("dead-letter topic down")
        super().flush()
        self.log.append("dead_letters.flush.ok")


class RejectingEventSink:
    """A store that rejects documents of user ``rejected`` for good (like an Elasticsearch mapping error)."""

    def __init__(self) -> None:
        self.buffer: list[NormalizedEvent] = []
        self.stored: dict[str, dict[str, Any]] = {}

    def add(self, event: NormalizedEvent) -> None:
        self.buffer.append(event)

    def flush(self) -> list[DeadLetter]:
        rejected = []
        for event in self.buffer:
            if event.doc.get("user", {}).get("id") == "rejected":
                rejected.append(DeadLetter(event.record, "index_rejected", "mapping error", stage="sink"))
            else:
                self.stored[event.doc_id] = event.doc
        self.buffer = []
        return rejected

    def close(self) -> None:
        pass


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        items: list[Record],
        *,
        event_failures: int = 0,
        dl_failures: int = 0,
        batch_size: int = 1000,
    ) -> None:
        self.log: list[str] = []
        self.sleeps: list[float] = []
        self.conn = connect(tmp_path / "store" / "logwarden.duckdb")
        self.registry = CollectorRegistry()
        self.source = TracingSource(items, self.log)
        self.events = FlakyEventSink(self.conn, self.log, event_failures)
        self.dead_letter_path = tmp_path / "store" / "dead-letters.jsonl"
        self.dead_letters = FlakyDeadLetterSink(self.dead_letter_path, self.log, dl_failures)
        self.pipeline = Pipeline(
            source=self.source,
            normalizer=Normalizer(),
            events=self.events,
            dead_letters=self.dead_letters,
            engine=RuleEngine(load_rules([RULES])),
            alerts=AlertDispatcher([DuckDBAlertSink(self.conn)], AlertMetrics.create(self.registry)),
            metrics=IngestMetrics.create(self.registry),
            batch_size=batch_size,
            poll_timeout_s=0.0,
            sleep=self.sleeps.append,
        )

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def stored_events(self) -> int:
        return int(rows(self.conn, "SELECT count(*) FROM events")[0][0])

    def dead_letter_lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.dead_letter_path.read_bytes().splitlines()]


@pytest.fixture
def mixed() -> list[Record]:
    """25 good events (10 of them failed logins of one user) and 2 broken records."""
    values = [api(i) for i in range(15)]
    values += [api(20 + i, user="victim", status=401, path="/v1/auth/login") for i in range(10)]
    values.insert(5, b"not json")
    values.insert(17, b'{"timestamp": "2026-11-02T08:00:00Z", "method": "GET"}')
    return records(values)


def test_run_until_exhausted_with_stats_metrics_and_stores(tmp_path: Path, mixed: list[Record]) -> None:
    h = Harness(tmp_path, mixed, batch_size=10)
    seen: list[int] = []
    stats = h.pipeline.run(on_batch=lambda s: seen.append(s.records))
    assert h.source.exhausted
    assert (stats.records, stats.events, stats.dead_letters, stats.batches) == (27, 25, 2, 3)
    assert stats.alerts == 1
    assert dict(stats.alerts_by_rule) == {"api_login_brute_force": 1}
    assert seen == [10, 20, 27]
    assert h.source.committed_offset == 26
    assert h.source.commits == [list(range(0, 10)), list(range(10, 20)), list(range(20, 27))]
    assert h.stored_events() == 25
    assert sorted(d["reason"] for d in h.dead_letter_lines()) == ["invalid_json", "missing_field"]
    assert h.metric("logwarden_events_received_total", source="api_access") == 27
    assert h.metric("logwarden_events_indexed_total", source="api_access") == 25
    assert h.metric("logwarden_dead_letters_total", source="api_access", reason="invalid_json") == 1
    assert h.metric("logwarden_dead_letters_total", source="api_access", reason="missing_field") == 1
    assert h.metric("logwarden_alerts_total", rule_id="7d1e9b35-6c2a-4e8f-b0d4-3a9c1f5e2b68", severity="high") == 1
    assert h.metric("logwarden_batch_seconds_count") == 3
    assert h.metric("logwarden_sink_flush_seconds_count") == 3
    assert rows(h.conn, "SELECT rule_name, event_count FROM alerts") == [("api_login_brute_force", 10)]
    assert "pause" not in h.log
    h.pipeline.close()


def test_offsets_committed_only_after_the_event_store_recovered(tmp_path: Path, mixed: list[Record]) -> None:
    h = Harness(tmp_path, mixed, event_failures=2)
    stats = h.pipeline.run()
    assert h.log == [
        "events.flush.failed",
        "pause",
        "keepalive",
        "events.flush.failed",
        "keepalive",
        "events.flush.ok",
        "dead_letters.flush.ok",
        "resume",  # consumption resumes once the whole batch (events and dead letters) is stored
        "commit",
    ]
    assert h.sleeps == [0.5, 1.0]  # exponential backoff
    assert h.source.commits == [list(range(27))]  # once, the whole batch
    assert (stats.records, stats.events, stats.dead_letters) == (27, 25, 2)
    assert h.stored_events() == 25  # nothing lost
    assert len(h.dead_letter_lines()) == 2
    assert stats.alerts == 1
    h.pipeline.close()


def test_offsets_committed_only_after_the_dead_letters_are_stored(tmp_path: Path, mixed: list[Record]) -> None:
    h = Harness(tmp_path, mixed, dl_failures=2)
    h.pipeline.run()
    assert h.log.index("commit") > h.log.index("dead_letters.flush.ok")
    assert h.log.count("dead_letters.flush.failed") == 2
    assert h.log.count("pause") == h.log.count("resume") == 1
    assert h.log.count("commit") == 1
    assert sorted(d["offset"] for d in h.dead_letter_lines()) == [5, 17]  # written once each
    h.pipeline.close()


def test_backoff_is_capped(tmp_path: Path, mixed: list[Record]) -> None:
    h = Harness(tmp_path, mixed, event_failures=8)
    h.pipeline.max_backoff_s = 4.0
    h.pipeline.run()
    assert h.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert h.log.count("commit") == 1
    h.pipeline.close()


def test_stop_requested_during_an_outage_does_not_commit(tmp_path: Path, mixed: list[Record]) -> None:
    h = Harness(tmp_path, mixed, event_failures=100)
    with pytest.raises(SinkError):
        h.pipeline.run(should_stop=lambda: len(h.sleeps) >= 2)
    assert "commit" not in h.log
    assert h.source.committed_offset == -1
    h.pipeline.close()


def test_store_rejections_go_to_the_dead_letters(tmp_path: Path) -> None:
    items = records([api(0), api(1, user="rejected"), b"{", api(2)])
    h = Harness(tmp_path, items)
    store = RejectingEventSink()
    h.pipeline.events = store
    stats = h.pipeline.run()
    assert (stats.events, stats.dead_letters) == (2, 2)
    letters = {d["offset"]: d for d in h.dead_letter_lines()}
    assert set(letters) == {1, 2}
    assert (letters[1]["reason"], letters[1]["stage"]) == ("index_rejected", "sink")
    assert orjson.loads(letters[1]["raw_text"])["user_id"] == "rejected"
    assert letters[2]["reason"] == "invalid_json"
    assert len(store.stored) == 2
    assert h.metric("logwarden_events_indexed_total", source="api_access") == 2
    assert h.metric("logwarden_dead_letters_total", source="api_access", reason="index_rejected") == 1
    assert h.metric("logwarden_dead_letters_total", source="api_access", reason="invalid_json") == 1
    assert h.source.commits == [[0, 1, 2, 3]]
    h.pipeline.close()


def test_run_stops_after_the_idle_time(tmp_path: Path) -> None:
    h = Harness(tmp_path, records([api(0)]))
    h.source.pause()  # a live source with nothing to deliver: polls return nothing, never exhausted
    started = time.monotonic()
    stats = h.pipeline.run(until_idle_s=0.05)
    assert time.monotonic() - started < 5
    assert stats == RunStats()
    assert not h.source.exhausted
    h.pipeline.close()


def test_run_stops_when_asked(tmp_path: Path, mixed: list[Record]) -> None:
    h = Harness(tmp_path, mixed, batch_size=10)
    stats = h.pipeline.run(should_stop=lambda: h.pipeline.stats.batches >= 1)
    assert stats.batches == 1
    assert h.source.commits == [list(range(10))]
    h.pipeline.close()


def test_step_on_an_idle_source_does_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path, [])
    assert h.pipeline.step() == 0
    assert h.log == []
    assert h.metric("logwarden_batch_seconds_count") == 0
    h.pipeline.close()


def test_pipelined_run_stores_commits_in_order_and_recovers(tmp_path: Path, mixed: list[Record]) -> None:
    records = [replace(r, offset=i) for i, r in enumerate(mixed * 3)]
    h = Harness(tmp_path, records, event_failures=1, batch_size=10)
    h.pipeline.pipelined = True
    stats = h.pipeline.run()
    assert [o for c in h.source.commits for o in c] == list(range(len(records)))  # every batch, in order
    assert stats.records == len(records)
    assert h.log.count("pause") == h.log.count("resume") == 1  # the failed write was retried, once paused
    assert h.stored_events() == 25  # the same 25 documents three times over: ids are deterministic
    h.pipeline.close()


class RecordingModels:
    """A stand-in ML engine: one detection per batch naming the stored events it saw, one more at the end."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []
        self.flushed = self.closed = False

    def process(self, events: Sequence[NormalizedEvent]) -> list[Detection]:
        self.seen.append([e.doc_id for e in events])
        return [self._detection(f"batch-{len(self.seen)}", [e.doc_id for e in events])]

    def flush(self) -> list[Detection]:
        self.flushed = True
        return [self._detection("end", [])]

    def close(self) -> None:
        self.closed = True

    @staticmethod
    def _detection(name: str, ids: list[str]) -> Detection:
        return Detection(id=name, rule_id="ml.fake", rule_name="ml_fake", title=name, description=name, level="low",
                         group={"user.id": name}, first_seen="2026-11-02T08:00:00.000Z",
                         last_seen="2026-11-02T08:01:00.000Z", event_count=len(ids), event_ids=ids)  # fmt: skip


def test_models_score_the_stored_events_after_the_rules_and_flush_at_the_end(
    tmp_path: Path, mixed: list[Record]
) -> None:
    h = Harness(tmp_path, mixed, batch_size=10)
    models = RecordingModels()
    h.pipeline.models = models
    stats = h.pipeline.run()
    assert [len(ids) for ids in models.seen] == [9, 9, 7], "every stored event, never a dead letter"
    assert models.flushed
    assert stats.alerts_by_rule == {"api_login_brute_force": 1, "ml_fake": 4}
    assert sorted(r[0] for r in rows(h.conn, "SELECT rule_name FROM alerts")) == ["api_login_brute_force"] + 4 * [
        "ml_fake"
    ]
    h.pipeline.close()
    assert models.closed
