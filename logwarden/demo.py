"""``logwarden demo``: the whole pipeline in one process on the embedded default.

Built-in synthetic traffic (seeded) -> the same normalizer, rule engine and alert dispatcher as
``logwarden run`` -> a DuckDB file and a dead-letter file under the store directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from pathlib import Path

from prometheus_client import CollectorRegistry

from alerting.alert import Alert
from alerting.dispatch import AlertDispatcher
from alerting.metrics import AlertMetrics
from alerting.sinks.duckdb_store import DuckDBAlertSink
from detectors.sigma.engine import RuleEngine
from detectors.sigma.rules import RuleSet
from ingest.metrics import IngestMetrics
from ingest.pipeline import Normalizer
from ingest.records import Record
from ingest.sinks.dead_letters import FileDeadLetterSink
from ingest.sinks.duckdb_store import DuckDBEventSink, connect
from ingest.sources.memory import IterableSource
from ingest.sources.synthetic import generate_api_access, to_json_line
from logwarden.runner import Pipeline

DEMO_TOPIC = "synthetic.api-access"
#: Broken records mixed into the demo stream, to show that nothing is dropped silently.
MALFORMED = (
    b'{"timestamp": "yesterday", "method": "GET", "path": "/v1/models", "status": 200}',
    b"not json at all",
    b'{"timestamp": "2026-11-02T08:00:00Z", "method": "GET"}',
)


@dataclass(frozen=True)
class DemoOptions:
    seed: int = 7
    duration: timedelta = timedelta(hours=1)
    rate_per_s: float = 5.0
    scenarios: Sequence[str] = ("brute_force", "credential_stuffing")
    malformed: bool = True


def demo_records(options: DemoOptions) -> Iterator[Record]:
    """The generated traffic as raw records, a few malformed ones spread through it."""
    offsets = count()
    spread_every = 997
    events = generate_api_access(
        seed=options.seed,
        duration=options.duration,
        rate_per_s=options.rate_per_s,
        scenarios=options.scenarios,
    )
    bad = list(MALFORMED) if options.malformed else []
    for i, event in enumerate(events):
        if bad and i and i % spread_every == 0:
            yield Record("api_access", bad.pop(0), DEMO_TOPIC, 0, next(offsets))
        yield Record("api_access", to_json_line(event), DEMO_TOPIC, 0, next(offsets))
    for raw in bad:
        yield Record("api_access", raw, DEMO_TOPIC, 0, next(offsets))


def demo_pipeline(
    store_dir: Path,
    ruleset: RuleSet,
    options: DemoOptions,
    *,
    batch_size: int = 1000,
    on_alert: Callable[[Alert], None] | None = None,
    normalizer: Normalizer | None = None,
) -> Pipeline:
    """The embedded pipeline: in-process source, DuckDB store, file dead letters."""
    conn = connect(store_dir / "logwarden.duckdb")
    registry = CollectorRegistry()
    return Pipeline(
        source=IterableSource(demo_records(options)),
        normalizer=normalizer or Normalizer(),
        events=DuckDBEventSink(conn),
        dead_letters=FileDeadLetterSink(store_dir / "dead-letters.jsonl"),
        engine=RuleEngine(ruleset),
        alerts=AlertDispatcher([DuckDBAlertSink(conn)], AlertMetrics.create(registry), on_new=on_alert),
        metrics=IngestMetrics.create(registry),
        batch_size=batch_size,
        poll_timeout_s=0.0,
    )


def expected_events(options: DemoOptions) -> int:
    """Roughly how many records the demo will produce (for the progress bar)."""
    return int(options.duration.total_seconds() * options.rate_per_s)


def stored_alerts(store_dir: Path) -> list[tuple[str, str, str, int, str, str]]:
    """The alerts of the store, most severe first: (severity, rule, entity, events, first, last seen)."""
    conn = connect(store_dir / "logwarden.duckdb")
    try:
        rows = conn.execute(
            """SELECT severity, rule_name, doc->>'$.logwarden.alert.entity', event_count,
                      strftime(first_seen AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S'),
                      strftime(last_seen AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S')
               FROM alerts
               ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END,
                        first_seen"""
        ).fetchall()
    finally:
        conn.close()
    return [(str(a), str(b), str(c), int(d), str(e), str(f)) for a, b, c, d, e, f in rows]
