"""The pure middle of ingest: raw record -> ECS document or dead letter. No broker, no store."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ingest.errors import ParseError
from ingest.parsers import SPLITTERS, get_parser
from ingest.records import DeadLetter, NormalizedEvent, Record

log = logging.getLogger(__name__)

#: A step after parsing (enrichment, privacy): takes and returns an ECS document.
Transform = Callable[[dict[str, Any]], dict[str, Any]]


def document_id(record: Record) -> str:
    """Deterministic id from the source and the raw bytes: a replayed record overwrites itself.

    >>> document_id(Record("api_access", b"{}")) == document_id(Record("api_access", b"{}", offset=9))
    True
    """
    digest = hashlib.blake2b(record.source.encode() + b"\x00" + record.value, digest_size=16)
    return digest.hexdigest()


@dataclass
class Normalizer:
    """Parse, then apply the transforms in order. Every failure becomes a :class:`DeadLetter`.

    ``api_access`` records take the native fast path (:mod:`ingest.native`) when the extension is built and
    reproduces ``transforms`` exactly; a record it does not handle, and every other source, runs the Python
    chain below (the reference semantics). ``native=False`` always runs the Python chain.

    ``dicts``: whether the events' documents will be read as dicts (rules, ML). The native path then builds the
    dict directly (cheaper than decoding JSON text later); ``dicts=False`` (documents only written out, as in an
    ingest-only worker) makes it write JSON text instead, and no dict at all (``NormalizedEvent.doc`` would
    decode it). Same documents either way.
    """

    transforms: Sequence[Transform] = field(default_factory=tuple)
    native: bool = True
    dicts: bool = True
    _fast: Callable[[bytes], tuple[bytes, str | None] | dict[str, Any] | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _native_id: Callable[[str, bytes], str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.native:
            from ingest.native import fast_path, id_function  # imported here: it imports the privacy steps

            fast = fast_path(self.transforms)
            self._fast = fast if fast is None or not self.dicts else fast.document
            self._native_id = id_function()

    def document_id(self, record: Record) -> str:
        """:func:`document_id`, natively when the extension is built (same value, a third of the cost)."""
        native_id = self._native_id
        return native_id(record.source, record.value) if native_id is not None else document_id(record)

    @property
    def uses_native(self) -> bool:
        """True when api_access records take the native fast path."""
        return self._fast is not None

    def normalize(self, record: Record) -> NormalizedEvent | DeadLetter:
        if self._fast is not None and record.source == "api_access":
            try:
                done = self._fast(record.value)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # a failing callback (user agent parser ...) or a panic in the extension (PyO3's
                # PanicException is a BaseException): the Python chain decides and reports
                log.warning("native fast path failed on %s/%d/%d", record.topic, record.partition, record.offset)
                done = None
            if type(done) is tuple:
                json, stamp = done
                return NormalizedEvent(self.document_id(record), None, record, json=json, timestamp=stamp)
            if done is not None:
                return NormalizedEvent(self.document_id(record), done, record)  # type: ignore[arg-type]
        try:
            doc = get_parser(record.source)(record.value)
        except ParseError as exc:
            return DeadLetter(record, exc.reason, str(exc))
        except RecursionError:
            return DeadLetter(record, "too_deep", "record nests too deeply to parse")
        except Exception as exc:  # a parser bug must not stop the stream: keep the record, say why, log it
            log.exception("parser %r failed on %s/%d/%d", record.source, record.topic, record.partition, record.offset)
            return DeadLetter(record, "parser_error", f"{type(exc).__name__}: {exc}")
        for transform in self.transforms:
            try:
                doc = transform(doc)
            except ParseError as exc:
                return DeadLetter(record, exc.reason, str(exc), stage="transform")
            except Exception as exc:  # same for enrichment and privacy steps
                log.exception("transform %r failed", transform)
                return DeadLetter(record, "transform_error", f"{type(exc).__name__}: {exc}", stage="transform")
        return NormalizedEvent(self.document_id(record), doc, record)

    def normalize_all(self, records: Iterable[Record]) -> tuple[list[NormalizedEvent], list[DeadLetter]]:
        """Normalize a batch; records of sources with a splitter are first cut into their events."""
        events: list[NormalizedEvent] = []
        dead: list[DeadLetter] = []
        for record in records:
            for part in self.split(record) if record.source in SPLITTERS else (record,):
                result = part if isinstance(part, DeadLetter) else self.normalize(part)
                if isinstance(result, NormalizedEvent):
                    events.append(result)
                else:
                    dead.append(result)
        return events, dead

    @staticmethod
    def split(record: Record) -> list[Record | DeadLetter]:
        """The events inside ``record`` (itself when its source has no splitter), with its provenance."""
        splitter = SPLITTERS.get(record.source)
        if splitter is None:
            return [record]
        try:
            parts = splitter(record.value)
        except ParseError as exc:
            return [DeadLetter(record, exc.reason, str(exc), stage="split")]
        return [replace(record, value=part) for part in parts]
