"""Kafka consumer source: manual commits of exactly what was stored, pause/resume on back-pressure."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from ingest.errors import IngestError
from ingest.metrics import IngestMetrics
from ingest.records import Record

log = logging.getLogger(__name__)


class KafkaSource:
    """Consumes ``topics`` (topic -> source name) in consumer group ``group_id``.

    Auto-commit is off: :meth:`commit` commits, per partition, the offset after the highest
    record of the batch, and the runner calls it only after the event store acknowledged.

    With ``metrics``, the consumer lag of each assigned partition (end offset minus position) is
    refreshed every ``lag_interval_s`` from :meth:`poll` and :meth:`keepalive` (one ListOffsets request
    for all partitions; while consumption is paused the lag keeps growing, as it should).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Mapping[str, str],
        group_id: str,
        *,
        metrics: IngestMetrics | None = None,
        lag_interval_s: float = 10.0,
        **config: Any,
    ) -> None:
        self._topics = dict(topics)
        self._metrics = metrics
        self._lag_interval_s = lag_interval_s
        self._next_lag = 0.0
        self._lag_reported: set[TopicPartition] = set()
        try:
            self._consumer = KafkaConsumer(
                *self._topics,
                bootstrap_servers=bootstrap_servers.split(","),
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=2000,
                **config,
            )
        except KafkaError as exc:
            raise IngestError(f"cannot reach Kafka at {bootstrap_servers}: {exc}") from exc

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        records: list[Record] = []
        for tp, messages in batches.items():
            source = self._topics[tp.topic]
            records.extend(Record(source, m.value or b"", m.topic, m.partition, m.offset, m.key) for m in messages)
        self._report_lag()
        return records

    def _report_lag(self) -> None:
        """Set ``logwarden_consumer_lag`` for the assigned partitions, at most every ``lag_interval_s``."""
        if self._metrics is None or time.monotonic() < self._next_lag:
            return
        self._next_lag = time.monotonic() + self._lag_interval_s
        assigned = set(self._consumer.assignment())
        gauge = self._metrics.consumer_lag
        for tp in self._lag_reported - assigned:  # moved to another worker: not ours to report
            gauge.remove(tp.topic, str(tp.partition))
        self._lag_reported &= assigned
        if not assigned:
            return
        try:
            ends = self._consumer.end_offsets(sorted(assigned), timeout_ms=2000)
            positions = {tp: self._consumer.position(tp, timeout_ms=1000) for tp in ends}
        except KafkaError as exc:  # Kafka slow or away: keep the last values, try again next interval
            log.debug("consumer lag not refreshed: %s", exc)
            return
        for tp, end in ends.items():
            position = positions[tp]
            if position is None:  # no position yet (just assigned): reported next time
                continue
            gauge.labels(tp.topic, str(tp.partition)).set(max(0, end - position))
            self._lag_reported.add(tp)

    def commit(self, records: Sequence[Record]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            if tp not in offsets or offsets[tp].offset <= r.offset:
                offsets[tp] = OffsetAndMetadata(r.offset + 1, "", -1)
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets)
        except CommitFailedError as exc:
            # The group rebalanced: another member owns these partitions now and will re-read from the
            # last commit. Documents are idempotent, so that replay creates no duplicates.
            log.warning("offset commit refused after a rebalance (batch will be replayed): %s", exc)

    def pause(self) -> None:
        self._consumer.pause(*self._consumer.assignment())

    def resume(self) -> None:
        self._consumer.resume(*self._consumer.paused())

    def keepalive(self) -> None:
        """Poll with every partition paused, so heartbeats and rebalances go on while nothing is taken.

        Partitions assigned by a rebalance during the pause are paused too; should any record slip
        through, its partition is rewound so it is delivered again after :meth:`resume`.
        """
        self.pause()
        batches = self._consumer.poll(timeout_ms=100)
        for tp, messages in batches.items():
            if messages:
                self._consumer.seek(tp, min(m.offset for m in messages))
        self.pause()
        self._report_lag()

    @property
    def ready(self) -> bool:
        return bool(self._consumer.assignment())

    @property
    def exhausted(self) -> bool:
        return False

    def close(self) -> None:
        self._consumer.close(autocommit=False)
