"""Exception root of the alerting package."""

from __future__ import annotations

from collections.abc import Sequence


class AlertingError(Exception):
    """Root of every error raised by the alerting package."""


class DeliveryError(AlertingError):
    """An alert sink could not deliver; the alerts stay in the outbox for the next attempt."""


class AlertRejected(DeliveryError):
    """The sink answered that some alerts will never be accepted (retrying cannot help).

    ``alert_ids``: the refused alerts; every other alert of the batch was delivered. ``None``: the
    sink refused the batch as a whole without saying which alert is at fault.
    """

    def __init__(self, message: str, alert_ids: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.alert_ids = list(alert_ids) if alert_ids is not None else None


class OutboxError(AlertingError):
    """The durable outbox cannot be opened or written (disk full, permissions, a corrupt file)."""
