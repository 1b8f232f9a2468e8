"""The source contract: poll batches of raw records, commit them once they are safely stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ingest.records import Record


class Source(Protocol):
    """A stream of raw records (Kafka, files, the built-in traffic generator)."""

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to ``max_records`` new records; an empty list when none arrived within ``timeout_s``."""
        ...

    def commit(self, records: Sequence[Record]) -> None:
        """Mark ``records`` as processed: they will not be delivered again after a restart."""
        ...

    def pause(self) -> None:
        """Stop fetching (while a sink is down) but stay alive (group membership, heartbeats)."""
        ...

    def resume(self) -> None: ...

    def keepalive(self) -> None:
        """While paused: keep the connection and group membership alive without taking records."""
        ...

    @property
    def ready(self) -> bool:
        """True once records can flow (a Kafka consumer has partitions assigned)."""
        ...

    @property
    def exhausted(self) -> bool:
        """True when a finite source has nothing more to give (always False for Kafka)."""
        ...

    def close(self) -> None: ...
