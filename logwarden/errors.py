"""Exception root of the logwarden (CLI and wiring) package."""


class LogwardenError(Exception):
    """Root of every error raised by the logwarden package."""


class ConfigError(LogwardenError):
    """A setting is missing or invalid; the message names the setting (``LOGWARDEN_...``)."""


class ServiceUnavailable(LogwardenError):
    """A required service (Kafka, Elasticsearch) cannot be reached; the message names the setting."""
