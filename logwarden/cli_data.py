"""Data commands: ``normalize`` (files to ECS, offline), ``ingest`` (files into Kafka), ``retention``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from ingest.parsers import PARSERS
from ingest.records import Record
from logwarden.cli_common import ConfigOption, configure, err
from logwarden.errors import ConfigError

SourceOption = Annotated[str, typer.Option("--source", "-s", help=f"Source parser: {', '.join(sorted(PARSERS))}.")]
FileArgument = Annotated[str, typer.Argument(help="Input file, one record per line; - for standard input.")]

EXIT_DEAD_LETTERS = 3


def _check_source(source: str) -> None:
    if source not in PARSERS:
        raise ConfigError(f"--source: unknown source {source!r}; known: {', '.join(sorted(PARSERS))}")


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Non-empty lines without their line ending."""
    for line in stream:
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield line


def normalize(source: SourceOption, path: FileArgument = "-", config: ConfigOption = None) -> None:
    """Print ECS documents as JSON lines (stdout) and dead letters as JSON lines (stderr).

    Exit 0 when every record parsed, 3 when some were dead-lettered, 2 on usage errors.
    """
    from logwarden.wiring import build_normalizer

    settings = configure(config)
    _check_source(source)
    normalizer = build_normalizer(settings, dicts=False)  # JSON lines out: the documents are never read
    out = sys.stdout.buffer
    dead = 0
    with _open(path) as stream:
        for number, line in enumerate(read_lines(stream), start=1):
            events, letters = normalizer.normalize_all([Record(source, line, path, 0, number)])
            for event in events:
                out.write(event.json + b"\n")
            for letter in letters:
                dead += 1
                sys.stderr.buffer.write(letter.to_json() + b"\n")
    out.flush()
    if dead:
        raise typer.Exit(EXIT_DEAD_LETTERS)


def ingest(
    source: SourceOption,
    path: Annotated[Path, typer.Argument(help="Input file, one record per line.", exists=True, dir_okay=False)],
    topic: Annotated[
        str | None, typer.Option(help="Kafka topic (default: the topic LOGWARDEN_TOPICS maps to the source).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Produce a file's records into Kafka (one message per line), with a progress bar."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from logwarden.errors import ServiceUnavailable

    settings = configure(config)
    _check_source(source)
    if topic is None:
        topics = [t for t, s in settings.topics.items() if s == source]
        if not topics:
            raise ConfigError(f"LOGWARDEN_TOPICS maps no topic to source {source!r}; pass --topic")
        topic = topics[0]
    try:
        producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
            acks="all",
            linger_ms=20,
            bootstrap_timeout_ms=int(settings.kafka_bootstrap_timeout_s * 1000),
        )
    except KafkaError as exc:
        raise ServiceUnavailable(f"LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS: cannot reach Kafka: {exc}") from None
    size = path.stat().st_size
    sent = 0
    progress = Progress(
        TextColumn(f"[bold]{escape(path.name)}[/bold] → {escape(topic)}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    with progress, path.open("rb") as stream:
        task = progress.add_task("ingest", total=size)
        for line in stream:
            progress.advance(task, len(line))
            record = line.rstrip(b"\r\n")
            if record.strip():
                producer.send(topic, record)
                sent += 1
        producer.flush()
    producer.close()
    err.print(f"{sent} records produced to {escape(topic)}", highlight=False)


def retention(
    days: Annotated[int, typer.Option(min=1, help="Keep this many days of event indices (by the index date).")],
    dry_run: Annotated[bool, typer.Option(help="Only list what would be deleted.")] = False,
    config: ConfigOption = None,
) -> None:
    """Delete daily event indices older than --days (``<prefix>-events-YYYY.MM.DD``)."""
    from logwarden.retention import expired_indices
    from logwarden.wiring import elasticsearch_client

    settings = configure(config)
    es = elasticsearch_client(settings)
    try:
        names = list(es.indices.get(index=f"{settings.index_prefix}-events-*", expand_wildcards="open,closed"))
        cutoff = (datetime.now(UTC) - timedelta(days=days)).date()
        doomed = expired_indices(names, settings.index_prefix, cutoff)
        for name in doomed:
            if not dry_run:
                es.indices.delete(index=name)
            err.print(f"{'would delete' if dry_run else 'deleted'} {name}", highlight=False)
    finally:
        es.close()
    err.print(f"{len(doomed)} of {len(names)} event indices older than {cutoff.isoformat()}", highlight=False)
