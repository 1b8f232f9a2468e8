"""Typed settings: ``LOGWARDEN_*`` environment variables, then an optional YAML file, then defaults.

The YAML file is named by ``LOGWARDEN_CONFIG`` (or ``--config``); its keys are the field names
below (``kafka_bootstrap_servers: ...``). Secrets are :class:`SecretStr` and are never printed.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from ingest.enrich.config import EnrichmentConfig
from ingest.parsers import PARSERS
from ingest.privacy.config import PrivacyConfig
from logwarden.collector import DEFAULT_GEN0_THRESHOLD
from logwarden.errors import ConfigError

ENV_PREFIX = "LOGWARDEN_"


def bundled_rules_dir() -> Path:
    """The Sigma rules shipped with logwarden (``rules/`` of the source tree, inside the wheel)."""
    source_tree = Path(__file__).resolve().parents[1] / "rules"
    if source_tree.is_dir():
        return source_tree
    return Path(str(resources.files("logwarden.bundled_rules")))


class Settings(BaseSettings):
    """Everything logwarden can be told. Each field is also ``LOGWARDEN_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    # Kafka
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_group_id: str = "logwarden-ingest"
    topics: dict[str, str] = Field(
        default_factory=lambda: {"api-access": "api_access"},
        description='Kafka topic -> source (parser) name, e.g. {"api-access": "api_access"}',
    )
    kafka_topic_partitions: int = Field(default=3, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_session_timeout_s: float = Field(
        default=10.0, ge=6, le=300, description="a crashed worker's partitions move after this long"
    )
    kafka_bootstrap_timeout_s: float = Field(default=30.0, gt=0, description="how long to wait for Kafka at start")
    # Elasticsearch
    elasticsearch_url: AnyHttpUrl = AnyHttpUrl("http://localhost:9200")
    elasticsearch_username: str | None = None
    elasticsearch_password: SecretStr | None = None
    elasticsearch_api_key: SecretStr | None = None
    elasticsearch_timeout_s: float = Field(default=30.0, gt=0)
    index_prefix: str = Field(default="logwarden", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    index_replicas: int = Field(default=1, ge=0)
    elasticsearch_bulk_concurrency: int = Field(
        default=2,
        ge=1,
        le=16,
        description="bulk requests at once per batch (the batch cut in parts, one Elasticsearch write thread each)",
    )
    # Alerting
    alertmanager_url: AnyHttpUrl | None = None
    kibana_url: AnyHttpUrl | None = None
    alert_ttl_s: float = Field(
        default=300.0, ge=3, description="open alerts reach Alertmanager with endsAt = now + TTL, re-sent every TTL/3"
    )
    alert_quiet_s: float = Field(
        default=300.0, ge=0, description="an alert resolves once its window closed and it had no update this long"
    )
    alert_runbook_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://github.com/logwarden/logwarden/blob/main/docs/runbooks.md"),
        description="runbook_url of detection alerts without a rule `runbook:` (#<rule name> is appended)",
    )
    # Metrics
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=0, le=65535, description="0 disables the metrics endpoint")
    # Processing
    rules_dir: list[Path] = Field(default_factory=lambda: [bundled_rules_dir()])
    models_dir: Path | None = Field(
        default=None,
        description="ML model registry (logwarden models train --out DIR); its current models score the stream",
    )
    models: list[str] = Field(
        default_factory=list, description="model names of the registry to run (default: every name with a version)"
    )
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    poll_timeout_s: float = Field(default=1.0, gt=0)
    gc_gen0_threshold: int = Field(
        default=DEFAULT_GEN0_THRESHOLD,
        ge=700,
        description="container allocations between two young garbage collections (CPython default 700)",
    )
    # Privacy and enrichment (nested: LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY, LOGWARDEN_ENRICHMENT__GEOIP_CITY_DB)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    enrichment: EnrichmentConfig = Field(default_factory=EnrichmentConfig)
    # Embedded default
    store_path: Path = Path(".logwarden")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("topics")
    @classmethod
    def _known_sources(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted({s for s in value.values() if s not in PARSERS})
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; known: {sorted(PARSERS)}")
        if not value:
            raise ValueError("at least one topic is needed")
        return value

    @field_validator("models_dir")
    @classmethod
    def _registry_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"no such directory: {value}")
        return value

    @field_validator("rules_dir")
    @classmethod
    def _rules_exist(cls, value: list[Path]) -> list[Path]:
        missing = [str(p) for p in value if not p.exists()]
        if missing:
            raise ValueError(f"no such file or directory: {', '.join(missing)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(f"{ENV_PREFIX}CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    def redacted(self) -> dict[str, Any]:
        """The settings as plain values: secrets shown as ``**********``, passwords in URLs too."""
        values = self.model_dump(mode="json")
        for key, value in values.items():
            if key.endswith("_url") and isinstance(value, str):
                values[key] = safe_url(value)
        return values


def safe_url(url: str) -> str:
    """``url`` with any password replaced, fit for logs and error messages.

    >>> safe_url("http://elastic:s3cret@es:9200/")
    'http://elastic:**********@es:9200/'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:**********@{host}"))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate settings; problems become one :class:`ConfigError` naming each setting."""
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"{ENV_PREFIX}CONFIG: no such file: {config_file}")
        os.environ[f"{ENV_PREFIX}CONFIG"] = str(config_file)
    elif (named := os.environ.get(f"{ENV_PREFIX}CONFIG")) and not Path(named).is_file():
        raise ConfigError(f"{ENV_PREFIX}CONFIG: no such file: {named}")
    if named := os.environ.get(f"{ENV_PREFIX}CONFIG"):
        _check_config_file(Path(named))
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except SettingsError as exc:  # e.g. LOGWARDEN_TOPICS that is not JSON; the message names the field
        field = re.search(r'field "(\w+)"', str(exc))
        setting = f"{ENV_PREFIX}{field[1].upper()}" if field else "settings"
        raise ConfigError(f"{setting}: cannot parse the value (a JSON value is expected): {exc}") from None
    except (ValueError, OSError) as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None


def _check_config_file(path: Path) -> None:
    """The settings file must be a YAML mapping; say so naming ``LOGWARDEN_CONFIG`` (no value is echoed)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{ENV_PREFIX}CONFIG: cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "parse error"
        raise ConfigError(f"{ENV_PREFIX}CONFIG: {path} is not valid YAML{where}: {problem}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{ENV_PREFIX}CONFIG: {path} must be a mapping of settings, not a {type(data).__name__}")


def describe_validation_error(exc: ValidationError) -> str:
    """``LOGWARDEN_METRICS_PORT: Input should be less than or equal to 65535 (got '70000')`` per problem."""
    problems = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        setting = f"{ENV_PREFIX}{str(err['loc'][0]).upper()}" if err["loc"] else "settings"
        secret = "password" in name or "api_key" in name or err["type"] == "extra_forbidden"  # a misspelt secret
        shown = "" if secret else f" (got {err.get('input')!r:.80})"
        problems.append(f"{setting}: {err['msg']}{shown}" if setting != name else f"{name}: {err['msg']}")
    return "; ".join(problems)
