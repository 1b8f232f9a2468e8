"""The composition root: build the stages from :class:`Settings`. Nothing else knows which transport runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.serializer import OrjsonSerializer
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from alerting.catalog import RuleCatalog
from alerting.dispatch import AlertDispatcher, AlertPolicy
from alerting.errors import OutboxError
from alerting.metrics import AlertMetrics, ModelCollector, OutboxCollector, RuleMetrics
from alerting.outbox import SqliteOutbox
from alerting.sinks import AlertSink
from alerting.sinks.alertmanager import AlertmanagerSink
from alerting.sinks.elasticsearch import ElasticsearchAlertIndex
from detectors.errors import RuleError
from detectors.sigma.engine import RuleEngine
from detectors.sigma.loader import load_rules
from detectors.sigma.rules import RuleSet
from ingest.enrich import EnrichmentConfigError
from ingest.enrich.config import build_enrichment_transforms
from ingest.errors import IngestError
from ingest.metrics import IngestMetrics
from ingest.pipeline import Normalizer
from ingest.privacy import PrivacyConfigError
from ingest.privacy.config import PrivacyConfig, build_privacy_transforms
from ingest.sinks.dead_letters import KafkaDeadLetterSink
from ingest.sinks.elasticsearch import ElasticsearchEventSink
from ingest.sources.kafka import KafkaSource
from logwarden.errors import ConfigError, ServiceUnavailable
from logwarden.runner import Pipeline
from logwarden.settings import Settings, safe_url

if TYPE_CHECKING:
    from detectors.ml.engine import MLEngine

log = logging.getLogger(__name__)


def elasticsearch_client(settings: Settings) -> Elasticsearch:
    """A client for ``LOGWARDEN_ELASTICSEARCH_URL``, checked to answer (else :class:`ServiceUnavailable`)."""
    auth: dict[str, Any] = {}
    if settings.elasticsearch_api_key is not None:
        auth["api_key"] = settings.elasticsearch_api_key.get_secret_value()
    elif settings.elasticsearch_username and settings.elasticsearch_password is not None:
        auth["basic_auth"] = (settings.elasticsearch_username, settings.elasticsearch_password.get_secret_value())
    url = str(settings.elasticsearch_url)
    # orjson for request and response bodies: the bulk responses of every batch are parsed here
    serializers = {"application/json": OrjsonSerializer(), "application/vnd.elasticsearch+json": OrjsonSerializer()}
    client = Elasticsearch(url, request_timeout=settings.elasticsearch_timeout_s, serializers=serializers, **auth)
    try:
        client.cluster.health(timeout="5s")
    except (TransportError, ApiError) as exc:
        raise ServiceUnavailable(
            f"LOGWARDEN_ELASTICSEARCH_URL: cannot reach Elasticsearch at {safe_url(url)}: {type(exc).__name__}"
        ) from None
    return client


def build_normalizer(settings: Settings, *, privacy: PrivacyConfig | None = None, dicts: bool = True) -> Normalizer:
    """Parsers, then enrichment, then privacy (pseudonymize, redact, mask, seal), as configured. ``dicts``:
    whether the documents will be read as dicts (rules, ML) or only written out (JSON text).

    A privacy or enrichment setting that cannot be used is a :class:`ConfigError` naming the
    ``LOGWARDEN_PRIVACY__...`` / ``LOGWARDEN_ENRICHMENT__...`` variable.
    """
    try:
        enrichment = build_enrichment_transforms(settings.enrichment)
    except EnrichmentConfigError as exc:
        raise ConfigError(
            f"LOGWARDEN_ENRICHMENT__{exc.field.upper()}: {str(exc).removeprefix(exc.field + ': ')}"
        ) from None
    try:
        protection = build_privacy_transforms(privacy or settings.privacy)
    except PrivacyConfigError as exc:
        raise ConfigError(
            f"LOGWARDEN_PRIVACY__{exc.field.upper()}: {str(exc).removeprefix(exc.field + ': ')}"
        ) from None
    return Normalizer([*enrichment, *protection], dicts=dicts)


def load_ruleset(paths: list[Path]) -> RuleSet:
    """Load the rules; each bad one is logged with ``path:line`` and skipped, the others run."""
    ruleset = load_rules(paths)
    for error in ruleset.errors:
        log.error("rule skipped: %s", error if isinstance(error, RuleError) else repr(error))
    log.info("loaded %d rules from %d files (%d skipped)", ruleset.loaded, ruleset.files, len(ruleset.errors))
    return ruleset


def open_outbox(settings: Settings) -> SqliteOutbox:
    """The durable alert outbox ``<LOGWARDEN_STORE_PATH>/outbox.sqlite`` (one store path per worker)."""
    try:
        return SqliteOutbox(settings.store_path / "outbox.sqlite")
    except OutboxError as exc:
        raise ConfigError(f"LOGWARDEN_STORE_PATH: {exc}") from None


def load_models(settings: Settings) -> MLEngine | None:
    """The ML engine over the registry's ``current`` models (``LOGWARDEN_MODELS_DIR``), or None without one."""
    if settings.models_dir is None:
        return None
    from detectors.ml import store  # numpy, scikit-learn, pyod: imported only when models run
    from detectors.ml.engine import MLEngine

    root = settings.models_dir
    names = settings.models or sorted(p.name for p in root.iterdir() if p.is_dir() and store.versions(p))
    if not names:
        raise ConfigError(f"LOGWARDEN_MODELS_DIR: {root} holds no trained model (logwarden models train --out {root})")
    settings.store_path.mkdir(parents=True, exist_ok=True)
    try:
        engine = MLEngine.from_registry(root, names, shadow_log=settings.store_path / "shadow-scores.jsonl")
    except (store.ModelStoreError, OSError) as exc:
        raise ConfigError(f"LOGWARDEN_MODELS_DIR: {exc}") from None
    log.info("ML models: %s", ", ".join(f"{m}@{r['version']}" for m, r in engine.rules().items()))
    return engine


def alert_dispatcher(
    settings: Settings,
    sinks: list[AlertSink],
    registry: CollectorRegistry,
    ruleset: RuleSet,
    engine: RuleEngine,
    models: MLEngine | None = None,
) -> AlertDispatcher:
    """Outbox-backed dispatcher with one delivery thread per sink, and its metrics."""
    outbox = open_outbox(settings)
    registry.register(OutboxCollector(outbox, [s.name for s in sinks]))
    catalog = RuleCatalog.from_ruleset(ruleset, runbook_base=str(settings.alert_runbook_url))
    if models is not None:
        catalog.register_models(models.rules())
    policy = AlertPolicy(
        ttl_s=settings.alert_ttl_s, quiet_s=settings.alert_quiet_s, lateness_s=engine.watermark.lateness_s
    )
    return AlertDispatcher(
        sinks,
        AlertMetrics.create(registry),
        outbox=outbox,
        catalog=catalog,
        policy=policy,
        watermark=lambda: engine.watermark.value,
        background=True,
    )


def kafka_pipeline(settings: Settings, registry: CollectorRegistry) -> Pipeline:
    """Kafka -> Elasticsearch -> rules -> alerts index + Alertmanager (``logwarden run``)."""
    ruleset = load_ruleset(settings.rules_dir)
    models = load_models(settings)
    # with no rule and no model, documents are only written out: JSON text, never a dict
    normalizer = build_normalizer(settings, dicts=bool(ruleset.rules or ruleset.correlations) or models is not None)
    metrics = IngestMetrics.create(registry)
    metrics.init_sources(settings.topics.values())
    es = elasticsearch_client(settings)
    try:
        timeout_ms = int(settings.kafka_bootstrap_timeout_s * 1000)
        source = KafkaSource(
            settings.kafka_bootstrap_servers,
            settings.topics,
            settings.kafka_group_id,
            metrics=metrics,
            bootstrap_timeout_ms=timeout_ms,
            session_timeout_ms=int(settings.kafka_session_timeout_s * 1000),
        )
        dead_letters = KafkaDeadLetterSink(settings.kafka_bootstrap_servers, bootstrap_timeout_ms=timeout_ms)
    except (IngestError, KafkaError) as exc:
        es.close()
        raise ServiceUnavailable(f"LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS: {exc}") from None
    sinks: list[AlertSink] = [ElasticsearchAlertIndex(es, settings.index_prefix)]
    kibana = str(settings.kibana_url) if settings.kibana_url else None
    if settings.alertmanager_url is not None:
        am = AlertmanagerSink(str(settings.alertmanager_url), kibana_url=kibana, ttl_s=settings.alert_ttl_s)
        sinks.append(am)
    engine = RuleEngine(ruleset)
    if models is not None:
        registry.register(ModelCollector(models))
    try:
        alerts = alert_dispatcher(settings, sinks, registry, ruleset, engine, models)
    except ConfigError:
        source.close()
        dead_letters.close()
        es.close()
        raise
    return Pipeline(
        source=source,
        normalizer=normalizer,
        events=ElasticsearchEventSink(es, settings.index_prefix, concurrency=settings.elasticsearch_bulk_concurrency),
        dead_letters=dead_letters,
        engine=engine,
        alerts=alerts,
        metrics=metrics,
        batch_size=settings.batch_size,
        poll_timeout_s=settings.poll_timeout_s,
        pipelined=True,  # Elasticsearch and Kafka clients are thread-safe: write N while preparing N+1
        rule_metrics=RuleMetrics.create(registry, engine),
        models=models,
    )
