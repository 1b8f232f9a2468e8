"""Prometheus metrics of the ingest stage, one bundle created with an injected registry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class IngestMetrics:
    """Counters and histograms of the ingest stage. Labels never hold users, IPs or paths."""

    received: Counter
    indexed: Counter
    dead_letters: Counter
    bulk_seconds: Histogram
    batch_seconds: Histogram
    normalize_seconds: Histogram
    consumer_lag: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IngestMetrics:
        return cls(
            received=Counter(
                "logwarden_events_received", "Raw records read from a source", ["source"], registry=registry
            ),
            indexed=Counter(
                "logwarden_events_indexed",
                "Documents acknowledged by the event store",
                ["source"],
                registry=registry,
            ),
            dead_letters=Counter(
                "logwarden_dead_letters",
                "Records sent to the dead letters",
                ["source", "reason"],
                registry=registry,
            ),
            bulk_seconds=Histogram(
                "logwarden_sink_flush_seconds", "Time to flush one batch to the event store", registry=registry
            ),
            batch_seconds=Histogram(
                "logwarden_batch_seconds", "Time to process one batch end to end", registry=registry
            ),
            normalize_seconds=Histogram(
                "logwarden_normalize_seconds",
                "Time to parse, enrich and protect one batch",
                registry=registry,
            ),
            consumer_lag=Gauge(
                "logwarden_consumer_lag",
                "Records in a partition not consumed yet (end offset - position), for the partitions assigned",
                ["topic", "partition"],
                registry=registry,
            ),
        )

    def init_sources(self, sources: Iterable[str]) -> None:
        """Create the per-source series at 0, so a source that never sends is visible (and alertable)."""
        for source in sources:
            self.received.labels(source)
            self.indexed.labels(source)
