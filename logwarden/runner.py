"""The stage loop shared by ``logwarden run`` and ``logwarden demo``.

One batch: poll -> normalize -> store events and dead letters -> detect -> alert -> commit.
Offsets are committed only after the event store and the dead-letter sink acknowledged the
batch and its alerts are in the outbox; while a store is down, the source is paused and the same
batch is retried with backoff. Every turn (idle ones and retries too) lets the alert dispatcher
re-send and resolve open alerts; delivery itself runs on the dispatcher's threads.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from alerting.dispatch import AlertDispatcher
from alerting.metrics import RuleMetrics
from detectors.detection import Detection
from detectors.sigma.engine import RuleEngine
from ingest.errors import SinkError
from ingest.metrics import IngestMetrics
from ingest.pipeline import Normalizer
from ingest.records import DeadLetter, NormalizedEvent, Record
from ingest.sinks.base import DeadLetterSink, EventSink
from ingest.sources.base import Source

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class StreamDetector(Protocol):
    """A detector over batches of stored events (the ML engine): detections per batch, the rest at the end."""

    def process(self, events: Sequence[NormalizedEvent]) -> list[Detection]: ...

    def flush(self) -> list[Detection]: ...

    def close(self) -> None: ...


@dataclass
class RunStats:
    """What a run did so far."""

    records: int = 0
    events: int = 0
    dead_letters: int = 0
    alerts: int = 0
    batches: int = 0
    alerts_by_rule: Counter[str] = field(default_factory=Counter)


@dataclass
class _Batch:
    """One polled batch on its way through the stages, with how far its write got."""

    records: list[Record]
    events: list[NormalizedEvent]
    dead: list[DeadLetter]
    started: float
    rejected: list[DeadLetter] = field(default_factory=list)
    added: bool = False
    flushed: bool = False


@dataclass
class Pipeline:
    """The wired stages. Build one with :mod:`logwarden.wiring`."""

    source: Source
    normalizer: Normalizer
    events: EventSink
    dead_letters: DeadLetterSink
    engine: RuleEngine
    alerts: AlertDispatcher
    metrics: IngestMetrics
    batch_size: int = 1000
    poll_timeout_s: float = 1.0
    max_backoff_s: float = 30.0
    pipelined: bool = False  # write batch N while preparing N+1 (needs thread-safe sinks: Elasticsearch, Kafka)
    stats: RunStats = field(default_factory=RunStats)
    sleep: Callable[[float], None] = time.sleep
    rule_metrics: RuleMetrics | None = None
    models: StreamDetector | None = None  # ML models, after the rules, on the same stored events

    def step(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Process one batch; returns the number of records it held (0 when the source was idle)."""
        records = self.source.poll(self.batch_size, self.poll_timeout_s)
        self.alerts.tick()
        if not records:
            return 0
        self._store_now(self._prepare(records), should_stop)
        return len(records)

    def _store_now(self, batch: _Batch, should_stop: Callable[[], bool]) -> None:
        self._retry(lambda: self._write(batch), should_stop)
        self._finish(batch)

    def _prepare(self, records: list[Record]) -> _Batch:
        for source, n in Counter(r.source for r in records).items():
            self.metrics.received.labels(source).inc(n)
        started = time.perf_counter()
        events, dead = self.normalizer.normalize_all(records)
        self.metrics.normalize_seconds.observe(time.perf_counter() - started)
        return _Batch(records, events, dead, started)

    def _write(self, batch: _Batch) -> None:
        """One attempt to persist the batch: events, then every dead letter (store rejections included).

        Raises :class:`SinkError`; calling it again resumes where it failed (the sinks keep what they
        did not persist), so a retry neither loses nor re-sends anything.
        """
        if not batch.added:
            for event in batch.events:
                self.events.add(event)
            batch.added = True
        if not batch.flushed:
            with self.metrics.bulk_seconds.time():
                batch.rejected = self.events.flush()
            batch.flushed = True
            for letter in [*batch.dead, *batch.rejected]:
                self.dead_letters.add(letter)
        self.dead_letters.flush()

    def _finish(self, batch: _Batch) -> None:
        """After the batch is stored: metrics, detection, alerts, then the offset commit."""
        rejected_records = {id(r.record) for r in batch.rejected}
        stored = [e for e in batch.events if id(e.record) not in rejected_records]
        all_dead = [*batch.dead, *batch.rejected]
        for source, n in Counter(e.record.source for e in stored).items():
            self.metrics.indexed.labels(source).inc(n)
        for (source, reason), n in Counter((d.record.source, d.reason) for d in all_dead).items():
            self.metrics.dead_letters.labels(source, reason).inc(n)
        started = time.perf_counter()
        detections = self.engine.process(stored)
        if self.rule_metrics is not None:
            self.rule_metrics.evaluation_seconds.observe(time.perf_counter() - started)
        if self.models is not None:
            detections += self.models.process(stored)
        self._raise_alerts(detections)  # in the outbox (durably) before the commit
        self.source.commit(batch.records)

        self.stats.batches += 1
        self.stats.records += len(batch.records)
        self.stats.events += len(stored)
        self.stats.dead_letters += len(all_dead)
        self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)

    def _retry(self, flush: Callable[[], _T], should_stop: Callable[[], bool], failure: SinkError | None = None) -> _T:
        """Call ``flush`` until it succeeds, pausing the source and backing off in between.

        ``failure`` is an attempt that already failed elsewhere (the store thread): back off first.
        """
        delay = 0.5
        paused = False
        while True:
            if failure is None:
                try:
                    result = flush()
                except SinkError as exc:
                    failure = exc
                else:
                    if paused:
                        self.source.resume()
                    return result
            if should_stop():
                raise failure
            log.warning("store unavailable, consumption paused, retry in %.1fs: %s", delay, failure)
            failure = None
            if not paused:
                self.source.pause()
                paused = True
            self.sleep(delay)
            self.source.keepalive()
            self.alerts.tick()  # open alerts stay alive in Alertmanager during a store outage
            delay = min(delay * 2, self.max_backoff_s)

    def run(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        *,
        until_idle_s: float | None = None,
        on_batch: Callable[[RunStats], None] | None = None,
    ) -> RunStats:
        """Loop until ``should_stop()``, the source is exhausted, or it stayed idle ``until_idle_s``.

        With ``pipelined``, batch N is written by a store thread while batch N+1 is polled and
        normalized; batch N is still detected, alerted and committed before N+1 is written.
        """
        idle_since = time.monotonic()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="store") as store:
            in_flight: tuple[_Batch, Future[None]] | None = None
            while not should_stop():
                records = self.source.poll(self.batch_size, self.poll_timeout_s)
                self.alerts.tick()
                batch = self._prepare(records) if records else None
                if batch is not None and not self.pipelined:
                    self._store_now(batch, should_stop)
                    batch = None
                if in_flight is not None:
                    self._complete(*in_flight, should_stop)
                    in_flight = None
                if batch is not None:
                    in_flight = (batch, store.submit(self._write, batch))
                if records or not self.source.ready:  # idle time counts only once partitions are assigned
                    idle_since = time.monotonic()
                    if records and on_batch:
                        on_batch(self.stats)
                elif self.source.exhausted or (
                    until_idle_s is not None and time.monotonic() - idle_since >= until_idle_s
                ):
                    break
            if in_flight is not None:
                self._complete(*in_flight, should_stop)
        if self.source.exhausted:
            self._end_of_input()
        return self.stats

    def _end_of_input(self) -> None:
        """A finite source is done (the demo): the models score their last open windows.

        The rule engine is not flushed: its flush fires every pending absence (``A`` not followed by ``B``),
        and input that merely ended does not show that ``B`` never came."""
        if self.models is not None:
            self._raise_alerts(self.models.flush())

    def _raise_alerts(self, detections: list[Detection]) -> None:
        new_alerts = self.alerts.dispatch(detections)
        self.stats.alerts += len(new_alerts)
        self.stats.alerts_by_rule.update(a.detection.rule_name for a in new_alerts)

    def _complete(self, batch: _Batch, write: Future[None], should_stop: Callable[[], bool]) -> None:
        """Wait for a batch's write; if it failed, retry here (source paused), then finish the batch."""
        try:
            write.result()
        except SinkError as exc:
            self._retry(lambda: self._write(batch), should_stop, failure=exc)
        self._finish(batch)

    def close(self) -> None:
        """Close every stage, the source first (no new records), the sinks last."""
        self.source.close()
        if self.models is not None:
            self.models.close()
        self.alerts.close()
        self.dead_letters.close()
        self.events.close()
