"""Alert sinks: each takes a batch of alerts and delivers it, or raises DeliveryError."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from alerting.alert import Alert


class AlertSink(Protocol):
    """Delivers alerts idempotently (the alert id is the identity).

    ``expires``: the sink forgets alerts that are not re-sent (Alertmanager): the dispatcher re-sends
    open alerts to it periodically. ``emit`` raises :class:`~alerting.errors.DeliveryError` to have the
    batch retried, :class:`~alerting.errors.AlertRejected` for alerts that can never be delivered.
    """

    name: str
    expires: bool

    def emit(self, alerts: Sequence[Alert]) -> None: ...

    def close(self) -> None: ...
