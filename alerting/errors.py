"""Exception root of the alerting package."""


class AlertingError(Exception):
    """Root of every error raised by the alerting package."""


class DeliveryError(AlertingError):
    """An alert sink could not deliver; the alerts stay queued for the next attempt."""
