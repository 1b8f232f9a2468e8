"""Deliver one sink's outbox, oldest first, retrying with backoff; each sink on its own thread.

A batch is acknowledged (deleted from the outbox) only after the sink accepted it, so a crash in
between re-delivers it after the restart: harmless, because every sink is idempotent by alert id
(the alerts index overwrites document ``_id = alert id``; Alertmanager merges alerts with the same
labels, and ``alert_id`` is one of them). A failed batch is retried as it was, so nothing overtakes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from alerting.alert import Alert, alert_from_json
from alerting.errors import AlertRejected, DeliveryError
from alerting.metrics import AlertMetrics
from alerting.outbox import Outbox, Pending
from alerting.sinks import AlertSink
from detectors.sigma.watermark import event_time

log = logging.getLogger(__name__)

BATCH = 500  # alert states per request
MAX_DEPTH = 100_000  # alert states kept per sink; beyond, the oldest are dropped (and counted)


class SinkDelivery:
    """Moves one sink's outbox rows into the sink. :meth:`deliver_once` is one attempt."""

    def __init__(
        self,
        sink: AlertSink,
        outbox: Outbox,
        metrics: AlertMetrics,
        *,
        batch: int = BATCH,
        max_depth: int = MAX_DEPTH,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self._outbox = outbox
        self._metrics = metrics
        self._batch = batch
        self._max_depth = max_depth
        self._wall = wall
        self._one_by_one = 0  # after a batch was refused as a whole: deliver this many singly
        for family in (metrics.delivered, metrics.delivery_failures, metrics.rejected, metrics.dropped):
            family.labels(sink.name)  # every sink's series exists from the start (at 0)
        metrics.end_to_end.labels(sink.name)

    def deliver_once(self) -> int:
        """Deliver the oldest waiting states; returns how many left the outbox (0: nothing waits).

        Raises :class:`DeliveryError` when the sink failed (the rows stay, in order).
        """
        name = self.sink.name
        dropped = self._outbox.trim(name, self._max_depth)
        if dropped:
            self._metrics.dropped.labels(name).inc(dropped)
            log.error("alert outbox for %s is full: dropped the %d oldest states", name, dropped)
        rows = self._outbox.pending(name, 1 if self._one_by_one else self._batch)
        if not rows:
            return 0
        alerts = [alert_from_json(r.payload) for r in rows]
        try:
            self.sink.emit(alerts)
        except AlertRejected as exc:
            refused = self._refused(rows, exc)
            if refused is None:
                self._one_by_one = len(rows)  # find the culprit: the next attempts go one alert at a time
                raise
            self._metrics.rejected.labels(name).inc(len(refused))
            log.error("%s refused %d alerts for good, dropped: %s (ids %s)", name, len(refused), exc, refused[:5])
        except DeliveryError:
            self._metrics.delivery_failures.labels(name).inc()
            raise
        else:
            refused = []
        self._outbox.ack(name, [r.seq for r in rows])
        self._one_by_one = max(0, self._one_by_one - len(rows))
        self._observe([(r, a) for r, a in zip(rows, alerts, strict=True) if r.alert_id not in refused])
        return len(rows)

    def _refused(self, rows: Sequence[Pending], exc: AlertRejected) -> list[str] | None:
        """The alert ids to drop, or None to retry them one by one first."""
        if exc.alert_ids is not None:
            return exc.alert_ids
        if len(rows) == 1:
            return [rows[0].alert_id]
        self._metrics.delivery_failures.labels(self.sink.name).inc()
        return None

    def _observe(self, delivered: Sequence[tuple[Pending, Alert]]) -> None:
        name = self.sink.name
        self._metrics.delivered.labels(name).inc(len(delivered))
        now = self._wall()
        for row, alert in delivered:
            if row.kind in ("new", "update"):
                try:
                    latency = now - event_time(alert.detection.last_seen)
                except ValueError:
                    continue
                self._metrics.end_to_end.labels(name).observe(max(0.0, latency))

    def drain(self) -> bool:
        """Deliver until nothing waits (True) or the sink fails (False). For inline (synchronous) use."""
        while True:
            try:
                if not self.deliver_once():
                    return True
            except DeliveryError as exc:
                log.warning("alert delivery to %s failed, will retry: %s", self.sink.name, exc)
                return False


class DeliveryThread(threading.Thread):
    """Runs a :class:`SinkDelivery` until stopped: wakes on :meth:`wake`, backs off while the sink fails."""

    def __init__(self, delivery: SinkDelivery, *, idle_s: float = 1.0, max_backoff_s: float = 10.0) -> None:
        super().__init__(name=f"alerts-{delivery.sink.name}", daemon=True)
        self.delivery = delivery
        self._idle_s = idle_s
        self._max_backoff_s = max_backoff_s
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._deadline = float("inf")
        self.failing = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self, drain_s: float) -> None:
        """Ask the thread to finish: it keeps delivering for up to ``drain_s`` while the sink works."""
        self._deadline = time.monotonic() + drain_s
        self._halt.set()
        self._wake.set()

    def run(self) -> None:
        delay = 0.5
        name = self.delivery.sink.name
        while True:
            stopping = self._halt.is_set()
            if stopping and time.monotonic() >= self._deadline:
                return
            self._wake.clear()
            try:
                delivered = self.delivery.deliver_once()
            except DeliveryError as exc:
                if not self.failing:
                    log.warning("alert delivery to %s failing, alerts wait in the outbox: %s", name, exc)
                self.failing = True
                if stopping:
                    return  # what is left waits on disk for the next start
                self._halt.wait(delay)
                delay = min(delay * 2, self._max_backoff_s)
                continue
            except Exception:  # a bug must not end delivery for good: logged, retried after the backoff
                log.exception("alert delivery to %s raised unexpectedly", name)
                self._halt.wait(self._max_backoff_s)
                continue
            if self.failing:
                log.info("alert delivery to %s recovered", name)
            self.failing = False
            delay = 0.5
            if delivered:
                continue
            if stopping:
                return
            self._wake.wait(self._idle_s)
