"""What flows through ingest: raw records in, normalized events or dead letters out."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True)
class Record:
    """One raw record from a source, with where it came from (for offsets and dead letters).

    Records and :class:`NormalizedEvent` objects are made once per record, so they are plain slotted classes,
    not frozen dataclasses (a frozen dataclass sets each field through ``object.__setattr__``: about 3-4x the cost of
    making one). Treat them as immutable all the same: nothing downstream changes a record or a document.
    """

    source: str  # the parser to use, e.g. "api_access"
    value: bytes
    topic: str = ""
    partition: int = 0
    offset: int = -1
    key: bytes | None = None


class NormalizedEvent:
    """An ECS document and its deterministic id (a replay of the same record yields the same id).

    The document exists as a dict (``doc``), as JSON text (``json``, what the stores write), or both: each
    is made from the other the first time it is asked for, then kept. The native fast path gives the JSON
    text only, so an event that goes straight to Elasticsearch is never turned into a dict; rules and ML
    read ``doc``. ``timestamp`` is the document's ``@timestamp`` (given with the JSON text, so the daily
    index is found without decoding it). Treat both forms as immutable: the other one is not updated.
    """

    __slots__ = ("_doc", "_json", "_timestamp", "doc_id", "record")

    def __init__(
        self,
        doc_id: str,
        doc: dict[str, Any] | None,
        record: Record,
        *,
        json: bytes | None = None,
        timestamp: str | None = None,
    ) -> None:
        if doc is None and json is None:
            raise ValueError("a normalized event needs its document or its JSON text")
        self.doc_id = doc_id
        self.record = record
        self._doc = doc
        self._json = json
        self._timestamp = timestamp

    @property
    def doc(self) -> dict[str, Any]:
        """The document as a dict (decoded from ``json`` on first use)."""
        doc = self._doc
        if doc is None:
            doc = self._doc = orjson.loads(self._json)  # type: ignore[arg-type]
        return doc

    @property
    def json(self) -> bytes:
        """The document as UTF-8 JSON text (serialized from ``doc`` on first use)."""
        json = self._json
        if json is None:
            json = self._json = orjson.dumps(self._doc)
        return json

    @property
    def timestamp(self) -> str:
        stamp = self._timestamp
        return stamp if stamp is not None else str(self.doc["@timestamp"])

    def with_record(self, record: Record) -> NormalizedEvent:
        """The same document (in the forms already made) under another record."""
        return NormalizedEvent(self.doc_id, self._doc, record, json=self._json, timestamp=self._timestamp)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NormalizedEvent):
            return NotImplemented
        return (self.doc_id, self.record, self.doc) == (other.doc_id, other.record, other.doc)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NormalizedEvent(doc_id={self.doc_id!r}, doc={self.doc!r}, record={self.record!r})"


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
