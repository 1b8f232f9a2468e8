"""What flows through ingest: raw records in, normalized events or dead letters out."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class Record:
    """One raw record from a source, with where it came from (for offsets and dead letters).

    Records and :class:`NormalizedEvent` objects are made once per record, so they are plain slotted dataclasses,
    not frozen ones (a frozen dataclass sets each field through ``object.__setattr__``: about 3-4x the cost of
    making one). Treat them as immutable all the same: nothing downstream changes a record or a document.
    """

    source: str  # the parser to use, e.g. "api_access"
    value: bytes
    topic: str = ""
    partition: int = 0
    offset: int = -1
    key: bytes | None = None


@dataclass(slots=True)
class NormalizedEvent:
    """An ECS document and its deterministic id (a replay of the same record yields the same id)."""

    doc_id: str
    doc: dict[str, Any]
    record: Record

    @property
    def timestamp(self) -> str:
        return str(self.doc["@timestamp"])


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be processed, the reason code (a metric label) and the full message."""

    record: Record
    reason: str
    message: str
    stage: str = "parse"

    def to_json(self) -> bytes:
        """The dead-letter message: reason, provenance and the raw bytes (base64, plus text when UTF-8)."""
        raw = self.record.value
        try:
            text: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return orjson.dumps(
            {
                "reason": self.reason,
                "error": self.message,
                "stage": self.stage,
                "source": self.record.source,
                "topic": self.record.topic,
                "partition": self.record.partition,
                "offset": self.record.offset,
                "raw_base64": base64.b64encode(raw).decode("ascii"),
                "raw_text": text,
            }
        )
