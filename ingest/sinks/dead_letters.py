"""Dead-letter sinks: ``<topic>.dlq`` on Kafka, or a JSON-lines file for the embedded pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from ingest.errors import SinkError
from ingest.records import DeadLetter

DLQ_SUFFIX = ".dlq"


def dead_letter_topic(topic: str, fallback: str = "logwarden") -> str:
    """``<topic>.dlq``; records without a topic (files, generator) use ``<fallback>.dlq``."""
    return f"{topic or fallback}{DLQ_SUFFIX}"


class KafkaDeadLetterSink:
    """Produces each dead letter to ``<topic>.dlq`` (key kept, reason in a header); flush waits for acks."""

    def __init__(self, bootstrap_servers: str, **config: Any) -> None:
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers.split(","), acks="all", linger_ms=5, **config
            )
        except KafkaError as exc:
            raise SinkError(f"cannot reach Kafka at {bootstrap_servers}: {exc}") from exc
        self._pending: list[DeadLetter] = []

    def add(self, letter: DeadLetter) -> None:
        self._pending.append(letter)

    def flush(self) -> None:
        """Send every pending letter and wait for the acks; on failure all stay pending (at least once)."""
        futures = [
            self._producer.send(
                dead_letter_topic(letter.record.topic),
                value=letter.to_json(),
                key=letter.record.key,
                headers=[("reason", letter.reason.encode()), ("source", letter.record.source.encode())],
            )
            for letter in self._pending
        ]
        self._producer.flush()
        for future in futures:
            try:
                future.get(timeout=30)
            except KafkaError as exc:
                raise SinkError(f"cannot write dead letters to Kafka: {exc}") from exc
        self._pending = []

    def close(self) -> None:
        self._producer.close()


class FileDeadLetterSink:
    """Appends dead letters as JSON lines to a file (fsync on flush)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("ab")
        self._pending: list[bytes] = []

    def add(self, letter: DeadLetter) -> None:
        self._pending.append(letter.to_json() + b"\n")

    def flush(self) -> None:
        if self._pending:
            self._file.writelines(self._pending)
            self._file.flush()
            self._pending = []

    def close(self) -> None:
        self.flush()
        self._file.close()
