"""Fan detections out to every alert sink; a failing sink keeps its alerts queued, the others go on."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from alerting.alert import Alert
from alerting.errors import DeliveryError
from alerting.metrics import AlertMetrics
from alerting.sinks import AlertSink
from detectors.detection import Detection

log = logging.getLogger(__name__)

MAX_TRACKED = 100_000  # alert ids remembered to tell new alerts from updates
MAX_QUEUED = 10_000  # alerts held per failing sink before the oldest are dropped (and counted)


def utc_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class AlertDispatcher:
    """Turns detections into alerts, counts them, and delivers them to each sink.

    New alert ids increment ``logwarden_alerts_total``; later states of the same id are updates.
    When a sink fails, its alerts wait in a per-sink queue (latest state per id) and are retried
    on the next call. The queue lives in memory: the durable outbox is still to come.
    """

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        metrics: AlertMetrics,
        *,
        clock: Callable[[], str] = utc_now,
        on_new: Callable[[Alert], None] | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self._metrics = metrics
        self._clock = clock
        self._on_new = on_new
        self._created: OrderedDict[str, str] = OrderedDict()
        self._queues: dict[str, OrderedDict[str, Alert]] = {s.name: OrderedDict() for s in self.sinks}
        self.raised = 0

    def dispatch(self, detections: Sequence[Detection]) -> list[Alert]:
        """Deliver the alerts of ``detections`` (plus anything queued); returns the new alerts."""
        new: list[Alert] = []
        alerts: list[Alert] = []
        for det in detections:
            created = self._created.get(det.id)
            if created is None:
                created = self._clock()
                self._created[det.id] = created
                if len(self._created) > MAX_TRACKED:
                    self._created.popitem(last=False)
                alert = Alert(det, created)
                new.append(alert)
                self.raised += 1
                self._metrics.alerts.labels(det.rule_id, alert.severity).inc()
                if self._on_new:
                    self._on_new(alert)
            else:
                alert = Alert(det, created)
                self._metrics.updates.labels(det.rule_id).inc()
            alerts.append(alert)
        for sink in self.sinks:
            self._deliver(sink, alerts)
        return new

    def _deliver(self, sink: AlertSink, alerts: Sequence[Alert]) -> None:
        queue = self._queues[sink.name]
        for alert in alerts:
            queue.pop(alert.id, None)
            queue[alert.id] = alert
        while len(queue) > MAX_QUEUED:
            queue.popitem(last=False)
            self._metrics.delivery_failures.labels(sink.name).inc()
        if not queue:
            return
        try:
            sink.emit(list(queue.values()))
        except DeliveryError as exc:
            self._metrics.delivery_failures.labels(sink.name).inc()
            log.warning("alert delivery to %s failed, %d alerts queued: %s", sink.name, len(queue), exc)
            return
        queue.clear()

    @property
    def pending(self) -> dict[str, int]:
        """Alerts waiting per sink."""
        return {name: len(q) for name, q in self._queues.items()}

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
