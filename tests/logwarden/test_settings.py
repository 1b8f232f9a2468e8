"""Typed settings: LOGWARDEN_* environment, the YAML file named by LOGWARDEN_CONFIG, defaults; secrets masked."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from logwarden.errors import ConfigError, LogwardenError
from logwarden.settings import Settings, bundled_rules_dir, load_settings

SECRET = "hunter2-very-secret"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LOGWARDEN_* from the outer environment; monkeypatch restores everything afterwards."""
    for name in list(os.environ):
        if name.startswith("LOGWARDEN_"):
            monkeypatch.delenv(name)
    yield
    os.environ.pop("LOGWARDEN_CONFIG", None)  # load_settings(config_file) exports it; monkeypatch restores the rest


def config_error(**kw: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(**kw)  # type: ignore[arg-type]
    assert isinstance(info.value, LogwardenError)
    return str(info.value)


def test_defaults() -> None:
    s = load_settings()
    assert s.kafka_bootstrap_servers == "localhost:9092"
    assert s.topics == {"api-access": "api_access"}
    assert str(s.elasticsearch_url) == "http://localhost:9200/"
    assert s.elasticsearch_password is None
    assert s.metrics_port == 9108
    assert s.batch_size == 1000
    assert s.rules_dir == [bundled_rules_dir()]
    assert (bundled_rules_dir() / "api_access").is_dir()


def test_env_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("LOGWARDEN_TOPICS", '{"gateway": "api_access", "edge": "api_access"}')
    monkeypatch.setenv("LOGWARDEN_BATCH_SIZE", "50")
    monkeypatch.setenv("LOGWARDEN_ELASTICSEARCH_URL", "https://es.internal:9243")
    monkeypatch.setenv("LOGWARDEN_METRICS_PORT", "0")
    monkeypatch.setenv("LOGWARDEN_LOG_LEVEL", "DEBUG")
    s = load_settings()
    assert s.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert s.topics == {"gateway": "api_access", "edge": "api_access"}
    assert s.batch_size == 50
    assert str(s.elasticsearch_url) == "https://es.internal:9243/"
    assert s.metrics_port == 0
    assert s.log_level == "DEBUG"


def test_yaml_file_named_by_logwarden_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "logwarden.yml"
    path.write_text("batch_size: 7\nindex_prefix: acme\nkafka_group_id: g1\n", encoding="utf-8")
    monkeypatch.setenv("LOGWARDEN_CONFIG", str(path))
    monkeypatch.setenv("LOGWARDEN_KAFKA_GROUP_ID", "from-env")
    s = load_settings()
    assert (s.batch_size, s.index_prefix) == (7, "acme")
    assert s.kafka_group_id == "from-env"  # the environment wins over the file


def test_config_file_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "logwarden.yml"
    path.write_text("batch_size: 9\n", encoding="utf-8")
    assert load_settings(path).batch_size == 9


def test_overrides_win_and_none_is_ignored() -> None:
    assert load_settings(batch_size=3, store_path=None).batch_size == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOGWARDEN_METRICS_PORT", "70000"),
        ("LOGWARDEN_METRICS_PORT", "http"),
        ("LOGWARDEN_BATCH_SIZE", "0"),
        ("LOGWARDEN_ELASTICSEARCH_URL", "not a url"),
        ("LOGWARDEN_INDEX_PREFIX", "Upper-Case"),
        ("LOGWARDEN_LOG_LEVEL", "LOUD"),
        ("LOGWARDEN_POLL_TIMEOUT_S", "-1"),
        ("LOGWARDEN_RULES_DIR", '["/no/such/rules"]'),
        ("LOGWARDEN_TOPICS", "{}"),
        # not JSON at all: pydantic-settings fails before validation (the message named no setting)
        ("LOGWARDEN_TOPICS", "{not json"),
    ],
)
def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    assert name in config_error()


def test_every_bad_setting_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGWARDEN_METRICS_PORT", "70000")
    monkeypatch.setenv("LOGWARDEN_BATCH_SIZE", "0")
    message = config_error()
    assert "LOGWARDEN_METRICS_PORT" in message and "LOGWARDEN_BATCH_SIZE" in message


def test_unknown_topic_source_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGWARDEN_TOPICS", '{"api-access": "api_access", "audit": "no_such_parser"}')
    message = config_error()
    assert "LOGWARDEN_TOPICS" in message
    assert "no_such_parser" in message
    assert "api_access" in message  # the known ones are listed


def test_unknown_key_in_the_yaml_file_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "logwarden.yml"
    path.write_text("batch_sise: 5\n", encoding="utf-8")
    monkeypatch.setenv("LOGWARDEN_CONFIG", str(path))
    assert "BATCH_SISE" in config_error()


def test_misspelt_password_key_is_not_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "logwarden.yml"
    path.write_text(f"elasticsearch_pasword: {SECRET}\n", encoding="utf-8")
    monkeypatch.setenv("LOGWARDEN_CONFIG", str(path))
    message = config_error()
    assert "ELASTICSEARCH_PASWORD" in message
    assert SECRET not in message


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "LOGWARDEN_CONFIG" in config_error(config_file=tmp_path / "nope.yml")
    monkeypatch.setenv("LOGWARDEN_CONFIG", str(tmp_path / "also-nope.yml"))
    assert "LOGWARDEN_CONFIG" in config_error()


@pytest.mark.parametrize(
    "content",
    [
        "batch_size: [1\n",  # not YAML (was an uncaught yaml.YAMLError with a traceback)
        "- 1\n- 2\n",  # YAML, but not a mapping (was an uncaught TypeError)
        "just a string\n",
    ],
)
def test_unusable_config_file_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    path = tmp_path / "logwarden.yml"
    path.write_text(content, encoding="utf-8")
    monkeypatch.setenv("LOGWARDEN_CONFIG", str(path))
    message = config_error()
    assert "LOGWARDEN_CONFIG" in message
    assert str(path) in message


def test_empty_config_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "logwarden.yml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    monkeypatch.setenv("LOGWARDEN_CONFIG", str(path))
    assert load_settings().batch_size == 1000


def test_secrets_are_masked_in_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGWARDEN_ELASTICSEARCH_USERNAME", "elastic")
    monkeypatch.setenv("LOGWARDEN_ELASTICSEARCH_PASSWORD", SECRET)
    monkeypatch.setenv("LOGWARDEN_ELASTICSEARCH_API_KEY", SECRET + "-key")
    s = load_settings()
    assert s.elasticsearch_password is not None
    assert s.elasticsearch_password.get_secret_value() == SECRET
    shown = s.redacted()
    assert shown["elasticsearch_password"] == "**********"
    assert shown["elasticsearch_api_key"] == "**********"
    assert shown["elasticsearch_username"] == "elastic"
    assert SECRET not in orjson.dumps(shown).decode()
    assert SECRET not in repr(s) and SECRET not in str(s)


def test_password_never_in_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOGWARDEN_ELASTICSEARCH_PASSWORD", SECRET)
    monkeypatch.setenv("LOGWARDEN_METRICS_PORT", "70000")
    assert SECRET not in config_error()
    # a password of the wrong type: the error names the setting but never shows the value
    monkeypatch.delenv("LOGWARDEN_METRICS_PORT")
    monkeypatch.delenv("LOGWARDEN_ELASTICSEARCH_PASSWORD")
    path = tmp_path / "logwarden.yml"
    path.write_text(f"elasticsearch_password: [{SECRET}]\nelasticsearch_api_key: {{k: {SECRET}}}\n", encoding="utf-8")
    monkeypatch.setenv("LOGWARDEN_CONFIG", str(path))
    message = config_error()
    assert "LOGWARDEN_ELASTICSEARCH_PASSWORD" in message
    assert "LOGWARDEN_ELASTICSEARCH_API_KEY" in message
    assert SECRET not in message


def test_unknown_env_vars_with_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGWARDEN_SOMETHING_ELSE", "x")
    assert isinstance(load_settings(), Settings)
