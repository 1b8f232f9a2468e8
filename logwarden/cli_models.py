"""``logwarden models ...``: train, score, evaluate, promote and list ML models; ``synth`` writes labelled data.

Registered on the main app by :func:`register` (``register(app)`` in ``logwarden/cli.py``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from logwarden.cli_common import configure, err
from logwarden.errors import ConfigError

models_app = typer.Typer(help="Train, evaluate, score and promote ML anomaly models.", no_args_is_help=True)

DataOption = Annotated[
    Path | None, typer.Option("--data", help="ECS documents: JSON lines (logwarden normalize) or .parquet.")
]
ModelOption = Annotated[Path, typer.Option(help="A model version directory, or a model name directory (current).")]
EsIndex = Annotated[str | None, typer.Option(help="Read from Elasticsearch instead: index or alias.")]
EsStart = Annotated[str | None, typer.Option(help="Elasticsearch range start (@timestamp >=), RFC 3339.")]
EsEnd = Annotated[str | None, typer.Option(help="Elasticsearch range end (@timestamp <), RFC 3339.")]


def _documents(
    data: Path | None, es_index: str | None, start: str | None, end: str | None
) -> tuple[list[dict[str, Any]], str]:
    """The input documents and their hash (file sha256, or the Elasticsearch query).

    Elasticsearch settings come from the environment (``LOGWARDEN_ELASTICSEARCH_*``) or ``LOGWARDEN_CONFIG``:
    ``--config`` of these commands is the model configuration."""
    from detectors.ml.data import DataError, file_hash, read_documents, read_elasticsearch

    if data is not None:
        try:
            return read_documents(data), file_hash(data)
        except (DataError, OSError) as exc:
            raise ConfigError(f"--data: {exc}") from None
    if es_index and start and end:
        from logwarden.wiring import elasticsearch_client

        es = elasticsearch_client(configure(None))
        try:
            return list(read_elasticsearch(es, es_index, start, end)), f"elasticsearch:{es_index}:{start}:{end}"
        finally:
            es.close()
    raise ConfigError("give --data FILE, or --es-index with --es-start and --es-end")


@models_app.command()
def train(
    preset: Annotated[str, typer.Option(help="entity-behaviour or request-content.")],
    out: Annotated[Path, typer.Option(help="Registry directory: the model goes to OUT/NAME/vN/.")],
    data: DataOption = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML overrides of the preset.")] = None,
    name: Annotated[str | None, typer.Option(help="Model name (default: the preset's).")] = None,
    es_index: EsIndex = None,
    es_start: EsStart = None,
    es_end: EsEnd = None,
) -> None:
    """Train a model on ECS documents; prints the new version directory."""
    from detectors.ml import store
    from detectors.ml.presets import PresetError, load_preset
    from detectors.ml.training import train as fit

    try:
        chosen = load_preset(preset, config)
    except PresetError as exc:
        raise ConfigError(str(exc)) from None
    docs, digest = _documents(data, es_index, es_start, es_end)
    try:
        model = fit(chosen, docs, data_hash=digest, name=name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    target = store.save(model, out)
    err.print(f"trained {escape(model.name)} {model.version} on {len(docs)} documents, thresholds "
              f"{model.metadata['thresholds']}", highlight=False)  # fmt: skip
    typer.echo(str(target))


@models_app.command()
def score(
    model: ModelOption,
    data: DataOption = None,
    es_index: EsIndex = None,
    es_start: EsStart = None,
    es_end: EsEnd = None,
) -> None:
    """One JSON line per input document, in input order: score (0-100), anomalous, explanation, entity."""
    from detectors.ml import store
    from detectors.ml.scoring import score_documents

    loaded = _load(model, store)
    docs, _ = _documents(data, es_index, es_start, es_end)
    scored = score_documents(loaded, docs)
    out = sys.stdout.buffer
    for i in range(len(docs)):
        out.write(orjson.dumps(scored.doc_record(i)) + b"\n")
    out.flush()


@models_app.command()
def evaluate(
    model: ModelOption,
    labels: Annotated[str, typer.Option(help="Label field (dotted), e.g. labels.scenario; empty = normal.")],
    data: DataOption = None,
    report: Annotated[Path | None, typer.Option(help="Directory for the plots and report.html.")] = None,
    es_index: EsIndex = None,
    es_start: EsStart = None,
    es_end: EsEnd = None,
) -> None:
    """ROC-AUC, PR-AUC, precision and recall at the threshold, alerts per day (JSON), plots and an HTML report."""
    from detectors.ml import store
    from detectors.ml.evaluation import evaluate as run

    loaded = _load(model, store)
    docs, _ = _documents(data, es_index, es_start, es_end)
    target = report or store.resolve(model) / "evaluation"
    result = run(loaded, docs, labels, target)
    typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    err.print(f"report: {escape(str(target / 'report.html'))}", highlight=False)


@models_app.command()
def promote(
    model: Annotated[Path, typer.Option(help="The model name directory (REGISTRY/NAME).")],
    version: Annotated[str, typer.Option(help="The version to promote, e.g. v3.")],
    shadow: Annotated[bool, typer.Option(help="Make it the shadow version (scored, never alerts).")] = False,
) -> None:
    """Point the model's ``current`` (or ``shadow``) at a version."""
    from detectors.ml import store

    try:
        store.promote(model, version, "shadow" if shadow else "current")
    except store.ModelStoreError as exc:
        raise ConfigError(str(exc)) from None
    err.print(f"{escape(model.name)}: {'shadow' if shadow else 'current'} -> {escape(version)}", highlight=False)


@models_app.command("list")
def list_models(registry: Annotated[Path, typer.Argument(help="Registry directory.")]) -> None:
    """Models, versions and pointers of a registry (JSON lines)."""
    from detectors.ml import store

    for base in sorted(p for p in registry.iterdir() if p.is_dir()) if registry.is_dir() else []:
        found = store.versions(base)
        if found:
            typer.echo(orjson.dumps({"name": base.name, "versions": found, **store.pointers(base)}).decode())


@models_app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Output JSON-lines file of labelled ECS documents.")],
    minutes: Annotated[float, typer.Option(help="Minutes of traffic.")] = 60.0,
    rate: Annotated[float, typer.Option(help="Mean requests per second.")] = 5.0,
    seed: Annotated[int, typer.Option(help="Generator seed (the same seed is the same platform).")] = 7,
    start: Annotated[str, typer.Option(help="Start time, RFC 3339 UTC.")] = "2026-11-02T08:00:00Z",
    scenario: Annotated[list[str] | None, typer.Option(help="Scenario to inject (repeatable).")] = None,
) -> None:
    """Generated traffic, parsed to ECS, with the scenario name in ``labels.scenario`` (for evaluation)."""
    from ingest.pipeline import Normalizer
    from ingest.records import Record
    from ingest.sources.synthetic import generate_api_access, to_json_line

    try:
        begin = datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(UTC)
        events = generate_api_access(seed=seed, start=begin, duration=timedelta(minutes=minutes), rate_per_s=rate,
                                     scenarios=tuple(scenario or ()))  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    normalizer = Normalizer()
    n = 0
    with out.open("wb") as f:
        for event in events:
            result = normalizer.normalize(Record("api_access", to_json_line(event)[:-1]))
            doc = getattr(result, "doc", None)
            if doc is None:
                continue
            if event.scenario:
                doc["labels"] = {"scenario": event.scenario}
            f.write(orjson.dumps(doc) + b"\n")
            n += 1
    err.print(f"{n} documents written to {escape(str(out))}", highlight=False)


def _load(path: Path, store: Any) -> Any:
    try:
        return store.load(path)
    except store.ModelStoreError as exc:
        raise ConfigError(str(exc)) from None


def register(app: typer.Typer) -> None:
    """Add the ``models`` command group to the main app."""
    app.add_typer(models_app, name="models")
