"""Alert sinks: each takes a batch of alerts and delivers it, or raises DeliveryError."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from alerting.alert import Alert


class AlertSink(Protocol):
    """Delivers alerts idempotently (the alert id is the identity)."""

    name: str

    def emit(self, alerts: Sequence[Alert]) -> None: ...

    def close(self) -> None: ...
