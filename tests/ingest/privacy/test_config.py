"""PrivacyConfig and the factory: order, key handling, field validation, the whole chain on generated traffic."""

from __future__ import annotations

import stat
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from ingest.ecs import EVENT_FIELDS
from ingest.enrich.config import EnrichmentConfig, build_enrichment_transforms
from ingest.pipeline import Normalizer
from ingest.privacy import PrivacyConfigError
from ingest.privacy._doc import flatten
from ingest.privacy.config import (
    PrivacyConfig,
    build_privacy_transforms,
    build_reference_transforms,
    demo_privacy_config,
    load_or_create_key_file,
    load_or_create_keyring_file,
)
from ingest.privacy.encrypt import generate_key, reveal
from ingest.privacy.fused import PrivacyPass
from ingest.privacy.pseudonymize import PSEUDONYM_PATTERN, Pseudonymizer
from ingest.records import Record
from ingest.sources.synthetic import generate_api_access, to_json_line

KEY = "a-test-pseudonymization-key-of-40-chars!"


def steps(transforms: list[Any]) -> list[Any]:
    """The privacy steps, in order (those of a fused pass included)."""
    return [s for t in transforms for s in (t.steps if isinstance(t, PrivacyPass) else [t])]


def names(transforms: list[Any]) -> list[str]:
    return [type(t).__name__ for t in steps(transforms)]


def test_order_of_the_chain() -> None:
    config = PrivacyConfig(pseudonymization_key=KEY)
    expected = ["Minimizer", "Pseudonymizer", "Redactor", "Masker"]
    assert names(build_privacy_transforms(config)) == expected
    assert [type(t).__name__ for t in build_reference_transforms(config)] == expected
    sealed = PrivacyConfig(pseudonymization_key=KEY, encryption_keys={"k1": generate_key()})
    assert names(build_privacy_transforms(sealed)) == ["Minimizer", "Sealer", "Pseudonymizer", "Redactor", "Masker"]


def test_chains_that_minimize_are_fused_into_one_pass() -> None:
    for config in (
        PrivacyConfig(pseudonymization_key=KEY),
        PrivacyConfig(pseudonymization_key=KEY, encryption_keys={"k1": generate_key()}, seal_original=True),
        PrivacyConfig(pseudonymize=False),
        PrivacyConfig(pseudonymization_key=KEY, redact=False, mask=False),
    ):
        (fused,) = build_privacy_transforms(config)
        assert isinstance(fused, PrivacyPass)
        assert names(list(fused.steps)) == names(build_reference_transforms(config))
    # without minimization, values may have any shape: the separate steps run
    unminimized = PrivacyConfig(pseudonymization_key=KEY, minimize=False)
    assert [type(t).__name__ for t in build_privacy_transforms(unminimized)] == ["Pseudonymizer", "Redactor", "Masker"]


def test_no_key_is_a_clear_error_not_a_silent_skip() -> None:
    with pytest.raises(PrivacyConfigError) as info:
        build_privacy_transforms(PrivacyConfig())
    assert info.value.field == "pseudonymization_key"
    assert "pseudonymize: false" in str(info.value)


def test_explicit_opt_outs() -> None:
    assert build_privacy_transforms(PrivacyConfig(enabled=False)) == []
    assert names(build_privacy_transforms(PrivacyConfig(pseudonymize=False))) == ["Minimizer", "Redactor", "Masker"]
    only = PrivacyConfig(pseudonymization_key=KEY, minimize=False, redact=False, mask=False)
    assert names(build_privacy_transforms(only)) == ["Pseudonymizer"]


def test_short_key_and_bad_key_id_are_rejected() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        PrivacyConfig(pseudonymization_key="short")
    with pytest.raises(ValidationError):
        PrivacyConfig(pseudonymization_key=KEY, pseudonymization_key_id="Bad_Id")


def test_key_id_derived_or_configured() -> None:
    derived = steps(build_privacy_transforms(PrivacyConfig(pseudonymization_key=KEY)))[1]
    named = steps(build_privacy_transforms(PrivacyConfig(pseudonymization_key=KEY, pseudonymization_key_id="k2026")))[1]
    assert isinstance(derived, Pseudonymizer) and isinstance(named, Pseudonymizer)
    assert len(derived.key_id) == 8
    assert named.key_id == "k2026"


def test_key_file(tmp_path: Path) -> None:
    path = tmp_path / "store" / "pseudonymization.key"
    key = load_or_create_key_file(path)
    assert len(key.get_secret_value()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key_file(path).get_secret_value() == key.get_secret_value()  # reused, not regenerated
    config = PrivacyConfig(pseudonymization_key_file=path)
    assert "Pseudonymizer" in names(build_privacy_transforms(config))
    path.write_text("short")
    with pytest.raises(PrivacyConfigError) as info:
        build_privacy_transforms(config)
    assert info.value.field == "pseudonymization_key_file"
    with pytest.raises(PrivacyConfigError, match="cannot read"):
        build_privacy_transforms(PrivacyConfig(pseudonymization_key_file=tmp_path / "missing"))


def test_demo_config_generates_and_reuses_keys(tmp_path: Path) -> None:
    first, second = demo_privacy_config(tmp_path), demo_privacy_config(tmp_path)
    assert first.pseudonymization_key is not None and second.pseudonymization_key is not None
    assert first.pseudonymization_key.get_secret_value() == second.pseudonymization_key.get_secret_value()
    assert first.keyring() == second.keyring()
    assert names(build_privacy_transforms(first))[1] == "Sealer"
    assert set(load_or_create_keyring_file(tmp_path / "encryption-keys.json")) == {"demo1"}
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(PrivacyConfigError):
        load_or_create_keyring_file(tmp_path / "bad.json")


def test_secrets_never_printed() -> None:
    config = PrivacyConfig(pseudonymization_key=KEY, encryption_keys={"k1": generate_key()})
    assert KEY not in repr(config) and KEY not in str(config.model_dump())
    for transform in build_privacy_transforms(config):
        assert KEY not in repr(transform)


def test_encryption_key_validation() -> None:
    with pytest.raises(ValidationError, match="32"):
        PrivacyConfig(encryption_keys={"k1": SecretStr("c2hvcnQ=")})
    with pytest.raises(ValidationError, match="key id"):
        PrivacyConfig(encryption_keys={"bad id": generate_key()})
    two = PrivacyConfig(pseudonymization_key=KEY, encryption_keys={"a": generate_key(), "b": generate_key()})
    with pytest.raises(PrivacyConfigError) as info:
        build_privacy_transforms(two)
    assert info.value.field == "encryption_key_id"
    with pytest.raises(PrivacyConfigError):
        build_privacy_transforms(two.model_copy(update={"encryption_key_id": "c"}))
    assert "Sealer" in names(build_privacy_transforms(two.model_copy(update={"encryption_key_id": "b"})))
    with pytest.raises(PrivacyConfigError) as info:
        build_privacy_transforms(PrivacyConfig(pseudonymization_key=KEY, seal_original=True))
    assert info.value.field == "encryption_keys"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("pseudonymize_fields", ["user.nope"]),
        ("extra_mask_fields", ["nope.*"]),
        ("mask_fields", ["x"]),
        ("secret_fields", ["y"]),
        ("encrypt_fields", ["z"]),
        ("allowlists", {"api_access": ["nope"]}),
    ],
)
def test_unknown_fields_are_configuration_errors(setting: str, value: Any) -> None:
    config = PrivacyConfig(pseudonymization_key=KEY, encryption_keys={"k1": generate_key()}, **{setting: value})
    with pytest.raises(PrivacyConfigError) as info:
        build_privacy_transforms(config)
    assert info.value.field == setting


def test_pseudonyms_need_keyword_fields() -> None:
    with pytest.raises(PrivacyConfigError, match="keyword"):
        build_privacy_transforms(PrivacyConfig(pseudonymization_key=KEY, extra_pseudonymize_fields=["source.ip"]))


def test_whole_chain_on_generated_traffic() -> None:
    privacy = PrivacyConfig(pseudonymization_key=KEY, encryption_keys={"k1": generate_key()})
    normalizer = Normalizer([*build_enrichment_transforms(EnrichmentConfig()), *build_privacy_transforms(privacy)])
    stream = generate_api_access(duration=timedelta(minutes=30), scenarios=["brute_force", "key_leak"])
    raws = [to_json_line(e) for e in islice(stream, 2000)]
    events, dead = normalizer.normalize_all([Record("api_access", raw) for raw in raws])
    assert not dead and len(events) == len(raws)
    user_ids = set()
    for event in events:
        doc = event.doc
        flat = flatten(doc)
        location = {k for k in flat if k.startswith("source.geo.location.")}
        assert set(flat) - location <= set(EVENT_FIELDS)
        assert PSEUDONYM_PATTERN.match(doc["user"]["id"])
        assert doc["related"]["user"] == [doc["user"]["id"]]
        user_ids.add(doc["user"]["id"])
        assert reveal(doc, privacy.keyring())["user.id"].startswith("user_")
    assert 10 < len(user_ids) < len(events)  # grouping by user still works
