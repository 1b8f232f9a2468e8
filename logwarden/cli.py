"""The ``logwarden`` command line."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated

import orjson
import typer
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from alerting.alert import Alert
from alerting.errors import AlertingError
from ingest.errors import IngestError
from logwarden import __version__, cli_data
from logwarden.cli_common import ConfigOption, configure, err
from logwarden.cli_models import register as register_model_commands
from logwarden.cli_privacy import register as register_privacy_commands
from logwarden.cli_rules import register as register_rule_commands
from logwarden.collector import tune_collector
from logwarden.errors import ConfigError, LogwardenError, ServiceUnavailable

app = typer.Typer(
    help="logwarden: SIEM and anomaly detection for the API-access and audit logs of an AI API platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def config(config: ConfigOption = None) -> None:
    """Print the effective settings as JSON (secrets masked)."""
    typer.echo(orjson.dumps(configure(config).redacted(), option=orjson.OPT_INDENT_2).decode())


@app.command()
def setup(
    config: ConfigOption = None,
    kafka: Annotated[bool, typer.Option(help="Create the Kafka topics and their .dlq topics.")] = True,
    elasticsearch: Annotated[bool, typer.Option(help="Install index templates and the alerts index.")] = True,
    kibana: Annotated[str | None, typer.Option(help="Kibana URL: import the data views and dashboards.")] = None,
) -> None:
    """Prepare Elasticsearch (index templates, alerts index) and Kafka (topics). Safe to run again."""
    from logwarden.setup import setup_elasticsearch, setup_kafka
    from logwarden.wiring import elasticsearch_client

    settings = configure(config)
    done: list[str] = []
    key_file = settings.privacy.pseudonymization_key_file
    if key_file is not None and not key_file.exists():
        from ingest.privacy.config import load_or_create_key_file

        key_file.parent.mkdir(parents=True, exist_ok=True)
        load_or_create_key_file(key_file)  # generated once (mode 0600); back it up: pseudonyms depend on it
        done.append(f"pseudonymization key {key_file}")
    if elasticsearch:
        es = elasticsearch_client(settings)
        try:
            done += setup_elasticsearch(es, settings)
        finally:
            es.close()
    if kafka:
        done += setup_kafka(settings)
    if kibana:
        from logwarden.kibana import setup_kibana

        done += setup_kibana(kibana, settings.index_prefix)
    for line in done:
        err.print(f"[green]ok[/green] {escape(line)}")
    err.print(f"setup complete ({len(done)} changes)")


@app.command()
def run(
    config: ConfigOption = None,
    until_idle: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without new records (backfills, tests).")
    ] = None,
) -> None:
    """Consume Kafka, index into Elasticsearch, evaluate the rules and deliver alerts, until stopped."""
    from logwarden.wiring import kafka_pipeline

    settings = configure(config)
    registry = CollectorRegistry()
    up = Gauge("logwarden_up", "1 while the logwarden worker runs", registry=registry)
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
        except OSError as exc:
            raise ConfigError(
                f"LOGWARDEN_METRICS_PORT: cannot listen on {settings.metrics_host}:{settings.metrics_port}: {exc}"
            ) from None
    pipeline = kafka_pipeline(settings, registry)
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))  # connected: say more
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: finishing the current batch, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    tune_collector(settings.gc_gen0_threshold)
    up.set(1)
    logging.getLogger(__name__).info(
        "consuming %s from %s", ", ".join(settings.topics), settings.kafka_bootstrap_servers
    )
    try:
        stats = pipeline.run(stop.is_set, until_idle_s=until_idle)
    except IngestError as exc:  # stopped while a store was down: the batch is not committed, it will replay
        raise ServiceUnavailable(f"stopped with an unstored batch (it will be read again on restart): {exc}") from None
    except AlertingError as exc:  # the outbox could not take a batch's alerts: not committed either
        raise ServiceUnavailable(f"alert outbox failed (the batch will be read again on restart): {exc}") from None
    finally:
        up.set(0)
        pipeline.close()
    err.print(
        f"stopped: {stats.records} records, {stats.events} events, {stats.dead_letters} dead letters, "
        f"{stats.alerts} alerts"
    )


@app.command()
def demo(
    minutes: Annotated[float, typer.Option(help="Minutes of synthetic traffic to generate.")] = 60.0,
    rate: Annotated[float, typer.Option(help="Mean requests per second of the synthetic platform.")] = 5.0,
    seed: Annotated[int, typer.Option(help="Seed of the traffic generator (same seed, same run).")] = 7,
    scenario: Annotated[list[str] | None, typer.Option(help="Attack scenario to inject (repeatable).")] = None,
    store: Annotated[Path | None, typer.Option(help="Store directory (default LOGWARDEN_STORE_PATH).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="End with one JSON line of figures.")] = False,
    ml: Annotated[
        bool, typer.Option("--ml/--no-ml", help="Also run the ML models (trained on generated history once).")
    ] = True,
    config: ConfigOption = None,
) -> None:
    """Run the whole pipeline in-process on built-in synthetic traffic (no Kafka, no Elasticsearch)."""
    from ingest.privacy.config import demo_privacy_config
    from logwarden.demo import (
        DEMO_SHOWN_PER_RULE,
        HISTORY_DAYS,
        DemoOptions,
        alerts_by_rule,
        campaigns_by_rule,
        demo_models,
        demo_pipeline,
        expected_events,
        stored_alerts,
    )
    from logwarden.wiring import build_normalizer, load_ruleset

    settings = configure(config, log_level=None if "LOGWARDEN_LOG_LEVEL" in os.environ else "WARNING")
    options = DemoOptions(
        seed=seed,
        duration=timedelta(minutes=minutes),
        rate_per_s=rate,
        scenarios=tuple(scenario) if scenario else DemoOptions.scenarios,
    )
    store_dir = store or settings.store_path
    # not a terminal (a pipe, a log): wide enough for the summary table's pseudonyms on one line
    out = err if json_output else Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

    shown: Counter[str] = Counter()

    def show(alert: Alert) -> None:
        d = alert.detection
        shown[d.rule_name] += 1
        if shown[d.rule_name] > DEMO_SHOWN_PER_RULE:
            if shown[d.rule_name] == DEMO_SHOWN_PER_RULE + 1:
                out.print(f"      ... more {escape(d.rule_name)} alerts: see the summary at the end", highlight=False)
            return
        colour = {"critical": "red", "high": "red", "medium": "yellow"}.get(alert.severity, "cyan")
        out.print(
            f"[{colour}]ALERT {alert.severity}[/{colour}] {escape(d.title)}  {escape(alert.entity)}  "
            f"({d.event_count} events since {d.first_seen})",
            highlight=False,
        )

    ruleset = load_ruleset(settings.rules_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    # the demo's own keys (generated once into the store, mode 0600): pseudonyms stay stable across runs
    normalizer = build_normalizer(settings, privacy=demo_privacy_config(store_dir))
    out.print(
        f"[bold]logwarden demo[/bold]: {minutes:g} minutes of synthetic API traffic (seed {seed}, "
        f"scenarios {', '.join(options.scenarios)}), {ruleset.loaded} rules from {ruleset.files} files",
        highlight=False,
    )
    models = None
    if ml:
        what = f"the same {minutes:g} minutes of the {HISTORY_DAYS} previous days"
        with out.status(f"ML models: training on {what} (first run of a store only)"):
            models, trained = demo_models(store_dir, options, normalizer)
        versions = ", ".join(f"{m}@{r['version']}" for m, r in models.rules().items())
        out.print(f"ML models {versions} ({'trained now' if trained else 'reused'}: {store_dir / 'models'})")
    pipeline = demo_pipeline(
        store_dir, ruleset, options, batch_size=settings.batch_size, on_alert=show, normalizer=normalizer, models=models
    )
    tune_collector(settings.gc_gen0_threshold)
    progress = Progress(
        TextColumn("[bold]pipeline[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeElapsedColumn(),
        console=out,
        transient=json_output,
    )
    with progress:
        task = progress.add_task("records", total=expected_events(options))
        try:
            stats = pipeline.run(on_batch=lambda s: progress.update(task, completed=s.records))
        finally:
            pipeline.close()
        progress.update(task, completed=stats.records, total=stats.records)
    if json_output:
        summary = {
            "events": stats.events,
            "alerts": stats.alerts,
            "alerts_by_rule": dict(sorted(stats.alerts_by_rule.items())),
            "campaigns_by_rule": campaigns_by_rule(stored_alerts(store_dir)),
            "dead_letters": stats.dead_letters,
            "store": str(store_dir),
        }
        typer.echo(orjson.dumps(summary).decode())
        return
    table = Table(title=f"alerts raised: {stats.alerts} (final state, by rule)", title_justify="left")
    columns = ("severity", "rule", "alerts", "campaigns", "events", "first seen", "last seen", "entity (first)")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in alerts_by_rule(stored_alerts(store_dir)):
        table.add_row(*(str(v) for v in row))
    out.print(table)
    out.print(
        f"{stats.events} events stored in {store_dir / 'logwarden.duckdb'} (tables events, alerts); "
        f"{stats.dead_letters} malformed records kept in {store_dir / 'dead-letters.jsonl'} with the reason.",
        highlight=False,
    )


register_rule_commands(app)  # rules lint, rules test, detect
register_model_commands(app)  # models train, score, evaluate, promote, list, synth
register_privacy_commands(app)  # reveal
app.command()(cli_data.normalize)
app.command()(cli_data.ingest)
app.command()(cli_data.retention)


def main() -> None:
    """Entry point: configuration and service problems end with one clear line and exit code 2 or 1."""
    try:
        app()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}", highlight=False)
        raise SystemExit(2) from None
    except LogwardenError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
