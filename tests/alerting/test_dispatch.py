"""AlertDispatcher: new vs updated alerts, metrics, failing sinks, re-sends and resolution, restarts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from alerting.alert import Alert
from alerting.catalog import RuleCatalog, RuleInfo
from alerting.dispatch import AlertDispatcher, AlertPolicy, utc_now
from alerting.errors import AlertingError, DeliveryError
from alerting.metrics import AlertMetrics
from alerting.outbox import SqliteOutbox
from detectors.detection import Detection
from detectors.sigma.watermark import event_time

T0 = event_time("2026-11-02T08:01:00.000Z")  # the wall clock of these tests starts at the detections' last event


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

    def __init__(self, name: str, *, expires: bool = False) -> None:
        self.name = name
        self.expires = expires
        self.batches: list[list[Alert]] = []
        self.closed = False

    def emit(self, alerts: Sequence[Alert]) -> None:
        self.batches.append(list(alerts))

    def close(self) -> None:
        self.closed = True

    @property
    def received(self) -> list[tuple[str, int, str | None]]:
        return [(a.id, a.detection.event_count, a.resolved_at) for b in self.batches for a in b]


class FailingSink(RecordingSink):
    """Raises DeliveryError for the first ``failures`` calls (an Alertmanager that is down)."""

    def __init__(self, name: str, failures: int, *, expires: bool = False) -> None:
        super().__init__(name, expires=expires)
        self.failures = failures
        self.attempts = 0

    def emit(self, alerts: Sequence[Alert]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise DeliveryError(f"{self.name} is down")
        super().emit(alerts)


class Wall:
    """A settable wall clock (epoch seconds)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def clock() -> Any:
    ticks = count()
    return lambda: f"2026-11-02T09:00:{next(ticks):02d}.000Z"


def setup(*sinks: RecordingSink, **options: Any) -> tuple[AlertDispatcher, CollectorRegistry]:
    registry = CollectorRegistry()
    return AlertDispatcher(list(sinks), AlertMetrics.create(registry), clock=clock(), **options), registry


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
    assert registry.get_sample_value("logwarden_alerts_open") == 2.0
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


def test_alerts_carry_the_catalog_facts_of_their_rule() -> None:
    sink = RecordingSink("console")
    catalog = RuleCatalog({"rule-1": RuleInfo(version="v7", team="iam")}, runbook_base="https://rb.example/x.md")
    dispatcher, _ = setup(sink, catalog=catalog)
    dispatcher.dispatch([detection("d1"), detection("d2", rule_id="other", rule_name="Other Rule")])
    first, second = sink.batches[0]
    assert first.info == RuleInfo("v7", "https://rb.example/x.md#api_login_brute_force", "iam", 0.0)
    assert second.info.runbook_url == "https://rb.example/x.md#other-rule" and second.info.team == "security"


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
    dispatcher.dispatch([detection("d1", 12)])  # third attempt works: d2, then d1's latest state (in order)
    assert dispatcher.pending == {"alertmanager": 0, "elasticsearch": 0}
    assert flaky.received == [("d2", 10, None), ("d1", 12, None)]
    assert [[(a.id, a.detection.event_count) for a in b] for b in steady.batches] == [
        [("d1", 10)],
        [("d1", 11), ("d2", 10)],
        [("d1", 12)],
    ]
    assert registry.get_sample_value("logwarden_alert_delivery_failures_total", {"sink": "alertmanager"}) == 2.0
    assert registry.get_sample_value("logwarden_alert_delivery_failures_total", {"sink": "elasticsearch"}) == 0.0
    assert registry.get_sample_value("logwarden_alert_deliveries_total", {"sink": "alertmanager"}) == 2.0
    assert alerts_total(registry) == 2.0  # d1 and d2, each counted once

    dispatcher.dispatch([])
    assert len(flaky.batches) == 1  # delivered once, not again


def test_queued_alerts_go_out_on_an_empty_dispatch_or_a_tick() -> None:
    flaky = FailingSink("alertmanager", failures=1)
    dispatcher, _ = setup(flaky)
    dispatcher.dispatch([detection("d1")])
    dispatcher.tick()
    assert [[a.id for a in b] for b in flaky.batches] == [["d1"]]


def test_open_alerts_are_resent_to_expiring_sinks_every_third_of_the_ttl() -> None:
    wall = Wall()
    am, es = RecordingSink("alertmanager", expires=True), RecordingSink("elasticsearch")
    dispatcher, registry = setup(am, es, wall=wall, policy=AlertPolicy(ttl_s=300, quiet_s=10_000))
    dispatcher.dispatch([detection("d1")])
    wall.now += 99
    dispatcher.tick()
    assert len(am.batches) == 1  # not due yet
    wall.now += 2
    dispatcher.tick()
    assert am.received == [("d1", 10, None), ("d1", 10, None)]
    wall.now += 50
    dispatcher.tick()
    assert len(am.batches) == 2  # the re-send clock restarted at the re-send
    wall.now += 51
    dispatcher.tick()
    assert len(am.batches) == 3
    assert len(es.batches) == 1  # the alerts index does not expire: no re-sends there
    assert registry.get_sample_value("logwarden_alert_resends_total") == 2.0


def test_an_update_restarts_the_resend_clock() -> None:
    wall = Wall()
    am = RecordingSink("alertmanager", expires=True)
    dispatcher, _ = setup(am, wall=wall, policy=AlertPolicy(ttl_s=300, quiet_s=10_000))
    dispatcher.dispatch([detection("d1")])
    wall.now += 90
    dispatcher.dispatch([detection("d1", 11)])
    wall.now += 20  # 110 s after the first send, 20 s after the update
    dispatcher.tick()
    assert am.received == [("d1", 10, None), ("d1", 11, None)]


def test_an_alert_resolves_once_its_window_closed_and_it_stayed_quiet() -> None:
    wall = Wall()
    am, es = RecordingSink("alertmanager", expires=True), RecordingSink("elasticsearch")
    catalog = RuleCatalog({"rule-1": RuleInfo(window_s=300)})
    watermark = [float("-inf")]
    policy = AlertPolicy(ttl_s=3000, quiet_s=60, lateness_s=600)
    dispatcher, registry = setup(am, es, wall=wall, policy=policy, catalog=catalog, watermark=lambda: watermark[0])
    dispatcher.dispatch([detection("d1")])  # window: first_seen 08:00 + 300 s = 08:05 in event time
    wall.now += 120  # quiet for 2 min, but the window is open (08:05) and the lateness (10 min) not over
    dispatcher.tick()
    assert dispatcher.open_count == 1
    watermark[0] = event_time("2026-11-02T08:05:00.000Z")  # the events show the window closed
    wall.now += 1
    dispatcher.tick()
    assert dispatcher.open_count == 0
    resolved_at = am.batches[-1][0].resolved_at
    assert resolved_at is not None and event_time(resolved_at) == pytest.approx(wall.now, abs=0.001)
    assert am.received[-1] == ("d1", 10, resolved_at)
    assert es.received[-1] == ("d1", 10, resolved_at)  # the alerts index shows it resolved too
    assert registry.get_sample_value("logwarden_alerts_resolved_total", {"rule_id": "rule-1"}) == 1.0
    assert registry.get_sample_value("logwarden_alerts_open") == 0.0
    wall.now += 1000
    dispatcher.tick()
    assert len(am.batches) == 2  # resolved alerts are neither re-sent nor resolved again


def test_without_events_the_wall_clock_closes_the_window_after_the_lateness() -> None:
    wall = Wall()
    am = RecordingSink("alertmanager", expires=True)
    catalog = RuleCatalog({"rule-1": RuleInfo(window_s=300)})
    dispatcher, _ = setup(am, wall=wall, catalog=catalog, policy=AlertPolicy(ttl_s=3000, quiet_s=60, lateness_s=600))
    dispatcher.dispatch([detection("d1")])
    wall.now = event_time("2026-11-02T08:05:00.000Z") + 599  # window end + lateness not reached yet
    dispatcher.tick()
    assert dispatcher.open_count == 1
    wall.now += 2
    dispatcher.tick()
    assert dispatcher.open_count == 0


def test_a_replayed_old_alert_resolves_after_the_quiet_period() -> None:
    wall = Wall(T0 + 86_400)  # the events are a day old
    am = RecordingSink("alertmanager", expires=True)
    dispatcher, _ = setup(am, wall=wall, policy=AlertPolicy(quiet_s=30))
    dispatcher.dispatch([detection("d1")])
    wall.now += 29
    dispatcher.tick()
    assert dispatcher.open_count == 1
    wall.now += 2
    dispatcher.tick()
    assert dispatcher.open_count == 0


def test_an_update_after_resolution_reopens_the_alert() -> None:
    wall = Wall(T0 + 86_400)
    am = RecordingSink("alertmanager", expires=True)
    dispatcher, registry = setup(am, wall=wall, policy=AlertPolicy(quiet_s=30))
    dispatcher.dispatch([detection("d1")])
    wall.now += 31
    dispatcher.tick()
    assert dispatcher.dispatch([detection("d1", 15)]) == []  # an update, not a new alert
    assert dispatcher.open_count == 1
    assert am.received[-1] == ("d1", 15, None)
    assert alerts_total(registry) == 1.0


def test_open_alerts_beyond_the_limit_are_forgotten_oldest_first() -> None:
    wall = Wall()
    am = RecordingSink("alertmanager", expires=True)
    dispatcher, _ = setup(am, wall=wall, policy=AlertPolicy(max_open=2, ttl_s=300, quiet_s=10_000))
    dispatcher.dispatch([detection("d1"), detection("d2")])
    dispatcher.dispatch([detection("d1", 11), detection("d3")])
    assert dispatcher.open_count == 2
    wall.now += 101
    dispatcher.tick()  # d2 was the least recently updated: no longer tracked, so not re-sent
    assert sorted(a.id for a in am.batches[-1]) == ["d1", "d3"]


def test_close_closes_every_sink() -> None:
    sinks = [RecordingSink("a"), RecordingSink("b")]
    dispatcher, _ = setup(*sinks)
    dispatcher.close()
    assert all(s.closed for s in sinks)


def test_delivery_error_belongs_to_the_alerting_root() -> None:
    assert issubclass(DeliveryError, AlertingError)


def test_utc_now_format() -> None:
    stamp = utc_now()
    assert len(stamp) == 24 and stamp.endswith("Z") and stamp[10] == "T" and stamp[19] == "."


# ------------------------------------------------------------------ durable outbox, restarts, threads


def test_a_restart_delivers_what_waited_on_disk_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    down = FailingSink("alertmanager", failures=10**6, expires=True)
    first, _ = setup(down, outbox=SqliteOutbox(path))
    first.dispatch([detection("d1", 10)])
    first.dispatch([detection("d2", 10), detection("d1", 11)])
    first.close()  # (a crash would leave the same rows: every write was committed)
    assert down.batches == []

    up = RecordingSink("alertmanager", expires=True)
    second, _ = setup(up, outbox=SqliteOutbox(path))
    second.dispatch([])
    assert up.received == [("d2", 10, None), ("d1", 11, None)]
    assert second.open_count == 2  # and they go on being re-sent / resolved
    second.dispatch([detection("d1", 12)])
    assert up.batches[-1][0].created == "2026-11-02T09:00:00.000Z"  # the creation time survived
    second.close()

    third, _ = setup(RecordingSink("alertmanager", expires=True), outbox=SqliteOutbox(path))
    assert third.pending == {"alertmanager": 0}  # nothing delivered twice
    third.close()


def test_background_threads_deliver_without_blocking_dispatch(tmp_path: Path) -> None:
    slow_down = FailingSink("alertmanager", failures=3, expires=True)
    steady = RecordingSink("elasticsearch")
    dispatcher, registry = setup(slow_down, steady, outbox=SqliteOutbox(tmp_path / "o.sqlite"), background=True)
    started = time.monotonic()
    dispatcher.dispatch([detection("d1")])
    assert time.monotonic() - started < 0.5  # queued, not delivered inline
    deadline = time.monotonic() + 15
    while (not slow_down.batches or not steady.batches) and time.monotonic() < deadline:
        time.sleep(0.05)
    dispatcher.close()
    assert slow_down.received == [("d1", 10, None)] and steady.received == [("d1", 10, None)]
    assert registry.get_sample_value("logwarden_alert_delivery_failures_total", {"sink": "alertmanager"}) == 3.0
    assert registry.get_sample_value("logwarden_alert_end_to_end_seconds_count", {"sink": "alertmanager"}) == 1.0
