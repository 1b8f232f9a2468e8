"""``logwarden demo``: the whole pipeline in one process on the embedded default.

Built-in synthetic traffic (seeded) -> the same normalizer, rule engine, ML engine and alert dispatcher as
``logwarden run`` -> a DuckDB file and a dead-letter file under the store directory. The ML models are trained
on generated history before the demo's hour (once per store, seed and rate; later runs reuse them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

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
from logwarden.runner import Pipeline, StreamDetector

if TYPE_CHECKING:
    from detectors.ml.engine import MLEngine

DEMO_TOPIC = "synthetic.api-access"
#: Broken records mixed into the demo stream, to show that nothing is dropped silently.
MALFORMED = (
    b'{"timestamp": "yesterday", "method": "GET", "path": "/v1/models", "status": 200}',
    b"not json at all",
    b'{"timestamp": "2026-11-02T08:00:00Z", "method": "GET"}',
)


#: The models the demo trains and runs, and the history they learn from: the demo's hours of the day on the
#: previous days (traffic follows the time of day, so other hours would make the demo's hour look unusual).
DEMO_MODELS = ("entity-behaviour", "request-content")
HISTORY_DAYS = 3
#: Alerts of one rule printed as they fire; the rest only count in the summary.
DEMO_SHOWN_PER_RULE = 5
#: A record whose pseudonym fingerprints the store's privacy key (models learned pseudonyms of that key).
_PROBE = b'{"timestamp":"2026-11-02T08:00:00Z","method":"GET","path":"/v1/models","status":200,"user_id":"probe"}'


@dataclass(frozen=True)
class DemoOptions:
    seed: int = 7
    start: datetime = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
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
        start=options.start,
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
    models: StreamDetector | None = None,
) -> Pipeline:
    """The embedded pipeline: in-process source, DuckDB store, file dead letters (and ``models`` after the rules)."""
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
        models=models,
    )


def demo_models(store_dir: Path, options: DemoOptions, normalizer: Normalizer) -> tuple[MLEngine, bool]:
    """The demo's ML engine and whether its models were trained now (False: reused from ``<store>/models``).

    They learn from attack-free traffic of the same platform (seed) at the demo's hours of the previous
    :data:`HISTORY_DAYS` days, normalized by the demo's own normalizer, so they know the pseudonyms the
    pipeline will write.
    """
    from detectors.ml import store  # numpy, scikit-learn, pyod: only when the demo runs models
    from detectors.ml.engine import MLEngine
    from detectors.ml.presets import load_preset
    from detectors.ml.training import train

    root = store_dir / "models"
    probe = normalizer.normalize(Record("api_access", _PROBE))
    fingerprint = repr(getattr(probe, "doc", {}).get("user", {}).get("id"))
    material = "|".join(
        map(str, (options.seed, options.rate_per_s, options.start.isoformat(), options.duration, HISTORY_DAYS))
    )
    material += f"|{fingerprint}"
    data_hash = "demo:" + hashlib.sha256(material.encode()).hexdigest()[:16]

    def cached() -> bool:
        for name in DEMO_MODELS:
            try:
                if store.load(root / name).metadata.get("data_hash") != data_hash:
                    return False
            except store.ModelStoreError:
                return False
        return True

    trained = not cached()
    if trained:
        docs = []
        for days_back in range(HISTORY_DAYS, 0, -1):
            start = options.start - timedelta(days=days_back)
            raw = generate_api_access(
                seed=options.seed, start=start, duration=options.duration, rate_per_s=options.rate_per_s, scenarios=()
            )
            events, _ = normalizer.normalize_all([Record("api_access", to_json_line(e)) for e in raw])
            docs += [e.doc for e in events]
        for name in DEMO_MODELS:
            store.save(train(load_preset(name), docs, data_hash=data_hash), root)
    return MLEngine.from_registry(root, DEMO_MODELS), trained


def expected_events(options: DemoOptions) -> int:
    """Roughly how many records the demo will produce (for the progress bar)."""
    return int(options.duration.total_seconds() * options.rate_per_s)


#: A stored alert: (severity, rule, entity, events, first seen, last seen, ML campaign or None).
StoredAlert = tuple[str, str, str, int, str, str, str | None]


def stored_alerts(store_dir: Path) -> list[StoredAlert]:
    """The alerts of the store, most severe first."""
    conn = connect(store_dir / "logwarden.duckdb")
    try:
        rows = conn.execute(
            """SELECT severity, rule_name, doc->>'$.logwarden.alert.entity', event_count,
                      strftime(first_seen AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S'),
                      strftime(last_seen AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S'),
                      doc->>'$.logwarden.alert.ml.campaign'
               FROM alerts
               ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END,
                        first_seen"""
        ).fetchall()
    finally:
        conn.close()
    return [
        (str(a), str(b), str(c), int(d), str(e), str(f), None if g is None else str(g)) for a, b, c, d, e, f, g in rows
    ]


def alerts_by_rule(alerts: list[StoredAlert]) -> list[tuple[str, str, int, str, int, str, str, str]]:
    """Stored alerts (most severe first) summed per severity and rule: (severity, rule, alerts, ML campaigns
    ("-" for rules), events, first seen, last seen, the first alert's entity).

    >>> alerts_by_rule([("high", "ml", "user.id=a", 3, "t1", "t2", "source.ip=x"),
    ...                 ("high", "ml", "user.id=b", 2, "t0", "t3", "source.ip=x"),
    ...                 ("high", "brute", "user.id=a", 9, "t1", "t1", None)])
    [('high', 'ml', 2, '1', 5, 't0', 't3', 'user.id=b'), ('high', 'brute', 1, '-', 9, 't1', 't1', 'user.id=a')]
    """
    rows: dict[tuple[str, str], list[StoredAlert]] = {}
    for alert in alerts:
        rows.setdefault((alert[0], alert[1]), []).append(alert)
    out = []
    for (severity, rule), group in rows.items():
        campaigns = {a[6] for a in group if a[6] is not None}
        out.append((severity, rule, len(group), str(len(campaigns)) if campaigns else "-", sum(a[3] for a in group),
                    min(a[4] for a in group), max(a[5] for a in group), min(group, key=lambda a: a[4])[2]))  # fmt: skip
    return out


def campaigns_by_rule(alerts: list[StoredAlert]) -> dict[str, int]:
    """Distinct ML campaigns per rule (rules whose alerts carry one)."""
    found: dict[str, set[str]] = {}
    for alert in alerts:
        if alert[6] is not None:
            found.setdefault(alert[1], set()).add(alert[6])
    return {rule: len(values) for rule, values in sorted(found.items())}
