"""The stage loop shared by ``logwarden run`` and ``logwarden demo``.

One batch: poll -> normalize -> store events and dead letters -> detect -> alert -> commit.
Offsets are committed only after the event store and the dead-letter sink acknowledged the
batch; while either is down, the source is paused and the same batch is retried with backoff.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from alerting.dispatch import AlertDispatcher
from detectors.sigma.engine import RuleEngine
from ingest.errors import SinkError
from ingest.metrics import IngestMetrics
from ingest.pipeline import Normalizer
from ingest.records import DeadLetter, NormalizedEvent
from ingest.sinks.base import DeadLetterSink, EventSink
from ingest.sources.base import Source

log = logging.getLogger(__name__)
_T = TypeVar("_T")


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
    stats: RunStats = field(default_factory=RunStats)
    sleep: Callable[[float], None] = time.sleep

    def step(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Process one batch; returns the number of records it held (0 when the source was idle)."""
        records = self.source.poll(self.batch_size, self.poll_timeout_s)
        if not records:
            return 0
        started = time.perf_counter()
        for source, n in Counter(r.source for r in records).items():
            self.metrics.received.labels(source).inc(n)
        events, dead = self.normalizer.normalize_all(records)
        stored, dead = self._store(events, dead, should_stop)
        detections = self.engine.process(stored)
        new_alerts = self.alerts.dispatch(detections)
        self.source.commit(records)

        self.stats.batches += 1
        self.stats.records += len(records)
        self.stats.events += len(stored)
        self.stats.dead_letters += len(dead)
        self.stats.alerts += len(new_alerts)
        self.stats.alerts_by_rule.update(a.detection.rule_name for a in new_alerts)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return len(records)

    def _store(
        self, events: list[NormalizedEvent], dead: list[DeadLetter], should_stop: Callable[[], bool]
    ) -> tuple[list[NormalizedEvent], list[DeadLetter]]:
        """Persist the batch: events first, then every dead letter (including store rejections)."""
        for event in events:
            self.events.add(event)
        with self.metrics.bulk_seconds.time():
            rejected = self._retry(self.events.flush, should_stop)
        all_dead = [*dead, *rejected]
        for letter in all_dead:
            self.dead_letters.add(letter)
        self._retry(self.dead_letters.flush, should_stop)

        rejected_records = {id(r.record) for r in rejected}
        stored = [e for e in events if id(e.record) not in rejected_records]
        for source, n in Counter(e.record.source for e in stored).items():
            self.metrics.indexed.labels(source).inc(n)
        for (source, reason), n in Counter((d.record.source, d.reason) for d in all_dead).items():
            self.metrics.dead_letters.labels(source, reason).inc(n)
        return stored, all_dead

    def _retry(self, flush: Callable[[], _T], should_stop: Callable[[], bool]) -> _T:
        """Call ``flush`` until it succeeds, pausing the source and backing off in between."""
        delay = 0.5
        paused = False
        while True:
            try:
                result = flush()
            except SinkError as exc:
                if should_stop():
                    raise
                log.warning("store unavailable, consumption paused, retry in %.1fs: %s", delay, exc)
                if not paused:
                    self.source.pause()
                    paused = True
                self.sleep(delay)
                self.source.keepalive()
                delay = min(delay * 2, self.max_backoff_s)
                continue
            if paused:
                self.source.resume()
            return result

    def run(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        *,
        until_idle_s: float | None = None,
        on_batch: Callable[[RunStats], None] | None = None,
    ) -> RunStats:
        """Loop until ``should_stop()``, the source is exhausted, or it stayed idle ``until_idle_s``."""
        idle_since = time.monotonic()
        while not should_stop():
            n = self.step(should_stop)
            if n or not self.source.ready:  # idle time counts only once partitions are assigned
                idle_since = time.monotonic()
                if n and on_batch:
                    on_batch(self.stats)
            elif self.source.exhausted or (until_idle_s is not None and time.monotonic() - idle_since >= until_idle_s):
                break
        return self.stats

    def close(self) -> None:
        """Close every stage, the source first (no new records), the sinks last."""
        self.source.close()
        self.alerts.close()
        self.dead_letters.close()
        self.events.close()
