"""The fused pass gives exactly the output of the reference chain (minimize, seal, pseudonymize, redact, mask).

Exactly: equal documents with the same key order (compared as orjson bytes), the same dropped names and kinds;
the sealed blob is compared by what it opens to (a fresh random nonce per document) and by its length. When the
reference chain raises, the fused pass raises the same exception type. Checked on (a) every golden record of
every source, (b) generated api_access traffic and generated api_access/audit records with secrets and
personal data injected at random positions, (c) arbitrary nested JSON-like documents, for several configurations
(sealing, allowlists, whole-field secrets that are also pseudonymized, steps switched off).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.ecs import EVENT_FIELDS
from ingest.enrich.config import EnrichmentConfig, build_enrichment_transforms
from ingest.parsers import PARSERS
from ingest.pipeline import Normalizer, Transform
from ingest.privacy import RevealError
from ingest.privacy._doc import set_field
from ingest.privacy.config import PrivacyConfig, build_privacy_transforms, build_reference_transforms
from ingest.privacy.encrypt import generate_key, reveal
from ingest.privacy.fused import NotFusable, PrivacyPass
from ingest.privacy.minimize import Minimizer
from ingest.privacy.pseudonymize import Pseudonymizer
from ingest.privacy.redact import Redactor
from ingest.records import Record
from ingest.sources.synthetic import CONTENT_SCENARIOS, SCENARIOS, generate_api_access, to_json_line

GOLDEN = Path(__file__).resolve().parents[1] / "parsers" / "golden"
KEY = "fused-test-pseudonymization-key-0123456789"
KEYRING = {"k1": generate_key()}

CONFIGS: dict[str, PrivacyConfig] = {
    "default": PrivacyConfig(pseudonymization_key=KEY),
    "sealed_original": PrivacyConfig(pseudonymization_key=KEY, encryption_keys=KEYRING, seal_original=True),
    "sealed_keep_original": PrivacyConfig(pseudonymization_key=KEY, encryption_keys=KEYRING, keep_original=True),
    "allowlists_secrets_pseudonymized": PrivacyConfig(
        pseudonymization_key=KEY,
        encryption_keys=KEYRING,
        allowlists={"api_access": ["user.*", "url.*", "http.*", "source.*", "related.*"], "audit": ["user.id"]},
        keep_original_sources=["audit"],
        secret_fields=["user.id", "related.user", "user.email", "url.query"],
        extra_mask_fields=["user.roles", "source.geo.location"],
    ),
    "no_pseudonyms": PrivacyConfig(pseudonymize=False, encryption_keys=KEYRING),
    "no_redaction": PrivacyConfig(pseudonymization_key=KEY, redact=False),
    "no_masking": PrivacyConfig(pseudonymization_key=KEY, mask=False, cache_size=0),
}

SECRETS = (
    "alice.smith@example.com",
    "bob%40example.org",
    "4111 1111 1111 1111",
    "4000-0012-3456-7899",
    "+49 30 1234567",
    "(555) 123-4567",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
    "password=hunter2",
    "api_key%3Dsk-abc",
    '"client_secret": "s3cr3t"',
    "Authorization: Bearer abcdefgh12345678",
    "sk-proj-abcdefghijklmnopqrstuvwx",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "AKIAABCDEFGHIJKLMNOP",
    "https://user:pw123@example.com/x",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIBOg\n-----END RSA PRIVATE KEY-----",
    "[REDACTED:secret]",
)


Chains = dict[str, tuple[list[Transform], list[Transform]]]


@functools.cache
def all_chains() -> Chains:
    """Config name -> (fused, reference), built once (hypothesis examples share them, as a stream would)."""
    out = {}
    for name, config in CONFIGS.items():
        fused = build_privacy_transforms(config)
        assert len(fused) == 1 and isinstance(fused[0], PrivacyPass), name
        out[name] = (fused, build_reference_transforms(config))
    return out


@pytest.fixture
def chains() -> Chains:
    return all_chains()


def outcome(transforms: Sequence[Transform], doc: dict[str, Any]) -> tuple[str, Any]:
    """What the chain makes of a copy of ``doc``: ("ok", comparable bytes) or ("raised", exception type)."""
    work = copy.deepcopy(doc)
    try:
        for transform in transforms:
            work = transform(work)
    except Exception as exc:
        return "raised", type(exc).__name__
    privacy = work.get("logwarden", {}).get("privacy", {})
    sealed = privacy.get("sealed")
    if isinstance(sealed, str) and sealed.startswith("v1."):  # random nonce: compare what it opens to, and the length
        try:
            opened: Any = reveal(work, CONFIGS["sealed_original"].keyring())
        except RevealError as exc:  # e.g. a forged value that came with the input: compare the refusal
            opened = str(exc)
        privacy["sealed"] = [len(sealed), opened]
    return "ok", orjson.dumps(work)


def check_same(chains: Chains, doc: dict[str, Any]) -> None:
    for name, (fused, reference) in chains.items():
        expected = outcome(reference, doc)
        assert outcome(fused, doc) == expected, name


@functools.cache
def enricher() -> Normalizer:
    return Normalizer(build_enrichment_transforms(EnrichmentConfig()))


def normalized(source: str, raw: bytes) -> list[dict[str, Any]]:
    events, _ = enricher().normalize_all([Record(source, raw)])
    return [e.doc for e in events]


def golden_raws() -> list[tuple[str, Path]]:
    return [(s, p) for s in sorted(PARSERS) for p in sorted((GOLDEN / s).glob("*.raw"))]


# --- (a) golden records ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "path"), golden_raws(), ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_golden_records(source: str, path: Path, chains: Chains) -> None:
    for doc in normalized(source, path.read_bytes().strip()):
        check_same(chains, doc)
        # the same document from another source (another allowlist), and with the raw record kept
        check_same(chains, {**doc, "logwarden": {**doc.get("logwarden", {}), "source": "audit"}})
        check_same(chains, {**doc, "event": {**doc.get("event", {}), "original": path.read_text()}})


def test_every_source_has_golden_records() -> None:
    assert {source for source, _ in golden_raws()} == set(PARSERS)


# --- (b) generated traffic -------------------------------------------------------------------------------


def test_generated_api_access(chains: Chains) -> None:
    stream = generate_api_access(seed=7, duration=timedelta(hours=2), scenarios=[*SCENARIOS, *CONTENT_SCENARIOS])
    raws = [to_json_line(e) for e in islice(stream, 1500)]
    docs = [doc for raw in raws for doc in normalized("api_access", raw)]
    assert len(docs) == len(raws)
    for doc in docs:
        check_same(chains, doc)


def json_goldens(*sources: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for source, path in golden_raws():
        if source in sources and path.with_suffix(".ecs.json").exists():
            out.append((source, orjson.loads(path.read_bytes())))
    return out


def string_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in string_paths(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in string_paths(v, (*path, i))]
    return [path] if isinstance(node, str) else []


@st.composite
def injected_records(draw: st.DrawFn) -> tuple[str, bytes]:
    """A golden api_access or audit record with secrets and personal data put at random string positions."""
    source, record = draw(st.sampled_from(json_goldens("api_access", "audit")))
    record = copy.deepcopy(record)
    paths = string_paths(record)
    for path in draw(st.lists(st.sampled_from(paths), max_size=4)) if paths else []:
        node = record
        for part in path[:-1]:
            node = node[part]
        secret = draw(st.sampled_from(SECRETS))
        node[path[-1]] = draw(st.sampled_from([secret, f"{node[path[-1]]} {secret}", f"{node[path[-1]]}/{secret}"]))
    return source, orjson.dumps(record)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(injected_records())
def test_generated_records_with_injected_secrets(record: tuple[str, bytes]) -> None:
    for doc in normalized(*record):
        check_same(all_chains(), doc)


# --- (c) arbitrary documents -----------------------------------------------------------------------------

FIELDS = sorted(EVENT_FIELDS)
PARENTS = sorted({f.rsplit(".", 1)[0] for f in FIELDS if "." in f})
texts = (
    st.text(max_size=12)
    | st.sampled_from(SECRETS)
    | st.builds("{} {}".format, st.text(max_size=6), st.sampled_from(SECRETS))
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
geo = st.fixed_dictionaries({"lat": st.floats(-90, 90), "lon": st.floats(-180, 180)})
paths = (
    st.sampled_from(FIELDS)
    | st.sampled_from(PARENTS)
    | st.builds("{}.{}".format, st.sampled_from(PARENTS), st.text(min_size=1, max_size=6))
    | st.text(min_size=1, max_size=8)
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for path, value in draw(st.lists(st.tuples(paths, json_values | st.lists(scalars, max_size=3) | geo), max_size=12)):
        try:
            set_field(doc, path, value)
        except TypeError:  # a path through a list
            continue
    source = draw(st.sampled_from(["api_access", "audit", "okta", "unknown", None]) | scalars)
    if source is not None:
        set_field(doc, "logwarden.source", source)
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
@example({"logwarden": {"privacy": {"sealed": None}}, "source": {"geo": {"region_name": []}}})  # found in CI
@example({"logwarden": {"privacy": {"sealed": []}, "source": "api_access"}, "source": {"geo": {}}})
@example({"logwarden": {"privacy": {"sealed": "v1.k1.AAAA"}, "source": "api_access"}})  # a forged sealed value
def test_arbitrary_documents(doc: dict[str, Any]) -> None:
    check_same(all_chains(), doc)


def test_a_list_as_source_raises_in_both() -> None:
    fused, reference = build_privacy_transforms(CONFIGS["default"]), build_reference_transforms(CONFIGS["default"])
    doc = {"logwarden": {"source": ["x"]}, "event": {"original": "x"}}
    assert outcome(fused, doc) == outcome(reference, doc) == ("raised", "TypeError")


# --- what is not fused -----------------------------------------------------------------------------------


def test_steps_that_are_not_equivalent_in_one_pass_are_refused() -> None:
    catalogue = {"user.id": "keyword", "message": "text", "logwarden.privacy.key_id": "keyword"}
    minimizer = Minimizer(catalogue)
    pseudonymizer = Pseudonymizer(b"k" * 32, "k1", ["user.id"])
    cases: list[Callable[[], PrivacyPass]] = [
        lambda: PrivacyPass([pseudonymizer]),  # no minimization first
        lambda: PrivacyPass([minimizer, Redactor(), pseudonymizer]),  # wrong order
        lambda: PrivacyPass([minimizer, Redactor(skip_fields=["user.id"])]),  # would scan logwarden.privacy
        lambda: PrivacyPass([minimizer, Pseudonymizer(b"k" * 32, "k1", ["user"])]),  # not a leaf
        lambda: PrivacyPass([minimizer, Pseudonymizer(b"k" * 32, "k1", ["logwarden.privacy.key_id"])]),
    ]
    for case in cases:
        with pytest.raises(NotFusable):
            case()
    assert isinstance(PrivacyPass([minimizer, pseudonymizer]), PrivacyPass)
