"""AlertDispatcher: new vs updated alerts, metrics, and what happens when a sink fails."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count
from typing import Any

from prometheus_client import CollectorRegistry

from alerting.alert import Alert
from alerting.dispatch import AlertDispatcher, utc_now
from alerting.errors import AlertingError, DeliveryError
from alerting.metrics import AlertMetrics
from detectors.detection import Detection


def detection(det_id: str = "d1", count_: int = 10, **changes: Any) -> Detection:
    fields: dict[str, Any] = {
        "id": det_id,
        "rule_id": "rule-1",
        "rule_name": "api_login_brute_force",
        "title": "Brute force",
        "description": "",
        "level": "high",
        "group": {"user.id": "u1"},
        "first_seen": "2026-11-02T08:00:00.000Z",
        "last_seen": "2026-11-02T08:01:00.000Z",
        "event_count": count_,
    }
    fields.update(changes)
    return Detection(**fields)


class RecordingSink:
    """An alert sink that records what it receives."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.batches: list[list[Alert]] = []
        self.closed = False

    def emit(self, alerts: Sequence[Alert]) -> None:
        self.batches.append(list(alerts))

    def close(self) -> None:
        self.closed = True


class FailingSink(RecordingSink):
    """Raises DeliveryError for the first ``failures`` calls (an Alertmanager that is down)."""

    def __init__(self, name: str, failures: int) -> None:
        super().__init__(name)
        self.failures = failures
        self.attempts = 0

    def emit(self, alerts: Sequence[Alert]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise DeliveryError(f"{self.name} is down")
        super().emit(alerts)


def clock() -> Any:
    ticks = count()
    return lambda: f"2026-11-02T09:00:{next(ticks):02d}.000Z"


def setup(*sinks: RecordingSink) -> tuple[AlertDispatcher, CollectorRegistry]:
    registry = CollectorRegistry()
    return AlertDispatcher(list(sinks), AlertMetrics.create(registry), clock=clock()), registry


def alerts_total(registry: CollectorRegistry, rule_id: str = "rule-1", severity: str = "high") -> float | None:
    return registry.get_sample_value("logwarden_alerts_total", {"rule_id": rule_id, "severity": severity})


def test_new_alerts_and_updates_are_counted_apart() -> None:
    sink = RecordingSink("console")
    dispatcher, registry = setup(sink)
    new = dispatcher.dispatch([detection("d1", 10)])
    assert [a.id for a in new] == ["d1"]
    assert dispatcher.dispatch([detection("d1", 12)]) == []  # same id: an update
    assert dispatcher.dispatch([detection("d2", 10, rule_id="rule-2", level="low")])[0].id == "d2"
    assert alerts_total(registry) == 1.0
    assert alerts_total(registry, "rule-2", "low") == 1.0
    assert registry.get_sample_value("logwarden_alert_updates_total", {"rule_id": "rule-1"}) == 1.0
    assert dispatcher.raised == 2
    assert [[(a.id, a.detection.event_count) for a in b] for b in sink.batches] == [
        [("d1", 10)],
        [("d1", 12)],
        [("d2", 10)],
    ]


def test_update_keeps_the_creation_time() -> None:
    sink = RecordingSink("console")
    dispatcher, _ = setup(sink)
    dispatcher.dispatch([detection("d1", 10)])
    dispatcher.dispatch([detection("d1", 11)])
    assert [b[0].created for b in sink.batches] == ["2026-11-02T09:00:00.000Z"] * 2


def test_on_new_is_called_for_new_alerts_only() -> None:
    seen: list[str] = []
    dispatcher = AlertDispatcher([], AlertMetrics.create(CollectorRegistry()), on_new=lambda a: seen.append(a.id))
    dispatcher.dispatch([detection("d1"), detection("d2")])
    dispatcher.dispatch([detection("d1", 11)])
    assert seen == ["d1", "d2"]


def test_failed_sink_keeps_alerts_and_delivers_latest_state_once() -> None:
    flaky = FailingSink("alertmanager", failures=2)
    steady = RecordingSink("elasticsearch")
    dispatcher, registry = setup(flaky, steady)

    dispatcher.dispatch([detection("d1", 10)])
    assert dispatcher.pending == {"alertmanager": 1, "elasticsearch": 0}
    dispatcher.dispatch([detection("d1", 11), detection("d2", 10)])
    assert dispatcher.pending == {"alertmanager": 2, "elasticsearch": 0}
    assert flaky.batches == []
    dispatcher.dispatch([detection("d1", 12)])  # the sink is back

    (delivered,) = flaky.batches
    assert sorted((a.id, a.detection.event_count) for a in delivered) == [("d1", 12), ("d2", 10)]
    assert dispatcher.pending == {"alertmanager": 0, "elasticsearch": 0}
    # the other sink was never held up
    assert [[(a.id, a.detection.event_count) for a in b] for b in steady.batches] == [
        [("d1", 10)],
        [("d1", 11), ("d2", 10)],
        [("d1", 12)],
    ]
    assert registry.get_sample_value("logwarden_alert_delivery_failures_total", {"sink": "alertmanager"}) == 2.0
    assert registry.get_sample_value("logwarden_alert_delivery_failures_total", {"sink": "elasticsearch"}) is None
    assert alerts_total(registry) == 2.0  # d1 and d2, each counted once

    dispatcher.dispatch([])
    assert len(flaky.batches) == 1  # delivered once, not again


def test_queued_alerts_go_out_on_an_empty_dispatch() -> None:
    flaky = FailingSink("alertmanager", failures=1)
    dispatcher, _ = setup(flaky)
    dispatcher.dispatch([detection("d1")])
    dispatcher.dispatch([])
    assert [[a.id for a in b] for b in flaky.batches] == [["d1"]]


def test_delivery_error_belongs_to_the_alerting_root() -> None:
    assert issubclass(DeliveryError, AlertingError)


def test_close_closes_every_sink() -> None:
    sinks = [RecordingSink("a"), RecordingSink("b")]
    dispatcher, _ = setup(*sinks)
    dispatcher.close()
    assert all(s.closed for s in sinks)


def test_utc_now_format() -> None:
    stamp = utc_now()
    assert len(stamp) == 24 and stamp.endswith("Z") and stamp[10] == "T" and stamp[19] == "."
