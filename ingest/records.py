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

    The document exists as a dict (``doc``), as JSON text (``json``, what the stores write), or both: a form
    not given is made from the other the first time it is read, then kept. The native fast path gives either
    form (:class:`ingest.pipeline.Normalizer`'s ``dicts``): JSON text when the documents are only written
    out, so an ingest-only worker never builds a dict. ``timestamp`` is the document's ``@timestamp`` (given
    with the JSON text: the daily index is found without decoding it). Treat both forms as immutable: the
    other one is not updated.

    ``doc`` is a plain slot once made (the rules and ML read it over and over; a missing one is decoded by
    ``__getattr__``), ``json`` a property (read once, by the store).
    """

    __slots__ = ("_json", "_timestamp", "doc", "doc_id", "record")
    doc: dict[str, Any]

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
        if doc is not None:
            self.doc = doc
        self._json = json
        self._timestamp = timestamp

    def __getattr__(self, name: str) -> Any:
        """Called only for an attribute not found: ``doc`` not decoded yet (any other name is an error)."""
        if name != "doc":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        doc = self.doc = orjson.loads(self._json)  # type: ignore[arg-type]  # set when doc is not
        return doc

    @property
    def json(self) -> bytes:
        """The document as UTF-8 JSON text (serialized from ``doc`` on first use)."""
        json = self._json
        if json is None:
            json = self._json = orjson.dumps(self.doc)
        return json

    @property
    def timestamp(self) -> str:
        stamp = self._timestamp
        return stamp if stamp is not None else str(self.doc["@timestamp"])

    @property
    def forms(self) -> tuple[str, ...]:
        """The forms of the document made so far, of ``("doc", "json")``."""
        return ("doc",) * self._has_doc() + ("json",) * (self._json is not None)

    def _has_doc(self) -> bool:
        try:
            object.__getattribute__(self, "doc")  # without __getattr__: no decoding
        except AttributeError:
            return False
        return True

    def with_record(self, record: Record) -> NormalizedEvent:
        """The same document (in the forms already made) under another record."""
        moved = NormalizedEvent.__new__(NormalizedEvent)
        moved.doc_id, moved.record, moved._json, moved._timestamp = self.doc_id, record, self._json, self._timestamp
        if self._has_doc():
            moved.doc = self.doc
        return moved

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
