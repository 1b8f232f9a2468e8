"""Privacy settings and the factory of the privacy transforms.

Keys: pseudonymization needs a secret key, and there is no silent default. ``build_privacy_transforms``
raises :class:`PrivacyConfigError` (``field="pseudonymization_key"``) when pseudonymization is on and no key
is set: ``logwarden run`` must be given one (``pseudonymization_key`` or ``pseudonymization_key_file``), or be
told explicitly ``pseudonymize: false`` / ``enabled: false``. ``logwarden demo`` uses
:func:`demo_privacy_config`, which generates keys into its store directory on first use (mode 0600) and
reuses them afterwards, so pseudonyms stay stable across demo runs.

The chain is built from the separate steps (:func:`build_reference_transforms`, the reference semantics) and,
when it starts with minimization, fused into one pass over each document (:mod:`ingest.privacy.fused`, same
output):

>>> config = PrivacyConfig(pseudonymization_key="x" * 32)
>>> [type(t).__name__ for t in build_reference_transforms(config)]
['Minimizer', 'Pseudonymizer', 'Redactor', 'Masker']
>>> [(type(t).__name__, [type(s).__name__ for s in t.steps]) for t in build_privacy_transforms(config)]
[('PrivacyPass', ['Minimizer', 'Pseudonymizer', 'Redactor', 'Masker'])]
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ingest.ecs import EVENT_FIELDS
from ingest.pipeline import Transform
from ingest.privacy import PrivacyConfigError
from ingest.privacy.encrypt import KEY_ID_PATTERN as SEAL_KEY_ID_PATTERN
from ingest.privacy.encrypt import Sealer, decode_key, generate_key
from ingest.privacy.fused import fuse
from ingest.privacy.mask import Masker
from ingest.privacy.minimize import Minimizer, expand_patterns
from ingest.privacy.pseudonymize import KEY_ID_PATTERN, Pseudonymizer, derive_key_id, identifier_fields
from ingest.privacy.redact import Redactor

log = logging.getLogger(__name__)

MIN_KEY_CHARS: Final = 32

#: Free-text fields masked by default (when catalogued), plus every field of type ``text``.
DEFAULT_MASK_FIELDS: Final = (
    "message",
    "event.original",
    "event.reason",
    "url.original",
    "url.full",
    "url.path",
    "url.query",
    "url.fragment",
    "http.request.body.content",
    "http.response.body.content",
    "http.request.referrer",
    "error.message",
    "error.stack_trace",
    "user_agent.original",
    "user_agent.name",
    "user_agent.device.name",
    "logwarden.api.route",
    "logwarden.audit.metadata",
    "logwarden.audit.description",
    "logwarden.cloudtrail.request_parameters",
    "source.address",
    "source.domain",
)

#: Parser-written constants that cannot carry producer text: not scanned for secrets.
TRUSTED_FIELDS: Final = (
    "event.kind",
    "event.category",
    "event.type",
    "event.outcome",
    "event.dataset",
    "event.module",
    "ecs.version",
    "logwarden.source",
)
_NON_TEXT_TYPES: Final = frozenset({"ip", "date", "long", "double", "boolean", "geo_point"})
_SECRET_LEAF_NAMES: Final = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "access_token",
        "refresh_token",
        "session_token",
        "client_secret",
        "private_key",
        "credentials",
    }
)


class PrivacyConfig(BaseModel):
    """What the privacy transforms do. Defaults are the safe choice; every field list is checked against the
    catalogue (``None`` = the default computed from it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="master switch; false = no privacy transform at all")
    # pseudonymization
    pseudonymize: bool = True
    pseudonymization_key: SecretStr | None = Field(default=None, description=f"at least {MIN_KEY_CHARS} characters")
    pseudonymization_key_file: Path | None = Field(default=None, description="file holding the key instead")
    pseudonymization_key_id: str | None = Field(
        default=None, pattern=KEY_ID_PATTERN.pattern, description="default: derived from the key (8 hex digits)"
    )
    pseudonymize_fields: list[str] | None = None
    extra_pseudonymize_fields: list[str] = Field(default_factory=list)
    # redaction
    redact: bool = True
    secret_fields: list[str] | None = Field(default=None, description="fields replaced whole by [REDACTED:secret]")
    # masking
    mask: bool = True
    mask_fields: list[str] | None = None
    extra_mask_fields: list[str] = Field(default_factory=list)
    # sealing (encryption for re-identification): on when encryption_keys is not empty
    encryption_keys: dict[str, SecretStr] = Field(default_factory=dict, description="key id -> base64 32-byte key")
    encryption_key_id: str | None = Field(default=None, description="active key; required with several keys")
    encrypt_fields: list[str] | None = Field(default=None, description="default: the pseudonymized fields")
    seal_original: bool = Field(default=False, description="keep event.original, but only inside the sealed blob")
    # minimization
    minimize: bool = True
    allowlists: dict[str, list[str]] = Field(default_factory=dict, description="source -> allowed field patterns")
    keep_original: bool = False
    keep_original_sources: list[str] = Field(default_factory=list)
    cache_size: int = Field(default=65_536, ge=0)

    @field_validator("pseudonymization_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_KEY_CHARS:
            raise ValueError(f"the key must have at least {MIN_KEY_CHARS} characters")
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _valid_keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, key in value.items():
            if not SEAL_KEY_ID_PATTERN.match(key_id):
                raise ValueError(f"key id {key_id!r} must match {SEAL_KEY_ID_PATTERN.pattern}")
            try:
                decode_key(key.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"key {key_id!r}: {exc}") from None
        return value

    def keyring(self) -> dict[str, bytes]:
        """The decoded encryption keyring (key id -> 32 bytes)."""
        return {key_id: decode_key(key.get_secret_value()) for key_id, key in self.encryption_keys.items()}


def default_mask_fields(catalogue: Mapping[str, str] = EVENT_FIELDS) -> list[str]:
    """:data:`DEFAULT_MASK_FIELDS` present in ``catalogue`` plus every field of type ``text``."""
    fields = [f for f in DEFAULT_MASK_FIELDS if f in catalogue]
    return fields + [f for f, kind in catalogue.items() if kind == "text" and f not in fields]


def pseudonymization_key(config: PrivacyConfig) -> bytes:
    """The key bytes from the setting or the key file; :class:`PrivacyConfigError` when there is none."""
    if config.pseudonymization_key is not None:
        return config.pseudonymization_key.get_secret_value().encode()
    if config.pseudonymization_key_file is not None:
        try:
            key = config.pseudonymization_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PrivacyConfigError("pseudonymization_key_file", f"cannot read: {exc.strerror}") from None
        if len(key) < MIN_KEY_CHARS:
            raise PrivacyConfigError(
                "pseudonymization_key_file", f"the key must have at least {MIN_KEY_CHARS} characters"
            )
        return key.encode()
    raise PrivacyConfigError(
        "pseudonymization_key",
        "no pseudonymization key: user identifiers would be stored in clear. Set pseudonymization_key "
        f"(at least {MIN_KEY_CHARS} random characters, e.g. `python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'`) or pseudonymization_key_file, or disable explicitly with "
        "pseudonymize: false",
    )


def _fields(setting: str, names: list[str] | None, default: list[str], catalogue: Mapping[str, str]) -> list[str]:
    if names is None:
        return default
    try:
        return expand_patterns(catalogue, names)
    except ValueError as exc:
        raise PrivacyConfigError(setting, str(exc)) from None


def build_privacy_transforms(config: PrivacyConfig, catalogue: Mapping[str, str] = EVENT_FIELDS) -> list[Transform]:
    """The privacy transforms: :func:`build_reference_transforms`, fused into one pass when equivalent.

    Run them after enrichment (:func:`ingest.enrich.config.build_enrichment_transforms`), so that
    ``related.user`` is filled before pseudonymization and derived fields are redacted and masked too.
    """
    return fuse(build_reference_transforms(config, catalogue), cache_size=min(config.cache_size, 16_384))


def build_reference_transforms(config: PrivacyConfig, catalogue: Mapping[str, str] = EVENT_FIELDS) -> list[Transform]:
    """The separate privacy transforms in order: minimize -> seal -> pseudonymize -> redact -> mask."""
    if not config.enabled:
        log.warning("privacy transforms disabled: identifiers, secrets and personal data are stored as received")
        return []
    transforms: list[Transform] = []
    if config.minimize:
        try:
            transforms.append(
                Minimizer(
                    catalogue,
                    allowlists=config.allowlists,
                    keep_original=config.keep_original or config.seal_original,
                    keep_original_sources=config.keep_original_sources,
                )
            )
        except ValueError as exc:
            raise PrivacyConfigError("allowlists", str(exc)) from None

    pseudo_fields: list[str] = []
    if config.pseudonymize:
        default = list(identifier_fields(catalogue))
        pseudo_fields = _fields("pseudonymize_fields", config.pseudonymize_fields, default, catalogue)
        extra = _fields("extra_pseudonymize_fields", config.extra_pseudonymize_fields, [], catalogue)
        pseudo_fields = list(dict.fromkeys([*pseudo_fields, *extra]))
        not_keyword = [f for f in pseudo_fields if catalogue.get(f) != "keyword"]
        if not_keyword:
            raise PrivacyConfigError("pseudonymize_fields", f"pseudonyms need keyword fields: {not_keyword}")

    if config.encryption_keys:
        transforms.append(_sealer(config, pseudo_fields or list(identifier_fields(catalogue)), catalogue))
    elif config.seal_original or config.encrypt_fields:
        raise PrivacyConfigError("encryption_keys", "sealing is configured but the keyring is empty")

    if config.pseudonymize:
        key = pseudonymization_key(config)
        key_id = config.pseudonymization_key_id or derive_key_id(key)
        transforms.append(Pseudonymizer(key, key_id, pseudo_fields, cache_size=config.cache_size))

    if config.redact:
        default_secret = [f for f in catalogue if f.rsplit(".", 1)[-1] in _SECRET_LEAF_NAMES]
        secret_fields = _fields("secret_fields", config.secret_fields, default_secret, catalogue)
        skip = [
            f
            for f, kind in catalogue.items()
            if kind in _NON_TEXT_TYPES or f in TRUSTED_FIELDS or f.startswith("logwarden.privacy.")
        ]
        skip = list(dict.fromkeys([*skip, *pseudo_fields]))
        transforms.append(
            Redactor(skip_fields=skip, secret_fields=secret_fields, cache_size=min(config.cache_size, 16_384))
        )

    if config.mask:
        mask_fields = _fields("mask_fields", config.mask_fields, default_mask_fields(catalogue), catalogue)
        extra = _fields("extra_mask_fields", config.extra_mask_fields, [], catalogue)
        # pseudonymized fields hold pseudonyms by now: nothing to mask there
        fields = [f for f in dict.fromkeys([*mask_fields, *extra]) if f not in pseudo_fields]
        transforms.append(Masker(fields, cache_size=min(config.cache_size, 16_384)))
    return transforms


def _sealer(config: PrivacyConfig, default_fields: list[str], catalogue: Mapping[str, str]) -> Sealer:
    keyring = config.keyring()
    key_id = config.encryption_key_id
    if key_id is None:
        if len(keyring) != 1:
            raise PrivacyConfigError("encryption_key_id", "several encryption keys: name the active one")
        key_id = next(iter(keyring))
    if key_id not in keyring:
        raise PrivacyConfigError("encryption_key_id", f"{key_id!r} is not a key id of encryption_keys")
    default = [f for f in default_fields if not f.startswith("related.")]
    fields = _fields("encrypt_fields", config.encrypt_fields, default, catalogue)
    remove: list[str] = []
    if config.seal_original:
        fields = list(dict.fromkeys([*fields, "event.original"]))
        if not config.keep_original:
            remove.append("event.original")
    return Sealer(keyring, key_id, fields, remove_fields=remove)


# --- key files ----------------------------------------------------------------------------------------------


def _write_secret_file(path: Path, content: bytes) -> bool:
    """Create ``path`` with mode 0600 holding ``content``; False when it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, content)
    finally:
        os.close(fd)
    return True


def load_or_create_key_file(path: Path) -> SecretStr:
    """The pseudonymization key stored in ``path``, generated (mode 0600) when the file does not exist."""
    if _write_secret_file(path, (secrets.token_urlsafe(32) + "\n").encode()):
        log.info("generated a pseudonymization key in %s", path)
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_KEY_CHARS:
        raise PrivacyConfigError(
            "pseudonymization_key_file", f"{path}: the key must have at least {MIN_KEY_CHARS} characters"
        )
    return SecretStr(key)


def load_or_create_keyring_file(path: Path, key_id: str = "demo1") -> dict[str, SecretStr]:
    """An encryption keyring (JSON ``{key id: base64 key}``) stored in ``path``, generated when missing."""
    _write_secret_file(path, orjson.dumps({key_id: generate_key()}, option=orjson.OPT_APPEND_NEWLINE))
    try:
        data: Any = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        raise PrivacyConfigError("encryption_keys", f"{path}: not a JSON object of key id -> key") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise PrivacyConfigError("encryption_keys", f"{path}: not a JSON object of key id -> key")
    return {str(k): SecretStr(v) for k, v in data.items()}


def demo_privacy_config(store_dir: Path, **overrides: Any) -> PrivacyConfig:
    """Privacy for ``logwarden demo``: keys generated into (and reused from) ``store_dir``, sealing on."""
    values: dict[str, Any] = {
        "pseudonymization_key": load_or_create_key_file(store_dir / "pseudonymization.key"),
        "encryption_keys": load_or_create_keyring_file(store_dir / "encryption-keys.json"),
    }
    values.update(overrides)
    return PrivacyConfig(**values)
