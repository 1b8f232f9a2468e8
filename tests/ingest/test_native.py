"""The native fast path (ingest._native via ingest/native.py) gives exactly the Python chain's documents.

Exactly: for every raw record, the fast path returns None (the Python chain runs) or a document whose
``orjson.dumps`` bytes equal those of the Python chain (``Normalizer(..., native=False)``, built from
separate transform instances), so key order and value types count. Checked on the api_access golden
records, on generated traffic (every scenario, with the share handled natively), and on arbitrary gateway
events (valid and weird), for several configurations. The cheap tests that let strings skip redaction and
masking are checked to be sound against the reference functions.

The extension must be loaded in the test run (CI and developer machines have cargo: ``pip install -e .``
builds it): a silently missing build fails ``test_extension_is_loaded``. ``LOGWARDEN_NATIVE=0`` (a
deliberate pure-Python run) skips that test and the native-only ones.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Sequence
from datetime import UTC, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest import native
from ingest.enrich.config import EnrichmentConfig, build_enrichment_transforms
from ingest.enrich.related import RelatedEnricher
from ingest.pipeline import Normalizer, Transform, document_id
from ingest.privacy.config import PrivacyConfig, build_privacy_transforms, build_reference_transforms
from ingest.privacy.encrypt import generate_key
from ingest.privacy.mask import mask_text
from ingest.privacy.redact import redact_text
from ingest.records import DeadLetter, NormalizedEvent, Record
from ingest.sources.synthetic import CONTENT_SCENARIOS, SCENARIOS, generate_api_access, to_json_line

GOLDEN = Path(__file__).resolve().parent / "parsers" / "golden" / "api_access"
KEY = "native-test-pseudonymization-key-0123456789"
NGINX_LINE = b'203.0.113.9 - - [02/Nov/2026:08:00:00 +0000] "GET /v1/models HTTP/1.1" 200 512 "-" "curl/8.5.0"'
OFF = os.environ.get(native.ENV_SWITCH) == "0"
# only a deliberate pure-Python run skips: a missing extension fails these tests (and test_extension_is_loaded)
needs_native = pytest.mark.skipif(OFF, reason="native fast path off (LOGWARDEN_NATIVE=0)")

CONFIGS: dict[str, Callable[[], list[Transform]]] = {
    "parse_only": list,
    "default": lambda: build_privacy_transforms(PrivacyConfig(pseudonymization_key=KEY)),
    "enrichment_default": lambda: [
        *build_enrichment_transforms(EnrichmentConfig()),
        *build_privacy_transforms(PrivacyConfig(pseudonymization_key=KEY)),
    ],
    "allowlist_secrets": lambda: build_privacy_transforms(
        PrivacyConfig(
            pseudonymization_key=KEY,
            pseudonymization_key_id="hf",  # "ps_hf_..." contains a redaction trigger
            allowlists={"api_access": ["user.*", "url.*", "http.request.*", "source.ip", "related.*", "tls.*"]},
            secret_fields=["url.query", "tls.version"],
            extra_pseudonymize_fields=["organization.id"],
            extra_mask_fields=["event.id"],
        )
    ),
    "pseudonymized_and_scanned": lambda: build_privacy_transforms(
        PrivacyConfig(pseudonymization_key=KEY, pseudonymize_fields=["user.id", "url.path"], secret_fields=["user.id"])
    ),
    "no_pseudonyms_no_masking": lambda: [
        RelatedEnricher(),
        *build_privacy_transforms(PrivacyConfig(pseudonymize=False, mask=False)),
    ],
}


def pair(config: str) -> tuple[native.FastPath, Normalizer]:
    """The fast path and the Python chain of ``config``, from separate transform instances."""
    fast = native.build(CONFIGS[config]())
    return fast, Normalizer(CONFIGS[config](), native=False)


_PAIRS: dict[str, tuple[native.FastPath, Normalizer]] = {}


def cached_pair(config: str) -> tuple[native.FastPath, Normalizer]:
    if config not in _PAIRS:
        _PAIRS[config] = pair(config)
    return _PAIRS[config]


def check(fast: native.FastPath, reference: Normalizer, raw: bytes) -> bool:
    """True when the fast path handled ``raw``; fails when its document (JSON text or dict) differs from the
    Python chain's."""
    got, doc = fast(raw), fast.document(raw)
    if got is None:
        assert doc is None, raw  # both forms handle the same records
        return False
    expected = reference.normalize(Record("api_access", raw))
    assert isinstance(expected, NormalizedEvent), f"native handled a record Python rejects: {expected}"
    assert native.same_document(got, expected.doc), raw
    assert orjson.dumps(doc) == orjson.dumps(expected.doc), raw
    return True


def test_extension_is_loaded() -> None:
    if OFF:
        pytest.skip("LOGWARDEN_NATIVE=0: a deliberate pure-Python run")
    assert native.available(), "ingest._native is not built: install with cargo on PATH (pip install -e .)"
    assert Normalizer(CONFIGS["enrichment_default"]()).uses_native


@needs_native
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_golden_records(config: str) -> None:
    fast, reference = cached_pair(config)
    for path in sorted(GOLDEN.glob("*.raw")):
        raw = path.read_bytes()
        handled = check(fast, reference, raw)
        if path.with_suffix("").with_suffix(".error.json").exists():
            assert not handled  # a dead letter: the Python parser writes the reason
    if config == "parse_only":  # the canonical golden record is handled and equals its golden document
        raw = (GOLDEN / "login_failure.raw").read_bytes()
        golden = orjson.loads((GOLDEN / "login_failure.ecs.json").read_bytes())
        got = fast(raw)
        assert got is not None and orjson.loads(got[0]) == golden and got[1] == golden["@timestamp"]


@needs_native
@pytest.mark.parametrize("config", ["default", "enrichment_default", "allowlist_secrets"])
def test_generated_traffic(config: str) -> None:
    fast, reference = cached_pair(config)
    stream = generate_api_access(duration=timedelta(hours=6), scenarios=(*SCENARIOS, *CONTENT_SCENARIOS))
    raws = [to_json_line(e) for e in islice(stream, 3000)]
    handled = sum(check(fast, reference, raw) for raw in raws)
    print(f"{config}: handled natively {handled}/{len(raws)} ({1 - handled / len(raws):.2%} fall back)")
    assert handled >= 0.99 * len(raws)


# --- arbitrary gateway events --------------------------------------------------------------------------

_TEXT = st.lists(
    st.sampled_from(
        [*"aAzZ09 .:=-_/@+()%?&\"'\t", "0", "00", "1234", "\u0660", "\u00e9", "\u212a", "\u017f", "\U0001f600"]
    )
    | st.sampled_from(
        [
            "api_key=",
            "token:",
            "Bearer abcdefgh123",
            "eyJhbGciOi.eyJzdWIiOi.c2ln",
            "sk-abcdefghijklmnop1234",
            "AKIAABCDEFGHIJKLMNOP",
            "a@example.com",
            "%40",
            "%3D",
            "+49 30 1234567",
            "4111 1111 1111 1111",
            "(555) 123-4567",
            "030 1234567",
            "20100101",
            "https://u:pw@host",
            "monkey=1",
        ]
    ),
    max_size=12,
).map("".join)
_IPS = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.sampled_from(["", " 1.2.3.4", "01.2.3.4", "1.2.3", "::ffff:1.2.3.4", "::FFFF:102:304", "fe80::1%eth0", "x"]),
)
_CANONICAL_TS = st.datetimes(timezones=st.just(UTC)).map(
    lambda d: d.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
)
_TIMESTAMPS = st.one_of(
    _CANONICAL_TS,
    _CANONICAL_TS,
    _CANONICAL_TS,
    st.sampled_from(
        ["2026-11-02T08:00:00Z", "2026-02-29T00:00:00.000Z", "2024-02-29T23:59:59.999Z", "2026-13-01T00:00:00.000Z"]
    ),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
)
_WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.just("k"), st.integers(), max_size=1),
    _TEXT,
)
_STRING_KEYS = ("request_id", "api_key_id", "user_id", "org_id", "auth_method", "query", "model", "body")
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "timestamp": _TIMESTAMPS,
    "client_ip": _IPS,
    "forwarded_for": st.one_of(st.lists(st.one_of(_IPS, st.none()), max_size=3), _IPS),
    "mfa": st.booleans(),
    "method": st.sampled_from(["GET", "post", "Patch", "TRACE", "DELETE", "head", "OPTIONS", "BREW", "GE\u017fT", ""]),
    "path": st.one_of(st.sampled_from(["/v1/files", "/v1/auth/login", "/v1/chat/completions"]), _TEXT),
    "route": st.sampled_from(["/v1/auth/login", "/v1/auth/token", "/v1/auth/mfa/verify", "/v1/files/{id}", ""]),
    "status": st.one_of(st.integers(100, 599), st.sampled_from([99, 600, 200.0, 2**53 + 1])),
    "latency_ms": st.one_of(
        st.floats(min_value=0, allow_infinity=False),
        st.integers(0, 10**7),
        st.sampled_from([-5, 2**53, 2**53 + 1, 2**60]),
        st.sampled_from([-0.0, 0.0, 1e-300, 9.3e12, 1e13]),
    ),
    "user_agent": st.one_of(
        st.sampled_from(
            [
                "openai-python/1.54.3",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0.0.0 Safari/537.36",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148",
                "curl/8.5.0",
            ]
        ),
        _TEXT,
    ),
    "tls_version": st.sampled_from(["TLSv1.3", "tlsv1.2", "SSLv3", "TLS", "TLSv", "h2", "\u017f\u017flv3", "v1"]),
    **{key: _TEXT for key in _STRING_KEYS},
    **{
        key: st.integers(0, 10**9) | st.sampled_from([-3, 2**53, 2**53 + 1, 2**64])
        for key in ("bytes_in", "bytes_out", "input_tokens", "output_tokens")
    },
}


_VALID: dict[str, st.SearchStrategy[Any]] = {
    **_VALUES,
    "timestamp": _CANONICAL_TS,
    "client_ip": st.ip_addresses().map(str),
    "forwarded_for": st.lists(st.ip_addresses().map(str), max_size=3),
    "method": st.sampled_from(["GET", "post", "Patch", "TRACE", "DELETE", "head", "OPTIONS"]),
    "path": _TEXT.map(lambda t: "/" + t),
    "status": st.integers(100, 599),
    "latency_ms": st.floats(min_value=0, max_value=1e9) | st.integers(0, 10**7),
    "tls_version": st.sampled_from(["TLSv1.3", "tlsv1.2", "SSLv3", "TLS", "TLSv", "h2", "v1"]),
    **{key: st.integers(0, 10**9) for key in ("bytes_in", "bytes_out", "input_tokens", "output_tokens")},
}


@st.composite
def gateway_events(draw: st.DrawFn, valid: bool = False) -> bytes:
    """Raw events: ``valid`` ones the parser accepts (mostly handled natively), else anything goes."""
    values = _VALID if valid else _VALUES
    keys = draw(st.lists(st.sampled_from(sorted(values)), unique=True, max_size=len(values)))
    event: dict[str, Any] = {"timestamp": draw(values["timestamp"]), "method": "GET", "path": "/v1/x", "status": 200}
    weird = draw(st.none() | st.sampled_from(keys)) if keys and not valid and draw(st.integers(0, 2)) == 0 else None
    for key in keys:  # one value of an unexpected type at most
        event[key] = draw(_WEIRD) if key == weird else draw(values[key])
    if not valid and draw(st.integers(0, 19)) == 0:
        event["unknown_key"] = 1
    variant = draw(st.integers(0, 19)) if not valid else draw(st.sampled_from([0, 3, 3, 3]))
    # json, not orjson: integers beyond 64 bits; variant 0: \u escapes everywhere
    raw = json.dumps(event, ensure_ascii=variant == 0, separators=(",", ":")).encode()
    if variant == 1:  # a duplicate key
        raw = raw[:-1] + b',"method":"POST"}'
    elif variant == 2:  # broken bytes
        raw = raw[: draw(st.integers(0, len(raw)))] + draw(st.sampled_from([b"\xff", b"", b" x", b"\\ud800"]))
    return raw


@needs_native
@pytest.mark.parametrize("config", sorted(CONFIGS))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=gateway_events())
@example(raw=b'{"timestamp":"2026-11-02T08:00:00.000Z","method":"GET","path":"/","status":200,"latency_ms":-0}')
@example(raw=b'{"timestamp":"2026-11-02T08:00:00.000Z","method":"GET","path":"/","status":200,"latency_ms":-0.0}')
def test_arbitrary_events(config: str, raw: bytes) -> None:
    fast, reference = cached_pair(config)
    check(fast, reference, raw)


@needs_native
@pytest.mark.parametrize("config", sorted(CONFIGS))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=gateway_events(valid=True))
def test_valid_events(config: str, raw: bytes) -> None:
    fast, reference = cached_pair(config)
    check(fast, reference, raw)


# --- the cheap tests are sound ----------------------------------------------------------------------------


@needs_native
@settings(max_examples=600, deadline=None)
@given(_TEXT)
@example("x.0012345678")
@example("Gecko/20100101 Firefox/115.0")
@example("\u212aEY=1")
def test_no_secret_means_unchanged(text: str) -> None:
    from ingest import _native  # type: ignore[attr-defined]

    if not _native.might_hold_secret(text):
        assert redact_text(text) == (text, frozenset())
    if not _native.might_mask(text):
        assert mask_text(text)[0] == text


@needs_native
@settings(max_examples=300, deadline=None)
@given(st.one_of(_IPS, st.ip_addresses().map(str), _TEXT))
def test_canonical_ips_are_what_python_prints(text: str) -> None:
    from ingest import _native  # type: ignore[attr-defined]

    if _native.canonical_ip(text):  # sound: accepted only when Python prints it so
        assert str(ipaddress.ip_address(text)) == text
    elif _is_ip(text) and str(address := ipaddress.ip_address(text)) == text:  # complete, but for two forms
        assert isinstance(address, ipaddress.IPv6Address)
        assert address.ipv4_mapped is not None or address.scope_id is not None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# --- when the fast path applies ----------------------------------------------------------------------------


class _Tag:
    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        return doc


@needs_native
@pytest.mark.parametrize(
    "transforms",
    [
        pytest.param(lambda: build_reference_transforms(PrivacyConfig(pseudonymization_key=KEY)), id="reference"),
        pytest.param(
            lambda: build_privacy_transforms(
                PrivacyConfig(pseudonymization_key=KEY, encryption_keys={"k1": generate_key()})
            ),
            id="sealing",
        ),
        pytest.param(lambda: [_Tag()], id="unknown"),
        pytest.param(lambda: [*CONFIGS["default"](), RelatedEnricher()], id="after_privacy"),
        pytest.param(lambda: [RelatedEnricher(ip_fields=["user.id"])], id="related_changes"),
    ],
)
def test_not_native(transforms: Callable[[], Sequence[Transform]]) -> None:
    assert native.fast_path(transforms()) is None
    assert not Normalizer(transforms()).uses_native


@needs_native
@needs_native
def test_documents_as_dicts_or_as_json_text_only() -> None:
    raw = (GOLDEN / "login_failure.raw").read_bytes()
    as_dict = Normalizer(CONFIGS["enrichment_default"]()).normalize(Record("api_access", raw))
    as_text = Normalizer(CONFIGS["enrichment_default"](), dicts=False).normalize(Record("api_access", raw))
    assert isinstance(as_dict, NormalizedEvent) and isinstance(as_text, NormalizedEvent)
    assert as_dict.forms == ("doc",)  # built as a dict, serialized when written
    assert as_text.forms == ("json",)  # JSON text only, never decoded unless read
    assert as_text.timestamp == as_dict.timestamp
    assert as_text.json == orjson.dumps(as_dict.doc)
    assert as_text == as_dict


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENV_SWITCH, "0")
    assert not Normalizer(CONFIGS["default"]()).uses_native


def test_pure_python_when_the_extension_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = (GOLDEN / "login_failure.raw").read_bytes()
    with_native = Normalizer(CONFIGS["enrichment_default"]()).normalize(Record("api_access", raw))
    monkeypatch.setattr(native, "_native", None)
    normalizer = Normalizer(CONFIGS["enrichment_default"]())
    assert not normalizer.uses_native and not native.available()
    without = normalizer.normalize(Record("api_access", raw))
    assert isinstance(with_native, NormalizedEvent) and isinstance(without, NormalizedEvent)
    assert orjson.dumps(with_native.doc) == orjson.dumps(without.doc)
    assert with_native.doc_id == without.doc_id


@needs_native
@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["api_access", "nginx", "okta", "k8s_audit", "", "\u00e9\U0001f600"]), st.binary(max_size=3000))
def test_native_document_ids_are_the_python_ones(source: str, raw: bytes) -> None:
    native_id = native.id_function()
    assert native_id is not None
    assert native_id(source, raw) == document_id(Record(source, raw))


@needs_native
def test_the_normalizer_uses_the_native_document_id_for_every_source(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [Record("api_access", (GOLDEN / "login_failure.raw").read_bytes()), Record("nginx", NGINX_LINE)]
    normalizer = Normalizer(CONFIGS["default"]())
    assert normalizer.document_id(records[0]) == document_id(records[0])
    calls: list[tuple[str, bytes]] = []
    real = normalizer._native_id
    assert real is not None
    normalizer._native_id = lambda source, raw: calls.append((source, raw)) or real(source, raw)
    events, dead = normalizer.normalize_all(records)
    assert not dead and [e.doc_id for e in events] == [document_id(r) for r in records]
    assert calls == [(r.source, r.value) for r in records]
    monkeypatch.setenv(native.ENV_SWITCH, "0")  # switched off: the Python digest (the same value)
    assert Normalizer(CONFIGS["default"]())._native_id is None


def test_dead_letters_come_from_the_python_parser() -> None:
    raw = (GOLDEN / "status_not_a_number.raw").read_bytes()
    result = Normalizer(CONFIGS["default"]()).normalize(Record("api_access", raw))
    assert isinstance(result, DeadLetter) and result.reason == "bad_field"


class PanicException(BaseException):  # what PyO3 raises when Rust code panics: not an Exception
    pass


@pytest.mark.parametrize("failure", [RuntimeError("callback failed"), PanicException("index out of bounds")])
def test_a_failing_fast_path_falls_back_to_the_python_chain(failure: BaseException) -> None:
    raw = (GOLDEN / "login_failure.raw").read_bytes()
    expected = Normalizer(CONFIGS["default"](), native=False).normalize(Record("api_access", raw))
    normalizer = Normalizer(CONFIGS["default"]())

    def failing(value: bytes) -> tuple[bytes, str | None] | None:
        raise failure

    normalizer._fast = failing
    got = normalizer.normalize(Record("api_access", raw))
    assert isinstance(got, NormalizedEvent) and isinstance(expected, NormalizedEvent)
    assert orjson.dumps(got.doc) == orjson.dumps(expected.doc)


def test_an_interrupt_in_the_fast_path_is_not_swallowed() -> None:
    normalizer = Normalizer(CONFIGS["default"]())

    def interrupted(value: bytes) -> tuple[bytes, str | None] | None:
        raise KeyboardInterrupt

    normalizer._fast = interrupted
    with pytest.raises(KeyboardInterrupt):
        normalizer.normalize(Record("api_access", (GOLDEN / "login_failure.raw").read_bytes()))
