"""An in-process source over any iterable of raw records (files, stdin, the traffic generator)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from ingest.records import Record


class IterableSource:
    """Feeds records from an iterable; commits are recorded so tests and the demo can check them.

    >>> src = IterableSource(Record("api_access", b"{}", offset=i) for i in range(3))
    >>> [r.offset for r in src.poll(2, 0)], src.exhausted
    ([0, 1], False)
    >>> [r.offset for r in src.poll(5, 0)], src.exhausted
    ([2], True)
    """

    def __init__(self, records: Iterable[Record]) -> None:
        self._records: Iterator[Record] = iter(records)
        self._exhausted = False
        self._paused = False
        self.committed_offset = -1

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        if self._paused or self._exhausted:
            return []
        batch = list(islice(self._records, max_records))
        if len(batch) < max_records:
            self._exhausted = True
        return batch

    def commit(self, records: Sequence[Record]) -> None:
        if records:
            self.committed_offset = max(self.committed_offset, max(r.offset for r in records))

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def keepalive(self) -> None:
        """Nothing to keep alive in-process."""

    @property
    def ready(self) -> bool:
        return True

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def close(self) -> None:
        self._exhausted = True
