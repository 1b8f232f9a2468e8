"""Seal original values (AES-256-GCM) so that an authorized person can re-identify an event later.

Before pseudonymization, the original values of the chosen fields are serialized together
(``{"user.id": "alice", ...}``, JSON), encrypted with the active key of a keyring under a fresh random
96-bit nonce, and stored in one keyword field, ``logwarden.privacy.sealed``::

    v1.<key id>.<base64url(nonce || ciphertext || 16-byte tag)>

plus ``logwarden.privacy.sealed_key_id`` (indexed, to find what a retired key still opens). One field per
document rather than one per sealed field: the mapping stays fixed whatever is sealed, one nonce and
one tag per document, and nothing about which fields were present leaks beyond the blob's length.
The associated data binds the blob to its format version and key id. The field is stored in ``_source``
only (not indexed, see :mod:`ingest.ecs`).

Key rotation: add a new key to the keyring and make it active; old documents keep opening with the old key
as long as it stays in the keyring. :func:`reveal` opens a document; :func:`reidentify` is the audited
entry point for a command line: it refuses to work without an actor and a reason, and writes an audit
record (who, why, when, which document, which fields, never the values) before it returns anything.

>>> ring = {"k1": bytes(32)}
>>> sealer = Sealer(ring, "k1", ["user.id"])
>>> doc = sealer({"user": {"id": "alice"}})
>>> doc["logwarden"]["privacy"]["sealed"].startswith("v1.k1.")
True
>>> reveal(doc, ring)
{'user.id': 'alice'}
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ingest.privacy import PrivacyError, RevealError
from ingest.privacy._doc import Tree, build_tree, get_field, privacy_node, split_field

VERSION: Final = "v1"
SEALED_FIELD: Final = "logwarden.privacy.sealed"
KEY_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_NONCE_BYTES: Final = 12

Keyring = Mapping[str, bytes]


def generate_key() -> str:
    """A new random AES-256 key, base64url-encoded (what the keyring settings hold)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def decode_key(text: str) -> bytes:
    """A 32-byte key from base64 (standard or URL-safe, padding optional) or 64 hex digits."""
    text = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    try:
        key = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64 or hex") from None
    if len(key) != 32:
        raise ValueError(f"decodes to {len(key)} bytes, AES-256 needs 32")
    return key


def _aad(key_id: str) -> bytes:
    return f"logwarden.sealed.{VERSION}.{key_id}".encode()


class Sealer:
    """Seal the values of ``fields`` present in a document with the keyring's key ``key_id``.

    ``remove_fields`` are removed from the document once sealed (e.g. ``event.original``: kept, but only
    encrypted).
    """

    def __init__(
        self, keyring: Keyring, key_id: str, fields: Iterable[str], *, remove_fields: Iterable[str] = ()
    ) -> None:
        if key_id not in keyring:
            raise ValueError(f"active key id {key_id!r} is not in the keyring")
        if not KEY_ID_PATTERN.match(key_id):
            raise ValueError(f"key id must match {KEY_ID_PATTERN.pattern}")
        if len(keyring[key_id]) != 32:
            raise ValueError("AES-256 keys have 32 bytes")
        self.key_id = key_id
        self.fields = tuple(fields)
        self.remove_fields = tuple(remove_fields)
        self._tree: Tree = build_tree(self.fields)
        self._aead = AESGCM(keyring[key_id])
        self._aad = _aad(key_id)
        self._prefix = f"{VERSION}.{key_id}."

    def __repr__(self) -> str:  # never the key
        return f"Sealer(key_id={self.key_id!r}, fields={len(self.fields)})"

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        _named_leaves(doc, self._tree, "", values)
        if values:
            self.store(doc, values)
        return doc

    def store(self, doc: dict[str, Any], values: dict[str, Any]) -> None:
        """Seal ``values`` (field -> original value) into ``doc``, then remove :attr:`remove_fields`."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, orjson.dumps(values, option=orjson.OPT_SORT_KEYS), self._aad)
        node = privacy_node(doc)
        node["sealed"] = self._prefix + base64.urlsafe_b64encode(sealed).decode("ascii")
        node["sealed_key_id"] = self.key_id
        for name in self.remove_fields:
            *parents, leaf = split_field(name)
            parent = get_field(doc, ".".join(parents)) if parents else doc
            if type(parent) is dict:
                parent.pop(leaf, None)


def _named_leaves(node: dict[str, Any], tree: Tree, prefix: str, out: dict[str, Any]) -> None:
    for key, sub in tree.items():
        value = node.get(key)
        if value is None:
            continue
        if sub is None:
            out[prefix + key] = value
        elif type(value) is dict:
            _named_leaves(value, sub, f"{prefix}{key}.", out)


def sealed_value(doc: Mapping[str, Any]) -> str | None:
    """``logwarden.privacy.sealed`` of a nested or a flattened (dotted keys) document."""
    value = doc.get(SEALED_FIELD)
    if value is None:
        value = get_field(dict(doc), SEALED_FIELD)
    return value if isinstance(value, str) else None


def reveal(doc: Mapping[str, Any], keyring: Keyring) -> dict[str, Any]:
    """The original values sealed in ``doc`` (field -> value). :class:`RevealError` says why not."""
    sealed = sealed_value(doc)
    if sealed is None:
        raise RevealError("the document holds no sealed values (logwarden.privacy.sealed)")
    return open_sealed(sealed, keyring)


def open_sealed(sealed: str, keyring: Keyring) -> dict[str, Any]:
    """Decrypt one ``v1.<key id>.<blob>`` value."""
    version, _, rest = sealed.partition(".")
    key_id, _, blob = rest.partition(".")
    if version != VERSION or not key_id or not blob:
        raise RevealError(f"not a sealed value of format {VERSION}")
    key = keyring.get(key_id)
    if key is None:
        known = ", ".join(sorted(keyring)) or "none"
        raise RevealError(f"sealed with key id {key_id!r}, which is not in the keyring (key ids: {known})")
    try:
        raw = base64.urlsafe_b64decode(blob)
    except (binascii.Error, ValueError):
        raise RevealError("the sealed value is not valid base64url") from None
    if len(raw) < _NONCE_BYTES + 16:
        raise RevealError("the sealed value is truncated")
    try:
        plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(key_id))
    except InvalidTag:
        raise RevealError(
            f"cannot open the sealed value: wrong key for key id {key_id!r}, or the value was altered"
        ) from None
    values = orjson.loads(plain)
    if not isinstance(values, dict):
        raise RevealError("the sealed value does not hold a field map")
    return values


AuditSink = Callable[[dict[str, Any]], None]


def reidentify(
    hits: Iterable[Mapping[str, Any]],
    keyring: Keyring,
    *,
    actor: str,
    reason: str,
    audit: AuditSink,
    fields: Iterable[str] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[dict[str, Any]]:
    """Reveal documents for an authorized person, one audit record per document first.

    ``hits`` are documents, or Elasticsearch hits (``{"_id": ..., "_source": {...}}``), or store rows
    (``{"id": ..., "doc": {...}}``). Yields ``{"id": ..., "revealed": {field: value}}`` (only ``fields``
    when given). ``audit`` receives ``{"@timestamp", "event.action": "reidentify", "user.name": actor,
    "reason", "document_id", "fields"}``; if it raises, nothing is revealed.
    """
    if not actor.strip() or not reason.strip():
        raise PrivacyError("re-identification needs an actor and a reason (both are audited)")
    wanted = frozenset(fields) if fields is not None else None
    for hit in hits:
        doc = hit.get("_source", hit.get("doc", hit))
        if not isinstance(doc, Mapping):
            raise RevealError("a hit without a document")
        doc_id = hit.get("_id", hit.get("id"))
        values = reveal(doc, keyring)
        if wanted is not None:
            values = {k: v for k, v in values.items() if k in wanted}
        audit(
            {
                "@timestamp": now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "event": {"action": "reidentify", "kind": "event"},
                "user": {"name": actor},
                "reason": reason,
                "document_id": doc_id,
                "fields": sorted(values),
            }
        )
        yield {"id": doc_id, "revealed": values}


def jsonl_audit_log(path: Path) -> AuditSink:
    """An audit sink appending one JSON line per access to ``path`` (flushed and fsynced each time)."""

    def write(entry: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
            os.fsync(fd)
        finally:
            os.close(fd)

    return write


def reveal_command(
    lines: Iterable[bytes | str],
    out: IO[str],
    keyring: Keyring,
    *,
    actor: str,
    reason: str,
    audit_log: Path,
    fields: Iterable[str] | None = None,
) -> int:
    """``logwarden reveal``: JSON lines of documents/hits in, JSON lines of revealed values out.

    Returns the number of documents revealed. Errors (:class:`RevealError`, :class:`PrivacyError`) propagate
    with a message fit for the terminal; the audit log is written before each output line.
    """

    def hits() -> Iterator[Any]:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise RevealError(f"input line {number}: not JSON") from None

    count = 0
    audit = jsonl_audit_log(audit_log)
    for item in reidentify(hits(), keyring, actor=actor, reason=reason, audit=audit, fields=fields):
        out.write(orjson.dumps(item).decode() + "\n")
        count += 1
    return count
