"""Exception root of the ingest package."""


class IngestError(Exception):
    """Root of every error raised by the ingest package."""


class ParseError(IngestError):
    """A raw record could not be turned into an ECS document; the message is the dead-letter reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # short, low-cardinality code, used as a metric label


class SinkError(IngestError):
    """A sink could not persist a batch; the caller must not commit the source offsets."""
