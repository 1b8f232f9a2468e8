"""The sink contracts. A sink buffers with ``add`` and persists with ``flush``.

``flush`` either persists every buffered item (returning the items the store rejected for good,
as dead letters) or raises :class:`ingest.errors.SinkError`, in which case the caller keeps the
batch, does not commit source offsets and tries again later.
"""

from __future__ import annotations

from typing import Protocol

from ingest.records import DeadLetter, NormalizedEvent


class EventSink(Protocol):
    """Persists normalized events, idempotently (by ``doc_id``)."""

    def add(self, event: NormalizedEvent) -> None: ...

    def flush(self) -> list[DeadLetter]: ...

    def close(self) -> None: ...


class DeadLetterSink(Protocol):
    """Persists dead letters durably (a Kafka ``<topic>.dlq`` topic, or a local file)."""

    def add(self, letter: DeadLetter) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
