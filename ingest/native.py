"""The native fast path of the ``api_access`` chain: loading the extension and deciding when it applies.

The extension ``ingest._native`` (Rust + PyO3, ``native/`` at the top of the repository, built by
``pip install`` when cargo is installed) turns the raw bytes of a gateway event into the final document in
one call: decode, parse, enrich, minimize, pseudonymize, redact, mask, and write the document either as JSON
text (what Elasticsearch receives: a worker whose documents are only written out never builds a dict) or as
a dict (for rules and ML, built directly: cheaper than decoding the JSON text). It is optional: without it
(no Rust toolchain at install time) or with ``LOGWARDEN_NATIVE=0`` everything runs in Python, with the same
output.

:func:`fast_path` is the only entry point (used by :class:`ingest.pipeline.Normalizer`). It returns a
:class:`FastPath` (``raw bytes -> (JSON text, @timestamp) | None``, and ``.document``: ``-> dict | None``)
only when the transforms are exactly what the extension reproduces, and ``None`` otherwise:

- any of :class:`~ingest.enrich.related.RelatedEnricher` (when its fields, among those an api_access
  document has, only repeat what ``related`` already holds) and
  :class:`~ingest.enrich.useragent.UserAgentEnricher` (the extension calls its cached ``parse``),
- then optionally one fused :class:`~ingest.privacy.fused.PrivacyPass` without sealing, whose plan for
  ``api_access`` (compiled from the configuration in use: allowlist, pseudonymized, secret, redacted and
  masked fields) this module translates into one action per leaf field the parser can write.

Any other transform (GeoIP, the separate reference steps, a sealer, anything unknown) means no fast path.

The per-event contract: the extension returns ``None`` ("run the Python chain") for anything unusual:
every record the parser would reject (the Python parser writes the dead-letter reason), unknown or
duplicate keys, values of unexpected types, timestamps and IP addresses not already in canonical form, and
so on. What it returns is the reference result: strings that redaction or masking could change are not
judged natively but handed to :meth:`PrivacyPass.string_leaf` (the pass's own code and cache), and a
string is kept as is only when a cheap test proves that neither step changes it. At construction, a few
probe events go through both paths and must give the same bytes (both forms), or the fast path is not used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import orjson

from ingest.pipeline import Transform, document_id
from ingest.records import NormalizedEvent, Record

log = logging.getLogger(__name__)

try:
    from ingest import _native  # type: ignore[attr-defined]
except ImportError:  # built without cargo: pure Python
    _native = None

SOURCE: Final = "api_access"
#: ``LOGWARDEN_NATIVE=0`` turns the fast path off (the Python chain runs; same output, slower).
ENV_SWITCH: Final = "LOGWARDEN_NATIVE"


class FastPath(Protocol):
    """The extension's ``ApiAccess``: raw bytes -> the final document, or None (run the Python chain)."""

    def __call__(self, raw: bytes, /) -> tuple[bytes, str | None] | None:
        """The document as JSON text and its final ``@timestamp``."""

    def document(self, raw: bytes, /) -> dict[str, Any] | None:
        """The same document as a dict (built directly, for consumers that read it)."""

    def pseudonym(self, value: str, /) -> str:
        """The pseudonym of ``value`` (for the self-check)."""


# leaf actions understood by the extension
_DROP: Final = 0  # removed by minimization (not allowed for the source)
_KEEP: Final = 1  # no step changes it
_PSEUDO: Final = 2  # pseudonymized, nothing else
_CHECK: Final = 3  # redacted and/or masked: kept when provably unchanged, else asked from the pass
_CALL: Final = 4  # always asked from the pass (a whole-field secret, pseudonymized and scanned ...)

#: fields of an api_access document whose values ``RelatedEnricher`` may read without changing ``related``
_RELATED_NOOP: Final = {
    "ip": frozenset({"source.ip", "source.address", "network.forwarded_ip", "related.ip"}),
    "user": frozenset({"user.id", "related.user"}),
}
#: the leaves that are not strings (nor lists of strings) in an api_access document
_NUMBERS: Final = frozenset(
    {
        "event.duration",
        "http.request.bytes",
        "http.response.status_code",
        "http.response.bytes",
        "logwarden.api.latency_ms",
        "logwarden.api.mfa",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
    }
)
#: probe events for the self-check at construction (parse-only paths, logins, IPv6, queries, bodies ...)
_PROBES: Final = (
    b'{"timestamp":"2026-11-02T08:00:00.123Z","request_id":"req_0123456789abcdef01234567","client_ip":'
    b'"203.0.113.50","forwarded_for":["10.1.2.3"],"api_key_id":"key_AbCdEfGh12345678","user_id":"user_abc",'
    b'"org_id":"org_xyz","auth_method":"api_key","mfa":false,"method":"post","path":"/v1/chat/completions",'
    b'"route":"/v1/chat/completions","query":"limit=20","status":200,"latency_ms":812.5,"bytes_in":1200,'
    b'"bytes_out":3400,"model":"gpt-4o","input_tokens":300,"output_tokens":150,'
    b'"user_agent":"openai-python/1.54.3","tls_version":"TLSv1.3"}',
    b'{"timestamp":"2026-11-02T08:00:01.000Z","client_ip":"2001:db8::7","user_id":"user_abc","method":"POST",'
    b'"path":"/v1/auth/login","status":401,"mfa":true,"user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:109.0)'
    b' Gecko/20100101 Firefox/115.0","tls_version":"TLSv1.2","body":"{\\"email\\": \\"a@example.com\\"}"}',
    b'{"timestamp":"2026-11-02T08:00:02.999Z","method":"GET","path":"/v1/files","query":"api_key=sk-abc&x=1",'
    b'"status":404,"latency_ms":3,"tls_version":"h2"}',
)


class NotNative(ValueError):
    """The transforms cannot be reproduced natively (the message says why)."""


def available() -> bool:
    """True when the extension is built and loaded."""
    return _native is not None


def enabled() -> bool:
    """True when the extension is loaded and not switched off (``LOGWARDEN_NATIVE=0``)."""
    return _native is not None and os.environ.get(ENV_SWITCH, "1") != "0"


def id_function() -> Callable[[str, bytes], str] | None:
    """The extension's ``(source, raw) -> document id`` (:func:`ingest.pipeline.document_id`, the same value
    computed natively), or None when the extension is off or lacks it, or gives another value on probes."""
    native_id = getattr(_native, "document_id", None) if enabled() else None
    if native_id is None:
        return None
    for source, raw in (("api_access", b"{}"), ("nginx", _PROBES[0]), ("okta\u00e9", bytes(range(256)) * 3)):
        if native_id(source, raw) != document_id(Record(source, raw)):
            log.warning("the native document id differs from the Python one: not used")
            return None
    return native_id  # type: ignore[no-any-return]


def fast_path(transforms: Sequence[Transform]) -> FastPath | None:
    """The native fast path for api_access records under ``transforms``, or None (the Python chain runs)."""
    if not enabled():
        return None
    try:
        return build(transforms)
    except NotNative as exc:
        log.info("native fast path not used: %s", exc)
        return None


def build(transforms: Sequence[Transform]) -> FastPath:
    """The fast path reproducing ``parse`` then ``transforms``; :class:`NotNative` when it cannot."""
    if _native is None:
        raise NotNative("the extension ingest._native is not built")
    from ingest.enrich.related import RelatedEnricher
    from ingest.enrich.useragent import UserAgentEnricher
    from ingest.privacy.fused import PrivacyPass

    leaves: list[str] = list(_native.leaves())
    enrichers: dict[type, Any] = {}
    privacy: PrivacyPass | None = None
    for transform in transforms:
        kind = type(transform)
        if privacy is not None:
            raise NotNative(f"{transform!r} runs after the privacy pass")
        if kind is PrivacyPass:
            privacy = transform  # type: ignore[assignment]
        elif kind in (RelatedEnricher, UserAgentEnricher) and kind not in enrichers:
            enrichers[kind] = transform
        else:
            raise NotNative(f"{transform!r} is not reproduced natively")
    related = enrichers.get(RelatedEnricher)
    if related is not None:
        _check_related(related, set(leaves))
    ua_parse = enrichers[UserAgentEnricher].parse if UserAgentEnricher in enrichers else None

    key: bytes | None = None
    key_id: str | None = None
    string_leaf: Callable[[str, int], Any] | None = None
    if privacy is None:
        ops = [(_KEEP, False, False, 0)] * len(leaves)
    else:
        if privacy.sealer is not None:
            raise NotNative("sealing (AES-GCM) is not done natively")
        plan = privacy.plan_for(SOURCE)
        ops = [_leaf_op(plan, name) for name in leaves]
        if privacy.pseudonymizer is not None:
            key, key_id = privacy.pseudonymizer.native_key(), privacy.pseudonymizer.key_id
        string_leaf = privacy.string_leaf
    fast = _native.ApiAccess(ops, key, key_id, string_leaf, ua_parse)
    _self_check(fast, transforms, privacy)
    return fast  # type: ignore[no-any-return]


def _check_related(related: Any, leaves: set[str]) -> None:
    for group, fields in (("ip", related.ip_fields), ("user", related.user_fields)):
        for name in fields:
            if name in leaves and name not in _RELATED_NOOP[group]:
                raise NotNative(f"RelatedEnricher reads {name} into related.{group}")


def _leaf_op(plan: Any, name: str) -> tuple[int, bool, bool, int]:
    """The extension's action at leaf ``name`` from the compiled plan of the pass."""
    from ingest.privacy._doc import split_field
    from ingest.privacy.fused import _DENY, _GEO, _MASK, _OBJECT, _PSEUDO, _SCAN, _SEAL, _SEAL_REMOVE, _SECRET

    parts = split_field(name)
    node = plan
    for i, part in enumerate(parts):
        entry = node.get(part)
        if entry is None:
            raise NotNative(f"{name}: not catalogued (the pass would name it in logwarden.privacy.dropped)")
        what, child, _, flags = entry
        if what == _DENY:
            return (_DROP, False, False, 0)
        last = i == len(parts) - 1
        if what == _OBJECT:
            if last:
                raise NotNative(f"{name}: the catalogue has an object there")
            node = child
        elif not last:
            raise NotNative(f"{'.'.join(parts[: i + 1])}: the catalogue has a leaf there")
    if flags & (_SEAL | _SEAL_REMOVE | _GEO):
        raise NotNative(f"{name}: sealed or geo_point")
    if name in _NUMBERS:
        if flags & (_PSEUDO | _SECRET):
            raise NotNative(f"{name}: a number pseudonymized or replaced as a secret")
        return (_KEEP, False, False, flags)  # redaction and masking leave numbers alone
    if flags == 0:
        return (_KEEP, False, False, 0)
    if flags == _PSEUDO:
        return (_PSEUDO, False, False, flags)
    if flags & (_PSEUDO | _SECRET):
        if flags & _SECRET and name in ("event.category", "event.type", "related.ip", "related.user"):
            raise NotNative(f"{name}: a list replaced as a secret")
        return (_CALL, False, False, flags)
    return (_CHECK, bool(flags & _SCAN), bool(flags & _MASK), flags)


def same_document(got: tuple[bytes, str | None], doc: dict[str, Any]) -> bool:
    """True when the fast path's ``(JSON text, @timestamp)`` is ``doc``: same members in the same order, same
    values and types (compared as orjson writes them), and its timestamp is the document's."""
    json, stamp = got
    return orjson.dumps(orjson.loads(json)) == orjson.dumps(doc) and stamp == doc.get("@timestamp")


def _self_check(fast: FastPath, transforms: Sequence[Transform], privacy: Any) -> None:
    """The probe events through both paths must give the same bytes (and the same pseudonyms)."""
    from ingest.pipeline import Normalizer

    reference = Normalizer(transforms, native=False)
    for raw in _PROBES:
        expected = reference.normalize(Record(SOURCE, raw))
        got, doc = fast(raw), fast.document(raw)
        if got is None and doc is None:
            continue
        want = expected.doc if isinstance(expected, NormalizedEvent) else None
        if want is None or got is None or not same_document(got, want) or orjson.dumps(doc) != orjson.dumps(want):
            raise NotNative("self-check: the native document differs from the Python chain's")
    if privacy is not None and privacy.pseudonymizer is not None:
        probe = "user_\u00e9\U0001f600"
        if fast.pseudonym(probe) != privacy.pseudonymizer.pseudonym(probe):
            raise NotNative("self-check: native pseudonyms differ")
