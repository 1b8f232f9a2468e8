"""SinkDelivery and DeliveryThread: order, failures, refusals, latency, backoff and stopping."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from alerting.alert import Alert, alert_to_json
from alerting.delivery import DeliveryThread, SinkDelivery
from alerting.errors import AlertRejected, DeliveryError
from alerting.metrics import AlertMetrics
from alerting.outbox import MemoryOutbox, Put
from detectors.detection import Detection
from detectors.sigma.watermark import event_time

LAST = "2026-11-02T08:01:00.000Z"


def payload(alert_id: str) -> bytes:
    det = Detection(alert_id, "r1", "rule", "t", "", "high", {}, "2026-11-02T08:00:00.000Z", LAST, 1)
    return alert_to_json(Alert(det, "2026-11-02T08:01:01.000Z"))


class Sink:
    """Records batches; ``script`` says what each call does: "ok", "down", "refuse-all" or an id to refuse."""

    name = "am"
    expires = True

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.got: list[list[str]] = []

    def emit(self, alerts: Sequence[Alert]) -> None:
        action = self.script.pop(0) if self.script else "ok"
        batch = [a.id for a in alerts]
        if action == "down":
            raise DeliveryError("down")
        if action == "refuse-all":
            raise AlertRejected("400 bad payload")
        if action in batch:
            self.got.append([i for i in batch if i != action])
            raise AlertRejected("one refused", [action])
        self.got.append(batch)

    def close(self) -> None:
        """Nothing to release."""


def setup(sink: Sink, *alert_ids: str, kind: str = "new") -> tuple[SinkDelivery, MemoryOutbox, CollectorRegistry]:
    outbox = MemoryOutbox()
    outbox.write([Put("am", i, kind, payload(i)) for i in alert_ids], 0.0)
    registry = CollectorRegistry()
    wall = event_time(LAST) + 1.5
    return SinkDelivery(sink, outbox, AlertMetrics.create(registry), wall=lambda: wall), outbox, registry


def sample(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name, {"sink": "am"})


def test_delivers_in_order_acks_and_observes_the_end_to_end_latency() -> None:
    sink = Sink()
    delivery, outbox, registry = setup(sink, "a", "b", "c")
    assert delivery.deliver_once() == 3
    assert delivery.deliver_once() == 0
    assert sink.got == [["a", "b", "c"]] and outbox.depth() == {}
    assert sample(registry, "logwarden_alert_deliveries_total") == 3.0
    assert sample(registry, "logwarden_alert_end_to_end_seconds_count") == 3.0
    assert sample(registry, "logwarden_alert_end_to_end_seconds_sum") == 4.5  # 1.5 s after the last event, each


def test_resends_and_resolutions_are_not_latency_samples() -> None:
    delivery, _, registry = setup(Sink(), "a", kind="resend")
    delivery.deliver_once()
    assert sample(registry, "logwarden_alert_end_to_end_seconds_count") == 0.0


def test_a_failure_keeps_the_batch_in_place_and_counts() -> None:
    sink = Sink("down", "down")
    delivery, outbox, registry = setup(sink, "a", "b")
    for _ in range(2):
        with pytest.raises(DeliveryError):
            delivery.deliver_once()
    assert outbox.depth()["am"][0] == 2
    assert delivery.drain() is True
    assert sink.got == [["a", "b"]]
    assert sample(registry, "logwarden_alert_delivery_failures_total") == 2.0


def test_alerts_a_sink_refuses_for_good_are_dropped_and_the_rest_delivered() -> None:
    sink = Sink("b")
    delivery, outbox, registry = setup(sink, "a", "b", "c")
    assert delivery.deliver_once() == 3
    assert sink.got == [["a", "c"]] and outbox.depth() == {}
    assert sample(registry, "logwarden_alerts_rejected_total") == 1.0
    assert sample(registry, "logwarden_alert_deliveries_total") == 2.0


def test_a_batch_refused_as_a_whole_is_retried_one_by_one_to_find_the_culprit() -> None:
    sink = Sink("refuse-all", "ok", "refuse-all", "ok")
    delivery, outbox, registry = setup(sink, "a", "b", "c")
    assert delivery.drain() is False  # the whole batch was refused
    assert delivery.drain() is True
    assert sink.got == [["a"], ["c"]]  # b alone was refused: dropped; a and c delivered
    assert sample(registry, "logwarden_alerts_rejected_total") == 1.0
    assert outbox.depth() == {}


def test_a_full_outbox_drops_the_oldest_and_counts_them() -> None:
    sink = Sink()
    outbox = MemoryOutbox()
    outbox.write([Put("am", str(i), "new", payload(str(i))) for i in range(5)], 0.0)
    registry = CollectorRegistry()
    delivery = SinkDelivery(sink, outbox, AlertMetrics.create(registry), max_depth=3)
    delivery.deliver_once()
    assert sink.got == [["2", "3", "4"]]
    assert sample(registry, "logwarden_alert_outbox_dropped_total") == 2.0


def test_the_thread_backs_off_while_the_sink_is_down_and_recovers() -> None:
    sink = Sink("down", "down")
    delivery, outbox, _ = setup(sink, "a")
    thread = DeliveryThread(delivery, idle_s=0.05, max_backoff_s=0.2)
    thread.start()
    deadline = time.monotonic() + 10
    while not sink.got and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sink.got == [["a"]] and not thread.failing
    outbox.write([Put("am", "b", "new", payload("b"))], 1.0)
    thread.wake()
    while len(sink.got) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    thread.stop(drain_s=1.0)
    thread.join(5)
    assert sink.got == [["a"], ["b"]] and not thread.is_alive()


def test_stopping_while_the_sink_is_down_leaves_the_rows_for_the_next_start() -> None:
    sink = Sink(*["down"] * 100)
    delivery, outbox, _ = setup(sink, "a")
    thread = DeliveryThread(delivery, idle_s=0.05, max_backoff_s=0.1)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    thread.stop(drain_s=5.0)
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 2  # no waiting out the drain time
    assert outbox.depth()["am"][0] == 1
