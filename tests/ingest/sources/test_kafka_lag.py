"""KafkaSource's consumer-lag gauge, with a stand-in consumer (the real one is covered in tests/integration)."""

from __future__ import annotations

from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry

import ingest.sources.kafka as kafka_source
from ingest.metrics import IngestMetrics
from ingest.sources.kafka import KafkaSource

TP0, TP1 = TopicPartition("api-access", 0), TopicPartition("api-access", 1)


class FakeConsumer:
    def __init__(self, *topics: str, **config: Any) -> None:
        self.assigned = {TP0, TP1}
        self.ends = {TP0: 100, TP1: 50}
        self.positions: dict[TopicPartition, int | None] = {TP0: 40, TP1: 50}
        self.end_calls = 0
        self.fail = False

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, Any]:
        return {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def end_offsets(self, partitions: list[TopicPartition], timeout_ms: int | None = None) -> dict[Any, int]:
        self.end_calls += 1
        if self.fail:
            raise KafkaTimeoutError("slow")
        return {tp: self.ends[tp] for tp in partitions}

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        return self.positions[tp]

    def pause(self, *partitions: TopicPartition) -> None:
        """Nothing to do."""


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> tuple[KafkaSource, FakeConsumer, CollectorRegistry]:
    monkeypatch.setattr(kafka_source, "KafkaConsumer", FakeConsumer)
    registry = CollectorRegistry()
    src = KafkaSource("k:9092", {"api-access": "api_access"}, "g", metrics=IngestMetrics.create(registry))
    consumer: Any = src._consumer
    return src, consumer, registry


def lag(registry: CollectorRegistry, partition: int) -> float | None:
    return registry.get_sample_value("logwarden_consumer_lag", {"topic": "api-access", "partition": str(partition)})


def test_lag_per_partition_is_end_offset_minus_position(source: Any) -> None:
    src, consumer, registry = source
    src.poll(10, 0.0)
    assert (lag(registry, 0), lag(registry, 1)) == (60.0, 0.0)
    assert consumer.end_calls == 1


def test_lag_is_refreshed_at_most_once_per_interval_and_during_pauses(source: Any) -> None:
    src, consumer, registry = source
    src.poll(10, 0.0)
    consumer.ends[TP0] = 500
    src.poll(10, 0.0)
    assert consumer.end_calls == 1 and lag(registry, 0) == 60.0  # cheap: not on every poll
    src._next_lag = 0.0  # the interval is over
    src.keepalive()  # consumption paused (a store is down): the lag keeps being reported
    assert lag(registry, 0) == 460.0


def test_partitions_moved_away_stop_being_reported(source: Any) -> None:
    src, consumer, registry = source
    src.poll(10, 0.0)
    consumer.assigned = {TP0}
    src._next_lag = 0.0
    src.poll(10, 0.0)
    assert lag(registry, 0) == 60.0 and lag(registry, 1) is None


def test_a_slow_kafka_or_an_unknown_position_keeps_the_last_values(source: Any) -> None:
    src, consumer, registry = source
    consumer.positions[TP1] = None
    src.poll(10, 0.0)
    assert lag(registry, 0) == 60.0 and lag(registry, 1) is None
    consumer.fail = True
    consumer.ends[TP0] = 900
    src._next_lag = 0.0
    src.poll(10, 0.0)
    assert lag(registry, 0) == 60.0
