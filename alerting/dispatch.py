"""Turn detections into alerts, queue every state in the outbox, re-send open alerts and resolve them.

The stage loop calls :meth:`AlertDispatcher.dispatch` with each batch's detections and
:meth:`AlertDispatcher.tick` on every turn (also while idle); neither waits for a sink: they write to
the outbox (fsynced when durable) and wake the delivery threads (:mod:`alerting.delivery`).

Lifecycle of an alert (all states go to every sink, in order, each sink at its own pace):

- **new**: the first detection with this id (``logwarden_alerts_total``); **update**: later states.
- **re-send**: sinks where alerts expire (Alertmanager: ``endsAt`` = send time + ``ttl_s``) get each
  open alert again every ``ttl_s / 3``, so it never expires while open, even if one re-send is lost.
- **resolve**: the alert is over when its detection can no longer change (the window closed: the
  engine's watermark, or the wall clock minus the allowed lateness, passed ``first_seen +`` the rule's
  window) **and** it had no update for ``quiet_s`` (wall clock). Its ``resolved_at`` goes to every sink
  (Alertmanager: ``endsAt`` in the past). A later update of the same id opens it again.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from alerting.alert import Alert, alert_from_json, alert_to_json
from alerting.catalog import RuleCatalog
from alerting.delivery import DeliveryThread, SinkDelivery
from alerting.metrics import AlertMetrics
from alerting.outbox import MemoryOutbox, OpenAlert, Outbox, Put
from alerting.sinks import AlertSink
from detectors.detection import Detection
from detectors.sigma.watermark import DEFAULT_LATENESS_S, event_time, iso

log = logging.getLogger(__name__)

MAX_TRACKED = 100_000  # alert ids remembered to tell new alerts from updates


def utc_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class AlertPolicy:
    """How long alerts live. ``ttl_s``: the ``endsAt`` horizon of open alerts in expiring sinks."""

    ttl_s: float = 300.0
    quiet_s: float = 300.0
    lateness_s: float = DEFAULT_LATENESS_S
    max_open: int = 10_000
    scan_every_s: float = 1.0

    @property
    def resend_s(self) -> float:
        return self.ttl_s / 3


class AlertDispatcher:
    """Counts alerts, queues their states for every sink, and keeps open alerts alive until they resolve.

    ``background``: one delivery thread per sink (``logwarden run``); otherwise sinks are called inline
    at the end of :meth:`dispatch` and :meth:`tick` (the embedded demo, tests).
    """

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        metrics: AlertMetrics,
        *,
        outbox: Outbox | None = None,
        catalog: RuleCatalog | None = None,
        policy: AlertPolicy | None = None,
        watermark: Callable[[], float] = lambda: float("-inf"),
        background: bool = False,
        clock: Callable[[], str] = utc_now,
        wall: Callable[[], float] = time.time,
        on_new: Callable[[Alert], None] | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.policy = policy or AlertPolicy()
        self.catalog = catalog or RuleCatalog()
        self._metrics = metrics
        self._outbox: Outbox = outbox if outbox is not None else MemoryOutbox()
        self._watermark = watermark
        self._clock = clock
        self._wall = wall
        self._on_new = on_new
        self._expiring = [s.name for s in self.sinks if s.expires]
        self._created: OrderedDict[str, str] = OrderedDict()
        self._open: OrderedDict[str, OpenAlert] = OrderedDict(
            (o.alert_id, o) for o in sorted(self._outbox.open_alerts(), key=lambda o: o.updated)
        )
        self._next_scan = 0.0
        self.raised = 0
        self._deliveries = [SinkDelivery(s, self._outbox, metrics, wall=wall) for s in self.sinks]
        self._threads = [DeliveryThread(d) for d in self._deliveries] if background else []
        for thread in self._threads:
            thread.start()
        metrics.open.set(len(self._open))
        if self._open:
            log.info("%d open alerts restored from the outbox", len(self._open))

    def dispatch(self, detections: Sequence[Detection]) -> list[Alert]:
        """Queue the alerts of ``detections`` for every sink; returns the new ones."""
        now = self._wall()
        new: list[Alert] = []
        puts: list[Put] = []
        opened: list[OpenAlert] = []
        for det in detections:
            alert, kind = self._alert(det)
            if kind == "new":
                new.append(alert)
            payload = alert_to_json(alert)
            puts += [Put(s.name, alert.id, kind, payload) for s in self.sinks]
            state = OpenAlert(alert.id, payload, now, now, _window_end(alert))
            self._open.pop(alert.id, None)
            self._open[alert.id] = state
            opened.append(state)
        closed = self._evict()
        self._outbox.write(puts, now, opened=opened, closed=closed)
        self._metrics.open.set(len(self._open))
        self._kick()
        return new

    def _alert(self, det: Detection) -> tuple[Alert, str]:
        state = self._open.get(det.id)
        created = alert_from_json(state.payload).created if state is not None else self._created.get(det.id)
        info = self.catalog.get(det.rule_id, det.rule_name)
        if created is not None:
            self._metrics.updates.labels(det.rule_id).inc()
            return Alert(det, created, info), "update"
        created = self._clock()
        self._created[det.id] = created
        if len(self._created) > MAX_TRACKED:
            self._created.popitem(last=False)
        alert = Alert(det, created, info)
        self.raised += 1
        self._metrics.alerts.labels(det.rule_id, alert.severity).inc()
        if self._on_new:
            self._on_new(alert)
        return alert, "new"

    def _evict(self) -> list[str]:
        """Forget the least recently updated open alerts beyond ``max_open`` (they expire in Alertmanager)."""
        evicted = []
        while len(self._open) > self.policy.max_open:
            alert_id, _ = self._open.popitem(last=False)
            evicted.append(alert_id)
        if evicted:
            log.warning("more than %d open alerts: %d oldest no longer re-sent", self.policy.max_open, len(evicted))
        return evicted

    def tick(self) -> None:
        """Re-send open alerts that are due and resolve those that are over (at most every ``scan_every_s``)."""
        now = self._wall()
        if now < self._next_scan:
            if not self._threads:
                self._kick()  # inline delivery: retry what a failing sink still holds
            return
        self._next_scan = now + self.policy.scan_every_s
        watermark = self._watermark()
        puts: list[Put] = []
        refreshed: list[OpenAlert] = []
        resolved: list[str] = []
        for state in self._open.values():
            if self._is_over(state, now, watermark):
                alert = replace(alert_from_json(state.payload), resolved_at=iso(now))
                payload = alert_to_json(alert)
                puts += [Put(s.name, alert.id, "resolve", payload) for s in self.sinks]
                resolved.append(alert.id)
                self._metrics.resolved.labels(alert.detection.rule_id).inc()
            elif self._expiring and now - state.sent >= self.policy.resend_s:
                puts += [Put(name, state.alert_id, "resend", state.payload) for name in self._expiring]
                refreshed.append(replace(state, sent=now))
        for alert_id in resolved:
            del self._open[alert_id]
        for state in refreshed:
            self._open[state.alert_id] = state
        if refreshed:
            self._metrics.resends.inc(len(refreshed))
        self._outbox.write(puts, now, opened=refreshed, closed=resolved)
        self._metrics.open.set(len(self._open))
        self._kick()

    def _is_over(self, state: OpenAlert, now: float, watermark: float) -> bool:
        if now - state.updated < self.policy.quiet_s:
            return False
        return watermark >= state.window_end or now >= state.window_end + self.policy.lateness_s

    def _kick(self) -> None:
        if self._threads:
            for thread in self._threads:
                thread.wake()
            return
        for delivery in self._deliveries:
            delivery.drain()

    @property
    def open_count(self) -> int:
        return len(self._open)

    @property
    def pending(self) -> dict[str, int]:
        """Alert states waiting per sink."""
        depth = self._outbox.depth()
        return {s.name: depth.get(s.name, (0, None))[0] for s in self.sinks}

    def close(self, drain_s: float = 5.0) -> None:
        """Stop delivering (after up to ``drain_s`` more while sinks work); what is left stays in the outbox."""
        for thread in self._threads:
            thread.stop(drain_s)
        for thread in self._threads:
            thread.join(drain_s + 35.0)  # a request in flight ends by its own timeout
        if not self._threads:
            self._kick()
        self._outbox.close()
        for sink in self.sinks:
            sink.close()


def _window_end(alert: Alert) -> float:
    """Event time after which the alert's detection can no longer change (its last event at the least)."""
    d = alert.detection
    try:
        first, last = event_time(d.first_seen), event_time(d.last_seen)
    except ValueError:
        return float("-inf")  # no usable event time: only the quiet period decides
    return max(last, first + alert.info.window_s)
